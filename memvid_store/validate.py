"""Validation of what callers store: ids, text, metadata, tags, embeddings.

Every check raises TypeError or ValueError (DimensionMismatchError for embeddings) with a
message naming the offending part, before anything is written.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import DimensionMismatchError, InvalidInputError, InvalidTypeError


def check_id(fid: Any) -> str:
    if not isinstance(fid, str):
        raise InvalidTypeError(f"frame id must be a str, not {type(fid).__name__}")
    if not fid or len(fid.encode()) > 1024:
        raise InvalidInputError("frame id must be a non-empty string of at most 1024 bytes")
    if "\x00" in fid:
        raise InvalidInputError("frame id must not contain NUL ('\\x00'): it separates a "
                                "collection from an id")
    return fid


def check_collection(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidTypeError(f"collection name must be a str, not {type(name).__name__}")
    if not name or len(name.encode()) > 255 or "\x00" in name:
        raise InvalidInputError("collection name must be a non-empty string of at most "
                                "255 bytes without NUL")
    return name


def check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise InvalidTypeError(f"text must be a str, not {type(text).__name__}")
    return text


def check_metadata(meta: Any) -> dict[str, Any] | None:
    if meta is None:
        return None
    if not isinstance(meta, Mapping):
        raise InvalidTypeError(f"metadata must be a dict, not {type(meta).__name__}")
    return json_copy(meta, "metadata")


def json_copy(value: Any, where: str) -> Any:
    """A copy of a JSON-compatible value; ValueError naming the first offending part.

    JSON would silently turn non-str keys into strings and NaN into invalid JSON: refuse.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} must be JSON-compatible: {value!r} is not finite")
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(
                    f"{where} must be JSON-compatible: key {key!r} is not a str")
            out[key] = json_copy(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [json_copy(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise InvalidInputError(f"{where} must be JSON-compatible: {type(value).__name__} is not")


def check_tags(tags: Any) -> list[str] | None:
    if tags is None:
        return None
    if isinstance(tags, str):
        raise InvalidTypeError("tags must be a list of strings, not a single string")
    out = list(tags)
    for tag in out:
        if not isinstance(tag, str) or not tag:
            raise InvalidTypeError(f"every tag must be a non-empty str, got {tag!r}")
    return out


def check_embedding(emb: Any, dim: int | None) -> bytes | None:
    """Float32 little-endian bytes of an embedding of ``dim`` finite numbers (any dim if None)."""
    if emb is None:
        return None
    if type(emb).__module__.startswith("numpy"):
        import numpy as np

        arr = np.asarray(emb, dtype="<f4").ravel()
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
    if dim is not None and len(arr32) != dim:
        raise DimensionMismatchError(
            f"embedding has {len(arr32)} dimensions, the file has {dim}", dim, len(arr32))
    if not arr32 or not math.isfinite(sum(arr32)):
        raise InvalidInputError("embedding must be non-empty and contain only finite numbers")
    return arr32.tobytes()
