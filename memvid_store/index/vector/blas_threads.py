"""OpenBLAS's thread count around small matrix products, chosen by measurement.

These are the products of a batch of queries: one query's products do not call BLAS
(``scoring._products``).

OpenBLAS splits a product over all its threads from about 0.5 M multiply-adds on. On an
idle machine two threads halve a 10k x 384 query's product, but when other processes
load the cores a worker thread waits for a time slice and the product takes 10-100 times
longer (measured on 2 shared cores: 24 ms instead of 1 ms). :func:`bounded` wraps
products of ``UNSPLIT_MACS`` to ``THREAD_BOUND_MACS`` multiply-adds: each runs on one
thread or on all of them as :mod:`.thread_choice` decides from the times measured (one
thread first; all of them once measured faster), and the previous count is set back
when the last one-thread product in the process ends.

The count is OpenBLAS's process-wide setting: while a one-thread product runs, a product
another thread of the process starts runs on one thread too (and is not measured);
nothing else changes, and a count of 1 set by the user (``OPENBLAS_NUM_THREADS=1``) is
left alone. The library is reached through ctypes (numpy's bundled OpenBLAS, or one
mapped into the process on Linux); with another BLAS (MKL, Accelerate) or none found,
:func:`bounded` does nothing.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from .thread_choice import ONE, ThreadChoice, ThreadChoices

# Products below this many multiply-adds (queries x rows x dim) run on one thread: up to
# a 100k x 384 single query they take under ~8 ms on one core, and a loaded machine's
# thread stalls cost more than the second thread gains (bench/exact_path.py).
THREAD_BOUND_MACS = 1 << 25
# Products below this many run on one OpenBLAS thread whatever its setting: measured,
# a 384-d product of one query and 1,000 rows or of 16 and 80 takes the same time on
# one thread and on two, of one query and 1,400 rows (537,600) twice as long on one.
# They are left alone, skipping three calls into the library per query.
UNSPLIT_MACS = 1 << 19

_SUFFIXES = ("64_", "_64_", "")
_PREFIXES = ("scipy_openblas_", "openblas_")


class OpenBlasThreads:
    """``get()`` / ``set(n)`` of an OpenBLAS library's thread count."""

    def __init__(self, get: Any, set: Any) -> None:
        self.get, self.set = get, set


_lib: OpenBlasThreads | bool | None = False  # False: not looked for yet
_lib_lock = threading.Lock()
_state_lock = threading.Lock()
_active = 0  # one-thread products running now
_saved = 0  # the thread count to set back when the last one ends
_running = 0  # bounded products running now (either choice)
_started = 0  # bounded products started so far (a product alone saw no other start)
_choices = ThreadChoices()
ADAPTIVE = True  # False: every bounded product runs on one thread (no measuring)


def openblas() -> OpenBlasThreads | None:
    """The thread-count functions of the OpenBLAS numpy uses; None when not found."""
    global _lib
    if _lib is False:
        with _lib_lock:
            if _lib is False:
                _lib = _find()
    return _lib  # type: ignore[return-value]


def _find() -> OpenBlasThreads | None:
    for path in _candidates():
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    put.restype, put.argtypes = None, [ctypes.c_int]
                    return OpenBlasThreads(get, put)
    return None


def _candidates() -> list[Path]:
    """numpy's bundled OpenBLAS first, then any OpenBLAS mapped into the process."""
    import numpy

    root = Path(numpy.__file__).resolve().parent
    found = sorted((root.parent / "numpy.libs").glob("*openblas*"))
    found += sorted((root / ".dylibs").glob("*openblas*"))
    if sys.platform.startswith("linux"):
        try:
            maps = Path("/proc/self/maps").read_text().splitlines()
        except OSError:
            maps = []
        mapped = {line.split()[-1] for line in maps if "openblas" in line.lower()}
        found += sorted(Path(p) for p in mapped if p.startswith("/"))
    return found


def bounded(macs: int) -> AbstractContextManager[None]:
    """A context for a product of ``macs`` multiply-adds: between ``UNSPLIT_MACS`` (which
    never split) and ``THREAD_BOUND_MACS`` it runs on the thread count measured faster
    for its size (one thread until all of them are), and the previous count is set back
    afterwards."""
    lib = openblas() if UNSPLIT_MACS <= macs < THREAD_BOUND_MACS else None
    return _UNCHANGED if lib is None else _measured(lib, macs)


_UNCHANGED = nullcontext()


def choice_of(macs: int) -> ThreadChoice:
    """The thread-count choice products of ``macs`` multiply-adds share (for reports)."""
    with _state_lock:
        return _choices.of(macs)


@contextmanager
def _measured(lib: OpenBlasThreads, macs: int) -> Iterator[None]:
    global _running, _started
    with _state_lock:
        choice = _choices.of(macs)
        pick = choice.pick() if ADAPTIVE and (_saved if _active else lib.get()) > 1 else ONE
        if pick == ONE:
            _enter_one_thread(lib)
        alone = _running == 0
        _running += 1
        _started += 1
        mine = _started
    ran, began = None, time.perf_counter()
    try:
        yield
        ran = time.perf_counter() - began  # not reached when the product raised
    finally:
        with _state_lock:
            _running -= 1
            if pick == ONE:
                _leave_one_thread(lib)
            if ran is not None and alone and _started == mine and ADAPTIVE:
                choice.report(pick, ran, macs)


def _enter_one_thread(lib: OpenBlasThreads) -> None:
    """Set one thread (under ``_state_lock``), remembering the count to set back."""
    global _active, _saved
    if _active == 0:
        _saved = lib.get()
        if _saved > 1:
            lib.set(1)
    _active += 1


def _leave_one_thread(lib: OpenBlasThreads) -> None:
    """Set the remembered count back once no one-thread product runs (under the lock)."""
    global _active
    _active -= 1
    if _active == 0 and _saved > 1:
        lib.set(_saved)
