"""LlamaIndex adapters: ``MemvidVectorStore``, ``MemvidRetriever``, ``MemvidChatStore``.

Needs ``pip install memvid-py[llamaindex]``. Importing ``memvid_store`` never imports this,
and importing this package imports ``llama_index`` only when one of its classes is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memvid_store.lazy import lazy_exports

if TYPE_CHECKING:
    from .base import MemvidVectorStore
    from .chat_store import MemvidChatStore
    from .retriever import MemvidRetriever

__all__ = ["MemvidChatStore", "MemvidRetriever", "MemvidVectorStore"]

_dynamic_imports = {
    "MemvidChatStore": "chat_store",
    "MemvidRetriever": "retriever",
    "MemvidVectorStore": "base",
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _dynamic_imports)
