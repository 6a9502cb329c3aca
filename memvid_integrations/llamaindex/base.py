"""``MemvidVectorStore``: a LlamaIndex vector store over one ``.mv2`` memory file.

Each node is one frame: the node id is the frame id, the node text the frame text (searched
by BM25), the embedding the frame vector, and the metadata the node's metadata plus the
serialized node (``_node_content``, ``_node_type``, ``ref_doc_id``, ...) written by
``node_to_metadata_dict``, so relationships and ``ref_doc_id`` survive the round trip.
Adding a node whose id exists stores a new version of its frame, so ``as_of`` (record time
or commit generation) queries what the memory held before. The store only sees frames that
carry ``_node_type``; chat messages or LangChain documents in the same file are left alone.

Filters (``MetadataFilters``, nested, every ``FilterOperator``) are translated into the
engine's filter language by :func:`_to_memvid_filter`. Semantics, per key:

* ``==`` ``!=`` ``in`` ``nin``: JSON equality (``1 == 1.0``); a stored list matches when it
  equals the value or one of its elements does. ``!=`` and ``nin`` match a missing key.
* ``>`` ``>=`` ``<`` ``<=``: numbers with numbers, strings with strings; otherwise no match.
* ``any`` / ``all``: the stored value (or list) contains any / all of the given values;
  ``contains``: it contains the given value.
* ``text_match`` / ``text_match_insensitive``: a stored string (or a string element of a
  stored list) contains the value as a substring.
* ``is_empty``: the key is missing or holds ``None``, ``""`` or ``[]``.
* Conditions ``and`` / ``or`` / ``not`` (none of the filters match) nest freely.

Engine errors (``FilterError``, ``DimensionMismatchError``, ``FrameNotFoundError``,
``ReadOnlyError`` ...) pass through unchanged; bad arguments raise ``ValueError`` or
``TypeError``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from memvid_store import Frame, Memory
from memvid_store.errors import InvalidInputError, InvalidTypeError
from memvid_store.index.filters import compile_filter
from memvid_store.types import Hit

from .._common import MemoryHolder, opened_memory

__all__ = ["MemvidVectorStore"]

NODE_TYPE_KEY = "_node_type"
NODE_ID_KEY = "_node_id"
_SCOPE = {f"metadata.{NODE_TYPE_KEY}": {"$exists": True}}
_QUERY_KWARGS = frozenset({"as_of", "time_range", "mode", "mmr_prefetch_k",
                           "mmr_prefetch_factor"})

TextValues = Callable[[str], Iterable[str]]

_MODE_ALIASES = {
    "default": VectorStoreQueryMode.DEFAULT, "vector": VectorStoreQueryMode.DEFAULT,
    "text_search": VectorStoreQueryMode.TEXT_SEARCH, "lexical": VectorStoreQueryMode.TEXT_SEARCH,
    "fts": VectorStoreQueryMode.TEXT_SEARCH, "hybrid": VectorStoreQueryMode.HYBRID,
    "mmr": VectorStoreQueryMode.MMR, "sparse": VectorStoreQueryMode.SPARSE,
}
SUPPORTED_MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.TEXT_SEARCH,
                   VectorStoreQueryMode.HYBRID, VectorStoreQueryMode.MMR,
                   VectorStoreQueryMode.SPARSE)


def to_query_mode(mode: Any) -> VectorStoreQueryMode:
    """A ``VectorStoreQueryMode`` from a mode or a name (``vector``, ``lexical``, ``fts`` ...).

    Raises:
        ValueError: unknown or unsupported mode.
    """
    if isinstance(mode, VectorStoreQueryMode):
        value = mode
    elif isinstance(mode, str) and mode.lower() in _MODE_ALIASES:
        value = _MODE_ALIASES[mode.lower()]
    else:
        value = None
    if value not in SUPPORTED_MODES:
        names = ", ".join(m.value for m in SUPPORTED_MODES)
        raise InvalidInputError(
            f"unsupported query mode {mode!r}; MemvidVectorStore supports {names}")
    return value


# ----------------------------------------------------------------------------- filters

def _key(key: str) -> str:
    # The explicit prefix keeps a metadata key named "tags" away from the frame's tags.
    return f"metadata.{key}"


def _list_value(f: MetadataFilter, *, non_empty: bool = False) -> list[Any]:
    if not isinstance(f.value, list):
        raise InvalidInputError(f"filter {f.key!r} {f.operator.value!r} needs a list value, "
                         f"got {f.value!r}")
    if non_empty and not f.value:
        raise InvalidInputError(f"filter {f.key!r} {f.operator.value!r} needs a non-empty list")
    return list(f.value)


def _scalar_value(f: MetadataFilter) -> Any:
    if isinstance(f.value, list):
        raise InvalidInputError(f"filter {f.key!r} {f.operator.value!r} needs a single value, "
                         f"got the list {f.value!r}")
    return f.value


def _text_match(f: MetadataFilter, text_values: TextValues | None, fold: bool) -> dict:
    needle = f.value
    if not isinstance(needle, str):
        raise InvalidInputError(f"filter {f.key!r} {f.operator.value!r} needs a string value, "
                         f"got {needle!r}")
    if text_values is None:
        raise InvalidInputError(f"{f.operator.value!r} filters need the store's values; query "
                         "through MemvidVectorStore")
    if fold:
        needle = needle.lower()
    found = sorted({s for s in text_values(f.key)
                    if isinstance(s, str) and needle in (s.lower() if fold else s)})
    return {_key(f.key): {"$in": found}}


def _filter_to_spec(f: MetadataFilter, text_values: TextValues | None) -> dict[str, Any]:
    op, key = f.operator, _key(f.key)
    if op == FilterOperator.EQ:
        return {key: {"$eq": f.value}}
    if op == FilterOperator.NE:
        return {key: {"$ne": f.value}}
    if op in (FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE):
        value = _scalar_value(f)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidInputError(f"filter {f.key!r} {op.value!r} needs a number or a string, "
                             f"got {value!r}")
        name = {FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte",
                FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte"}[op]
        return {key: {name: value}}
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return {key: {"$in": _list_value(f)}}
    if op == FilterOperator.NIN:
        return {key: {"$nin": _list_value(f)}}
    if op == FilterOperator.ALL:
        return {key: {"$all": _list_value(f, non_empty=True)}}
    if op == FilterOperator.CONTAINS:
        return {key: {"$eq": _scalar_value(f)}}
    if op == FilterOperator.TEXT_MATCH:
        return _text_match(f, text_values, fold=False)
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return _text_match(f, text_values, fold=True)
    if op == FilterOperator.IS_EMPTY:
        return {"$or": [{key: {"$exists": False}}, {key: {"$eq": None}},
                        {key: {"$eq": ""}}, {key: {"$eq": []}}]}
    raise InvalidInputError(f"unsupported filter operator {op!r}")


def _to_memvid_filter(filters: MetadataFilters | None,
                      text_values: TextValues | None = None) -> dict[str, Any] | None:
    """Translate LlamaIndex ``MetadataFilters`` (nested) into an engine filter spec.

    Args:
        filters: the filters; ``None`` or an empty top-level list means no filter.
        text_values: ``key -> string values stored under key``; needed only by the
            ``text_match`` operators, which become ``$in`` over the matching values.

    Returns:
        An engine filter dict, or ``None`` for "match everything".

    Raises:
        ValueError: an operator with the wrong kind of value, an empty nested filter list,
            or an unknown condition.
    """
    if filters is None or not filters.filters:
        return None
    return _filters_to_spec(filters, text_values)


def _filters_to_spec(filters: MetadataFilters, text_values: TextValues | None) -> dict:
    if not isinstance(filters, MetadataFilters):
        raise InvalidTypeError(f"filters must be MetadataFilters, not {type(filters).__name__}")
    if not filters.filters:
        raise InvalidInputError("a nested MetadataFilters needs at least one filter")
    parts = []
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            parts.append(_filters_to_spec(f, text_values))
        else:
            parts.append(_filter_to_spec(f, text_values))
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return parts[0] if len(parts) == 1 else {"$and": parts}
    if condition == FilterCondition.OR:
        return parts[0] if len(parts) == 1 else {"$or": parts}
    if condition == FilterCondition.NOT:
        return {"$nor": parts}
    raise InvalidInputError(f"unsupported filter condition {condition!r}")


def _and(*specs: Mapping[str, Any] | None) -> dict[str, Any]:
    parts = [dict(s) for s in specs if s]
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _lookup(metadata: Mapping[str, Any], key: str) -> Any:
    """The value under ``key`` the way the engine reads ``metadata.<key>`` (None if absent)."""
    if key in metadata:
        return metadata[key]
    value: Any = metadata
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


# ------------------------------------------------------------------------------- store

def frame_to_node(metadata: Mapping[str, Any], text: str, fid: str) -> BaseNode:
    """Rebuild a node from a frame's metadata and text (a plain TextNode if not ours)."""
    if "_node_content" in metadata:
        return metadata_dict_to_node(dict(metadata), text=text)
    return TextNode(id_=fid, text=text, metadata=dict(metadata))


