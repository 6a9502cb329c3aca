"""LangChain adapters: ``MemvidVectorStore``, ``MemvidRetriever``, ``MemvidChatMessageHistory``.

Needs ``pip install memvid-py[langchain]``. Importing ``memvid_store`` never imports this.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _dynamic_imports.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
