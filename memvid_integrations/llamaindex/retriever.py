"""``MemvidRetriever``: a LlamaIndex retriever over a ``MemvidVectorStore``, with time travel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import (
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)

from memvid_store.errors import InvalidInputError, InvalidTypeError

from .base import MemvidVectorStore, to_query_mode

__all__ = ["MemvidRetriever"]

_TEXT_ONLY = (VectorStoreQueryMode.TEXT_SEARCH, VectorStoreQueryMode.SPARSE)


class MemvidRetriever(BaseRetriever):
    """Retrieve nodes from a :class:`MemvidVectorStore`, optionally as of a past time.

    Args:
        vector_store: the store to search.
        embed_model: embeds the query for vector, hybrid and MMR modes (defaults to
            ``Settings.embed_model``, looked up only when a query needs it).
        similarity_top_k: number of nodes wanted.
        mode: a ``VectorStoreQueryMode`` or its name (``default``/``vector``,
            ``text_search``/``lexical``, ``hybrid``, ``mmr``, ``sparse``).
        filters: ``MetadataFilters`` applied to every query.
        as_of: search what the memory held at this record time or commit generation.
        time_range: ``(since, until)`` on event time (``created_at``).
        alpha: hybrid weight, 0 (BM25 only) to 1 (vector only).
        mmr_threshold: MMR's relevance/diversity trade-off.
    """

    def __init__(self, vector_store: MemvidVectorStore, embed_model: BaseEmbedding | None = None,
                 *, similarity_top_k: int = 2,
                 mode: VectorStoreQueryMode | str = VectorStoreQueryMode.DEFAULT,
                 filters: MetadataFilters | None = None, as_of: datetime | int | None = None,
                 time_range: tuple[datetime | None, datetime | None] | None = None,
                 alpha: float | None = None, mmr_threshold: float | None = None,
                 callback_manager: CallbackManager | None = None, verbose: bool = False) -> None:
        if not isinstance(vector_store, MemvidVectorStore):
            raise InvalidTypeError("vector_store must be a MemvidVectorStore, "
                            f"not {type(vector_store).__name__}")
        if isinstance(similarity_top_k, bool) or not isinstance(similarity_top_k, int) \
                or similarity_top_k < 1:
            raise InvalidInputError(
                f"similarity_top_k must be an int >= 1, got {similarity_top_k!r}")
        if filters is not None and not isinstance(filters, MetadataFilters):
            raise InvalidTypeError(f"filters must be MetadataFilters, not {type(filters).__name__}")
        self._store = vector_store
        self._embed_model = embed_model
        self._top_k = similarity_top_k
        self._mode = to_query_mode(mode)
        self._filters = filters
        self._as_of = as_of
        self._time_range = time_range
        self._alpha = alpha
        self._mmr_threshold = mmr_threshold
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def embed_model(self) -> BaseEmbedding:
        if self._embed_model is None:
            from llama_index.core import Settings

            self._embed_model = Settings.embed_model
        return self._embed_model

    def _query(self, bundle: QueryBundle, embedding: list[float] | None) -> VectorStoreQuery:
        return VectorStoreQuery(
            query_embedding=embedding, query_str=bundle.query_str,
            similarity_top_k=self._top_k, mode=self._mode, filters=self._filters,
            alpha=self._alpha, mmr_threshold=self._mmr_threshold)

    def _kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self._as_of is not None:
            out["as_of"] = self._as_of
        if self._time_range is not None:
            out["time_range"] = self._time_range
        return out

    def _needs_vector(self) -> bool:
        if self._mode in _TEXT_ONLY:
            return False
        return not (self._mode == VectorStoreQueryMode.HYBRID and self._alpha == 0)

    @staticmethod
    def _nodes(result: VectorStoreQueryResult) -> list[NodeWithScore]:
        scores = result.similarities or [None] * len(result.nodes or [])
        return [NodeWithScore(node=node, score=score)
                for node, score in zip(result.nodes or [], scores, strict=True)]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = query_bundle.embedding
        if embedding is None and self._needs_vector():
            strings = query_bundle.embedding_strs or [query_bundle.query_str]
            embedding = self.embed_model.get_agg_embedding_from_queries(strings)
        result = self._store.query(self._query(query_bundle, embedding), **self._kwargs())
        return self._nodes(result)

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        embedding = query_bundle.embedding
        if embedding is None and self._needs_vector():
            strings = query_bundle.embedding_strs or [query_bundle.query_str]
            embedding = await self.embed_model.aget_agg_embedding_from_queries(strings)
        result = await self._store.aquery(self._query(query_bundle, embedding),
                                          **self._kwargs())
        return self._nodes(result)
