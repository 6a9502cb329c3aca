"""LangGraph adapters: ``MemvidSaver`` (checkpoints) and ``MemvidStore`` (long-term memory).

Needs ``pip install memvid-py[langgraph]``. Importing ``memvid_store`` never imports this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memvid_store.lazy import lazy_exports

if TYPE_CHECKING:
    from .checkpoint import MemvidSaver
    from .store import MemvidStore

__all__ = ["MemvidSaver", "MemvidStore"]

_dynamic_imports = {"MemvidSaver": "checkpoint", "MemvidStore": "store"}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _dynamic_imports)
