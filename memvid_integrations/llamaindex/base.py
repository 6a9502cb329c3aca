"""``MemvidVectorStore``: a LlamaIndex vector store over one ``.mv2`` memory file.

The store keeps its nodes in its own collection of the file (``"llamaindex"`` unless
``collection=`` names another), so chat messages, LangChain documents or any other frames
in the same file are never seen nor deleted. Each node is one frame: the node id is the
frame id, the node text the frame text (searched by BM25), the embedding the frame vector,
and the metadata the node's metadata plus the serialized node (``_node_content``,
``_node_type``, ``ref_doc_id``, ...) written by ``node_to_metadata_dict``, so relationships
and ``ref_doc_id`` survive the round trip. Adding a node whose id exists stores a new
version of its frame, so ``as_of`` (record time or commit generation) queries what the
memory held before.

Every read and delete goes through the engine's indexed ``select``/``find``; a delete is
one atomic write. Filters (``MetadataFilters``) are translated by
:func:`.filters.to_memvid_filter` (its docstring gives the semantics).

Engine errors (``FilterError``, ``DimensionMismatchError``, ``FrameNotFoundError``,
``ReadOnlyError`` ...) pass through unchanged; bad arguments raise ``InvalidInputError``
(a ``ValueError``) or ``InvalidTypeError`` (a ``TypeError``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from memvid_store import Collection, Frame, Memory
from memvid_store.errors import InvalidInputError, InvalidTypeError
from memvid_store.types import Hit

from .._common import MemoryHolder, opened_memory
from .filters import and_filters, metadata_key, to_memvid_filter

__all__ = ["DEFAULT_COLLECTION", "MemvidVectorStore"]

DEFAULT_COLLECTION = "llamaindex"
NODE_ID_KEY = "_node_id"
# query() keywords: the engine's (as_of, time_range, mode) and MMR's; ``mmr_threshold`` is
# how LlamaIndex's retriever passes MMR's trade-off (``vector_store_kwargs``).
_QUERY_KWARGS = frozenset({"as_of", "time_range", "mode", "mmr_threshold", "mmr_prefetch_k",
                           "mmr_prefetch_factor", "group_by"})

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


# ------------------------------------------------------------------------------- store

def frame_to_node(metadata: Mapping[str, Any], text: str, fid: str) -> BaseNode:
    """Rebuild a node from a frame's metadata and text (a plain TextNode if not a node)."""
    if "_node_content" in metadata:
        return metadata_dict_to_node(dict(metadata), text=text)
    return TextNode(id_=fid, text=text, metadata=dict(metadata))


