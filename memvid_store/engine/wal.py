"""Embedded write-ahead log: the durability of single puts between commits.

Record framing (8-byte aligned)::

    magic  u32  b"MWAL"
    length u32  payload bytes
    seq    u64  strictly consecutive, starting at the header's wal_checkpoint_seq + 1
    crc    u32  CRC-32 of (length, seq, prev, payload)
    prev   u32  ``crc`` of the previous record (0 for the first after a checkpoint)
    payload

Durability contract:

* ``append`` returns after the record is written and (with ``sync=True``) fsynced: the
  record is durable and will be replayed on the next open.
* Replay starts at the beginning of the region and stops at the first record whose magic,
  checksum, sequence number or ``prev`` link is not the expected one; that is the torn
  tail of an interrupted append and is overwritten by the next one.
* The ``prev`` chain (cumulative checksums, as in SQLite's WAL) makes records left over
  from an earlier pass unreplayable even when their sequence number would fit: when
  replay stopped at a damaged record and the writer appended from there, an old record
  that happens to line up afterwards does not link to the new one.
* A commit (``seal``) moves every replayed record into segments and advances
  ``wal_checkpoint_seq`` in the header of that same commit; the log then restarts at the
  beginning of the region. Old bytes left behind carry sequence numbers at or below the
  checkpoint, so they can never be mistaken for a continuation.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from . import _faults
from .format import align, crc32

RECORD_MAGIC = b"MWAL"
_REC = struct.Struct("<4sIQII")
REC_HEADER = _REC.size  # 24


class WalFullError(Exception):
    """``append`` was given a record that does not fit in the rest of the region.

    The writer checks ``fits`` first and commits the delta instead (engine/writer.py), so
    this is raised only when that check was skipped: a bug, never a user error.
    """


def _record_crc(length: int, seq: int, prev: int, payload: bytes) -> int:
    return crc32(payload, crc32(struct.pack("<IQI", length, seq, prev)))


def encode_record(seq: int, payload: bytes, prev: int = 0) -> tuple[bytes, int]:
    """The framed record and its crc (the ``prev`` of the next record)."""
    crc = _record_crc(len(payload), seq, prev, payload)
    head = _REC.pack(RECORD_MAGIC, len(payload), seq, crc, prev)
    total = align(REC_HEADER + len(payload))
    return head + payload + b"\x00" * (total - REC_HEADER - len(payload)), crc


@dataclass(slots=True)
class Replay:
    records: list[tuple[int, bytes]]  # (seq, payload)
    end: int  # offset in the region just past the last good record
    last_seq: int
    problems: list[str]
    last_crc: int = 0  # crc of the last replayed record: ``prev`` of the next append


FIRST_READ = 64 * 1024  # the first read of a WAL region: all of an idle or small WAL


class _Region:
    """Reads a WAL region lazily in growing chunks: an idle WAL costs one small read."""

    def __init__(self, read: Callable[[int, int], bytes], size: int) -> None:
        self._read = read
        self.size = size
        self.buf = bytearray()

    def ensure(self, end: int) -> bool:
        """Make bytes [0, end) available; False if ``end`` lies past the region."""
        if end > self.size:
            return False
        if end > len(self.buf):
            want = min(self.size, max(end, 2 * len(self.buf), FIRST_READ))
            self.buf += self._read(len(self.buf), want - len(self.buf))
        return end <= len(self.buf)


@dataclass(slots=True)
class _Record:
    seq: int
    payload: bytes
    next_pos: int
    crc: int
    prev: int


def _read_record(region: _Region, pos: int) -> _Record | None:
    """Decode the record at ``pos``; None when it is not a complete, self-consistent record."""
    if not region.ensure(pos + REC_HEADER):
        return None
    magic, length, seq, stored_crc, prev = _REC.unpack_from(region.buf, pos)
    if magic != RECORD_MAGIC or not region.ensure(pos + REC_HEADER + length):
        return None
    payload = bytes(region.buf[pos + REC_HEADER : pos + REC_HEADER + length])
    if _record_crc(length, seq, prev, payload) != stored_crc:
        return None
    return _Record(seq, payload, pos + align(REC_HEADER + length), stored_crc, prev)


def replay(source: Callable[[int, int], bytes] | bytes, checkpoint_seq: int, *,
           size: int | None = None, scan_damage: bool = False, start: int = 0,
           prev_crc: int = 0) -> Replay:
    """Read the consecutive records after ``checkpoint_seq`` from a WAL region.

    ``source`` is the region's bytes, or ``read(offset, n)`` with the region's ``size``. With
    ``scan_damage``, also look past the stop point for valid records with higher
    sequence numbers: finding one means a record in the middle was damaged (not a torn
    tail), which ``verify()`` reports. ``start`` and ``prev_crc`` resume a replay that
    ended at region offset ``start`` after the record whose crc was ``prev_crc`` (a
    following reader reads only what was appended since); ``end`` stays region-relative.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        size = len(data)
        source = lambda off, n: data[off : off + n]  # noqa: E731
    if size is None:
        raise TypeError("replay(read, ...) needs size=")
    read = source if not start else (lambda off, n: source(start + off, n))
    region = _Region(read, size - start)
    records: list[tuple[int, bytes]] = []
    pos, expected, last_crc = 0, checkpoint_seq + 1, prev_crc
    while True:
        rec = _read_record(region, pos)
        if rec is None or rec.seq != expected or rec.prev != last_crc:
            break
        records.append((rec.seq, rec.payload))
        pos, expected, last_crc = rec.next_pos, expected + 1, rec.crc
    problems: list[str] = []
    if scan_damage:
        later = find_later_record(region, pos, expected)
        if later is not None:
            problems.append(
                f"wal: record at region offset {pos} is damaged; a later record "
                f"(seq {later[0]}) at region offset {later[1]} cannot be replayed")
    return Replay(records, start + pos, expected - 1, problems, last_crc)


