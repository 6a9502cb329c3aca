"""MemvidLlamaEmbedding: an Embedder as a LlamaIndex ``BaseEmbedding`` (imports llama_index).

``memvid_store.embeddings.to_llamaindex(embedder)`` returns one.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr

from memvid_store.embeddings import Embedder

from .._common import in_thread

__all__ = ["MemvidLlamaEmbedding"]


class MemvidLlamaEmbedding(BaseEmbedding):
    """LlamaIndex embedding backed by a memvid embedder; async calls run in a thread.

    Args:
        embedder: the memvid embedder.
        **kwargs: ``BaseEmbedding`` options (``embed_batch_size`` ...); ``model_name``
            defaults to the embedder's name.
    """

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", embedder.name)
        super().__init__(**kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "MemvidLlamaEmbedding"

    @property
    def memvid_embedder(self) -> Embedder:
        """The wrapped memvid embedder."""
        return self._embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embedder.embed_query(query).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embedder.embed_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await in_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await in_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await in_thread(self._get_text_embeddings, texts)
