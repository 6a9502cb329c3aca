"""An attached AccessPatternAnalyzer sees reads and its predictions land in the frame cache."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from memvid_store import Memory
from memvid_store.coldstart.analyzer import AccessPatternAnalyzer


def _wait(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()


def test_reads_train_the_analyzer_and_prefetch_neighbours(tmp_path):
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    with Memory.create(tmp_path / "m.mv2", sync=False) as mem:
        ids = mem.put_many([{"text": f"day {i} notes", "created_at": t0 + timedelta(days=i)}
                            for i in range(300)])
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        seen = []

        class Spy(AccessPatternAnalyzer):
            def observe(self, access):
                seen.append(access.frame_ids)
                super().observe(access)

        analyzer = mem.attach_analyzer(Spy())
        mem.get(ids[150])
        mem.find("day notes", mode="lexical", k=3)
        assert seen[0] == (ids[150],) and len(seen[1]) == 3
        frames = lambda: next(s for s in mem.cache_stats() if s.name == "frames")  # noqa: E731
        # the temporal signal predicts the days around the one read: they get cached
        assert _wait(lambda: frames().items > 4)
        before = frames().hits
        mem.get(ids[151])
        assert frames().hits == before + 1
        assert analyzer.stats() is not None
        mem.detach_analyzer()
    assert not [t for t in threading.enumerate() if t.name == "memvid-prefetch"]


def test_close_stops_the_prefetch_thread(tmp_path):
    with Memory.create(tmp_path / "m.mv2") as mem:
        mem.put("x")
        mem.attach_analyzer()
        mem.get(mem.ids()[0])
    assert not [t for t in threading.enumerate() if t.name == "memvid-prefetch"]
