"""Opening, committing and compacting a .mv2 file.

Commit protocol (LMDB-style, see format.py): append the payload block, dictionary and
run segments and the TOC after the committed end, fsync, write header slot
``generation % 2``, fsync. The WAL restarts only after the header is durable; records
it still holds carry sequence numbers at or below the new checkpoint and are ignored.

Runs are merged size-tiered inside the same commit (never more than a logarithmic
number of runs; compaction, whose new file nobody reads until it is renamed, fills them
instead: ``merge_filled``); merged-away segments stay in the file, reachable from older
TOCs, until ``compact()`` rewrites the file.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import (
    CorruptFileError,
    DamagedCommitWarning,
    DamagedIndexError,
    MemoryNotFoundError,
    NotAMemoryFileError,
    StorageError,
)
from ..lazy import numpy as np
from . import _faults, lock
from .codec import Codec, payload_of, train_dictionary
from .fileio import FileView, MmapConfig
from .format import (
    ALIGN,
    HEADER_SIZE,
    SLOT_SIZE,
    TIME_MAX,
    TOC_FOOTER_SIZE,
    WAL_OFFSET,
    Header,
    SegmentRef,
    Toc,
    align,
    crc32,
    encode_commit_log,
    pack_toc_footer,
    pick_header,
    unpack_header,
    unpack_toc_footer,
)
from .hooks import ALL, Pieces
from .records import COUNTERS, Version, decode_ops, id_hash
from .runs import (
    FLAG_TOMBSTONE,
    FLAG_VECTOR,
    POSTING_PARTS,
    RunColumns,
    RunReader,
    empty_columns,
    encode_run,
    finish_columns,
    group_postings,
    group_values,
    merge_postings,
    merge_values,
    np_type,
    tag_list,
    tag_list_parts,
)
from .snapshot import Snapshot, read_toc
from .terms import term_hash, terms_of, walk
from .value_kinds import VALUE_KINDS, ValueKind
from .wal import replay

if TYPE_CHECKING:
    from .hooks import CommitHook
    from .source import ByteSource

Pread = Callable[[int, int], bytes]  # (size, offset) -> bytes, like os.pread on one fd

MERGE_FANOUT = 4
VECTOR_ALIGN = 64
MAX_RUNS = 48
# a run this large (its segment's bytes) is never merged again: a merge builds its output
# in memory, so this bounds a commit's memory (and a row's rewrites) whatever the file's size
RUN_CAP = 64 << 20


MAX_CLOCK_SKEW_US = 60_000_000  # how far past this machine's clock a given record time may be


def now_us() -> int:
    return time.time_ns() // 1000


def check_not_future(t: int, what: str) -> int:
    """``t`` (µs) unless it is more than ``MAX_CLOCK_SKEW_US`` past now: a record time
    from the future would stamp every later write after it."""
    now = now_us()
    if t > now + MAX_CLOCK_SKEW_US:
        from ..errors import InvalidInputError
        from ..types import from_us

        raise InvalidInputError(
            f"{what} {from_us(t).isoformat()} is in the future (now is "
            f"{from_us(now).isoformat()}); give a time at most "
            f"{MAX_CLOCK_SKEW_US // 1_000_000} s ahead, or fix the clock")
    return t
# --------------------------------------------------------------------------- opening


@dataclass(slots=True)
class Opened:
    header: Header
    toc: Toc
    delta: list[Version]
    wal_end: int
    wal_last_seq: int
    problems: list[str]
    newest_generation: int = -1  # of the newest valid header slot (read_state's retry check)
    recovered: bool = False  # the header was rebuilt from the TOC footer at the end of file
    wal_last_crc: int = 0
    newest_damaged: bool = False  # the newest commit's TOC failed, and the WAL does not
    # hold all its writes: this state is the commit before, missing some of them


def read_state(fd: int | ByteSource) -> Opened:
    """Read header, TOC and WAL delta consistently (retries if a commit lands meanwhile).

    ``fd`` is a local file's descriptor or a ``ByteSource`` (one immutable version of a
    remote file: read once, nothing can land meanwhile)."""
    if not isinstance(fd, int):
        return _read_state_once(fd.pread, fd.size)
    for _ in range(50):
        size = os.fstat(fd).st_size
        state = _read_state_once(lambda n, off: os.pread(fd, n, off), size)
        if state.problems and os.fstat(fd).st_size != size:
            continue  # a commit landed past the size read: its TOC looked missing, not damaged
        again = os.pread(fd, HEADER_SIZE, 0)
        try:
            latest, _ = pick_header(again)
        except CorruptFileError:
            return state
        if latest.generation == state.newest_generation:
            return state
    raise CorruptFileError("the file keeps changing while it is read", "header", 0)


def read_state_for_reader(fd: int | ByteSource) -> Opened:
    """``read_state`` for a read-only handle: it warns (``DamagedCommitWarning``) when the
    state is the commit before a damaged newest one whose writes the WAL lost."""
    state = read_state(fd)
    if state.newest_damaged:
        warnings.warn("the newest commit of this memory file is damaged (its table of "
                      "contents fails its checks) and the WAL no longer holds all its "
                      "writes: reads show the file as of the commit before it. Run `mv2 "
                      "doctor FILE --repair NEW.mv2` to copy what can be read into a new "
                      "file", DamagedCommitWarning, stacklevel=4)
    return state


def _read_state_once(pread: Pread, size: int) -> Opened:
    raw = pread(HEADER_SIZE, 0)
    if len(raw) < SLOT_SIZE:
        raise NotAMemoryFileError(f"file is {size} bytes: too short to be a .mv2 file")
    header, problems = pick_header(raw)
    newest = header.generation
    recovered = damaged = False
    if problems and all(any(raw[s * SLOT_SIZE : (s + 1) * SLOT_SIZE]) for s in (0, 1)):
        # a header slot is damaged: it may have held a newer commit than the one chosen
        newer = _newer_commit_at_end(pread, header, size)
        if newer is not None:
            header, recovered = newer, True
    try:
        toc = read_toc(pread, header, size)
    except CorruptFileError as exc:
        # the newest commit's TOC is damaged: fall back to the other slot's commit
        other = _other_header(raw, header)
        if other is None:
            raise
        problems.append(str(exc))
        lost_upto = header.wal_checkpoint_seq  # the last write the damaged commit held
        header = other
        toc = read_toc(pread, header, size)
        damaged = True
    wal_off = header.wal_offset
    rep = replay(lambda off, n: pread(n, wal_off + off), header.wal_checkpoint_seq,
                 size=header.wal_size)
    if damaged and rep.last_seq >= lost_upto:
        damaged = False  # the WAL still holds every write of the damaged commit
    delta: list[Version] = []
    for seq, payload in rep.records:
        delta.extend(decode_ops(payload, toc.next_gid + len(delta), header.wal_offset))
        del seq
    return Opened(header, toc, delta, rep.end, rep.last_seq, problems, newest, recovered,
                  rep.last_crc, damaged)


def footer_of(header: Header) -> bytes:
    return pack_toc_footer(header.generation, header.toc_offset, header.toc_len,
                           header.toc_crc)


def _newer_commit_at_end(pread: Pread, older: Header, size: int) -> Header | None:
    """The commit right after ``older``, found from the TOC footer at the end of the file.

    Used when a header slot is damaged: the commit it pointed to is intact if its TOC is
    the last thing in the file and chains back to ``older``'s TOC.
    """
    if size < older.committed_end + TOC_FOOTER_SIZE:
        return None
    found = unpack_toc_footer(pread(TOC_FOOTER_SIZE, size - TOC_FOOTER_SIZE))
    if found is None:
        return None
    gen, off, length, crc = found
    if gen != older.generation + 1 or off + length + TOC_FOOTER_SIZE != size:
        return None
    raw = pread(length, off)
    if crc32(raw) != crc:
        return None
    try:
        toc = Toc.decode(raw, off)
    except CorruptFileError:
        return None
    if toc.prev != (older.toc_offset, older.toc_len, older.toc_crc) or toc.generation != gen:
        return None
    return Header(gen, off, length, crc, older.wal_size, toc.wal_checkpoint_seq,
                  older.created_at_us, older.uuid, toc.commit_time_us)


def prepare_for_writing(fd: int, state: Opened) -> None:
    """Make an opened file safe to append to (the writer calls this once, under its lock).

    * refuse a file whose damaged newest commit holds writes the WAL no longer has (the
      truncation below would lose them for good);
    * drop bytes past the committed end (an interrupted commit);
    * rewrite a header slot rebuilt from the TOC footer, so the next commit cannot leave
      the file with no valid pointer to it;
    Records left in the WAL past its replayable end need no clearing: the ``prev`` chain
    of WAL records keeps them from ever linking to new appends (see wal.py).
    """
    header = state.header
    if state.newest_damaged:  # writing would truncate the newest commit away for good
        raise CorruptFileError(
            "the newest commit's table of contents is damaged, so this file reads as of the "
            "commit before it; writing would discard the newest commit for good. Open it "
            "with readonly=True, or run `mv2 doctor FILE --repair NEW.mv2` and write to the "
            "copy", "toc", header.committed_end)
    if os.fstat(fd).st_size > header.committed_end:
        os.ftruncate(fd, header.committed_end)
    if state.recovered:
        os.pwrite(fd, header.pack(), header.slot * SLOT_SIZE)
        os.fsync(fd)


def remove_stale_temp_files(path: str) -> None:
    """Delete ``<path>.compact-<pid>`` / ``.creating-<pid>`` left by writers that died."""
    folder, name = os.path.split(os.path.abspath(path))
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        stem, _, pid = entry.rpartition("-")
        if stem not in (f"{name}.compact", f"{name}.creating") or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, entry))
        except OSError:
            pass  # alive but not ours to signal: leave it


def _other_header(raw: bytes, chosen: Header) -> Header | None:
    try:
        other = unpack_header(raw[(1 - chosen.slot) * SLOT_SIZE : (2 - chosen.slot) * SLOT_SIZE],
                              1 - chosen.slot)
    except CorruptFileError:
        return None
    return other if other.generation < chosen.generation else None


def open_fd(path: str, writable: bool) -> int:
    if os.path.isdir(path):
        raise NotAMemoryFileError(f"{path} is a directory, not a .mv2 file")
    try:
        return os.open(path, os.O_RDWR if writable else os.O_RDONLY)
    except FileNotFoundError:
        raise MemoryNotFoundError(f"no memory file at {path}") from None
    except PermissionError as exc:
        how = "open it with readonly=True or " if writable else ""
        raise StorageError(f"{path} cannot be opened for "
                           f"{'writing' if writable else 'reading'} by this user "
                           f"({exc.strerror}): {how}change its permissions") from None


def same_file(fd: int, path: str) -> bool:
    """True while ``path`` still names the file open at ``fd``."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def make_snapshot(fd: int | ByteSource, state: Opened, use_mmap: bool | MmapConfig,
                  reuse: list[RunReader] | None = None) -> Snapshot:
    """A snapshot of ``state`` over a view of the file (a ``ByteSource`` gives its own)."""
    end = state.header.committed_end
    view = FileView(fd, end, use_mmap=use_mmap) if isinstance(fd, int) else fd.view(end)
    runs = None
    if reuse is not None:
        by_off = {r.ref.offset: r for r in reuse}
        runs = [by_off.get(ref.offset) or RunReader(view, ref) for ref in state.toc.runs()]
    return Snapshot(view, state.header, state.toc, state.delta, runs)


