"""usearch's compiled extension, loaded without the package's Python layer.

``import usearch`` imports ``urllib.request`` (for its binary downloader) and ``tqdm``:
~50 ms here, a third of a fresh process's first vector answer. Searching a graph viewed in
the mapped file needs only the compiled extension, which needs numkong's kernels loaded
with ``RTLD_GLOBAL`` first (what the package's ``__init__`` does). :func:`compiled` does
these two steps itself and registers the extension as ``usearch.compiled``, where the
package would put it, so a later ``import usearch`` reuses it. When anything differs from
what it expects (another platform or package layout), it returns None and callers use
``usearch.index``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import threading
from types import ModuleType

_loaded: ModuleType | bool | None = None
_lock = threading.Lock()


def compiled() -> ModuleType | None:
    """The ``usearch.compiled`` extension module, or None if it cannot be loaded this way."""
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _load() or False
    return _loaded or None


def _load() -> ModuleType | None:
    module = sys.modules.get("usearch.compiled")
    if module is not None:
        return module
    if sys.platform == "win32":
        return None  # the package registers DLL directories there: let it
    try:
        spec = importlib.util.find_spec("usearch")  # locates the package, runs nothing
        path = _extension_path(spec.submodule_search_locations or [] if spec else [])
        if path is None or not _load_numkong():
            return None
        loader = importlib.machinery.ExtensionFileLoader("usearch.compiled", path)
        ext_spec = importlib.util.spec_from_file_location("usearch.compiled", path,
                                                          loader=loader)
        if ext_spec is None:
            return None
        module = importlib.util.module_from_spec(ext_spec)
        loader.exec_module(module)
    except (ImportError, OSError, AttributeError, ValueError):
        return None
    if not all(hasattr(module, name) for name in ("Index", "index_dense_metadata_from_buffer")):
        return None
    return sys.modules.setdefault("usearch.compiled", module)


def _extension_path(locations: list[str]) -> str | None:
    for folder in locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, "compiled" + suffix)
            if os.path.isfile(path):
                return path
    return None


def _load_numkong() -> bool:
    """Make numkong's symbols global, as usearch's extension resolves them at load."""
    import ctypes

    from .kernels import kernel

    numkong = kernel()
    native = sys.modules.get("numkong._numkong")
    if numkong is None or native is None or not getattr(native, "__file__", None):
        return False
    ctypes.CDLL(native.__file__, mode=ctypes.RTLD_GLOBAL)
    return True
