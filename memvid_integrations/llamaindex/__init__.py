"""LlamaIndex adapters: ``MemvidVectorStore``, ``MemvidRetriever``, ``MemvidChatStore``.

Needs ``pip install memvid-py[llamaindex]``. Importing ``memvid_store`` never imports this,
and importing this package imports ``llama_index`` only when one of its classes is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _dynamic_imports.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
