"""The cold-start machinery of one open handle, in one object.

A ``Memory`` owns one ``HandleColdStart``: the phase recorder its reads and warmup report
to, the decoded-frame cache its snapshots share, the warmer that loads index tiers of
the current snapshot, and the optional access analyzer with its prefetch thread. The
handle delegates to it; nothing here reads or writes the file except through the
snapshot and searcher the handle gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..config import StoreConfig, WarmupConfig
from ..errors import InvalidInputError
from ..validate import check_id
from .cache import ByteLRU, CacheStats
from .phases import MetricsRecorder
from .warmup import LOADABLE, Warmer

if TYPE_CHECKING:
    from ..engine.snapshot import Snapshot
    from .analyzer import AccessPatternAnalyzer
    from .metrics import AlertThresholds, ColdStartMetrics

Observed = tuple[list[str], list[int], Any]
"""One read as an access analyzer sees it: frame ids, their event times, a query vector."""


class HandleColdStart:
    """Phase timings, frame cache, warmup tiers and access analyzer of one handle.

    Args:
        config: the handle's settings (``cache``, ``warmup``).
        current_search: the handle's current ``(snapshot, searcher)``.
    """

    def __init__(self, config: StoreConfig,
                 current_search: Callable[[], tuple[Snapshot, Any]]) -> None:
        self.config = config
        self.recorder = MetricsRecorder()
        self.frames = ByteLRU(config.cache.lru_size, "frames") if config.cache.lru_size else None
        self.warmer = Warmer(current_search, config.warmup, self.recorder.record)
        self.prefetcher: Any = None
        self._current_search = current_search

    def start(self) -> None:
        """Load the tiers the warmup config loads at open; the rest in the background."""
        self.warmer.start()

    def switch(self, snap: Snapshot, *, same_file: bool) -> None:
        """Follow the handle to ``snap``: keep cached frames if gids still mean the same
        (a compacted file numbers its versions anew), and warm its tiers again."""
        self.warmer.close()
        if not same_file and self.frames is not None:
            self.frames.clear()
        snap.frame_cache = self.frames
        self.warmer = Warmer(self._current_search, self.config.warmup, self.recorder.record)

    def close(self) -> None:
        """Stop the warmup and prefetch threads."""
        self.warmer.close()
        self.detach()

    @property
    def tiers(self) -> dict[str, str]:
        """State of each index tier (cold, loading, loaded, absent, failed)."""
        return dict(self.warmer.state)

    def warmup(self, level: str | None, tiers: Iterable[str] | None, *,
               wait: bool) -> dict[str, str]:
        """``Memory.warmup``: load the tiers a level or a list names."""
        if tiers is None:
            preset = WarmupConfig.level(level or "aggressive")
            tiers = LOADABLE if not preset.lazy or preset.background else ()
        chosen = list(tiers)
        unknown = [t for t in chosen if t not in LOADABLE]
        if unknown:
            raise InvalidInputError(f"unknown warmup tier(s) {unknown}; tiers: {LOADABLE}")
        self.warmer.warm(chosen, wait=wait)
        return self.tiers

    def cache_stats(self, searcher: Any) -> list[CacheStats]:
        """The frame cache's counters and, once a query ran, the result cache's."""
        out = [] if self.frames is None else [self.frames.stats()]
        if searcher is not None:
            out.append(searcher.result_stats())
        return out

    def metrics(self, cache_stats: list[CacheStats],
                thresholds: AlertThresholds | None) -> ColdStartMetrics:
        return self.recorder.snapshot(cache_stats, thresholds=thresholds)

    def prefetch(self, snap: Snapshot, ids: Iterable[str]) -> int:
        """``Memory.prefetch``: decode the current versions of ``ids`` into the frame
        cache; returns how many exist."""
        refs = []
        for fid in ids:
            ref = snap.latest(check_id(fid), None)
            if ref is not None and not snap.is_tombstone(ref):
                refs.append(ref)
        snap.prefetch(refs)
        return len(refs)

    # ---------------------------------------------------------- access analyzer

    def attach(self, snap: Snapshot, analyzer: AccessPatternAnalyzer | None,
               prefetch: Callable[[Iterable[str]], int]) -> AccessPatternAnalyzer:
        """Feed reads to ``analyzer`` (a default one if None), whose catalog is the
        current frames of ``snap``, and prefetch its predictions with ``prefetch``."""
        from .analyzer import AccessPatternAnalyzer
        from .prefetcher import Prefetcher

        self.detach()
        analyzer = analyzer or AccessPatternAnalyzer()
        refs = list(snap.timeline(None, None, None, False))  # ids and times, no payloads
        analyzer.set_catalog([r.frame_id() for r in refs],
                             [snap.created_at(r) for r in refs])
        cache = self.config.cache
        self.prefetcher = Prefetcher(analyzer, prefetch, window=cache.prefetch_window,
                                     adaptive=cache.adaptive_prefetch)
        return analyzer

    def detach(self) -> None:
        prefetcher, self.prefetcher = self.prefetcher, None
        if prefetcher is not None:
            prefetcher.close()

    def observe(self, reads: list[Observed]) -> None:
        """Tell the attached analyzer what these reads returned."""
        prefetcher = self.prefetcher
        if prefetcher is not None:
            from .analyzer import Access

            for ids, times, vector in reads:
                prefetcher.observe(Access(tuple(ids), tuple(times), vector))
