"""How ``MemvidSaver`` lays LangGraph records out as frames: ids, metadata, filters.

Three kinds of frame, each with empty text and no embedding (nothing to search by
meaning), their payload in metadata as ``[serde type, base64 bytes]``, or
``[serde type, base64 zstd bytes, "zstd"]`` from ``COMPRESS_FROM`` bytes on (a long
message list costs its compressed size in the WAL and the file, not base64's 4/3):

* ``checkpoint``: one checkpoint without its channel values. Keys ``thread_id``,
  ``checkpoint_ns``, ``checkpoint_id``, ``parent_checkpoint_id``, ``checkpoints_of``
  (``[thread, ns]`` as JSON: one equality term lists a namespace's checkpoints),
  ``checkpoint`` and ``metadata`` (the payloads), and ``md:<key>`` for each top-level
  checkpoint metadata key: the value as canonical JSON, so a ``list(filter=...)`` is
  exact equality on indexed strings. ``created_at`` is the time inside the id
  (LangGraph's UUIDv6, or a UUIDv7), so event-time order is id order.
* ``blob``: one channel value at one version (``thread_id``, ``checkpoint_ns``,
  ``channel``, ``version``, ``value``); a checkpoint's values are the blobs its
  ``channel_versions`` name, so a put writes only the channels that changed.
* ``write``: one pending write (``thread_id``, ``checkpoint_ns``, ``checkpoint_id``,
  ``task_id``, ``task_path``, ``idx``, ``channel``, ``value``, and ``writes_of``:
  ``[thread, ns, checkpoint]`` as JSON).

Frame ids are digests of each record's key, so a checkpoint or a blob is read by ``get``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from memvid_store.errors import InvalidTypeError
from memvid_store.lazy import zstandard
from memvid_store.types import EPOCH

CHECKPOINT, BLOB, WRITE = "checkpoint", "blob", "write"
FIELD_PREFIX = "md:"
EMPTY: tuple[str, bytes] = ("empty", b"")  # a channel without a value at this version
COMPRESS_FROM = 1024
ZSTD_LEVEL = 1

_UUID_EPOCH_TICKS = 0x01B21DD213814000  # 1582-10-15 to 1970-01-01 in 100 ns ticks


def pack(value: tuple[str, bytes]) -> list[str]:
    """A serde ``(type, bytes)`` pair as JSON: ``[type, base64]``, compressed when big."""
    kind, data = value
    if len(data) < COMPRESS_FROM:
        return [kind, base64.b64encode(data).decode("ascii")]
    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    return [kind, base64.b64encode(packed).decode("ascii"), "zstd"]


def unpack(stored: list[str]) -> tuple[str, bytes]:
    data = base64.b64decode(stored[1])
    if len(stored) > 2:
        data = zstandard.ZstdDecompressor().decompress(data)
    return stored[0], data


def canonical(value: Any) -> str:
    """A value as canonical JSON (sorted keys, integral floats as ints): the string equal
    values share. Values JSON cannot hold are written as their ``repr``."""
    return json.dumps(_normalized(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=repr)


def _normalized(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    return value


def key_json(*parts: Any) -> str:
    """A record key (thread id, namespace, checkpoint id...) as JSON.

    Raises:
        InvalidTypeError: a part is not a str or a finite number.
    """
    try:
        return json.dumps(parts, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(
            f"thread ids, namespaces, checkpoint and task ids, channels and versions must "
            f"be str or numbers: {exc}") from None


def checkpoints_of(thread_id: Any, checkpoint_ns: str) -> str:
    return key_json(thread_id, checkpoint_ns)


def writes_of(thread_id: Any, checkpoint_ns: str, checkpoint_id: str) -> str:
    return key_json(thread_id, checkpoint_ns, checkpoint_id)


def frame_id(kind: str, *key: Any) -> str:
    """The frame id of a record: its kind and a digest of its key (InvalidTypeError for a
    key that is not JSON)."""
    digest = hashlib.blake2b(key_json(*key).encode(), digest_size=16).hexdigest()
    return f"{kind}:{digest}"


def checkpoint_frame_id(thread_id: Any, checkpoint_ns: str, checkpoint_id: str) -> str:
    return frame_id(CHECKPOINT, thread_id, checkpoint_ns, checkpoint_id)


def blob_frame_id(thread_id: Any, checkpoint_ns: str, channel: str, version: Any) -> str:
    return frame_id(BLOB, thread_id, checkpoint_ns, channel, version)


def id_of(meta: Mapping[str, Any]) -> str:
    """The frame id of a record's metadata (any kind)."""
    kind, thread, ns = meta["kind"], meta["thread_id"], meta["checkpoint_ns"]
    if kind == CHECKPOINT:
        return checkpoint_frame_id(thread, ns, meta["checkpoint_id"])
    if kind == BLOB:
        return blob_frame_id(thread, ns, meta["channel"], meta["version"])
    return frame_id(WRITE, thread, ns, meta["checkpoint_id"], meta["task_id"], meta["idx"])


