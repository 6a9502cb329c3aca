"""Phase timings of a cold start, recorded by the engine as it opens and answers.

Kept apart from :mod:`.metrics` (the report, alerts and CloudWatch output) so an open
records its phases without importing what only a report needs.
"""

from __future__ import annotations

import math
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
        from .metrics import cold_start_metrics

        with self._lock:
            seconds = dict(self._seconds)
            answered = self._first_answer_at
        return cold_start_metrics(seconds, answered, cache_stats, thresholds=thresholds)

