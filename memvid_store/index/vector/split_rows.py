"""One query's row-by-row products (``vecdot``) split over threads when measured faster.

A query's product with a table is numpy's row-by-row SIMD dot product on the calling
thread (:func:`.scoring._products`: one kernel, so a row scores the same in every path).
From :data:`SPLIT_MACS` multiply-adds on, the rows can be cut into one slice per usable
core (at most :data:`MAX_PARTS`), each slice scored by the same kernel on its own thread
(numpy releases the GIL in the loop) into one output array, which gives every row the
same bits as one call: the kernel scores each row alone. On an idle machine two threads
nearly halve a 10k x 384 query's product; when other processes load the cores a helper
thread may wait for a time slice, so which runs is chosen per size of product by
:mod:`.thread_choice`, measured as :mod:`.blas_threads` measures BLAS products (one
thread first, the split once it is measured faster, a trial now and then).

One split runs at a time: a product started while another is split runs on its own
thread, unmeasured. The helper threads belong to the process that made them (a forked
child makes its own).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ...cpus import usable_cpus
from .thread_choice import ALL, ONE, ThreadChoices

# below this many multiply-adds (rows x dim) a product stays on the calling thread: a
# helper's hand-over (about 30-50 us) would cost more than half the product saves
SPLIT_MACS = 1 << 21
MAX_PARTS = 4
ADAPTIVE = True  # False: every product on the calling thread (no measuring)

_lock = threading.Lock()  # held while a product is split (one split at a time)
_state = threading.Lock()  # the choices and the helpers
_choices = ThreadChoices()
_helpers: tuple[int, ThreadPoolExecutor] | None = None  # (the pid that made them, them)


def row_products(vecdot: Any, m: Any, q: Any) -> Any:
    """``vecdot(m, q)``: the product of each row of ``m`` (rows x dim) with ``q`` (dim),
    split over threads when that was measured faster for its size."""
    rows = m.shape[0]
    macs = rows * m.shape[1]
    parts = min(MAX_PARTS, usable_cpus())
    if not ADAPTIVE or macs < SPLIT_MACS or parts < 2 or not _lock.acquire(blocking=False):
        return vecdot(m, q)
    try:
        with _state:
            choice = _choices.of(macs)
            pick = choice.pick()
            helpers = _pool(parts - 1) if pick == ALL else None
        began = time.perf_counter()
        if helpers is None:
            out = vecdot(m, q)
        else:
            out = _split(vecdot, m, q, parts, helpers)
        ran = time.perf_counter() - began
        with _state:
            choice.report(pick, ran, macs)
        return out
    finally:
        _lock.release()


def _split(vecdot: Any, m: Any, q: Any, parts: int, helpers: ThreadPoolExecutor) -> Any:
    """The product in ``parts`` slices of rows, the first on this thread."""
    out = np.empty(m.shape[0], np.result_type(m.dtype, q.dtype))
    cuts = [m.shape[0] * i // parts for i in range(parts + 1)]

    def part(i: int) -> None:
        lo, hi = cuts[i], cuts[i + 1]
        vecdot(m[lo:hi], q, out=out[lo:hi])

    pending = [helpers.submit(part, i) for i in range(1, parts)]
    part(0)
    for done in pending:
        done.result()
    return out


def _pool(count: int) -> ThreadPoolExecutor:
    """This process's helper threads (under ``_state``)."""
    global _helpers
    pid = os.getpid()
    if _helpers is None or _helpers[0] != pid:
        _helpers = (pid, ThreadPoolExecutor(count, thread_name_prefix="memvid-rows"))
    return _helpers[1]


def _forget_after_fork() -> None:
    """A forked child starts with its own locks (a parent's thread may have held them)
    and makes its own helpers."""
    global _lock, _state, _helpers
    _lock, _state, _helpers = threading.Lock(), threading.Lock(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def choice_of(macs: int) -> Any:
    """The choice products of ``macs`` multiply-adds share (for reports and tests)."""
    with _state:
        return _choices.of(macs)


__all__ = ["ALL", "ONE", "choice_of", "row_products"]
