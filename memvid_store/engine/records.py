"""In-memory versions of frames and their encoding inside WAL records.

A *version* is one immutable state of a frame id: a content version or a tombstone.
Versions get a global id (``gid``) in commit order; ``prev_gid`` links a version to the
one it replaces, so replay and sealing never need to look anything up.

WAL payload::

    record_time_us i64   record time (valid_from) shared by every op of the record
    count          u32
    count x { json_len u32, emb_len u32, json, float32 embedding bytes }

with json = [op, id, version, created_at_us, prev_gid, prev_live, text, metadata, tags].
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

try:  # CPython's builtin module: hashlib would also load OpenSSL (~3 ms), unused here
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import blake2b

from ..errors import CorruptFileError
from .format import TIME_MAX
from .keys import DEFAULT, SEP

OP_PUT = 1
OP_DELETE = 2

_HEAD = struct.Struct("<qI")
_OP = struct.Struct("<II")


def id_hash(frame_id: str) -> int:
    """Stable 64-bit hash of a frame id (persisted in the frame table)."""
    return int.from_bytes(blake2b(frame_id.encode(), digest_size=8).digest(), "little")


@dataclass(slots=True)
class Version:
    gid: int
    id: str
    version: int
    created_at: int  # event time, µs since the epoch (UTC)
    valid_from: int  # record time, µs
    tombstone: bool
    prev_gid: int  # -1 when this is the first version of the id
    prev_live: bool  # the replaced version was a content version (not a tombstone)
    text: str = ""
    metadata: dict | None = None
    tags: list[str] | None = None
    embedding: bytes | None = None  # float32, little-endian
    valid_to: int = TIME_MAX
    packed: bytes | None = None  # the payload (codec.pack_payload), when made already

    @property
    def hash(self) -> int:
        return id_hash(self.id)


def encode_ops(record_time: int, versions: list[Version]) -> bytes:
    parts = [_HEAD.pack(record_time, len(versions))]
    for v in versions:
        op = OP_DELETE if v.tombstone else OP_PUT
        body = json.dumps(
            [op, v.id, v.version, v.created_at, v.prev_gid, v.prev_live, v.text,
             v.metadata or None, v.tags or None],
            separators=(",", ":"), ensure_ascii=False,
        ).encode()
        emb = v.embedding or b""
        parts += [_OP.pack(len(body), len(emb)), body, emb]
    return b"".join(parts)


def decode_ops(payload: bytes, first_gid: int, where: int = -1) -> list[Version]:
    """Decode a WAL payload, assigning gids from ``first_gid``."""
    try:
        record_time, count = _HEAD.unpack_from(payload, 0)
        pos, out = _HEAD.size, []
        for i in range(count):
            jl, el = _OP.unpack_from(payload, pos)
            pos += _OP.size
            op, fid, ver, created, prev, prev_live, text, meta, tags = json.loads(
                payload[pos : pos + jl])
            pos += jl
            emb = payload[pos : pos + el] if el else None
            pos += el
            out.append(Version(first_gid + i, fid, ver, created, record_time, op == OP_DELETE,
                               prev, bool(prev_live), text, meta, tags, emb))
        return out
    except (struct.error, ValueError, TypeError) as exc:
        raise CorruptFileError(f"WAL record cannot be decoded: {exc}", "wal", where) from None


COUNTERS = ("live", "versions", "tombstones", "vectors", "text_bytes", "payload_bytes",
            "stored_bytes")


def apply_counters(counters: dict[str, Any], versions: list[Version]) -> dict[str, Any]:
    """``counters`` (a TOC's) updated by ``versions`` (the text and payload sizes aside).

    ``collections`` holds the live frames of every collection but the default one, which
    has ``live`` minus their sum (files from before collections have none).
    ``version_base`` (set by a compaction that dropped every version of some ids) is the
    highest version number dropped: a frame's first version is numbered above it, so an
    (id, version) pair never names two different contents.
    """
    out: dict[str, Any] = {k: counters.get(k, 0) for k in COUNTERS}
    named = dict(counters.get("collections") or {})
    for v in versions:
        out["versions"] += 1
        change = 0
        if v.tombstone:
            out["tombstones"] += 1
            change = -int(v.prev_live)
        elif not v.prev_live:
            change = 1
        out["live"] += change
        if SEP in v.id:
            name = v.id.partition(SEP)[0]
            named[name] = named.get(name, 0) + change
        if v.embedding:
            out["vectors"] += 1
    if named:
        out["collections"] = named
    if counters.get("version_base"):
        out["version_base"] = counters["version_base"]
    return out


def live_by_collection(counters: dict[str, Any]) -> dict[str, int]:
    """Live frames per collection (the default one included), from ``apply_counters``."""
    named = counters.get("collections") or {}
    return dict(sorted({DEFAULT: counters["live"] - sum(named.values()), **named}.items()))


KEEP: Any = object()
"""``update`` argument default: keep the field of the current version."""
