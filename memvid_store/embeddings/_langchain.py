"""MemvidEmbeddings: an Embedder as LangChain ``Embeddings`` (imports langchain_core)."""

from __future__ import annotations

import asyncio

from langchain_core.embeddings import Embeddings

from .base import Embedder


class MemvidEmbeddings(Embeddings):
    """LangChain ``Embeddings`` backed by a memvid embedder; async calls run in a thread."""

    def __init__(self, embedder: Embedder) -> None:
        self.memvid_embedder = embedder

    def __repr__(self) -> str:
        return f"MemvidEmbeddings({self.memvid_embedder!r})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.memvid_embedder.embed_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.memvid_embedder.embed_query(text).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)
