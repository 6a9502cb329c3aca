"""``MemvidVectorStore``: a LangChain VectorStore over one collection of a ``.mv2`` memory.

Documents are frames of the store's collection (``"langchain"`` unless ``collection=`` says
otherwise): ``Document.id`` is the frame id, ``page_content`` its text and ``metadata`` its
metadata. Frames of other collections in the same file (chat history, LangGraph items,
LlamaIndex nodes, ...) are never seen, returned or deleted. Adding a document with an
existing id stores a new version of that frame, so ``as_of=`` (a record time or a commit
generation) searches what the collection held then. Filters use the engine's filter language
(see "Filters" in the README); engine errors such as ``FilterError`` and
``DimensionMismatchError`` pass through unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from memvid_store.errors import InvalidInputError, InvalidTypeError
from memvid_store.types import Hit

from .._common import MemoryHolder, MemorySource, in_thread, open_memory

__all__ = ["MemvidVectorStore"]

DEFAULT_COLLECTION = "langchain"

_MODES = {"similarity": "vector", "vector": "vector", "hybrid": "hybrid", "lexical": "lexical"}
_SEARCH_KEYS = ("as_of", "time_range", "weights", "syntax", "group_by", "tie_break")


def _mode(kwargs: dict[str, Any], default: str = "vector") -> str:
    """Pop ``mode`` (or its alias ``search_type``) from kwargs: vector, hybrid or lexical."""
    mode = kwargs.pop("mode", None)
    search_type = kwargs.pop("search_type", None)
    value = mode or search_type or default
    if value not in _MODES:
        raise InvalidInputError(
            f"mode must be one of 'similarity', 'vector', 'hybrid', 'lexical', got {value!r}")
    return _MODES[value]


def _to_document(hit: Hit) -> Document:
    return Document(id=hit.id, page_content=hit.text, metadata=dict(hit.metadata))


def _unit(cosine: float) -> float:
    """A cosine computed in floating point, kept within [-1, 1]."""
    return min(1.0, max(-1.0, cosine))


def _cosine(a: Sequence[float], b: Sequence[float] | None) -> float:
    """Cosine similarity of two vectors (0.0 when either is missing or zero)."""
    if b is None:
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return _unit(dot / norm) if norm else 0.0


class MemvidVectorStore(VectorStore, MemoryHolder):
    """A LangChain vector store backed by one collection of a memvid ``.mv2`` file.

    Args:
        path: the memory file (created if missing; the embedding dimension is learned from
            the first vectors) or an open :class:`memvid_store.Memory` to share.
        embedding: the LangChain embeddings model.
        collection: the collection of the file holding the documents (default
            ``"langchain"``). Reads, searches and deletes never reach other collections.
        **options: ``Memory.create``/``Memory.open`` options (``wal_size``, ``sync``,
            ``lock_timeout``, ``mmap``, ``readonly``; ``index={"distance": "ip"}`` when
            creating).

    Search methods take ``filter`` (engine filter language) and these extras as keyword
    arguments: ``mode`` (``"vector"``, ``"hybrid"`` or ``"lexical"``; ``search_type`` is an
    alias), ``as_of`` (aware datetime or generation int), ``time_range`` (``(since, until)``
    on ``created_at``), ``weights`` (hybrid), ``group_by`` (a metadata key: the best
    document of each of the ``k`` best groups, e.g. ``"source"``, ranked by the engine) and
    ``tie_break``.

    Scores (higher is more similar), as LangChain's ``InMemoryVectorStore`` reports them:

    * ``similarity_search_with_score``: the engine's score. Vector mode: the cosine
      similarity of query and document embeddings (on an ``"ip"`` file the inner product,
      on an ``"l2"`` file minus the squared distance); hybrid mode: the reciprocal rank
      fusion score; lexical mode: the BM25 score.
    * ``similarity_search_with_relevance_scores`` and ``score_threshold``: the cosine
      similarity itself, unscaled, in vector and hybrid modes (a hybrid hit that only BM25
      ranked gets the cosine of its stored embedding; ``"ip"``/``"l2"`` files: the cosine of
      unit-length embeddings). ``score_threshold=0.6`` keeps exactly the documents whose
      cosine is at least 0.6. A document pointing away from the query has a negative
      cosine, which LangChain warns about. Lexical mode: the saturated BM25 score
      ``bm25 / (1 + bm25)`` in ``[0, 1)``, not comparable with a cosine.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> store = MemvidVectorStore(path, DeterministicFakeEmbedding(size=8))  # doctest: +SKIP
        >>> store.add_texts(["the launch moved to friday"], ids=["launch"])  # doctest: +SKIP
        ['launch']
    """

    def __init__(self, path: MemorySource, embedding: Embeddings, *,
                 collection: str = DEFAULT_COLLECTION, **options: Any) -> None:
        self._hold(*open_memory(path, **options), collection)
        self._embedding = embedding

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    # ------------------------------------------------------------------- writing

    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *,
                  ids: list[str | None] | None = None, **kwargs: Any) -> list[str]:
        """Embed and store texts in one atomic write; an existing id gets a new version
        (its past is kept).

        Args:
            texts: the texts.
            metadatas: one JSON-compatible dict per text.
            ids: one id per text; ``None`` entries get generated ids.
            **kwargs: ``tags`` (list of tags for every text) and ``created_at`` (an aware
                datetime, or one per text) are stored on the frames.
        """
        texts = list(texts)
        if not texts:
            return []
        n = len(texts)
        metadatas = list(metadatas) if metadatas is not None else [{}] * n
        ids = list(ids) if ids is not None else [None] * n
        if len(metadatas) != n or len(ids) != n:
            raise InvalidInputError(f"got {n} texts, {len(metadatas)} metadatas and {len(ids)} ids")
        created = kwargs.pop("created_at", None)
        created = created if isinstance(created, list) else [created] * n
        tags = kwargs.pop("tags", None)
        vectors = self._embedding.embed_documents(texts)
        records = []
        for text, meta, fid, emb, at in zip(texts, metadatas, ids, vectors, created, strict=True):
            record: dict[str, Any] = {"text": text, "embedding": emb, "metadata": meta or {}}
            if fid is not None:
                record["id"] = fid
            if at is not None:
                record["created_at"] = at
            if tags is not None:
                record["tags"] = list(tags)
            records.append(record)
        return self._collection.put_many(records)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id in one atomic write (unknown ids are ignored); ``None``
        deletes every document of this store's collection and nothing else.

        Deleted documents stay reachable with ``as_of`` until the file is compacted.
        """
        if ids is None:
            self._collection.clear()
        else:
            self._collection.delete_many(list(ids), missing_ok=True)
        return True

    def get_by_ids(self, ids: Sequence[str], /, *,
                   as_of: datetime | int | None = None) -> list[Document]:
        """Documents with these ids, in the given order; unknown or deleted ids are skipped.

        ``as_of`` (aware datetime or generation) reads them as they were then.
        """
        reader = self._collection if as_of is None else self._collection.as_of(as_of)
        return [Document(id=frame.id, page_content=frame.text, metadata=dict(frame.metadata))
                for frame in reader.get_many(ids) if frame is not None]

    # ------------------------------------------------------------------- search

    def _find(self, query: str | None, vector: list[float] | None, k: int,
              filter: Mapping[str, Any] | None, mode: str, kwargs: dict[str, Any]) -> list[Hit]:
        extra = {key: kwargs.pop(key) for key in _SEARCH_KEYS if key in kwargs}
        if mode == "lexical":
            vector = None
        elif vector is None:
            vector = self._embedding.embed_query(query or "")
        if mode == "vector":
            query = None
        return self._collection.find(query, vector=vector, k=k, mode=mode, filter=filter,
                                     **extra)

    def similarity_search_with_score(self, query: str, k: int = 4,
                                     filter: Mapping[str, Any] | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """Documents most similar to the query with the engine's score (see the class
        docstring; the cosine similarity in vector mode)."""
        hits = self._find(query, None, k, filter, _mode(kwargs), kwargs)
        return [(_to_document(h), h.score) for h in hits]

    def similarity_search(self, query: str, k: int = 4,
                          filter: Mapping[str, Any] | None = None,
                          **kwargs: Any) -> list[Document]:
        """Documents most similar to the query (``mode="hybrid"|"lexical"`` also work)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector_with_score(
            self, embedding: list[float], k: int = 4, filter: Mapping[str, Any] | None = None,
            **kwargs: Any) -> list[tuple[Document, float]]:
        """Documents nearest to an embedding with their similarity."""
        mode = _mode(kwargs)
        text = kwargs.pop("query", None)
        if mode == "lexical":
            raise InvalidInputError("lexical search needs query text, not a vector")
        hits = self._find(text, list(embedding), k, filter, mode, kwargs)
        return [(_to_document(h), h.score) for h in hits]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                    filter: Mapping[str, Any] | None = None,
                                    **kwargs: Any) -> list[Document]:
        """Documents nearest to an embedding."""
        pairs = self.similarity_search_by_vector_with_score(embedding, k, filter, **kwargs)
        return [doc for doc, _ in pairs]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Vector-mode engine score -> cosine similarity (the identity on cosine files, but
        float32 rounding past +-1 is cut back)."""
        if self._collection.index_config.distance == "l2":  # -|a - b|^2 of unit vectors
            return lambda score: _unit(1.0 + score / 2.0)  # is 2 cos - 2
        return _unit

    def _similarity_search_with_relevance_scores(
            self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        filter = kwargs.pop("filter", None)
        mode = _mode(kwargs)
        if mode == "lexical":
            hits = self._find(query, None, k, filter, mode, kwargs)
            return [(_to_document(h), h.score / (1.0 + h.score)) for h in hits]
        as_of = kwargs.get("as_of")
        vector = self._embedding.embed_query(query)
        hits = self._find(query, vector, k, filter, mode, kwargs)
        to_cosine = self._select_relevance_score_fn()
        lexical_only = [h for h in hits if "vector" not in h.scores]  # ranked by BM25 alone
        stored = dict(zip([h.id for h in lexical_only],
                          self._collection.stored_vectors(lexical_only, as_of), strict=True))
        return [(_to_document(hit), to_cosine(hit.scores["vector"]) if hit.id not in stored
                 else _cosine(vector, stored[hit.id])) for hit in hits]

    def max_marginal_relevance_search_by_vector(
            self, embedding: list[float], k: int = 4, fetch_k: int = 20,
            lambda_mult: float = 0.5, filter: Mapping[str, Any] | None = None,
            **kwargs: Any) -> list[Document]:
        """Diverse documents near an embedding: MMR over the ``fetch_k`` nearest."""
        from langchain_core.vectorstores.utils import maximal_marginal_relevance

        as_of = kwargs.get("as_of")
        hits = self._find(None, list(embedding), max(fetch_k, k), filter, "vector", kwargs)
        if not hits:
            return []
        vectors = self._collection.stored_vectors(hits, as_of)
        import numpy as np

        chosen = maximal_marginal_relevance(np.asarray(embedding, dtype=np.float32), vectors,
                                            lambda_mult=lambda_mult, k=k)
        return [_to_document(hits[i]) for i in chosen]

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                      lambda_mult: float = 0.5,
                                      filter: Mapping[str, Any] | None = None,
                                      **kwargs: Any) -> list[Document]:
        """Diverse documents relevant to the query (maximal marginal relevance)."""
        vector = self._embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult,
                                                            filter, **kwargs)

    # ------------------------------------------------------------- construction

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings,
                   metadatas: list[dict] | None = None, *, ids: list[str] | None = None,
                   path: MemorySource | None = None, **kwargs: Any) -> MemvidVectorStore:
        """Create (or open) the store at ``path`` and add the texts; other keyword
        arguments (``collection``, memory options) go to the constructor."""
        if path is None:
            raise InvalidTypeError("MemvidVectorStore.from_texts needs path= (the .mv2 file)")
        store = cls(path, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(cls, documents: list[Document], embedding: Embeddings,
                       **kwargs: Any) -> MemvidVectorStore:
        """Create (or open) the store at ``path=`` and add the documents."""
        if "ids" not in kwargs and any(doc.id for doc in documents):
            kwargs["ids"] = [doc.id for doc in documents]
        return cls.from_texts([d.page_content for d in documents], embedding,
                              [d.metadata for d in documents], **kwargs)

    # ---------------------------------------------------------------- async

    async def aadd_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None,
                         **kwargs: Any) -> list[str]:
        return await in_thread(self.add_texts, list(texts), metadatas, **kwargs)

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        return await in_thread(self.add_documents, documents, **kwargs)

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        return await in_thread(self.delete, ids, **kwargs)

    async def aget_by_ids(self, ids: Sequence[str], /, *,
                          as_of: datetime | int | None = None) -> list[Document]:
        return await in_thread(self.get_by_ids, ids, as_of=as_of)

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return await in_thread(self.similarity_search, query, k, **kwargs)

    async def asimilarity_search_with_score(self, *args: Any,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        return await in_thread(self.similarity_search_with_score, *args, **kwargs)

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                           **kwargs: Any) -> list[Document]:
        return await in_thread(self.similarity_search_by_vector, embedding, k, **kwargs)

    async def asimilarity_search_with_relevance_scores(
            self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, float]]:
        return await in_thread(self.similarity_search_with_relevance_scores, query, k, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5,
                                             **kwargs: Any) -> list[Document]:
        return await in_thread(self.max_marginal_relevance_search, query, k, fetch_k,
                               lambda_mult, **kwargs)

    async def amax_marginal_relevance_search_by_vector(
            self, embedding: list[float], k: int = 4, fetch_k: int = 20,
            lambda_mult: float = 0.5, **kwargs: Any) -> list[Document]:
        return await in_thread(self.max_marginal_relevance_search_by_vector, embedding, k,
                               fetch_k, lambda_mult, **kwargs)

    @classmethod
    async def afrom_texts(cls, texts: list[str], embedding: Embeddings,
                          metadatas: list[dict] | None = None, **kwargs: Any
                          ) -> MemvidVectorStore:
        return await in_thread(cls.from_texts, texts, embedding, metadatas, **kwargs)

    @classmethod
    async def afrom_documents(cls, documents: list[Document], embedding: Embeddings,
                              **kwargs: Any) -> MemvidVectorStore:
        return await in_thread(cls.from_documents, documents, embedding, **kwargs)
