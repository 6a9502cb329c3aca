"""Predictive prefetch: reads feed an AccessPatternAnalyzer, a thread warms its guesses.

The analyzer sees every ``find`` and ``get`` of the handle it is attached to; after each,
a daemon thread asks it for the frames most likely needed next and decodes them into the
frame cache, so the read path itself never waits for a prediction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


class Prefetcher:
    def __init__(self, analyzer: Any, prefetch: Callable[[Iterable[str]], int], *,
                 window: int, adaptive: bool) -> None:
        self.analyzer = analyzer
        self._prefetch = prefetch
        self._window = window
        self._adaptive = adaptive
        self._last: set[str] = set()  # ids of the previous prediction
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memvid-prefetch", daemon=True)
        self._thread.start()

    def observe(self, access: Any) -> None:
        """Learn from one read and schedule a prefetch round."""
        self.analyzer.observe(access)
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()
            n = (self.analyzer.prefetch_budget(self._window) if self._adaptive
                 else self._window)
            if n > 0:
                predicted = self.analyzer.predict_next_access(n)
                fresh = [fid for fid in predicted if fid not in self._last]
                self._last = set(predicted)
                try:
                    # only what the previous round did not load; Snapshot.prefetch promotes
                    self._prefetch(fresh)
                except Exception:  # a closed handle or a damaged frame: the read path reports
                    return

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