# --------------------------------------------------------------------------- creating


def write_empty(fd: int, *, dim: int | None, wal_size: int, options: dict[str, Any],
                generation: int = 1, file_uuid: bytes | None = None,
                history_floor_us: int | None = None,
                commit_log: list[tuple[int, int]] | None = None,
                created_at_us: int | None = None, commit_time_us: int | None = None,
                public_generation: int = -1, floor_state: tuple[int, int] | None = None) -> None:
    """Lay down header, empty WAL and an empty first commit on a new, empty file.

    ``commit_log`` (from compaction) becomes a ``commits`` segment, read only by
    ``as_of(generation)``, so the TOC stays small. ``public_generation`` (default:
    ``generation``) and ``floor_state`` carry a compacted file's generations on.
    """
    created = now_us() if created_at_us is None else created_at_us
    pos = WAL_OFFSET + wal_size
    os.ftruncate(fd, pos)
    segments = []
    if commit_log:
        raw = encode_commit_log(commit_log)
        os.pwrite(fd, raw, pos)
        segments.append(SegmentRef("commits", pos, len(raw), crc32(raw)))
        pos = align(pos + len(raw))
    committed = created if commit_time_us is None else commit_time_us
    toc = Toc(generation=generation, commit_time_us=committed, prev=None, segments=segments,
              dim=dim, counters={k: 0 for k in COUNTERS}, options=options,
              history_floor_us=history_floor_us, public_generation=public_generation,
              floor_state=floor_state)
    toc_bytes = toc.encode()
    if file_uuid is None:
        import uuid  # only files being created need one (uuid imports platform: ~2 ms)

        file_uuid = uuid.uuid4().bytes
    header = Header(generation, pos, len(toc_bytes), crc32(toc_bytes), wal_size, 0,
                    created, file_uuid, committed)
    os.pwrite(fd, toc_bytes + footer_of(header), pos)
    os.pwrite(fd, header.pack(), header.slot * SLOT_SIZE)
    os.fsync(fd)


