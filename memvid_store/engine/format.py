"""Byte layout of a .mv2 file. Pure functions; no I/O.

=========  =========  ==========================================================
offset     size       content
=========  =========  ==========================================================
0          2048       header slot A  (written by commits with even generation)
2048       2048       header slot B  (written by commits with odd generation)
4096       wal_size   embedded WAL (see wal.py), 1..64 MiB, default 4 MiB
...        ...        segments, append-only, each 8-byte aligned
toc_offset toc_len    TOC of the newest commit (JSON), chained to the previous TOC
=========  =========  ==========================================================

Invariants:

* A commit appends segments and a TOC, fsyncs, then writes header slot
  ``generation % 2`` and fsyncs again (LMDB's two meta pages). Opening reads both slots
  and takes the valid one with the highest generation, so a torn header write leaves
  the previous commit intact.
* Bytes referenced by a committed TOC never change until ``compact()`` writes a new
  file. Everything past the newest TOC is garbage from an interrupted commit.
* All integers are little-endian. Checksums are CRC-32 (zlib polynomial).
* Compatibility rule: the first 96 bytes of a header slot keep this layout in every format
  version, so a reader can always verify a slot's checksum and see its version. A slot
  with a valid checksum and a newer version makes the file unreadable here
  (VersionMismatchError) rather than silently falling back to an older commit.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import ChecksumError, CorruptFileError, NotAMemoryFileError, VersionMismatchError
from ..validate import MAX_DIM

MAGIC = b"MV2\x00"
FORMAT_VERSION = 1
SLOT_SIZE = 2048
HEADER_SIZE = 2 * SLOT_SIZE
WAL_OFFSET = HEADER_SIZE
DEFAULT_WAL_SIZE = 4 * 1024 * 1024
MIN_WAL_SIZE = 1024 * 1024
MAX_WAL_SIZE = 64 * 1024 * 1024
ALIGN = 8
TIME_MAX = 2**63 - 1  # "still current" for valid_to
NO_ROW = 0xFFFFFFFF

# magic, version, flags, generation, toc_offset, toc_len, toc_crc, wal_offset, wal_size,
# wal_checkpoint_seq, created_at_us, uuid, commit_time_us | crc32 of all of it
_HEADER = struct.Struct("<4sHHQQQIQQQq16sq")
_CRC = struct.Struct("<I")
HEADER_BYTES = _HEADER.size + _CRC.size


def crc32(data: bytes | memoryview, value: int = 0) -> int:
    return zlib.crc32(data, value) & 0xFFFFFFFF


def align(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


@dataclass(frozen=True, slots=True)
class Header:
    generation: int
    toc_offset: int
    toc_len: int
    toc_crc: int
    wal_size: int
    wal_checkpoint_seq: int
    created_at_us: int
    uuid: bytes
    commit_time_us: int
    flags: int = 0
    wal_offset: int = WAL_OFFSET
    version: int = FORMAT_VERSION

    @property
    def slot(self) -> int:
        return self.generation % 2

    @property
    def data_start(self) -> int:
        return self.wal_offset + self.wal_size

    @property
    def committed_end(self) -> int:
        return self.toc_offset + self.toc_len + TOC_FOOTER_SIZE

    def pack(self) -> bytes:
        body = _HEADER.pack(
            MAGIC, self.version, self.flags, self.generation, self.toc_offset, self.toc_len,
            self.toc_crc, self.wal_offset, self.wal_size, self.wal_checkpoint_seq,
            self.created_at_us, self.uuid, self.commit_time_us,
        )
        return body + _CRC.pack(crc32(body))


def unpack_header(raw: bytes, slot: int) -> Header:
    """Decode one header slot; raises a FormatError subclass when it is unusable."""
    offset = slot * SLOT_SIZE
    if len(raw) < HEADER_BYTES or raw[:4] != MAGIC:
        raise NotAMemoryFileError(f"header slot {slot} has no .mv2 magic at offset {offset}")
    version = struct.unpack_from("<H", raw, 4)[0]
    body = raw[: _HEADER.size]
    (stored,) = _CRC.unpack_from(raw, _HEADER.size)
    if crc32(body) != stored:
        raise ChecksumError(f"header slot {slot} checksum mismatch", "header", offset,
                            version > FORMAT_VERSION)
    fields = _HEADER.unpack(body)
    if version > FORMAT_VERSION:
        raise VersionMismatchError(
            f"file format version {version} is newer than this library's {FORMAT_VERSION}"
        )
    if version < 1:
        raise CorruptFileError(f"header slot {slot} has invalid version {version}", "header",
                               offset)
    (_, version, flags, gen, toc_off, toc_len, toc_crc, wal_off, wal_size, ckpt, created,
     uuid, commit_time) = fields
    header = Header(gen, toc_off, toc_len, toc_crc, wal_size, ckpt, created, uuid, commit_time,
                    flags, wal_off, version)
    if gen % 2 != slot or wal_off != WAL_OFFSET or not MIN_WAL_SIZE <= wal_size <= MAX_WAL_SIZE:
        raise CorruptFileError(f"header slot {slot} has inconsistent fields", "header", offset)
    if toc_off < header.data_start:
        raise CorruptFileError(f"header slot {slot} points into the WAL", "header", offset)
    return header


def pick_header(raw: bytes) -> tuple[Header, list[str]]:
    """Choose the valid header slot with the highest generation.

    Returns the header and a list of problems found in the other slot. Raises the most
    telling error when no slot is usable.
    """
    found: list[Header] = []
    errors: list[Exception] = []
    for slot in (0, 1):
        try:
            found.append(unpack_header(raw[slot * SLOT_SIZE : (slot + 1) * SLOT_SIZE], slot))
        except VersionMismatchError:
            raise  # an intact slot written by a newer library: never open an older commit
        except (NotAMemoryFileError, CorruptFileError) as exc:
            errors.append(exc)
    if found:
        return max(found, key=lambda h: h.generation), [str(e) for e in errors]
    if any(isinstance(e, ChecksumError) and e.newer_version for e in errors):
        raise VersionMismatchError(
            f"the header claims a format version newer than this library's {FORMAT_VERSION}")
    for kind in (ChecksumError, CorruptFileError):
        for exc in errors:
            if type(exc) is kind:
                raise exc
    raise NotAMemoryFileError("no .mv2 header found: this is not a memory file")


# ---------------------------------------------------------------------------- TOC

# magic, generation, toc_offset, toc_len, toc_crc | crc32 of all of it. Written right after
# each TOC, so the newest commit can be found from the end of the file when its header
# slot is damaged.
_FOOTER = struct.Struct("<8sQQQI")
TOC_MAGIC = b"MV2TOC\x00\x00"
TOC_FOOTER_SIZE = _FOOTER.size + _CRC.size


def pack_toc_footer(generation: int, toc_offset: int, toc_len: int, toc_crc: int) -> bytes:
    body = _FOOTER.pack(TOC_MAGIC, generation, toc_offset, toc_len, toc_crc)
    return body + _CRC.pack(crc32(body))


def unpack_toc_footer(raw: bytes) -> tuple[int, int, int, int] | None:
    """(generation, toc_offset, toc_len, toc_crc), or None when not a valid footer."""
    if len(raw) != TOC_FOOTER_SIZE:
        return None
    body = raw[: _FOOTER.size]
    magic, gen, off, length, crc = _FOOTER.unpack(body)
    if magic != TOC_MAGIC or crc32(body) != _CRC.unpack_from(raw, _FOOTER.size)[0]:
        return None
    return gen, off, length, crc



@dataclass(slots=True)
class SegmentRef:
    """Where a segment lives and how to check it."""

    kind: str
    offset: int
    length: int
    crc: int
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "off": self.offset, "len": self.length, "crc": self.crc,
                **({"meta": self.meta} if self.meta else {})}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SegmentRef:
        return cls(obj["kind"], int(obj["off"]), int(obj["len"]), int(obj["crc"]),
                   obj.get("meta", {}))


@dataclass(slots=True)
class Toc:
    """The footer of one commit: every live segment plus the state to resume from.

    ``generation`` is the commit counter (the header slot is ``generation % 2``);
    ``public_generation`` is the generation readers see (``Memory.generation``), which also
    counts every write: it is the commit counter in files written before it existed.
    ``floor_state``: (public generation, record time) of the newest state at or before
    ``history_floor_us``, set by ``compact(retain_after=)``: the writes before it may be gone.
    """

    generation: int
    commit_time_us: int
    prev: tuple[int, int, int] | None  # (offset, length, crc) of the previous TOC
    segments: list[SegmentRef]
    next_gid: int = 0
    wal_checkpoint_seq: int = 0
    dim: int | None = None
    counters: dict[str, int] = field(default_factory=dict)
    history_floor_us: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    public_generation: int = -1  # -1: the same as ``generation``
    floor_state: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.public_generation < 0:
            self.public_generation = self.generation

    def encode(self) -> bytes:
        obj = {
            "v": FORMAT_VERSION, "gen": self.generation, "pgen": self.public_generation,
            "time": self.commit_time_us,
            "prev": list(self.prev) if self.prev else None,
            "segments": [s.to_json() for s in self.segments], "next_gid": self.next_gid,
            "ckpt": self.wal_checkpoint_seq, "dim": self.dim, "counters": self.counters,
            "floor": self.history_floor_us, "options": self.options,
        }
        if self.floor_state is not None:
            obj["floor_state"] = list(self.floor_state)
        return json.dumps(obj, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes, offset: int) -> Toc:
        try:
            obj = json.loads(raw)
            return cls(
                generation=int(obj["gen"]), commit_time_us=int(obj["time"]),
                prev=tuple(obj["prev"]) if obj["prev"] else None,
                segments=[SegmentRef.from_json(s) for s in obj["segments"]],
                next_gid=int(obj["next_gid"]), wal_checkpoint_seq=int(obj["ckpt"]),
                dim=_dim(obj["dim"]), counters=dict(obj["counters"]),
                history_floor_us=None if obj["floor"] is None else int(obj["floor"]),
                options=dict(obj["options"]),
                public_generation=int(obj.get("pgen", obj["gen"])),
                floor_state=_pair(obj.get("floor_state")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"TOC at offset {offset} cannot be decoded: {exc}",
                                   "toc", offset) from None

    def runs(self) -> list[SegmentRef]:
        return [s for s in self.segments if s.kind == "run"]

    def find(self, kind: str) -> SegmentRef | None:
        return next((s for s in self.segments if s.kind == kind), None)


def _dim(value: Any) -> int | None:
    """A stored embedding dimension: None or an int in ``1..MAX_DIM``."""
    if value is None:
        return None
    if type(value) is not int or not 1 <= value <= MAX_DIM:
        raise ValueError(f"dim {value!r} is not an int from 1 to {MAX_DIM}")
    return value


def _pair(value: Any) -> tuple[int, int] | None:
    return None if value is None else (int(value[0]), int(value[1]))


_COMMIT = struct.Struct("<qq")


def encode_commit_log(log: list[tuple[int, int]]) -> bytes:
    """The ``commits`` segment: (public generation, commit time µs) pairs of a compacted
    chain."""
    return b"".join(_COMMIT.pack(g, t) for g, t in log)


def decode_commit_log(raw: bytes) -> list[tuple[int, int]]:
    return [_COMMIT.unpack_from(raw, i) for i in range(0, len(raw) - len(raw) % 16, 16)]
