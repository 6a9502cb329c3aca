"""Memory.metrics(): phases of this handle's cold start, caches, alerts."""

from __future__ import annotations

import json

import numpy as np

from memvid_store import Memory
from memvid_store.coldstart.metrics import AlertThresholds, emit_metrics


def _build(path):
    rng = np.random.default_rng(0)
    with Memory.create(path, sync=False) as mem:
        ids = mem.put_many([{"text": f"note {i} about item{i % 9}",
                             "embedding": rng.standard_normal(8).astype("f4")}
                            for i in range(400)])
    return ids


def test_phases_are_recorded(tmp_path):
    ids = _build(tmp_path / "m.mv2")
    with Memory.open(tmp_path / "m.mv2", readonly=True, warmup="aggressive") as mem:
        before = mem.metrics()
        assert before.file_open_ms is not None and before.first_query_ms is None
        assert set(before.index_load_ms) == {"time_index", "lex_index", "vec_index"}
        mem.find("item3", k=3)
        first = mem.metrics().first_query_ms
        mem.find("item4", k=3)
        after = mem.metrics()
        assert after.first_query_ms == first  # only the first query is cold
        assert after.cold_start_ms is not None and after.cold_start_ms >= first
        for fid in ids[:60]:
            mem.get(fid)
        for fid in ids[:60]:
            mem.get(fid)
        m = mem.metrics()
        assert m.cache_lookups >= 120 and 0.4 < m.cache_hit_rate < 0.7
        assert m.rss_mb and m.memory_limit_mb and 0 < m.memory_used_pct < 100


def test_alerts_fire_at_the_thresholds(tmp_path):
    ids = _build(tmp_path / "m.mv2")
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        mem.find("item1", k=1)
        for fid in ids[:200]:
            mem.get(fid)  # all misses: hit rate 0 over >= 100 lookups
        quiet = AlertThresholds(cold_start_warning_ms=1e9, cold_start_critical_ms=1e9,
                                memory_warning_pct=100, memory_critical_pct=100,
                                cache_hit_rate_warning=0)
        assert mem.metrics(quiet).alerts == ()
        loud = AlertThresholds(cold_start_warning_ms=0, cold_start_critical_ms=1e9,
                               memory_warning_pct=0, memory_critical_pct=0)
        alerts = {a.metric: a.level for a in mem.metrics(loud).alerts}
        assert alerts == {"cold_start_ms": "warning", "memory_used_pct": "critical",
                          "cache_hit_rate": "warning"}


def test_emit_metrics_writes_one_emf_line(tmp_path, capsys):
    _build(tmp_path / "m.mv2")
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        mem.find("item2", k=2)
        emit_metrics(mem.metrics())
    line = capsys.readouterr().out.strip()
    doc = json.loads(line)
    assert "\n" not in line and doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Memvid"
    names = {m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert "first_query_ms" in names and doc["first_query_ms"] > 0
    assert all(isinstance(doc[n], float) for n in names)
