"""Export a memory's full history to JSON Lines and replay it into a new file.

An export is lossless: every write the file remembers (each version stored, each delete)
with its record time, id, text, metadata, tags, event time and embedding. Importing
replays the writes in record-time order with ``recorded_at``, so the new file answers
``as_of(t)``, ``history`` and ``find`` like the old one (generations differ: the
new file has its own commits).

Format (one JSON object per line, UTF-8)::

    {"format": "mv2-export", "format_version": 1, "dim": 384, "index": {...},
     "embedder": {"name": ..., "dim": ...} | null, "created_at": ..., ...}
    {"op": "put", "id": ..., "recorded_at": ..., "version": 1, "created_at": ...,
     "text": ..., "metadata": {...}, "tags": [...], "embedding": "<base64 f32 LE>" | [...] | null}
    {"op": "delete", "id": ..., "recorded_at": ...}
    {"op": "end", "changes": N}

Times are ISO 8601 with microseconds and an offset. The ``end`` line lets an import tell
a complete export from a truncated one.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from .engine.keys import DEFAULT
from .errors import CorruptFileError, InvalidInputError
from .validate import check_collection

FORMAT = "mv2-export"
FORMAT_VERSION = 1
VECTOR_ENCODINGS = ("base64", "list")


class TransferError(InvalidInputError):
    """An export file is malformed, truncated or from a newer version."""

    code = "transfer_error"
    HINT = "make a fresh export with `mv2 export FILE OUT.jsonl`"


@dataclass(frozen=True, slots=True)
class Write:
    """One replayable write: ``kind`` is ``put`` (with ``record``, a ``put_many`` record
    including ``id``) or ``delete``."""

    kind: str
    id: str
    recorded_at: datetime
    record: dict[str, Any] | None = None
    version: int | None = None
    collection: str = DEFAULT


@dataclass(slots=True)
class TransferSummary:
    """Counts of a transfer; ``skipped`` describes versions that could not be read."""

    puts: int = 0
    deletes: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return self.puts + self.deletes

    def count(self, write: Write) -> None:
        if write.kind == "put":
            self.puts += 1
        else:
            self.deletes += 1

    def as_dict(self) -> dict[str, Any]:
        return {"changes": self.changes, "puts": self.puts, "deletes": self.deletes,
                "skipped": list(self.skipped)}


# ------------------------------------------------------------------ reading a memory


def file_header(mem: Any) -> dict[str, Any]:
    """The export header describing ``mem``: what a new file needs to receive its writes."""
    info = mem.stats()
    index = mem.index_config
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "dim": info.dim, "index": index.to_dict(), "embedder": mem.embedder_info,
        "created_at": info.created_at.isoformat(),
        "history_floor": None if info.history_floor is None else info.history_floor.isoformat(),
        "source_uuid": info.uuid,
        "exported_at": datetime.now(info.created_at.tzinfo).isoformat(),
    }


def writes_of(mem: Any, *, on_damaged: Callable[[str], None] | None = None) -> Iterator[Write]:
    """Every write ``mem`` remembers, in record-time order.

    With ``on_damaged``, versions whose bytes fail their checksum are reported to it and
    skipped (a vector that cannot be read is dropped, its text kept); without it such
    damage raises CorruptFileError.
    """
    for change in mem.changes(on_damaged=on_damaged):
        if change.kind == "delete":
            yield Write("delete", change.id, change.recorded_at, collection=change.collection)
            continue
        frame = change.frame
        try:
            embedding = frame.embedding
        except CorruptFileError as exc:
            if on_damaged is None:
                raise
            on_damaged(f"vector of {frame.id!r} version {frame.version}: {exc.message}")
            embedding = None
        yield Write("put", frame.id, change.recorded_at, {
            "id": frame.id, "text": frame.text, "metadata": frame.metadata, "tags": frame.tags,
            "created_at": frame.created_at, "embedding": embedding}, frame.version,
            frame.collection)


# ------------------------------------------------------------------ export


def export_jsonl(mem: Any, out: IO[str], *, vectors: str = "base64") -> TransferSummary:
    """Write ``mem``'s header, every write and an end line to ``out``.

    Args:
        mem: an open Memory (read-only is enough) or an ``as_of`` view's owner.
        out: a text stream.
        vectors: ``base64`` (little-endian float32, compact) or ``list`` (JSON numbers).
    """
    if vectors not in VECTOR_ENCODINGS:
        raise InvalidInputError(f"vectors must be one of {VECTOR_ENCODINGS}, not {vectors!r}")
    summary = TransferSummary()
    out.write(_line(file_header(mem)))
    for write in writes_of(mem):
        out.write(_line(_encode(write, vectors)))
        summary.count(write)
    out.write(_line({"op": "end", "changes": summary.changes}))
    return summary


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _encode(write: Write, vectors: str) -> dict[str, Any]:
    out: dict[str, Any] = {"op": write.kind, "id": write.id,
                           "recorded_at": write.recorded_at.isoformat()}
    if write.collection != DEFAULT:
        out["collection"] = write.collection
    if write.kind == "put":
        rec = write.record
        emb = rec["embedding"]
        if emb is not None and vectors == "base64":
            emb = base64.b64encode(_f32_le(emb)).decode("ascii")
        out.update(version=write.version, created_at=rec["created_at"].isoformat(),
                   text=rec["text"], metadata=rec["metadata"], tags=rec["tags"], embedding=emb)
    return out


def _f32_le(values: list[float]) -> bytes:
    arr = array("f", values)
    if sys.byteorder == "big":
        arr.byteswap()
    return arr.tobytes()


# ------------------------------------------------------------------ reading an export


def read_export(lines: Iterable[str]) -> tuple[dict[str, Any], Iterator[Write]]:
    """The header and the writes of an export; the writes are checked as they are read.

    Raises:
        TransferError: (from the iterator too) a malformed, truncated or newer export.
    """
    numbered = enumerate(lines, start=1)
    header = None
    for number, line in numbered:
        if line.strip():
            header = _header(_json(line, number), number)
            break
    if header is None:
        raise TransferError("the export is empty: no header line")
    return header, _writes(numbered)


def _header(obj: dict[str, Any], number: int) -> dict[str, Any]:
    if obj.get("format") != FORMAT:
        raise TransferError(f"line {number}: not an mv2 export (no '\"format\": \"{FORMAT}\"' "
                            "header)")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise TransferError(f"line {number}: export format version {version!r} is newer than "
                            f"this library's {FORMAT_VERSION}; upgrade memvid-py")
    return obj


def _writes(numbered: Iterator[tuple[int, str]]) -> Iterator[Write]:
    count = 0
    last: datetime | None = None
    for number, line in numbered:
        if not line.strip():
            continue
        obj = _json(line, number)
        op = obj.get("op")
        if op == "end":
            if obj.get("changes") != count:
                raise TransferError(f"line {number}: the end line counts {obj.get('changes')} "
                                    f"changes but {count} were read")
            return
        if op not in ("put", "delete"):
            raise TransferError(f"line {number}: unknown op {op!r} (expected put, delete, end)")
        write = _decode(obj, op, number)
        if last is not None and write.recorded_at < last:
            raise TransferError(f"line {number}: recorded_at goes back in time; writes must "
                                "be in record-time order")
        last = write.recorded_at
        count += 1
        yield write
    raise TransferError(f"the export is truncated: no end line after {count} changes")


def _json(line: str, number: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TransferError(f"line {number}: malformed JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise TransferError(f"line {number}: expected a JSON object")
    return obj


def _decode(obj: dict[str, Any], op: str, number: int) -> Write:
    try:
        fid = obj["id"]
        recorded = _time(obj["recorded_at"])
        collection = check_collection(obj.get("collection", DEFAULT))
        if op == "delete":
            return Write("delete", fid, recorded, collection=collection)
        emb = obj.get("embedding")
        if isinstance(emb, str):
            arr = array("f", base64.b64decode(emb, validate=True))
            if sys.byteorder == "big":
                arr.byteswap()
            emb = arr.tolist()
        record = {"id": fid, "text": obj["text"], "metadata": obj.get("metadata") or None,
                  "tags": obj.get("tags") or None, "created_at": _time(obj["created_at"]),
                  "embedding": emb}
    except KeyError as exc:
        raise TransferError(f"line {number}: missing field {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise TransferError(f"line {number}: {exc}") from None
    return Write("put", fid, recorded, record, obj.get("version"), collection)


def _time(value: Any) -> datetime:
    t = datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise ValueError(f"time {value!r} has no offset")
    return t


# ------------------------------------------------------------------ replay


def replay(writes: Iterable[Write], mem: Any, summary: TransferSummary | None = None
           ) -> TransferSummary:
    """Apply writes to ``mem`` in order: consecutive writes recorded at the same time in one
    collection (one write in the source: a ``put_many``, possibly with ``delete``, or a
    ``delete_many``) become one atomic batch."""
    summary = summary or TransferSummary()
    batch: list[Write] = []
    for write in writes:
        if batch and (write.recorded_at, write.collection) != (
                batch[0].recorded_at, batch[0].collection):
            _apply(batch, mem, summary)
            batch = []
        batch.append(write)
    if batch:
        _apply(batch, mem, summary)
    return summary


def _apply(batch: list[Write], mem: Any, summary: TransferSummary) -> None:
    at, collection = batch[0].recorded_at, batch[0].collection
    target = mem if collection == DEFAULT else mem.collection(collection)
    records = [w.record for w in batch if w.kind == "put"]
    deleted = [w.id for w in batch if w.kind != "put"]
    if records:
        target.put_many(records, recorded_at=at, delete=deleted)
    else:
        target.delete_many(deleted, recorded_at=at, missing_ok=True)
    for write in batch:
        summary.count(write)


def create_like(header: dict[str, Any], path: str, first_write: datetime | None,
                **options: Any) -> Any:
    """A new, empty file at ``path`` with the dimension, index settings and embedder
    identity of the exported one, opened for writing (without an embedder)."""
    from .config import IndexConfig
    from .memory import Memory

    created = _time(header["created_at"])
    if first_write is not None and first_write <= created:
        created = first_write - timedelta(microseconds=1)
    Memory.create(path, dim=header.get("dim"), index=IndexConfig.from_dict(header.get("index")),
                  embedder=header.get("embedder") or None, created_at=created, **options).close()
    try:
        return Memory.open(path)
    except BaseException:
        os.unlink(path)
        raise


def import_writes(header: dict[str, Any], writes: Iterable[Write], path: str,
                  summary: TransferSummary | None = None, **options: Any) -> TransferSummary:
    """Create ``path`` like the exported file and replay ``writes`` into it.

    All or nothing: on any error the new file is removed and the error raised.

    Raises:
        AlreadyExistsError: ``path`` exists (it is left alone).
    """
    summary = summary or TransferSummary()
    writes = iter(writes)
    first = next(writes, None)
    mem = create_like(header, path, None if first is None else first.recorded_at, **options)
    try:
        try:
            if first is not None:
                replay(_chain(first, writes), mem, summary)
        finally:
            mem.close()
    except BaseException:
        os.unlink(path)
        raise
    return summary


def import_jsonl(src: str, path: str, **options: Any) -> TransferSummary:
    """Import the export file ``src`` into a new memory file at ``path``."""
    with open(src, encoding="utf-8") as fh:
        header, writes = read_export(fh)
        return import_writes(header, writes, path, **options)


def copy_memory(mem: Any, path: str, *, on_damaged: Callable[[str], None] | None = None,
                **options: Any) -> TransferSummary:
    """Copy every write ``mem`` can read into a new file at ``path`` (``mv2 doctor
    --repair``): the same as an export followed by an import, without the JSON."""
    return import_writes(file_header(mem), writes_of(mem, on_damaged=on_damaged), path,
                         **options)


def _chain(first: Write, rest: Iterator[Write]) -> Iterator[Write]:
    yield first
    yield from rest
