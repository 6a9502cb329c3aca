"""MemvidEmbeddings: an Embedder as LangChain ``Embeddings`` (imports langchain_core).

``memvid_store.embeddings.to_langchain(embedder)`` returns one.
"""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from memvid_store.embeddings import Embedder

from .._common import in_thread

__all__ = ["MemvidEmbeddings"]


class MemvidEmbeddings(Embeddings):
    """LangChain ``Embeddings`` backed by a memvid embedder; async calls run in a thread.

    Args:
        embedder: the memvid embedder; kept as ``memvid_embedder``.
    """

    def __init__(self, embedder: Embedder) -> None:
        self.memvid_embedder = embedder

    def __repr__(self) -> str:
        return f"MemvidEmbeddings({self.memvid_embedder!r})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector (list of floats) per text."""
        return self.memvid_embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """The query's vector (list of floats)."""
        return self.memvid_embedder.embed_query(text).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """``embed_documents`` in a worker thread."""
        return await in_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """``embed_query`` in a worker thread."""
        return await in_thread(self.embed_query, text)
