"""Phase timings of a cold start, recorded by the engine as it opens and answers.

Kept apart from :mod:`.metrics` (the report, alerts and CloudWatch output) so an open
records its phases without importing what only a report needs.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from .metrics import AlertThresholds, CacheCounters, ColdStartMetrics


class MetricsRecorder:
    """Thread-safe record of how long each phase took.

    The first value recorded for a phase wins (later opens or queries of the same handle
    are not cold), unless ``accumulate=True`` adds to it. Recording ``first_query`` also
    notes the wall-clock time of the first answer, the end of the cold start.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._first_answer_at: float | None = None

    def record(self, phase: str, seconds: float, *, accumulate: bool = False) -> None:
        """Record that ``phase`` took ``seconds``."""
        if not isinstance(phase, str) or not phase:
            raise InvalidInputError(f"phase must be a non-empty str, got {phase!r}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
                or not math.isfinite(seconds) or seconds < 0:
            raise InvalidInputError(f"seconds must be a finite number >= 0, got {seconds!r}")
        with self._lock:
            if phase not in self._seconds:
                self._seconds[phase] = float(seconds)
                if phase == "first_query":
                    self._first_answer_at = time.time()
            elif accumulate:
                self._seconds[phase] += float(seconds)

    @contextmanager
    def measure(self, phase: str, *, accumulate: bool = False) -> Iterator[None]:
        """Time the ``with`` block as ``phase`` (recorded even when the block raises)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.record(phase, time.perf_counter() - started, accumulate=accumulate)

    def phases(self) -> dict[str, float]:
        """Seconds per recorded phase (a copy)."""
        with self._lock:
            return dict(self._seconds)

    def seconds(self, phase: str) -> float | None:
        with self._lock:
            return self._seconds.get(phase)

    @property
    def first_answer_at(self) -> float | None:
        """``time.time()`` when ``first_query`` was first recorded."""
        with self._lock:
            return self._first_answer_at

    def snapshot(self, cache_stats: Iterable[CacheCounters] = (), *,
                 thresholds: AlertThresholds | None = None) -> ColdStartMetrics:
        """The cold-start figures now, with the alerts they raise.

        Args:
            cache_stats: statistics of the caches to count (objects with ``name``,
                ``hits`` and ``misses``, e.g. ``Memory.cache_stats()``).
            thresholds: alert thresholds (default :class:`AlertThresholds`).
        """
        from .metrics import (
            INDEX_PHASES,
            MB,
            ColdStartMetrics,
            memory_limit,
            process_start_time,
            rss_bytes,
            with_alerts,
        )

        with self._lock:
            seconds = dict(self._seconds)
            answered = self._first_answer_at
        ms = {phase: s * 1e3 for phase, s in seconds.items()}
        started = process_start_time()
        package = sys.modules.get(__name__.partition(".")[0])
        import_began = getattr(package, "_IMPORT_STARTED", None)
        import_ended = getattr(package, "_IMPORT_FINISHED", None)
        hits = misses = 0
        for stats in cache_stats:
            hits += int(stats.hits)
            misses += int(stats.misses)
        rss = rss_bytes()
        limit, source = memory_limit()
        rss_mb = rss / MB if rss is not None else None
        metrics = ColdStartMetrics(
            runtime_load_ms=_elapsed_ms(started, import_began),
            import_ms=_elapsed_ms(import_began, import_ended),
            file_open_ms=ms.get("open"),
            index_load_ms={p: ms[p] for p in ms if p in INDEX_PHASES or p.endswith("_index")},
            first_query_ms=ms.get("first_query"),
            cold_start_ms=_elapsed_ms(started, answered),
            rss_mb=rss_mb,
            memory_limit_mb=limit / MB if limit else None,
            memory_limit_source=source,
            memory_used_pct=100.0 * rss / limit if rss is not None and limit else None,
            cache_hit_rate=hits / (hits + misses) if hits + misses else None,
            cache_lookups=hits + misses,
            phases_ms=ms,
        )
        return with_alerts(metrics, thresholds)


def _elapsed_ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start) * 1e3)
