"""Validation of what callers store: ids, text, metadata, tags, embeddings.

Every check raises InvalidTypeError or InvalidInputError (DimensionMismatchError for
embeddings) with a message naming the offending part, before anything is written. Strings
come back as plain ``str`` (a subclass is copied, so none of its methods runs later) that
UTF-8 can encode (a lone surrogate is refused up front, not at the next commit).
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import DimensionMismatchError, InvalidInputError, InvalidTypeError

MAX_METADATA_DEPTH = 100  # nesting deeper than this (or a value containing itself) is refused
# one frame's text + metadata + tags, as stored: reading one costs it plus its decoded
# strings, so a crafted file of any size costs at most ~2x this (MongoDB's document limit)
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_DIM = 65_536  # embedding dimensions (a larger recorded one is damage, not a model)


def plain_str(value: Any, where: str) -> str:
    """``value`` as a plain, UTF-8-encodable ``str``."""
    if not isinstance(value, str):
        raise InvalidTypeError(f"{where} must be a str, not {type(value).__name__}")
    if type(value) is not str:
        value = str.__str__(value)
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"{where} cannot be stored as UTF-8: {exc.reason} at position {exc.start} "
                f"({value[exc.start]!r}); remove or replace the lone surrogate") from None
    return value


def check_records(records: Any, what: str = "records") -> Iterable[Any]:
    """``records`` if it is an iterable of items (not a str, bytes or a single dict)."""
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
        raise InvalidTypeError(f"{what} must be an iterable (a list, for instance), "
                               f"not {type(records).__name__}")
    return records


def check_page(limit: Any, offset: Any) -> None:
    """``select``'s page: ``limit`` a non-negative int or None, ``offset`` a non-negative
    int."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 0):
        raise InvalidInputError(f"limit must be a non-negative int or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInputError(f"offset must be a non-negative int, got {offset!r}")


def check_payload_size(text: str, metadata: dict | None, tags: list[str] | None) -> None:
    """Refuse a frame whose stored payload would exceed ``MAX_PAYLOAD_BYTES`` (readers
    refuse to inflate more than that, so a crafted file cannot exhaust memory)."""
    extra = json.dumps([metadata, tags], ensure_ascii=False) if metadata or tags else ""
    if (len(text) + len(extra)) * 4 <= MAX_PAYLOAD_BYTES:  # UTF-8: <= 4 bytes a character
        return
    check_packed_size(len(text.encode()) + len(extra.encode()))


def check_packed_size(size: int) -> None:
    """Refuse a payload of ``size`` bytes over ``MAX_PAYLOAD_BYTES``."""
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInputError(
            f"a frame of {size} bytes (text + metadata + tags) is over the "
            f"{MAX_PAYLOAD_BYTES // (1024 * 1024)} MiB limit; split the text into several "
            f"frames (mv2 ingest chunks documents)")


def check_id(fid: Any) -> str:
    fid = plain_str(fid, "frame id")
    if not fid or len(fid.encode()) > 1024:
        raise InvalidInputError("frame id must be a non-empty string of at most 1024 bytes")
    if "\x00" in fid:
        raise InvalidInputError("frame id must not contain NUL ('\\x00'): it separates a "
                                "collection from an id")
    return fid


def check_collection(name: Any) -> str:
    name = plain_str(name, "collection name")
    if not name or len(name.encode()) > 255 or "\x00" in name:
        raise InvalidInputError("collection name must be a non-empty string of at most "
                                "255 bytes without NUL")
    return name


def check_text(text: Any) -> str:
    return plain_str(text, "text")


def check_metadata(meta: Any) -> dict[str, Any] | None:
    if meta is None:
        return None
    if not isinstance(meta, Mapping):
        raise InvalidTypeError(f"metadata must be a dict, not {type(meta).__name__}")
    return json_copy(meta, "metadata")


def _plain_scalar(value: Any) -> bool:
    """Whether ``value`` is stored as it is: None, a bool, an int, a finite float or an
    ASCII str of the plain types (the common case, checked without building a location
    for an error message)."""
    kind = type(value)
    return (value is None or kind is int or kind is bool
            or (kind is str and value.isascii())
            or (kind is float and math.isfinite(value)))


def json_copy(value: Any, where: str, depth: int = 0) -> Any:
    """A copy of a JSON-compatible value made of plain types; an error naming the first
    offending part.

    JSON would silently turn non-str keys into strings and NaN into invalid JSON: refuse.
    Nesting is limited to ``MAX_METADATA_DEPTH`` levels, which also refuses a value that
    contains itself.
    """
    if value is None or type(value) in (str, bool, int):
        return plain_str(value, where) if type(value) is str else value
    if isinstance(value, str):
        return plain_str(value, where)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} must be JSON-compatible: {value!r} is not finite")
        return float(value)
    if depth >= MAX_METADATA_DEPTH:
        root = where.split("[", 1)[0]
        raise InvalidInputError(f"{root} is nested more than {MAX_METADATA_DEPTH} levels "
                                f"deep (or contains itself); flatten it")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                if not isinstance(key, str):
                    raise InvalidInputError(
                        f"{where} must be JSON-compatible: key {key!r} is not a str")
                key = plain_str(key, f"{where} key")
            out[key] = item if _plain_scalar(item) else json_copy(
                item, f"{where}[{key!r}]", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [item if _plain_scalar(item) else json_copy(item, f"{where}[{i}]", depth + 1)
                for i, item in enumerate(value)]
    raise InvalidInputError(f"{where} must be JSON-compatible: {type(value).__name__} is not")


def check_tags(tags: Any) -> list[str] | None:
    if tags is None:
        return None
    if isinstance(tags, str):
        raise InvalidTypeError("tags must be a list of strings, not a single string")
    out = list(check_records(tags, "tags"))
    for i, tag in enumerate(out):
        if not isinstance(tag, str) or not tag:
            raise InvalidTypeError(f"every tag must be a non-empty str, got {tag!r}")
        out[i] = plain_str(tag, "tag")
    return out


def check_embedding(emb: Any, dim: int | None) -> bytes | None:
    """Float32 little-endian bytes of an embedding of ``dim`` finite numbers (any dim if None)."""
    if emb is None:
        return None
    if type(emb).__module__.startswith("numpy"):
        import numpy as np

        try:
            arr = np.asarray(emb, dtype="<f4").ravel()
        except (TypeError, ValueError) as exc:
            raise InvalidTypeError(f"embedding must contain only numbers: {exc}") from None
        if dim is None and arr.size > MAX_DIM:
            raise InvalidInputError(f"embedding has {arr.size} dimensions; at most {MAX_DIM}")
        if arr.size != (dim or arr.size):
            raise DimensionMismatchError(
                f"embedding has {arr.size} dimensions, the file has {dim}", dim, arr.size)
        if arr.size == 0 or not np.isfinite(arr).all():
            raise InvalidInputError("embedding must be non-empty and contain only finite numbers")
        return arr.tobytes()
    if isinstance(emb, str | bytes) or not isinstance(emb, Sequence | array):
        raise InvalidTypeError(f"embedding must be a sequence of floats, not {type(emb).__name__}")
    try:
        arr32 = array("f", emb)
    except (TypeError, OverflowError) as exc:
        raise InvalidTypeError(f"embedding must contain only numbers: {exc}") from None
    if dim is None and len(arr32) > MAX_DIM:
        raise InvalidInputError(f"embedding has {len(arr32)} dimensions; at most {MAX_DIM}")
    if dim is not None and len(arr32) != dim:
        raise DimensionMismatchError(
            f"embedding has {len(arr32)} dimensions, the file has {dim}", dim, len(arr32))
    if not arr32 or not math.isfinite(sum(arr32)):
        raise InvalidInputError("embedding must be non-empty and contain only finite numbers")
    return arr32.tobytes()
