"""How ``MemvidStore`` lays out items, their extra vectors and namespaces as frames.

* An **item** is the frame ``item:<digest(namespace, key)>``: its text is the value as
  JSON; its embedding is the item's first vector (if any); its ``created_at`` is the
  item's creation time, kept on update and unique in the collection (so ``created_at``
  order is key insertion order). Metadata: ``kind="item"``, ``ins`` (the namespace joined
  with ``.``), ``namespace``, ``key``, ``updated_at``, ``ttl`` (minutes), ``paths`` and
  ``nvec`` (its vectors), plus the *filter fields* below.
* Each further vector is a **companion** frame ``vec:<digest>:<i>`` (``kind="vec"``, its
  ``item`` id, its ``path``; text is the embedded text) with the item's ``created_at`` and
  filter fields, so a filtered vector search accepts exactly the vectors of the items the
  filter accepts.
* A **namespace marker** ``ns:<digest(namespace)>`` (``kind="ns"``) exists while the
  namespace holds an item: written with its first item, deleted with its last. Its
  ``created_at`` is the namespace's first insertion (``created_at`` order of markers is
  LangGraph's namespace order); ``depth``, ``ls/<i>`` (the i-th label) and ``le/<i>``
  (the i-th label from the end) answer ``list_namespaces`` match conditions.

Filter fields (on items and companions): ``nsp`` (every prefix of the namespace joined
with ``.``, which labels cannot contain: a prefix search is one indexed equality),
``nso`` (the namespace's first insertion, µs, to order ties), ``exp`` (expiry, epoch
seconds, or None) and the value's projections (:mod:`.store_filters`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from langgraph.store.base import Item

from memvid_store.errors import InvalidTypeError

from .store_filters import project

Namespace = tuple[str, ...]

OWNER = "item"
"""The metadata key naming a companion's item frame (item frames have none): a vector
search grouped by it ranks items by their best vector."""

ITERATION_ORDER = ("nso", "created_at")
"""LangGraph's iteration order, which orders tied scores: namespace first insertion, then
key insertion."""


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:32]


@functools.lru_cache(maxsize=4096)
def _item_digest(ns: Namespace, key: str) -> str:
    """The digest naming an item's frames (a batch asks for it several times an item)."""
    return _digest([list(ns), key])


def item_id(ns: Namespace, key: str) -> str:
    return f"item:{_item_digest(tuple(ns), key)}"


def vector_ids(ns: Namespace, key: str, start: int, stop: int) -> list[str]:
    """Ids of companion frames ``start..stop-1`` (companion 0 is the item frame itself)."""
    if stop <= max(start, 1):
        return []
    digest = _item_digest(tuple(ns), key)
    return [f"vec:{digest}:{i}" for i in range(max(start, 1), stop)]


def marker_id(ns: Namespace) -> str:
    return f"ns:{_digest(list(ns))}"


def ns_name(ns: Sequence[str]) -> str:
    return ".".join(ns)


def prefixes(ns: Namespace) -> list[str]:
    return [ns_name(ns[:i]) for i in range(1, len(ns) + 1)]


def value_text(value: dict[str, Any]) -> str:
    """The value as JSON (the item frame's text); InvalidTypeError if it is not JSON."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"a store value must be JSON-serializable: {exc}") from None


def filter_fields(ns: Namespace, nso: int, expires: float | None,
                  value: dict[str, Any]) -> dict[str, Any]:
    return {"nsp": prefixes(ns), "nso": nso, "exp": expires, **project(value)}


def item_frames(ns: Namespace, key: str, value: dict[str, Any], *, created_at: datetime,
                updated_at: datetime, nso: int, ttl: float | None, expires: float | None,
                vectors: list[tuple[str, str, list[float]]]) -> list[dict[str, Any]]:
    """The item frame, then one companion per further vector (``(path, text, vector)``)."""
    shared = filter_fields(ns, nso, expires, value)
    fid = item_id(ns, key)
    meta = {"kind": "item", "ins": ns_name(ns), "namespace": list(ns), "key": key,
            "updated_at": updated_at.isoformat(), "ttl": ttl,
            "paths": [p for p, _, _ in vectors], "nvec": len(vectors), **shared}
    out = [{"id": fid, "text": value_text(value), "metadata": meta, "created_at": created_at,
            "embedding": vectors[0][2] if vectors else None}]
    ids = vector_ids(ns, key, 1, len(vectors))
    for i, (vid, (path, text, vec)) in enumerate(zip(ids, vectors[1:], strict=True), 1):
        out.append({"id": vid, "text": text, "embedding": vec, "created_at": created_at,
                    "metadata": {"kind": "vec", OWNER: fid, "index": i, "path": path,
                                 **shared}})
    return out


def marker_frame(ns: Namespace, created_at: datetime) -> dict[str, Any]:
    meta: dict[str, Any] = {"kind": "ns", "ns": ns_name(ns), "namespace": list(ns),
                            "depth": len(ns), "nsp": prefixes(ns)}
    for i, label in enumerate(ns):
        meta[f"ls/{i}"] = label
        meta[f"le/{i}"] = ns[-1 - i]
    return {"id": marker_id(ns), "text": ns_name(ns), "metadata": meta,
            "created_at": created_at}


def item_of(text: str, meta: dict[str, Any], created_at: datetime) -> Item:
    """The LangGraph Item an item frame (or hit) holds."""
    return Item(value=json.loads(text), key=meta["key"], namespace=tuple(meta["namespace"]),
                created_at=created_at, updated_at=datetime.fromisoformat(meta["updated_at"]))


def owner_of(frame_id: str, meta: dict[str, Any]) -> str:
    """The item frame id a vector hit belongs to (an item frame is its own)."""
    return meta.get(OWNER, frame_id) if meta.get("kind") == "vec" else frame_id


__all__ = ["ITERATION_ORDER", "OWNER", "item_frames", "item_id", "item_of", "marker_frame",
           "marker_id", "ns_name", "owner_of", "prefixes", "vector_ids"]