def record(meta: dict[str, Any], created_at: datetime | None = None) -> dict[str, Any]:
    """A ``put_many`` record of a frame's metadata."""
    return {"id": id_of(meta), "text": "", "metadata": meta, "created_at": created_at}


def checkpoint_meta(thread_id: Any, checkpoint_ns: str, checkpoint_id: str,
                    parent_id: str | None, checkpoint: tuple[str, bytes],
                    metadata: tuple[str, bytes], fields: Mapping[str, Any]
                    ) -> dict[str, Any]:
    """A checkpoint frame's metadata; ``fields`` is the decoded checkpoint metadata."""
    meta = {"kind": CHECKPOINT, "thread_id": thread_id, "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id, "parent_checkpoint_id": parent_id,
            "checkpoints_of": checkpoints_of(thread_id, checkpoint_ns),
            "checkpoint": pack(checkpoint), "metadata": pack(metadata)}
    meta.update(metadata_fields(fields))
    return meta


def metadata_fields(fields: Mapping[str, Any]) -> dict[str, str]:
    """The indexed copy of checkpoint metadata: ``md:<key>`` -> canonical JSON."""
    return {FIELD_PREFIX + str(k): canonical(v) for k, v in fields.items()}


def blob_meta(thread_id: Any, checkpoint_ns: str, channel: str, version: Any,
              value: tuple[str, bytes]) -> dict[str, Any]:
    return {"kind": BLOB, "thread_id": thread_id, "checkpoint_ns": checkpoint_ns,
            "channel": channel, "version": version, "value": pack(value)}


def write_meta(thread_id: Any, checkpoint_ns: str, checkpoint_id: str, task_id: str,
               task_path: str, idx: int, channel: str, value: tuple[str, bytes]
               ) -> dict[str, Any]:
    return {"kind": WRITE, "thread_id": thread_id, "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id, "writes_of": writes_of(
                thread_id, checkpoint_ns, checkpoint_id),
            "task_id": task_id, "task_path": task_path, "idx": idx, "channel": channel,
            "value": pack(value)}


def metadata_filter(filter: Mapping[str, Any]) -> dict[str, Any]:
    """A ``list(filter=...)`` as an engine filter: each key equals the given value (a
    ``None`` also matches a missing key, as in ``InMemorySaver``)."""
    spec: dict[str, Any] = {}
    missing = []
    for key, value in filter.items():
        path = FIELD_PREFIX + str(key)
        if value is None:
            missing.append({"$or": [{path: "null"}, {path: {"$exists": False}}]})
        else:
            spec[path] = canonical(value)
    if missing:
        spec["$and"] = missing
    return spec


def event_time(checkpoint_id: str) -> datetime | None:
    """The time inside a canonical UUIDv6 or UUIDv7 id (whose string order is time order);
    None for other ids."""
    try:
        parsed = uuid.UUID(checkpoint_id)
    except (TypeError, ValueError, AttributeError):
        return None
    if str(parsed) != checkpoint_id:
        return None
    value = parsed.int
    if parsed.version == 6:
        ticks = (value >> 96) << 28 | ((value >> 80) & 0xFFFF) << 12 | (value >> 64) & 0x0FFF
        micros = (ticks - _UUID_EPOCH_TICKS) // 10
    elif parsed.version == 7:
        micros = (value >> 80) * 1000
    else:
        return None
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None
