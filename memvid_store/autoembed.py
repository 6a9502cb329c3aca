"""Binding an embedder to a memory file: identity check at open, vectors filled in on demand.

A file created with an embedder records its identity (``name``, ``dim``) in its options, so
a later open with another model is caught before it mixes incompatible vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import (
    DimensionMismatchError,
    EmbedderMismatchError,
    InvalidInputError,
    InvalidTypeError,
)
from .validate import MAX_DIM


def identity(embedder: Any) -> dict[str, Any]:
    """The ``{"name", "dim"}`` record a file keeps of the embedder that made its vectors.

    ``embedder`` is an embedder, or such a record itself (an import copying a binding).
    """
    if isinstance(embedder, Mapping):
        name, dim = embedder.get("name"), embedder.get("dim")
        callable_ok = True
    else:
        name, dim = getattr(embedder, "name", None), getattr(embedder, "dim", None)
        callable_ok = callable(getattr(embedder, "embed_documents", None)) \
            and callable(getattr(embedder, "embed_query", None))
    if not isinstance(name, str) or not name or isinstance(dim, bool) or not isinstance(dim, int) \
            or dim <= 0 or not callable_ok:
        raise InvalidTypeError(
            "embedder must have a non-empty str .name, a positive int .dim and "
            "embed_documents(texts) / embed_query(text) methods (see memvid_store.embeddings), "
            "or be a {'name': str, 'dim': int} record")
    return {"name": name, "dim": dim}


def file_binding(dim: int | None, embedder: Any) -> tuple[int | None, dict[str, Any] | None]:
    """The dimension a new file gets, and the embedder record it keeps (None: no embedder).

    Raises:
        InvalidInputError: ``dim`` is not a positive int or None.
        DimensionMismatchError: ``dim`` differs from the embedder's.
    """
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)
                            or not 0 < dim <= MAX_DIM):
        raise InvalidInputError(f"dim must be an int from 1 to {MAX_DIM} or None, got {dim!r}")
    if embedder is None:
        return dim, None
    ident = identity(embedder)
    if dim is not None and dim != ident["dim"]:
        raise DimensionMismatchError(
            f"dim={dim} but the embedder {ident['name']!r} makes {ident['dim']}-d vectors",
            dim, ident["dim"])
    return ident["dim"], ident


def check_binding(embedder: Any, recorded: Mapping[str, Any] | None, dim: int | None,
                  path: str, *, allow_mismatch: bool) -> None:
    """Raise if ``embedder`` cannot produce vectors compatible with the file's."""
    ident = identity(embedder)
    if dim is not None and ident["dim"] != dim:
        raise DimensionMismatchError(
            f"{path} holds {dim}-d vectors but the embedder {ident['name']!r} makes "
            f"{ident['dim']}-d ones", dim, ident["dim"])
    if recorded and recorded.get("name") != ident["name"] and not allow_mismatch:
        raise EmbedderMismatchError(
            f"{path} was embedded with {recorded.get('name')!r}, not {ident['name']!r}")


def fill_embeddings(embedder: Any, records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Records with an embedding computed (one batch) for those that have text but none."""
    todo = [i for i, r in enumerate(records)
            if isinstance(r, Mapping) and r.get("embedding") is None
            and isinstance(r.get("text"), str)]
    if not todo:
        return list(records)
    vectors = embedder.embed_documents([records[i]["text"] for i in todo])
    out = list(records)
    for i, v in zip(todo, vectors, strict=True):
        out[i] = {**records[i], "embedding": v}
    return out


def fill_query_vectors(embedder: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests with a query vector from their text where vector or hybrid search needs one."""
    cache: dict[str, Any] = {}
    for r in requests:
        text = r.get("text")
        if (r.get("vector") is None and isinstance(text, str)
                and r.get("mode", "hybrid") != "lexical"):
            if text not in cache:
                cache[text] = embedder.embed_query(text)
            r["vector"] = cache[text]
    return requests