class MemvidVectorStore(BasePydanticVectorStore, MemoryHolder):
    """A LlamaIndex vector store backed by a memvid ``.mv2`` file.

    Args:
        path: the memory file (created if missing; the embedding dimension is learned from
            the first vectors) or an open :class:`memvid_store.Memory` to share.
        as_of: default record time (aware datetime) or commit generation for queries.
        time_range: default ``(since, until)`` on event time (``created_at``) for queries.
        mmr_prefetch_factor: MMR re-ranks ``similarity_top_k * factor`` vector hits.
        **options: ``Memory.create``/``Memory.open`` options (``wal_size``, ``sync``,
            ``lock_timeout``, ``mmap``, ``readonly``; ``index={"distance": "ip"}`` when
            creating).

    ``query(q, **kwargs)`` also takes ``as_of``, ``time_range``, ``mode`` (overrides
    ``q.mode``; names such as ``"fts"`` or ``"lexical"`` work), ``mmr_prefetch_k`` and
    ``mmr_prefetch_factor``; ``VectorIndexRetriever`` passes them from
    ``vector_store_kwargs``. Similarities are the engine's scores (cosine similarity,
    BM25, or reciprocal rank fusion in hybrid mode); higher is better.

    Example:
        >>> from llama_index.core import StorageContext, VectorStoreIndex
        >>> store = MemvidVectorStore("notes.mv2")  # doctest: +SKIP
        >>> ctx = StorageContext.from_defaults(vector_store=store)  # doctest: +SKIP
        >>> index = VectorStoreIndex.from_documents(docs, storage_context=ctx)  # doctest: +SKIP
    """

    stores_text: bool = True
    flat_metadata: bool = False
    path: str
    as_of: datetime | int | None = None
    time_range: tuple[datetime | None, datetime | None] | None = None
    mmr_prefetch_factor: float = 4.0

    _memory: Memory = PrivateAttr()
    _owned: bool = PrivateAttr(default=True)

    def __init__(self, path: str | os.PathLike[str] | Memory, *,
                 as_of: datetime | int | None = None,
                 time_range: tuple[datetime | None, datetime | None] | None = None,
                 mmr_prefetch_factor: float = 4.0, **options: Any) -> None:
        with opened_memory(path, **options) as (memory, owned):
            super().__init__(path=memory.path, as_of=as_of, time_range=time_range,
                             mmr_prefetch_factor=mmr_prefetch_factor)
        self._hold(memory, owned, "default")

    @classmethod
    def class_name(cls) -> str:
        return "MemvidVectorStore"

    @property
    def client(self) -> Memory:
        """The underlying memory (shared with other adapters on the same file)."""
        return self._memory

    # -------------------------------------------------------------------- reading helpers

    def _reader(self, as_of: datetime | int | None) -> Any:
        return self._memory if as_of is None else self._memory.as_of(as_of)

    def _text_values(self, reader: Any) -> TextValues:
        cache: dict[str, set[str]] = {}

        def values(key: str) -> set[str]:
            if key not in cache:
                found: set[str] = set()
                for frame in self._frames(reader, None):
                    value = _lookup(frame.metadata, key)
                    items = value if isinstance(value, list) else [value]
                    found.update(v for v in items if isinstance(v, str))
                cache[key] = found
            return cache[key]

        return values

    def _frames(self, reader: Any, spec: Mapping[str, Any] | None) -> Iterator[Frame]:
        """This store's current frames (of ``reader``) that match ``spec``."""
        flt = compile_filter(_and(_SCOPE, spec))
        for frame in reader.iter_timeline():
            if flt(frame.metadata, frame.tags):
                yield frame

    def _node(self, frame: Frame, with_embedding: bool = False) -> BaseNode:
        node = frame_to_node(frame.metadata, frame.text, frame.id)
        if with_embedding:
            node.embedding = frame.embedding
        return node

    # ---------------------------------------------------------------------------- writes

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Store nodes atomically (one batch); an existing node id gets a new version.

        Args:
            nodes: nodes with embeddings (a node without one is found by text search only).
            **kwargs: ``created_at`` (aware datetime) and ``tags`` (list of str) for every
                frame of the batch.
        """
        created_at = kwargs.pop("created_at", None)
        tags = kwargs.pop("tags", None)
        if kwargs:
            raise InvalidTypeError(f"add() got unexpected keyword(s) {sorted(kwargs)}")
        records = []
        for node in nodes:
            if not isinstance(node, BaseNode):
                raise InvalidTypeError(f"add() takes LlamaIndex nodes, not {type(node).__name__}")
            metadata = node_to_metadata_dict(node, remove_text=True,
                                             flat_metadata=self.flat_metadata)
            metadata[NODE_ID_KEY] = node.node_id
            record: dict[str, Any] = {
                "id": node.node_id, "metadata": metadata,
                "text": node.get_content(metadata_mode=MetadataMode.NONE),
            }
            if node.embedding is not None:
                record["embedding"] = node.embedding
            if created_at is not None:
                record["created_at"] = created_at
            if tags is not None:
                record["tags"] = list(tags)
            records.append(record)
        if not records:
            return []
        return self._memory.put_many(records)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of a source document (history stays reachable with ``as_of``)."""
        if not isinstance(ref_doc_id, str):
            raise InvalidTypeError(f"ref_doc_id must be a str, not {type(ref_doc_id).__name__}")
        spec = {_key("ref_doc_id"): {"$eq": ref_doc_id}}
        self._delete_ids([f.id for f in self._frames(self._memory, spec)])

    def _delete_ids(self, ids: Iterable[str]) -> None:
        for fid in ids:
            self._memory.delete(fid)

    def delete_nodes(self, node_ids: list[str] | None = None,
                     filters: MetadataFilters | None = None, **delete_kwargs: Any) -> None:
        """Delete nodes by id and/or filter (both given: nodes matching both).

        Unknown ids are ignored. Use ``clear()`` to delete every node.
        """
        if node_ids is None and filters is None:
            raise InvalidInputError("delete_nodes needs node_ids and/or filters; use clear() to "
                             "delete every node")
        ids = [n.node_id for n in self.get_nodes(node_ids, filters)]
        self._delete_ids(ids)

    def clear(self) -> None:
        """Delete every node of this store (other frames in the file are kept)."""
        self._delete_ids([f.id for f in self._frames(self._memory, None)])

    # ----------------------------------------------------------------------------- reads

    def get_nodes(self, node_ids: list[str] | None = None,
                  filters: MetadataFilters | None = None, **kwargs: Any) -> list[BaseNode]:
        """Current nodes (with embeddings) by id and/or filter; ``as_of=`` reads the past.

        With ``node_ids`` the nodes come in that order (unknown ids skipped), otherwise in
        timeline order.
        """
        as_of = kwargs.pop("as_of", self.as_of)
        if kwargs:
            raise InvalidTypeError(f"get_nodes() got unexpected keyword(s) {sorted(kwargs)}")
        reader = self._reader(as_of)
        spec = _to_memvid_filter(filters, self._text_values(reader))
        if node_ids is None:
            return [self._node(f, True) for f in self._frames(reader, spec)]
        flt = compile_filter(_and(_SCOPE, spec))
        nodes = []
        for fid in node_ids:
            if fid not in reader:
                continue
            frame = reader.get(fid)
            if flt(frame.metadata, frame.tags):
                nodes.append(self._node(frame, True))
        return nodes

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Run a query: ``DEFAULT`` (vector), ``TEXT_SEARCH`` / ``SPARSE`` (BM25),
        ``HYBRID`` (fusion; ``alpha`` weighs vector against BM25) or ``MMR``.

        ``doc_ids`` / ``node_ids`` restrict the candidates; empty lists (what
        ``VectorStoreIndex`` passes for a store that keeps text) mean no restriction.

        Raises:
            ValueError: unsupported mode, a missing query embedding/string, bad alpha.
            TypeError: unknown keyword arguments.
        """
        unknown = set(kwargs) - _QUERY_KWARGS
        if unknown:
            raise InvalidTypeError(f"query() got unexpected keyword(s) {sorted(unknown)}; "
                            f"valid: {sorted(_QUERY_KWARGS)}")
        as_of = kwargs.get("as_of", self.as_of)
        time_range = kwargs.get("time_range", self.time_range)
        mode = to_query_mode(kwargs.get("mode", query.mode))
        reader = self._reader(as_of)
        spec = _and(_SCOPE, _to_memvid_filter(query.filters, self._text_values(reader)),
                    {_key("ref_doc_id"): {"$in": list(query.doc_ids)}}
                    if query.doc_ids else None,
                    {_key(NODE_ID_KEY): {"$in": list(query.node_ids)}}
                    if query.node_ids else None)
        find = {"filter": spec, "as_of": as_of, "time_range": time_range}
        k = query.similarity_top_k
        if mode == VectorStoreQueryMode.MMR:
            return self._mmr(query, reader, find, kwargs)
        if mode in (VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.SPARSE):
            if not query.query_str:
                raise InvalidInputError(f"{mode.value} queries need query_str")
            if mode == VectorStoreQueryMode.SPARSE and query.sparse_top_k:
                k = query.sparse_top_k
            hits = self._memory.find(query.query_str, k=k, mode="lexical", **find)
        elif mode == VectorStoreQueryMode.HYBRID:
            hits = self._hybrid(query, find)
        else:
            if query.query_embedding is None:
                raise InvalidInputError("default (vector) queries need query_embedding")
            hits = self._memory.find(vector=query.query_embedding, k=k, mode="vector", **find)
        return self._result(hits)

    def _hybrid(self, query: VectorStoreQuery, find: dict[str, Any]) -> list[Hit]:
        k = query.hybrid_top_k or query.similarity_top_k
        text, vector = query.query_str or None, query.query_embedding
        if text is None and vector is None:
            raise InvalidInputError("hybrid queries need query_str and/or query_embedding")
        weights = None
        if query.alpha is not None:
            alpha = query.alpha
            if isinstance(alpha, bool) or not isinstance(alpha, int | float) \
                    or not 0.0 <= alpha <= 1.0:
                raise InvalidInputError(f"alpha must be in [0, 1] (0: BM25 only, 1: vector only), "
                                 f"got {alpha!r}")
            if alpha == 0.0:
                vector = None
            elif alpha == 1.0:
                text = None
            weights = {"vector": float(alpha), "lexical": 1.0 - float(alpha)}
        if text is None and vector is None:
            raise InvalidInputError(f"alpha={query.alpha} needs "
                             f"{'query_str' if query.alpha == 0 else 'query_embedding'}")
        if text is None or vector is None:
            weights = None
        return self._memory.find(text, vector=vector, k=k, mode="hybrid", weights=weights, **find)

    def _mmr(self, query: VectorStoreQuery, reader: Any, find: dict[str, Any],
             kwargs: Mapping[str, Any]) -> VectorStoreQueryResult:
        from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings

        if query.query_embedding is None:
            raise InvalidInputError("mmr queries need query_embedding")
        k = query.similarity_top_k
        factor = kwargs.get("mmr_prefetch_factor", self.mmr_prefetch_factor)
        fetch_k = kwargs.get("mmr_prefetch_k") or max(k, int(k * factor))
        hits = self._memory.find(vector=query.query_embedding, k=fetch_k, mode="vector", **find)
        if not hits:
            return self._result([])
        embeddings = [reader.get(h.id).embedding for h in hits]
        sims, order = get_top_k_mmr_embeddings(
            query.query_embedding, embeddings, similarity_top_k=k,
            embedding_ids=list(range(len(hits))), mmr_threshold=query.mmr_threshold)
        chosen = [hits[i] for i in order]
        result = self._result(chosen)
        result.similarities = [float(s) for s in sims]
        return result

    def _result(self, hits: list[Hit]) -> VectorStoreQueryResult:
        return VectorStoreQueryResult(
            nodes=[frame_to_node(h.metadata, h.text, h.id) for h in hits],
            similarities=[h.score for h in hits], ids=[h.id for h in hits])

    # ----------------------------------------------------------------------------- async

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """``add`` in a worker thread (the event loop is not blocked)."""
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    aadd = async_add

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    async def adelete_nodes(self, node_ids: list[str] | None = None,
                            filters: MetadataFilters | None = None,
                            **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    async def aget_nodes(self, node_ids: list[str] | None = None,
                         filters: MetadataFilters | None = None,
                         **kwargs: Any) -> list[BaseNode]:
        return await asyncio.to_thread(self.get_nodes, node_ids, filters, **kwargs)

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await asyncio.to_thread(self.query, query, **kwargs)
