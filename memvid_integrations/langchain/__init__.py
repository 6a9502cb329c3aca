"""LangChain adapters: ``MemvidVectorStore``, ``MemvidRetriever``, ``MemvidChatMessageHistory``.

Needs ``pip install memvid-py[langchain]``. Importing ``memvid_store`` never imports this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memvid_store.lazy import lazy_exports

if TYPE_CHECKING:
    from .chat_history import MemvidChatMessageHistory
    from .retrievers import MemvidRetriever
    from .vectorstores import MemvidVectorStore

__all__ = ["MemvidChatMessageHistory", "MemvidRetriever", "MemvidVectorStore"]

_dynamic_imports = {
    "MemvidChatMessageHistory": "chat_history",
    "MemvidRetriever": "retrievers",
    "MemvidVectorStore": "vectorstores",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _dynamic_imports)
