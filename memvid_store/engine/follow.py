"""Readers that follow the writer: a cheap check for news before each read call.

A following reader (``Memory.open(path, readonly=True, follow=True)``) remembers what it
last saw: the 4 KiB header of its file, the WAL position where its replay ended (with the
sequence number and ``prev`` crc the next record must carry) and the file's (device,
inode). Before each read it checks, in this order:

1. the WAL at that position (one ``pread`` of a record header): does the next record
   start there? Then records were appended: ``extend`` replays only those into the
   snapshot's delta (runs and caches are kept), unless a commit landed meanwhile.
2. the header (one ``pread``): a different one means a commit: the reader reloads as
   ``refresh()`` does, reusing its run readers.
3. the path (``stat``): another inode means the file was compacted: the reader opens it.

Nothing changed costs those two ``pread`` calls and one ``stat`` (bench/follow_bench.py).
The WAL is read before the header: the WAL restarts only after a commit's header is
durable, so an unchanged header read after the WAL means no record appended before the
WAL read was overwritten, and every write acknowledged before the check is seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager

from .format import HEADER_SIZE
from .records import decode_ops
from .snapshot import Snapshot
from .store import Opened, open_fd, read_state_for_reader, same_file
from .wal import REC_HEADER, replay, starts_record

NOTHING, APPENDED, MOVED = 0, 1, 2


class Seen:
    """What a following reader last saw of its file (replaced whole, never mutated, so a
    thread reading it without the handle's lock sees one consistent state)."""

    __slots__ = ("fd", "file", "header", "last_crc", "last_seq", "wal_end", "wal_offset",
                 "wal_size")

    def __init__(self, fd: int, header: bytes, state: Opened) -> None:
        st = os.fstat(fd)
        self.fd = fd
        self.file = (st.st_dev, st.st_ino)
        self.header = header
        self.wal_offset = state.header.wal_offset
        self.wal_size = state.header.wal_size
        self.wal_end = state.wal_end
        self.last_seq = state.wal_last_seq
        self.last_crc = state.wal_last_crc

    def advanced(self, wal_end: int, last_seq: int, last_crc: int) -> Seen:
        """The same file and header, with the WAL replayed up to ``wal_end``."""
        other = object.__new__(Seen)
        other.fd, other.file, other.header = self.fd, self.file, self.header
        other.wal_offset, other.wal_size = self.wal_offset, self.wal_size
        other.wal_end, other.last_seq, other.last_crc = wal_end, last_seq, last_crc
        return other


class ReaderFile:
    """The file behind a read-only handle: its fd and, with ``follow``, the freshness check.

    ``load`` reads a state to install and ``publish`` makes it the one the check compares
    against, once the handle reads from it.
    """

    __slots__ = ("fd", "follow", "path", "pending", "seen", "wal_end")

    def __init__(self, path: str, *, follow: bool) -> None:
        self.path = path
        self.follow = follow
        self.fd = open_fd(path, writable=False)
        self.seen: Seen | None = None
        self.pending: Seen | None = None
        self.wal_end = 0  # where the replay of the installed state ended (stats)

    def load(self) -> Opened:
        """``read_state``; a follower remembers the header read before it (a commit landing
        in between makes the next check reload again, never miss it)."""
        if not self.follow:
            state = read_state_for_reader(self.fd)
            self.wal_end = state.wal_end
            return state
        header = os.pread(self.fd, HEADER_SIZE, 0)
        state = read_state_for_reader(self.fd)
        self.pending = Seen(self.fd, header, state)
        return state

    def publish(self) -> None:
        if self.pending is not None:
            self.seen, self.pending = self.pending, None
            self.wal_end = self.seen.wal_end

    def reopen(self) -> bool:
        """True while the path still names the open file; else open the file now there
        (compacted) and return False: nothing read from the old one can be reused."""
        if same_file(self.fd, self.path):
            return True
        fd = open_fd(self.path, writable=False)
        os.close(self.fd)
        self.fd = fd
        return False

    def close(self) -> None:
        self.seen = None  # news() is NOTHING from now on
        os.close(self.fd)

    def catch_up(self, lock: AbstractContextManager, current: Callable[[], Snapshot],
                 reload: Callable[[], None]) -> None:
        """After ``news()`` said so: under the handle's ``lock`` (another thread may have
        moved it meanwhile), replay appended records into the ``current()`` snapshot, or
        ``reload`` the newest commit or compacted file as ``refresh()`` does."""
        with lock:
            news = self.news()
            if news and not (news == APPENDED and self.extend(current())):
                reload()

    def news(self) -> int:
        """NOTHING, APPENDED (WAL records after the seen end) or MOVED (a commit, or a
        compacted file at the path). Two ``pread`` calls and one ``stat``; NOTHING at
        once for a reader that does not follow."""
        seen = self.seen
        if seen is None:
            return NOTHING
        try:
            head = os.pread(seen.fd, REC_HEADER, seen.wal_offset + seen.wal_end)
            if starts_record(head, seen.last_seq + 1, seen.last_crc):
                return APPENDED
            if os.pread(seen.fd, HEADER_SIZE, 0) != seen.header:
                return MOVED
            st = os.stat(self.path)
        except OSError:
            return MOVED  # the path is gone or the handle is closing: the reload decides
        return NOTHING if (st.st_dev, st.st_ino) == seen.file else MOVED

    def extend(self, snap: Snapshot) -> bool:
        """Replay the records appended since the seen end into ``snap``'s delta; False
        (nothing changed) when a commit landed meanwhile: the caller reloads."""
        seen = self.seen
        fd = seen.fd
        rep = replay(lambda off, n: os.pread(fd, n, seen.wal_offset + off), seen.last_seq,
                     size=seen.wal_size, start=seen.wal_end, prev_crc=seen.last_crc)
        if os.pread(fd, HEADER_SIZE, 0) != seen.header:
            return False  # a commit: the WAL may have restarted under the replay
        first = snap.toc.next_gid + len(snap.delta)
        versions = []
        for _, payload in rep.records:
            versions.extend(decode_ops(payload, first + len(versions), seen.wal_offset))
        snap.add_delta(versions)
        self.seen = seen.advanced(rep.end, rep.last_seq, rep.last_crc)
        self.wal_end = rep.end
        return True


__all__ = ["APPENDED", "MOVED", "NOTHING", "ReaderFile", "Seen"]