def starts_record(head: bytes, seq: int, prev: int) -> bool:
    """Whether ``head`` (the first ``REC_HEADER`` bytes at some offset) begins record
    ``seq`` linked to ``prev``: the cheap check for an append (its crc is not checked)."""
    if len(head) < REC_HEADER:
        return False
    magic, _, got_seq, _, got_prev = _REC.unpack_from(head)
    return magic == RECORD_MAGIC and got_seq == seq and got_prev == prev


def find_later_record(region: _Region, pos: int, expected: int) -> tuple[int, int] | None:
    """(seq, offset) of a self-consistent record past ``pos`` with seq >= ``expected``.

    Such a record means replay stopped at damage, not at a torn tail: acknowledged records
    behind the damage are lost. ``verify()`` reports it.
    """
    region.ensure(region.size)
    buf = region.buf
    probe = buf.find(RECORD_MAGIC, pos + 8)
    while probe != -1:
        if probe % 8 == 0:
            rec = _read_record(region, probe)
            if rec is not None and rec.seq >= expected:
                return rec.seq, probe
        probe = buf.find(RECORD_MAGIC, probe + 1)
    return None


class WalWriter:
    """Appends records to the WAL region of an open file descriptor."""

    def __init__(self, fd: int, region_offset: int, size: int, position: int, next_seq: int,
                 last_crc: int, *, sync: bool) -> None:
        self.fd = fd
        self.region_offset = region_offset
        self.size = size
        self.position = position
        self.next_seq = next_seq
        self.last_crc = last_crc
        self.sync = sync

    @property
    def used(self) -> int:
        return self.position

    def fits(self, payload_len: int) -> bool:
        return self.position + align(REC_HEADER + payload_len) <= self.size

    def append(self, payload: bytes) -> int:
        """Write one record durably; returns its sequence number."""
        if not self.fits(len(payload)):
            raise WalFullError(len(payload))
        seq = self.next_seq
        record, crc = encode_record(seq, payload, self.last_crc)
        at = self.region_offset + self.position
        if _faults.reached("wal.torn_record"):
            os.pwrite(self.fd, record[: max(1, len(record) // 2)], at)
            _faults.die()
        os.pwrite(self.fd, record, at)
        _faults.hit("wal.before_fsync")
        if self.sync:
            os.fsync(self.fd)
        self.position += len(record)
        self.next_seq = seq + 1
        self.last_crc = crc
        return seq

    def restart(self, checkpoint_seq: int) -> None:
        """After a commit that checkpointed everything up to ``checkpoint_seq``."""
        self.position = 0
        self.next_seq = checkpoint_seq + 1
        self.last_crc = 0