def _unit_interval(name: str, value: Any) -> float | None:
    """``value`` as a float in [0, 1] (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


class MemvidVectorStore(BasePydanticVectorStore, MemoryHolder):
    """A LlamaIndex vector store backed by a memvid ``.mv2`` file.

    Args:
        path: the memory file (created if missing; the embedding dimension is learned from
            the first vectors) or an open :class:`memvid_store.Memory` to share.
        collection: the collection of the file holding the nodes (default
            ``"llamaindex"``); stores on one file with different collections are
            independent.
        as_of: default record time (aware datetime) or commit generation for queries.
        time_range: default ``(since, until)`` on event time (``created_at``) for queries.
        mmr_prefetch_factor: MMR re-ranks ``similarity_top_k * factor`` vector hits.
        **options: ``Memory.create``/``Memory.open`` options (``wal_size``, ``sync``,
            ``lock_timeout``, ``mmap``, ``readonly``; ``index={"distance": "ip"}`` when
            creating). A store opened ``readonly=True`` on a path follows the writer in
            another process.

    ``query(q, **kwargs)`` also takes ``as_of``, ``time_range``, ``mode`` (overrides
    ``q.mode``; names such as ``"fts"`` or ``"lexical"`` work), ``mmr_threshold``
    (overrides ``q.mmr_threshold``), ``mmr_prefetch_k``, ``mmr_prefetch_factor`` and
    ``group_by`` (a node metadata key: the best node of each of the top-k groups, e.g.
    ``"ref_doc_id"`` for one node per source document, ranked by the engine);
    ``VectorIndexRetriever`` passes them from ``vector_store_kwargs``. Similarities are the
    engine's scores (cosine similarity, BM25, or reciprocal rank fusion in hybrid mode);
    higher is better.

    Example:
        >>> from llama_index.core import StorageContext, VectorStoreIndex
        >>> store = MemvidVectorStore("notes.mv2")  # doctest: +SKIP
        >>> ctx = StorageContext.from_defaults(vector_store=store)  # doctest: +SKIP
        >>> index = VectorStoreIndex.from_documents(docs, storage_context=ctx)  # doctest: +SKIP
        >>> index.as_retriever(vector_store_query_mode="mmr",
        ...                    vector_store_kwargs={"mmr_threshold": 0.2})  # doctest: +SKIP
    """

    stores_text: bool = True
    flat_metadata: bool = False
    path: str
    as_of: datetime | int | None = None
    time_range: tuple[datetime | None, datetime | None] | None = None
    mmr_prefetch_factor: float = 4.0

    _memory: Memory = PrivateAttr()
    _owned: bool = PrivateAttr(default=True)
    _collection: Collection = PrivateAttr()

    def __init__(self, path: str | os.PathLike[str] | Memory, *,
                 collection: str = DEFAULT_COLLECTION, as_of: datetime | int | None = None,
                 time_range: tuple[datetime | None, datetime | None] | None = None,
                 mmr_prefetch_factor: float = 4.0, **options: Any) -> None:
        with opened_memory(path, **options) as (memory, owned):
            super().__init__(path=memory.path, as_of=as_of, time_range=time_range,
                             mmr_prefetch_factor=mmr_prefetch_factor)
        self._hold(memory, owned, collection)

    @classmethod
    def class_name(cls) -> str:
        return "MemvidVectorStore"

    @property
    def client(self) -> Memory:
        """The underlying memory (shared with other adapters on the same file)."""
        return self._memory

    @staticmethod
    def _node(frame: Frame) -> BaseNode:
        node = frame_to_node(frame.metadata, frame.text, frame.id)
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
        return self._collection.put_many(records)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of a source document in one atomic write (history stays
        reachable with ``as_of``)."""
        if not isinstance(ref_doc_id, str):
            raise InvalidTypeError(f"ref_doc_id must be a str, not {type(ref_doc_id).__name__}")
        self._delete_matching({metadata_key("ref_doc_id"): ref_doc_id})

    def delete_nodes(self, node_ids: list[str] | None = None,
                     filters: MetadataFilters | None = None, **delete_kwargs: Any) -> None:
        """Delete nodes by id and/or filter (both given: nodes matching both), in one atomic
        write. Unknown ids are ignored. Use ``clear()`` to delete every node."""
        if node_ids is None and filters is None:
            raise InvalidInputError("delete_nodes needs node_ids and/or filters; use clear() to "
                                    "delete every node")
        if filters is None:
            self._collection.delete_many(_ids(node_ids), missing_ok=True)
            return
        self._delete_matching(and_filters(to_memvid_filter(filters), _ids_filter(node_ids)))

    def _delete_matching(self, spec: Mapping[str, Any] | None) -> None:
        ids = self._collection.select_ids(spec)
        if ids:
            self._collection.delete_many(ids, missing_ok=True)

    def clear(self) -> None:
        """Delete every node of this store in one atomic write (other collections of the
        file are kept)."""
        self._collection.clear()

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
        spec = and_filters(to_memvid_filter(filters), _ids_filter(node_ids))
        frames = self._collection.select(spec, as_of=as_of)
        if node_ids is None:
            return [self._node(f) for f in frames]
        by_id = {f.id: f for f in frames}
        return [self._node(by_id[i]) for i in node_ids if i in by_id]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Run a query: ``DEFAULT`` (vector), ``TEXT_SEARCH`` / ``SPARSE`` (BM25),
        ``HYBRID`` (fusion; ``alpha`` weighs vector against BM25) or ``MMR``.

        ``doc_ids`` / ``node_ids`` restrict the candidates; empty lists (what
        ``VectorStoreIndex`` passes for a store that keeps text) mean no restriction.

        Raises:
            InvalidInputError: unsupported mode, a missing query embedding/string, bad
                alpha or mmr_threshold.
            InvalidTypeError: unknown keyword arguments.
        """
        unknown = set(kwargs) - _QUERY_KWARGS
        if unknown:
            raise InvalidTypeError(f"query() got unexpected keyword(s) {sorted(unknown)}; "
                                   f"valid: {sorted(_QUERY_KWARGS)}")
        as_of = kwargs.get("as_of", self.as_of)
        mode = to_query_mode(kwargs.get("mode", query.mode))
        spec = and_filters(to_memvid_filter(query.filters),
                           {metadata_key("ref_doc_id"): {"$in": list(query.doc_ids)}}
                           if query.doc_ids else None,
                           _ids_filter(query.node_ids or None))
        find = {"filter": spec, "as_of": as_of,
                "time_range": kwargs.get("time_range", self.time_range)}
        if kwargs.get("group_by") is not None:
            find["group_by"] = kwargs["group_by"]
        if mode == VectorStoreQueryMode.MMR:
            return self._mmr(query, find, kwargs)
        if mode in (VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.SPARSE):
            if not query.query_str:
                raise InvalidInputError(f"{mode.value} queries need query_str")
            k = query.similarity_top_k
            if mode == VectorStoreQueryMode.SPARSE and query.sparse_top_k:
                k = query.sparse_top_k
            hits = self._collection.find(query.query_str, k=k, mode="lexical", **find)
        elif mode == VectorStoreQueryMode.HYBRID:
            hits = self._hybrid(query, find)
        else:
            if query.query_embedding is None:
                raise InvalidInputError("default (vector) queries need query_embedding")
            hits = self._collection.find(vector=query.query_embedding,
                                         k=query.similarity_top_k, mode="vector", **find)
        return self._result(hits)

    def _hybrid(self, query: VectorStoreQuery, find: dict[str, Any]) -> list[Hit]:
        k = query.hybrid_top_k or query.similarity_top_k
        text, vector = query.query_str or None, query.query_embedding
        if text is None and vector is None:
            raise InvalidInputError("hybrid queries need query_str and/or query_embedding")
        weights = None
        alpha = _unit_interval("alpha (0: BM25 only, 1: vector only)", query.alpha)
        if alpha is not None:
            if alpha == 0.0:
                vector = None
            elif alpha == 1.0:
                text = None
            weights = {"vector": alpha, "lexical": 1.0 - alpha}
        if text is None and vector is None:
            raise InvalidInputError(f"alpha={query.alpha} needs "
                                    f"{'query_str' if alpha == 0 else 'query_embedding'}")
        if text is None or vector is None:
            weights = None
        return self._collection.find(text, vector=vector, k=k, mode="hybrid", weights=weights,
                                     **find)

    def _mmr(self, query: VectorStoreQuery, find: dict[str, Any],
             kwargs: Mapping[str, Any]) -> VectorStoreQueryResult:
        from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings

        if query.query_embedding is None:
            raise InvalidInputError("mmr queries need query_embedding")
        threshold = _unit_interval("mmr_threshold",
                                   kwargs.get("mmr_threshold", query.mmr_threshold))
        k = query.similarity_top_k
        factor = kwargs.get("mmr_prefetch_factor", self.mmr_prefetch_factor)
        fetch_k = kwargs.get("mmr_prefetch_k") or max(k, int(k * factor))
        hits = self._collection.find(vector=query.query_embedding, k=fetch_k, mode="vector",
                                     **find)
        if not hits:
            return self._result([])
        rows = _unit_rows(self._collection.stored_vectors(hits, find["as_of"]))
        sims, order = get_top_k_mmr_embeddings(
            _unit_rows([query.query_embedding])[0], list(rows), similarity_fn=_dot,
            similarity_top_k=k, embedding_ids=list(range(len(hits))), mmr_threshold=threshold)
        result = self._result([hits[i] for i in order])
        result.similarities = [float(s) for s in sims]
        return result

    @staticmethod
    def _result(hits: list[Hit]) -> VectorStoreQueryResult:
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


def _unit_rows(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    """The vectors as rows scaled to unit length (zero rows stay zero), so that a dot
    product is their cosine similarity."""
    rows = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0.0, 1.0, norms)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def _ids(node_ids: Any) -> list[str]:
    if isinstance(node_ids, str) or not isinstance(node_ids, Sequence | set | frozenset):
        raise InvalidTypeError(f"node_ids must be a list of str, not {type(node_ids).__name__}")
    return list(node_ids)


def _ids_filter(node_ids: Any) -> dict[str, Any] | None:
    """The engine filter of "node id in ``node_ids``" (None: no restriction)."""
    if node_ids is None:
        return None
    return {metadata_key(NODE_ID_KEY): {"$in": _ids(node_ids)}}
