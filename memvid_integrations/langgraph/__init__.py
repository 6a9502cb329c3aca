"""LangGraph adapters: ``MemvidSaver`` (checkpoints) and ``MemvidStore`` (long-term memory).

Needs ``pip install memvid-py[langgraph]``. Importing ``memvid_store`` never imports this.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkpoint import MemvidSaver
    from .store import MemvidStore

__all__ = ["MemvidSaver", "MemvidStore"]

_dynamic_imports = {"MemvidSaver": "checkpoint", "MemvidStore": "store"}


def __getattr__(name: str) -> Any:
    module = _dynamic_imports.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
