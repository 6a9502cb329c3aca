"""numkong's SIMD kernels for the numpy-free vector paths, and what those paths share.

Importing numpy costs 60-200 ms, more than scanning a small file's vectors or walking a
graph. numkong would import numpy when it is imported itself (only to interoperate with
it): :func:`kernel` imports it with numpy hidden from the importing thread alone.
:func:`numpy_loaded` is what the path chooser (:mod:`.paths`) asks. Scores of the
numpy-free paths are rounded to float32 (:func:`round_f32`), as the numpy paths score, so
both give the same hits, their scores agreeing to float32 rounding.
"""

from __future__ import annotations

import sys
import threading
from array import array
from typing import Any

from ...lazy import loaded

_kernel: Any = None
_kernel_lock = threading.Lock()


class _HideNumpy:
    """A meta-path finder that makes ``import numpy`` fail in one thread only."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if threading.get_ident() == self.thread and name.partition(".")[0] == "numpy":
            raise ImportError("numpy is not needed here")


def kernel() -> Any:
    """The numkong module, imported without numpy if numpy is not loaded yet; None when
    numkong is missing."""
    global _kernel
    if _kernel is None:
        with _kernel_lock:
            if _kernel is None:
                hide = _HideNumpy()
                sys.meta_path.insert(0, hide)
                try:
                    import numkong

                    _kernel = numkong
                except ImportError:
                    _kernel = False
                finally:
                    sys.meta_path.remove(hide)
    return _kernel or None


def numpy_loaded() -> bool:
    """numpy is fully imported (while another thread imports it, numpy-free paths answer)."""
    return loaded("numpy") is not None


def best_first(scored: tuple[float, int]) -> tuple[float, int]:
    """Sort key of (score, gid): score descending, then gid ascending."""
    return -scored[0], scored[1]


def round_f32(values: list[float]) -> list[float]:
    """Values rounded to float32, as the numpy path scores."""
    return array("f", values).tolist()
