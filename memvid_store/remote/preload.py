"""The code a first query runs, imported while a remote open waits for its bytes.

A cold open from object storage waits two rounds (about 50 ms at 20 ms to first byte) for
the header, the TOC and the run headers; its first query then imported the search code
(about 60 ms here: the request and search modules, numkong, tantivy and the lexical
reader). :func:`start` imports them in a daemon thread begun once the open's first round
is in, so they fill its waits. A local open waits for no network and imports nothing
ahead. Measured with the thread pool of :mod:`.workers` (docs/architecture.md): first
answers at 10k and 100k frames 5-40 ms sooner, at 1M within the runs' noise.
"""

from __future__ import annotations

import contextlib
import importlib
import threading

QUERY_MODULES = (
    "memvid_store.index.searcher",
    "memvid_store.index.grouping",
    "memvid_store.index.requests",
    "memvid_store.index.coverage",
    "memvid_store.index.vector.paths",
    "memvid_store.index.vector.numpy_free_subset",
    "memvid_store.index.vector.numpy_free_lists",
    "memvid_store.index.lexical.query",
    "memvid_store.index.lexical.delta",
    "memvid_store.index.lexical.files",
    "memvid_store.index.lexical.reader",
)

_started = threading.Event()


def start() -> None:
    """Import :data:`QUERY_MODULES` and numkong (numpy kept out) in a daemon thread, once
    per process."""
    if not _started.is_set():
        _started.set()
        threading.Thread(target=_import_all, name="memvid-preload", daemon=True).start()


def _import_all() -> None:
    """Best effort: a module that fails to import here is imported again, and its error
    reported, by the query that needs it."""
    with contextlib.suppress(Exception):
        for name in QUERY_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        from ..index.vector.kernels import kernel

        kernel()


__all__ = ["QUERY_MODULES", "start"]
