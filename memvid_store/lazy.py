"""Proxies for heavy optional modules: imported on first attribute access only.

``import memvid_store`` must stay cheap (cold start), so numpy, zstandard and the like
are reached through these proxies. A missing module raises MissingDependencyError that
names the package to install.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .errors import MissingDependencyError


class LazyModule:
    """Stands in for a module until an attribute is first used."""

    def __init__(self, name: str, install: str) -> None:
        self._name = name
        self._install = install
        self._module: ModuleType | None = None

    def load(self) -> ModuleType:
        if self._module is None:
            try:
                self._module = importlib.import_module(self._name)
            except ImportError as exc:
                raise MissingDependencyError(
                    f"{self._name} is required for this operation: pip install {self._install}"
                ) from exc
        return self._module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.load(), attr)


def loaded(name: str) -> ModuleType | None:
    """Module ``name`` if it is fully imported, else None: never one that another thread
    (a background warmup, say) is still importing, whose attributes may not exist yet."""
    module = sys.modules.get(name)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module


zstandard: Any = LazyModule("zstandard", "zstandard")
numpy: Any = LazyModule("numpy", "numpy")


def lazy_exports(package: str, namespace: dict[str, Any], exports: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` importing ``exports[name]`` on first use.

    ``exports`` maps each public name to the submodule (relative to ``package``) defining it;
    a name once imported is cached in ``namespace`` (the package's globals).
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", exports))

    return __getattr__, __dir__