def create_file(path: str, *, dim: int | None, wal_size: int, options: dict[str, Any],
                created_at_us: int | None = None) -> int:
    """Create an empty memory file atomically; returns a locked, writable fd on it.

    The file is written under a temporary name and hard-linked into place, so a crash
    never leaves a half-made file at ``path`` and an existing file is never replaced.
    """
    tmp = f"{path}.creating-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        raise StorageError(f"cannot create {path}: the directory "
                           f"{os.path.dirname(os.path.abspath(path))} does not exist "
                           "(create it first)") from None
    try:
        lock.acquire(fd, tmp, 0)
        write_empty(fd, dim=dim, wal_size=wal_size, options=options,
                    created_at_us=created_at_us)
        os.link(tmp, path)
    except BaseException:
        os.close(fd)
        raise
    finally:
        os.unlink(tmp)
    fsync_dir(path)
    return fd


def fsync_dir(path: str) -> None:
    try:
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --------------------------------------------------------------------------- writing


class Committer:
    """Turns versions into segments and commits them. Used by the writer and compaction."""

    def __init__(self, fd: int, snapshot: Snapshot, *, sync: bool, use_mmap: bool | MmapConfig,
                 maintainer: CommitHook | None = None) -> None:
        self.fd = fd
        self.snapshot = snapshot
        self.sync = sync
        self.use_mmap = use_mmap
        self.maintainer = maintainer
        # how a commit merges the runs: size-tiered as a writer's commits grow the file
        # (``merge_tail``), or filled to a cap as compaction streams (``merge_filled``)
        self.merges: Callable[[list[RunReader | RunColumns], Computed],
                              list[RunReader | RunColumns]] = merge_tail

    def commit(self, versions: list[Version], *, checkpoint_seq: int, dim: int | None,
               counters: dict[str, int], commit_time: int, full_index: int = ALL,
               toc_changes: dict[str, Any] | None = None, write_count: int = 0) -> Snapshot:
        """Write ``versions`` as a new run (plus index updates) and make it the newest commit.

        ``full_index``: how far the indexes are brought up to date (``hooks.AUTO``,
        ``SEAL``, ``DUE`` or ``ALL``, see :class:`~.hooks.CommitHook`).
        ``write_count``: how many writes (WAL records, a batch committed directly) the commit
        makes durable; each is one public generation, and the commit one more.
        """
        snap = self.snapshot
        old_header, old_toc = snap.header, snap.toc
        pos = align(old_header.committed_end)
        writes: list[tuple[int, bytes | Pieces]] = []
        segments = [s for s in old_toc.segments if s.kind != "run"]
        codec = snap.codec
        if codec.dictionary is None and versions:
            dictionary = train_dictionary(
                [payload_of(v) for v in versions if not v.tombstone])
            if dictionary is not None:
                codec = Codec(dictionary)
                segments = [s for s in segments if s.kind != "dict"]
                segments.append(SegmentRef("dict", pos, len(dictionary), crc32(dictionary)))
                writes.append((pos, dictionary))
                pos = align(pos + len(dictionary))
        indexed = self.maintainer is not None and (versions or full_index
                                                   or self.maintainer.ready())
        if indexed:
            self.maintainer.prepare(snap, versions, next_gid=old_toc.next_gid + len(versions),
                                    full=full_index)
        runs: list[RunReader | RunColumns] = list(snap.runs)
        if versions:
            cols, blocks, raw_total, pos = self._build_run(versions, codec, pos, writes, dim)
            runs.append(cols)
            counters = dict(counters)
            counters["stored_bytes"] = counters.get("stored_bytes", 0) + len(blocks)
            counters["payload_bytes"] = counters.get("payload_bytes", 0) + raw_total
        runs = self.merges(runs, snap)
        keep = {id(r) for r in runs if isinstance(r, RunReader)}
        for r in runs:
            if isinstance(r, RunColumns):
                encoded = encode_run(r)
                segments.append(SegmentRef("run", pos, encoded.length, encoded.crc,
                                           encoded.meta))
                at = pos
                for piece in encoded.pieces:  # back to back, never joined
                    writes.append((at, piece))
                    at += len(piece)
                pos = align(pos + encoded.length)
            else:
                segments.append(r.ref)
        if indexed:
            from .hooks import appender

            write, next_free = appender(writes, pos)
            segments = self.maintainer.on_commit(
                snap, versions, segments, write, next_gid=old_toc.next_gid + len(versions),
                vectors_total=counters.get("vectors", 0), full=full_index)
            pos = next_free()
        # keep run order = gid order
        segments.sort(key=lambda s: (s.kind != "dict", s.meta.get("base", 0)))
        toc = Toc(
            generation=old_toc.generation + 1, commit_time_us=commit_time,
            prev=(old_header.toc_offset, old_header.toc_len, old_header.toc_crc),
            segments=segments, next_gid=old_toc.next_gid + len(versions),
            wal_checkpoint_seq=checkpoint_seq, dim=dim, counters=counters,
            history_floor_us=old_toc.history_floor_us, options=old_toc.options,
            public_generation=old_toc.public_generation + write_count + 1,
            floor_state=old_toc.floor_state,
        )
        for key, value in (toc_changes or {}).items():
            setattr(toc, key, value)
        toc_bytes = toc.encode()
        header = Header(toc.generation, pos, len(toc_bytes), crc32(toc_bytes),
                        old_header.wal_size, checkpoint_seq, old_header.created_at_us,
                        old_header.uuid, commit_time)
        writes.append((pos, toc_bytes + footer_of(header)))
        for off, data in writes:
            _pwrite_all(self.fd, data, off)
        _faults.hit("commit.after_segments")
        if self.sync:
            os.fsync(self.fd)
        _faults.hit("commit.after_toc")
        packed = header.pack()
        if _faults.reached("commit.torn_header"):
            os.pwrite(self.fd, packed[: len(packed) // 2], header.slot * SLOT_SIZE)
            _faults.die()
        os.pwrite(self.fd, packed, header.slot * SLOT_SIZE)
        if self.sync:
            os.fsync(self.fd)
        _faults.hit("commit.after_header")
        reuse = [r for r in snap.runs if id(r) in keep]
        for r in snap.runs:  # merged away: the pages the merge read stop counting as ours
            if id(r) not in keep:  # (through the run's own map, maybe an older one)
                r.view.release(r.ref.offset, r.ref.length)
        state = Opened(header, toc, [], 0, checkpoint_seq, [])
        self.snapshot = make_snapshot(self.fd, state, self.use_mmap, reuse)
        self.snapshot.frame_cache = snap.frame_cache
        return self.snapshot

    def _build_run(self, versions: list[Version], codec: Codec, pos: int,
                   writes: list[tuple[int, bytes | Pieces]], dim: int | None
                   ) -> tuple[RunColumns, bytes, int, int]:
        n = len(versions)
        base = versions[0].gid
        cols = empty_columns(n)
        chunks: list[bytes] = []
        block_pos = pos
        ids: list[bytes] = []
        idoff = np.zeros(n + 1, "<u4")
        vectors: list[bytes] = []
        sup_gid: list[int] = []
        sup_to: list[int] = []
        hashes, created, vfrom = cols["hash"], cols["created"], cols["vfrom"]
        poff, plen, pcrc = cols["poff"], cols["plen"], cols["pcrc"]
        version, flags, vrow, vto = cols["version"], cols["flags"], cols["vrow"], cols["vto"]
        post_terms: list[str] = []  # the terms of every content version, in row order
        post_counts = np.zeros(n, "i8")  # how many of them each row has
        # per value kind: the paths and stored values of every content version's values,
        # and how many each row has
        found: dict[ValueKind, tuple[list[str], list[Any], Any]] = {
            kind: ([], [], np.zeros(n, "i8")) for kind in VALUE_KINDS}
        tags: set[str] = set()  # of every content version
        total = raw_total = 0
        for i, v in enumerate(versions):
            if v.gid != base + i:
                raise AssertionError("versions must have consecutive gids")
            raw_id = v.id.encode()
            ids.append(raw_id)
            total += len(raw_id)
            idoff[i + 1] = total
            hashes[i] = id_hash(v.id)
            created[i], vfrom[i], version[i] = v.created_at, v.valid_from, v.version
            f = 0
            if v.tombstone:
                f |= FLAG_TOMBSTONE
            else:
                raw = payload_of(v)
                raw_total += len(raw)
                kind, stored = codec.compress(raw)
                f |= kind << 8
                poff[i], plen[i], pcrc[i] = block_pos, len(stored), crc32(stored)
                chunks.append(stored)
                block_pos += len(stored)
                if v.embedding:
                    f |= FLAG_VECTOR
                    vrow[i] = len(vectors)
                    vectors.append(v.embedding)
                if v.tags:
                    tags.update(v.tags)
                walked = walk(v.metadata)
                terms = terms_of(v.id, v.metadata, v.tags, walked)
                post_terms.extend(terms)
                post_counts[i] = len(terms)
                for kind, (paths, values, counts) in found.items():
                    stored = kind.stored_values(walked)
                    paths.extend([path for path, _ in stored])
                    values.extend([value for _, value in stored])
                    counts[i] = len(stored)
            flags[i] = f
            if v.prev_gid >= base:
                vto[v.prev_gid - base] = v.valid_from
            elif v.prev_gid >= 0:
                sup_gid.append(v.prev_gid)
                sup_to.append(v.valid_from)
            if v.valid_to != TIME_MAX and vto[i] == TIME_MAX:
                vto[i] = v.valid_to
        blocks = b"".join(chunks)
        block_ranges = []
        if blocks:
            writes.append((pos, blocks))
            block_ranges.append([pos, len(blocks), crc32(blocks)])
            pos = align(block_pos, VECTOR_ALIGN)
        vector_ranges = []
        cols["vcrc"] = vector_checksums(vectors)
        if vectors:
            matrix = b"".join(vectors)
            writes.append((pos, matrix))
            vector_ranges.append([pos, len(vectors), crc32(matrix)])
            pos = align(pos + len(matrix))
        cols["idoff"] = idoff
        cols["ids"] = b"".join(ids)
        cols["sup_gid"] = np.array(sup_gid, "<u8")
        cols["sup_to"] = np.array(sup_to, "<i8")
        hashed = {term: term_hash(term) for term in set(post_terms)}  # terms repeat
        cols.update(group_postings(np.array(list(map(hashed.__getitem__, post_terms)), "<u8"),
                                   np.repeat(np.arange(n, dtype="<u4"), post_counts)))
        for kind, (paths, values, counts) in found.items():
            hashed = {path: term_hash(kind.term(path)) for path in set(paths)}
            cols.update(group_values(kind, np.array(list(map(hashed.__getitem__, paths)), "<u8"),
                                     np.array(values, kind.dtype),
                                     np.repeat(np.arange(n, dtype="<u4"), counts)))
        cols.update(tag_list_parts(sorted(tags)))
        run = finish_columns(base, dim, cols, block_ranges, vector_ranges)
        return run, blocks, raw_total, pos


def _pwrite_all(fd: int, data: bytes | Pieces, offset: int) -> None:
    if isinstance(data, Pieces):
        end = offset + data.length
        for piece in data.pieces():
            _pwrite_all(fd, piece, offset)
            offset += memoryview(piece).nbytes
        if offset != end:  # before the header: the commit fails and nothing changes
            raise AssertionError(f"streamed pieces wrote {offset - end:+} bytes too many")
        return
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


# ----------------------------------------------------------------------------- merging


def _size(run: RunReader | RunColumns) -> int:
    return run.n


def _bytes(run: RunReader | RunColumns) -> int:
    """The size of a run's segment (of its columns, for a run not written yet)."""
    if isinstance(run, RunReader):
        return run.ref.length
    return sum(len(col) if isinstance(col, bytes | bytearray) else col.nbytes
               for col in run.cols.values() if col is not None)  # None: a part it lacks


class Computed(Protocol):
    """What a run written without posting or value parts lacks, computed from its
    payloads (a ``Snapshot``)."""

    def computed_postings(self, run: RunReader) -> dict[int, list[int]]:
        """Term hash -> rows, ascending."""
        ...

    def computed_values(self, run: RunReader, kind: ValueKind
                        ) -> dict[int, tuple[list[Any], list[int]]]:
        """Path hash -> (stored values of ``kind`` ascending, their rows)."""
        ...

    def computed_tags(self, run: RunReader) -> list[str]:
        """The distinct tags of the run's content versions, ascending."""
        ...


def merge_tail(runs: list[RunReader | RunColumns], computed: Computed,
               cap: int | None = None) -> list[RunReader | RunColumns]:
    """Size-tiered merging of the runs after the last one of ``cap`` (default ``RUN_CAP``)
    bytes or more: O(log N) runs below the cap, each row rewritten O(log N) times until its
    run reaches the cap, then never again (so a run holds at most about twice the cap).

    A suffix of at least MERGE_FANOUT runs is merged once the runs after its first one add
    up to at least the first one's size (the shortest such suffix, cascading).
    """
    runs = list(runs)
    cap = RUN_CAP if cap is None else cap
    while True:
        first = next((i + 1 for i in range(len(runs) - 1, -1, -1)
                      if _bytes(runs[i]) >= cap), 0)  # runs before it are closed
        chosen = None
        for j in range(len(runs) - MERGE_FANOUT, first - 1, -1):
            tail = sum(_size(r) for r in runs[j + 1 :])
            if tail >= _size(runs[j]):
                chosen = j
                break
        if chosen is None and len(runs) - first > MAX_RUNS:
            chosen = len(runs) - MAX_RUNS // 2
        if chosen is None:
            return runs
        runs[chosen:] = [merge_runs(runs[chosen:], computed)]


def merge_filled(runs: list[RunReader | RunColumns], computed: Computed, cap: int, *,
                 final: bool = False) -> list[RunReader | RunColumns]:
    """Merging for a stream of runs that are never read in between (compaction): the
    runs after the last one of ``cap`` bytes or more are merged into one once they add up
    to ``cap``, or number ``MAX_RUNS`` (``final``: the stream has ended, whatever they add
    up to). While fewer than ``MAX_RUNS`` runs fill one, a row's run bytes are written
    twice at most, so the stream leaves about its runs' size as dead space, where
    size-tiered merging (``merge_tail``) rewrites a row once per tier."""
    filling = unfilled(runs, cap)
    if filling > 1 and (final or filling >= MAX_RUNS
                        or sum(_bytes(r) for r in runs[-filling:]) >= cap):
        return [*runs[:-filling], merge_runs(runs[-filling:], computed)]
    return list(runs)


def unfilled(runs: list[RunReader | RunColumns], cap: int) -> int:
    """How many runs follow the last one of ``cap`` bytes or more."""
    return next((len(runs) - 1 - i for i in range(len(runs) - 1, -1, -1)
                 if _bytes(runs[i]) >= cap), len(runs))


def _parts(run: RunReader, names: tuple[str, ...]) -> dict[str, Any]:
    """The named parts of a committed run as numpy columns (checked on read)."""
    return {name: np.frombuffer(run.raw_part(name), np_type(name)) for name in names}


def _derived_parts(run: RunReader, names: tuple[str, ...]) -> dict[str, Any] | None:
    """The named filter-index parts of a run, or None when one is damaged: a merge then
    rebuilds them from the payloads, so the damage heals instead of blocking writes."""
    try:
        return _parts(run, names)
    except DamagedIndexError:
        return None


def _columns_of(run: RunReader | RunColumns, computed: Computed) -> RunColumns:
    if isinstance(run, RunColumns):
        return run
    header = run.header
    cols = _parts(run, ("hash", "created", "vfrom", "vto", "poff", "plen", "pcrc", "version",
                        "flags", "vrow", "idoff", "sup_gid", "sup_to"))
    cols["ids"] = bytes(run.raw_part("ids"))
    if (run.has_postings and run.posts_multi
            and (posted := _derived_parts(run, POSTING_PARTS)) is not None):
        cols.update(posted)
    else:  # written before posting lists or ``m`` terms, or damaged: from its payloads
        postings = computed.computed_postings(run)
        keys = sorted(postings)
        lists = [postings[k] for k in keys]
        cols["tkey"] = np.array(keys, "<u8")
        cols["toff"] = np.cumsum([0, *map(len, lists)]).astype("<u4")
        cols["trows"] = np.array([r for rows in lists for r in rows], "<u4")
    if run.has_vector_checks:
        cols["vcrc"] = np.frombuffer(run.raw_part("vcrc"), "<u4")
    else:  # written before per-row checksums: computed from its (checked) vector blocks
        cols["vcrc"] = _row_checksums(run)
    try:
        listed = run.distinct_tags if run.has_tag_list else None
    except DamagedIndexError:
        listed = None
    # written before tag lists, or damaged: from its payloads
    cols.update(tag_list_parts(computed.computed_tags(run) if listed is None else listed))
    for kind in VALUE_KINDS:
        if run.has_values(kind) and (ranged := _derived_parts(run, kind.parts)) is not None:
            cols.update(ranged)
        else:  # written before these value columns, or damaged: computed from payloads
            ranges = computed.computed_values(run, kind)
            keys = sorted(ranges)
            key, off, val, row = kind.parts
            cols[key] = np.array(keys, "<u8")
            cols[off] = np.cumsum([0, *(len(ranges[k][0]) for k in keys)]).astype("<u4")
            cols[val] = np.array([x for k in keys for x in ranges[k][0]], kind.dtype)
            cols[row] = np.array([r for k in keys for r in ranges[k][1]], "<u4")
    return RunColumns(run.base, header["dim"], cols, header["blocks"], header["vblocks"])


def vector_checksums(rows: list[bytes]) -> Any:
    """The ``vcrc`` part of a new run: CRC-32 of each vector row."""
    return np.array([crc32(row) for row in rows], "<u4")


def _row_checksums(run: RunReader) -> Any:
    """CRC-32 of every vector row of ``run``, its blocks checked first."""
    width = int(run.header["dim"] or 0) * 4
    out = []
    for block, (offset, rows, _) in enumerate(run.header["vblocks"]):
        data = run.view.read(offset, rows * width, "segment:vectors")
        run.check_vector_block(block, data)
        out.extend(crc32(data[i * width : (i + 1) * width]) for i in range(rows))
    return np.array(out, "<u4")


def merge_runs(runs: list[RunReader | RunColumns], computed: Computed) -> RunColumns:
    """Concatenate adjacent runs into one, folding in supersessions between them.

    Posting lists and value columns are merged from the runs' parts (their payloads are
    not read), or taken from ``computed`` for a run written without them.
    """
    parts = [_columns_of(r, computed) for r in runs]
    base, end = parts[0].base, parts[-1].base + parts[-1].n
    dim = next((p.dim for p in parts if p.dim), None)
    cols: dict[str, Any] = {}
    for name in ("hash", "created", "vfrom", "vto", "poff", "plen", "pcrc", "version", "flags"):
        cols[name] = np.concatenate([p.cols[name] for p in parts])
    vrows, idoffs, ids = [], [np.zeros(1, "<u4")], []
    nvec = idlen = 0
    for p in parts:
        vr = p.cols["vrow"].astype("<u8")
        has = vr != 0xFFFFFFFF
        vr[has] += nvec
        vrows.append(vr.astype("<u4"))
        idoffs.append(p.cols["idoff"][1:].astype("<u8") + idlen)
        idlen += len(p.cols["ids"])
        ids.append(p.cols["ids"])
        nvec += sum(rows for _, rows, _ in p.vblocks)
    if idlen >= 2**32:
        raise ValueError("run id space exceeds 4 GiB")
    cols["vrow"] = np.concatenate(vrows)
    cols["vcrc"] = np.concatenate([p.cols["vcrc"] for p in parts]).astype("<u4")
    cols["idoff"] = np.concatenate(idoffs).astype("<u4")
    cols["ids"] = b"".join(ids)
    sup_g = np.concatenate([p.cols["sup_gid"] for p in parts]).astype("<u8")
    sup_t = np.concatenate([p.cols["sup_to"] for p in parts]).astype("<i8")
    inside = (sup_g >= base) & (sup_g < end)
    vto = cols["vto"].copy()
    idx = (sup_g[inside] - base).astype("i8")
    vto[idx] = np.minimum(vto[idx], sup_t[inside])
    cols["vto"] = vto
    cols["sup_gid"], cols["sup_to"] = sup_g[~inside], sup_t[~inside]
    cols.update(merge_postings([(p.cols["tkey"], p.cols["toff"], p.cols["trows"],
                                 p.base - base) for p in parts]))
    for kind in VALUE_KINDS:
        cols.update(merge_values(kind, [(*(p.cols[name] for name in kind.parts),
                                         p.base - base) for p in parts]))
    cols.update(tag_list_parts(sorted(set().union(
        *(tag_list(bytes(p.cols["gtag"]), p.cols["gtof"]) for p in parts)))))
    blocks = [b for p in parts for b in p.blocks]
    vblocks = [b for p in parts for b in p.vblocks]
    return finish_columns(base, dim, cols, blocks, vblocks)


__all__ = [
    "ALIGN", "Committer", "Opened", "create_file", "fsync_dir",
    "make_snapshot", "now_us", "open_fd", "prepare_for_writing",
    "read_state", "read_state_for_reader", "remove_stale_temp_files", "same_file", "write_empty",
]
