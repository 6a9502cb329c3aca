"""``MemvidRetriever``: a time-travel retriever over a :class:`MemvidVectorStore`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from .._common import in_thread
from .vectorstores import MemvidVectorStore

__all__ = ["MemvidRetriever"]


class MemvidRetriever(BaseRetriever):
    """Retrieve documents from a memvid memory, optionally as it was at a past time.

    Args:
        vectorstore: the store to search.
        k: number of documents (``invoke(query, k=...)`` overrides it per call).
        mode: ``"hybrid"`` (BM25 and vectors fused), ``"vector"`` or ``"lexical"``.
        filter: metadata/tags filter in the engine's filter language.
        as_of: search what the memory contained at this record time (aware datetime) or
            commit generation.
        time_range: ``(since, until)`` on the frames' ``created_at``; either end may be None.

    Keyword arguments to ``invoke`` (``k``, ``mode``, ``filter``, ``as_of``, ``time_range``)
    override the fields for one call.
    """

    vectorstore: MemvidVectorStore
    k: int = 4
    mode: str = "hybrid"
    filter: dict[str, Any] | None = None
    as_of: datetime | int | None = None
    time_range: tuple[datetime | None, datetime | None] | None = None

    def _search(self, query: str, **overrides: Any) -> list[Document]:
        options: dict[str, Any] = {
            "k": self.k, "mode": self.mode, "filter": self.filter,
            "as_of": self.as_of, "time_range": self.time_range,
        }
        options.update(overrides)
        if options["as_of"] is None:
            options.pop("as_of")
        if options["time_range"] is None:
            options.pop("time_range")
        k = options.pop("k")
        return self.vectorstore.similarity_search(query, k, **options)

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        return self._search(query, **kwargs)

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       **kwargs: Any) -> list[Document]:
        return await in_thread(self._search, query, **kwargs)
