"""Tiered warmup: what an open loads now, what a background thread loads next.

Tiers beyond the header and TOC (always read at open):

* ``time_index`` — the frame tables (ids, times, payload offsets) of every run, checked;
* ``lex_index`` — the tantivy BM25 index (unpacked to the cache directory once per machine);
* ``vec_index`` — the HNSW graph, or the vectors of the exact scan when there is no graph.

A tier no larger than ``preload_threshold`` bytes (any tier with ``lazy=False``) loads at
open, except ``vec_index``, whose cost is importing numpy and the HNSW library, not its
size; with ``background=True`` a daemon thread loads the others in ``priority_order``.
Until the vector tier is loaded, vector queries take the exact path instead of waiting
for it; lexical queries wait for a BM25 load in progress, as no exact path is cheaper
(see docs/architecture.md). ``close()`` stops and joins the thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import WarmupConfig
from ..errors import DamagedIndexError

LOADABLE = ("time_index", "lex_index", "vec_index")
# tiers whose first load imports numpy and an HNSW library (~100 ms here whatever the size):
# never loaded at open for being small, only with lazy=False or by the background thread
IMPORT_BOUND = ("vec_index",)

COLD, LOADING, LOADED, ABSENT, FAILED = "cold", "loading", "loaded", "absent", "failed"


def tier_sizes(snap: Any, searcher: Any) -> dict[str, int]:
    """Bytes each loadable tier reads from the file (0: nothing to load)."""
    toc = snap.toc
    sizes = {"time_index": sum(s.length for s in toc.segments if s.kind == "run")}
    sizes["lex_index"] = searcher.lex_bytes()
    ann = toc.find("ann")
    if ann is not None and searcher.config.ann_backend != "none":
        from ..index.vector.lists_format import lists_segment  # numpy-free

        # the cluster lists when they answer (vector paths' rule), else the graph
        sizes["vec_index"] = (lists_segment(snap, searcher.config) or ann).length
    else:
        sizes["vec_index"] = toc.counters.get("vectors", 0) * (snap.dim or 0) * 4
    return sizes


class Warmer:
    """Loads tiers of the current snapshot, at open, on request or in the background."""

    def __init__(self, current: Callable[[], tuple[Any, Any]], config: WarmupConfig,
                 record: Callable[[str, float], None] | None = None) -> None:
        self._current = current  # () -> (snapshot, searcher) of the handle, now
        self._record = record  # (tier, seconds) of each tier loaded, for metrics
        self.config = config
        self.state: dict[str, str] = {t: COLD for t in LOADABLE}
        self.seconds: dict[str, float] = {}
        self.errors: dict[str, BaseException] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ planning

    def start(self) -> None:
        """Load what the config loads at open; hand the rest to a background thread."""
        snap, searcher = self._current()
        sizes = tier_sizes(snap, searcher)
        later = []
        for tier in self._order():
            if sizes[tier] == 0:
                self.state[tier] = ABSENT
            elif not self.config.lazy or (sizes[tier] <= self.config.preload_threshold
                                          and tier not in IMPORT_BOUND):
                self.load(tier)
            else:
                later.append(tier)
        if later and self.config.background:
            searcher.defer_vectors = "vec_index" in later
            self._spawn(later)

    def _order(self) -> list[str]:
        order = [t for t in self.config.priority_order if t in LOADABLE]
        return order + [t for t in LOADABLE if t not in order]

    def _spawn(self, tiers: list[str]) -> None:
        def run() -> None:
            for tier in tiers:
                if self._stop.is_set():
                    return
                self.load(tier, quiet=True)

        self._thread = threading.Thread(target=run, name="memvid-warmup", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------- loading

    def load(self, tier: str, *, quiet: bool = False) -> None:
        """Load ``tier`` now (no-op once loaded); errors re-raise unless ``quiet``, except
        a damaged derived index: the search mode that needs it raises when used."""
        with self._lock:
            if self.state[tier] in (LOADED, ABSENT, LOADING):
                return
            self.state[tier] = LOADING
        started = time.perf_counter()
        try:
            snap, searcher = self._current()
            loaded = _LOADERS[tier](snap, searcher)
        except BaseException as exc:
            with self._lock:
                self.state[tier] = FAILED
                self.errors[tier] = exc
            _, searcher = self._current()
            if tier == "vec_index":
                searcher.defer_vectors = False  # let queries load (and report) it themselves
            if not quiet and not isinstance(exc, DamagedIndexError):
                raise
            return
        seconds = time.perf_counter() - started
        with self._lock:
            self.state[tier] = LOADED if loaded else ABSENT
            self.seconds[tier] = seconds
        if loaded and self._record is not None:
            self._record(tier, seconds)

    def warm(self, tiers: list[str], *, wait: bool) -> None:
        """Load ``tiers`` now (``wait``) or in a background thread."""
        self.join()
        if wait:
            for tier in tiers:
                self.load(tier)
        else:
            self._stop.clear()
            self._spawn(tiers)

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if not thread.is_alive():
                self._thread = None

    def close(self) -> None:
        """Stop after the tier being loaded and wait for the thread to end."""
        self._stop.set()
        self.join()

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def _load_time_index(snap: Any, searcher: Any) -> bool:
    for run in snap.runs:
        run.load_all()
    return bool(snap.runs)


def _load_lex_index(snap: Any, searcher: Any) -> bool:
    """Open the BM25 index, then write the positions files it was unpacked without."""
    lex = searcher.lexical_index()
    if lex is not None:
        lex.fill_positions()
    return lex is not None


def _load_vec_index(snap: Any, searcher: Any) -> bool:
    return searcher.load_vectors()


_LOADERS: dict[str, Callable[[Any, Any], bool]] = {
    "time_index": _load_time_index,
    "lex_index": _load_lex_index,
    "vec_index": _load_vec_index,
}
