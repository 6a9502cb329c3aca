"""ColdStartMetrics: phase recording, memory sources, alert thresholds, CloudWatch EMF."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace

import pytest

from memvid_store.coldstart.cache import CacheStats
from memvid_store.coldstart.metrics import (
    MB,
    AlertThresholds,
    ColdStartMetrics,
    check_alerts,
    emf_document,
    emit_metrics,
    memory_limit,
    process_start_time,
    rss_bytes,
)
from memvid_store.coldstart.phases import MetricsRecorder
from memvid_store.errors import ConfigError, InvalidInputError

# Units CloudWatch accepts in a MetricDefinition
EMF_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}
HEAVY = ("numpy", "zstandard", "tantivy", "hnswlib", "usearch", "psutil")


def stats(hits: int, misses: int, name: str = "frames") -> CacheStats:
    return CacheStats(name, hits, misses, 0, 0, 0, 0)


# ----------------------------------------------------------------------------- recorder


def test_first_value_of_a_phase_wins():
    rec = MetricsRecorder()
    rec.record("open", 0.002)
    rec.record("open", 0.5)
    assert rec.phases() == {"open": 0.002}


def test_accumulate_adds_to_a_phase():
    rec = MetricsRecorder()
    rec.record("lex_index", 0.25)
    rec.record("lex_index", 0.5, accumulate=True)
    rec.record("custom phase", 1.0, accumulate=True)  # first record of a phase just sets it
    assert rec.phases() == {"lex_index": 0.75, "custom phase": 1.0}


def test_measure_times_the_block_even_when_it_raises():
    rec = MetricsRecorder()
    with rec.measure("toc"):
        time.sleep(0.02)
    with pytest.raises(RuntimeError), rec.measure("vec_index"):
        raise RuntimeError("load failed")
    assert 0.015 <= rec.seconds("toc") < 1.0
    assert rec.seconds("vec_index") is not None


@pytest.mark.parametrize("phase, seconds", [("", 1.0), (None, 1.0), ("open", -1.0),
                                            ("open", float("nan")), ("open", True)])
def test_bad_records_are_refused(phase, seconds):
    with pytest.raises(InvalidInputError):
        MetricsRecorder().record(phase, seconds)


def test_recorder_is_thread_safe():
    rec = MetricsRecorder()
    start = threading.Barrier(8)

    def work(i: int) -> None:
        start.wait()
        for _ in range(1000):
            rec.record("scan", 0.001, accumulate=True)
        rec.record("first_query", float(i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rec.seconds("scan") == pytest.approx(8.0)
    assert rec.seconds("first_query") in {float(i) for i in range(8)}


def test_snapshot_figures():
    rec = MetricsRecorder()
    before = time.time()
    rec.record("open", 0.004)
    rec.record("toc", 0.001)
    rec.record("time_index", 0.010)
    rec.record("lex_index", 0.020)
    rec.record("first_query", 0.030)
    m = rec.snapshot([stats(90, 10), stats(5, 15, "results")])
    assert before <= rec.first_answer_at <= time.time()
    assert m.file_open_ms == pytest.approx(4.0)
    assert m.index_load_ms == pytest.approx({"time_index": 10.0, "lex_index": 20.0})
    assert m.first_query_ms == pytest.approx(30.0)
    assert m.phases_ms["toc"] == pytest.approx(1.0)
    assert m.cache_lookups == 120 and m.cache_hit_rate == pytest.approx(95 / 120)
    # this test process started before the first answer and before the import finished
    assert m.cold_start_ms is not None and m.cold_start_ms > 0
    assert m.runtime_load_ms is not None and m.runtime_load_ms >= 0
    assert m.import_ms is not None and m.import_ms >= 0
    assert m.rss_mb > 1 and m.memory_limit_mb > m.rss_mb
    assert m.memory_used_pct == pytest.approx(100 * m.rss_mb / m.memory_limit_mb)
    assert json.loads(json.dumps(m.to_dict()))["index_load_ms"]["lex_index"] == pytest.approx(20)


def test_snapshot_before_any_query_or_lookup():
    m = MetricsRecorder().snapshot()
    assert m.cold_start_ms is None and m.first_query_ms is None and m.file_open_ms is None
    assert m.cache_hit_rate is None and m.cache_lookups == 0
    assert m.alerts == ()


def test_snapshot_applies_thresholds():
    rec = MetricsRecorder()
    rec.record("first_query", 0.001)
    # this process may be older than the default critical level: only the warning applies
    m = rec.snapshot(thresholds=AlertThresholds(cold_start_warning_ms=0,
                                                cold_start_critical_ms=1e12))
    assert [(a.level, a.metric) for a in m.alerts] == [("warning", "cold_start_ms")]


def test_cold_start_in_a_fresh_process_is_measured_from_process_start():
    code = textwrap.dedent("""
        import json, time
        from memvid_store.coldstart.phases import MetricsRecorder
        time.sleep(0.3)
        rec = MetricsRecorder()
        rec.record("first_query", 0.001)
        m = rec.snapshot()
        print(json.dumps([m.runtime_load_ms, m.cold_start_ms]))
    """)
    runtime, cold = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                              capture_output=True, text=True).stdout)
    if cold is None:
        pytest.skip("process start time is not available on this platform")
    assert 0 <= runtime < cold
    assert 300 <= cold < 10_000  # includes the sleep; clock-tick resolution is 10 ms


# ----------------------------------------------------------------------------- alerts


def level_of(metric: str, **figures) -> str | None:
    found = [a for a in check_alerts(ColdStartMetrics(**figures)) if a.metric == metric]
    assert len(found) <= 1
    return found[0].level if found else None


@pytest.mark.parametrize("ms, level", [(2999.0, None), (3000.0, None), (3000.01, "warning"),
                                       (5000.0, "warning"), (5000.01, "critical")])
def test_cold_start_alerts_fire_above_the_thresholds(ms, level):
    assert level_of("cold_start_ms", cold_start_ms=ms) == level


@pytest.mark.parametrize("pct, level", [(79.0, None), (80.0, None), (80.01, "warning"),
                                        (90.0, "warning"), (90.01, "critical")])
def test_memory_alerts_fire_above_the_thresholds(pct, level):
    assert level_of("memory_used_pct", memory_used_pct=pct, rss_mb=pct,
                    memory_limit_mb=100.0) == level


@pytest.mark.parametrize("rate, lookups, level", [
    (0.70, 100, None), (0.6999, 100, "warning"), (0.10, 99, None), (0.10, 5000, "warning"),
    (0.95, 5000, None)])
def test_cache_alert_fires_below_the_rate_once_there_are_enough_lookups(rate, lookups, level):
    assert level_of("cache_hit_rate", cache_hit_rate=rate, cache_lookups=lookups) == level


def test_alert_carries_value_threshold_and_advice():
    (alert,) = check_alerts(ColdStartMetrics(cold_start_ms=6000.0))
    assert (alert.level, alert.value, alert.threshold) == ("critical", 6000.0, 5000.0)
    assert "6.00 s" in alert.message and "MEMVID_PRELOAD_LEVEL" in alert.message
    (alert,) = check_alerts(ColdStartMetrics(cache_hit_rate=0.5, cache_lookups=200))
    assert "MEMVID_CACHE_SIZE" in alert.message


def test_thresholds_can_be_overridden():
    strict = AlertThresholds(cold_start_warning_ms=100, cold_start_critical_ms=200,
                             cache_hit_rate_warning=0.99, cache_min_lookups=1)
    found = check_alerts(ColdStartMetrics(cold_start_ms=150.0, cache_hit_rate=0.98,
                                          cache_lookups=1), strict)
    assert {(a.metric, a.level) for a in found} == {("cold_start_ms", "warning"),
                                                    ("cache_hit_rate", "warning")}


@pytest.mark.parametrize("kwargs", [{"cold_start_warning_ms": -1},
                                    {"cold_start_warning_ms": 6000},
                                    {"memory_warning_pct": 95},
                                    {"cache_hit_rate_warning": 70},
                                    {"cache_min_lookups": "100"}])
def test_invalid_thresholds_are_refused(kwargs):
    with pytest.raises(ConfigError):
        AlertThresholds(**kwargs)


# ----------------------------------------------------------------------------- process


@pytest.fixture
def fake_proc(tmp_path):
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text("MemTotal:        8388608 kB\nMemFree:  1 kB\n")
    return proc


def test_memory_limit_prefers_the_lambda_variable(tmp_path, fake_proc):
    (tmp_path / "memory.max").write_text("1073741824\n")
    got = memory_limit({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048"}, cgroup_root=tmp_path,
                       proc=fake_proc)
    assert got == (2048 * MB, "lambda")


def test_memory_limit_from_cgroup_v2(tmp_path, fake_proc):
    (tmp_path / "memory.max").write_text("536870912\n")
    assert memory_limit({}, cgroup_root=tmp_path, proc=fake_proc) == (512 * MB, "cgroup2")
    # an unusable Lambda value is skipped
    assert memory_limit({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, cgroup_root=tmp_path,
                        proc=fake_proc) == (512 * MB, "cgroup2")


def test_memory_limit_from_cgroup_v1_when_v2_has_none(tmp_path, fake_proc):
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("268435456\n")
    assert memory_limit({}, cgroup_root=tmp_path, proc=fake_proc) == (256 * MB, "cgroup1")


@pytest.mark.parametrize("value", ["9223372036854771712", "max", "17179869184", "garbage"])
def test_unlimited_cgroups_fall_back_to_physical_memory(tmp_path, fake_proc, value):
    # no limit, or a "limit" above the 8 GiB of physical memory
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(value + "\n")
    assert memory_limit({}, cgroup_root=tmp_path, proc=fake_proc) == (8 << 30, "physical")


def test_memory_limit_of_this_machine_is_positive():
    limit, source = memory_limit()
    assert limit and limit > 0 and source in {"lambda", "cgroup2", "cgroup1", "physical"}


def test_process_start_from_proc_files(fake_proc):
    hz = os.sysconf("SC_CLK_TCK")
    fields = ["S"] + ["0"] * 18 + [str(250 * hz)] + ["0"] * 30  # starttime is field 22
    (fake_proc / "self" / "stat").write_text(f"42 (odd (name) x) {' '.join(fields)}\n")
    (fake_proc / "stat").write_text("cpu 1 2 3\nbtime 1700000000\n")
    assert process_start_time(fake_proc) == pytest.approx(1_700_000_250)
    (fake_proc / "stat").write_text("cpu 1 2 3\n")
    assert process_start_time(fake_proc) is None


def test_rss_from_statm(fake_proc):
    page = os.sysconf("SC_PAGE_SIZE")
    (fake_proc / "self" / "statm").write_text("5000 1234 300 10 0 900 0\n")
    assert rss_bytes(fake_proc) == 1234 * page


# ----------------------------------------------------------------------------- EMF


def sample() -> ColdStartMetrics:
    return with_alerts(ColdStartMetrics(
        runtime_load_ms=20.0, import_ms=2.5, file_open_ms=0.3,
        index_load_ms={"lex_index": 12.0, "vec_index": 40.0}, first_query_ms=55.5,
        cold_start_ms=3500.0, rss_mb=60.0, memory_limit_mb=128.0, memory_limit_source="lambda",
        memory_used_pct=46.875, cache_hit_rate=0.5, cache_lookups=400))


def with_alerts(m: ColdStartMetrics) -> ColdStartMetrics:
    return replace(m, alerts=check_alerts(m))


def test_emit_writes_one_emf_json_line():
    out = io.StringIO()
    emit_metrics(sample(), namespace="Agents/memory", dimensions={"function": "agent-a"},
                 stream=out)
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    doc = json.loads(text)
    meta = doc["_aws"]
    assert set(meta) == {"Timestamp", "CloudWatchMetrics"}
    assert isinstance(meta["Timestamp"], int)
    assert abs(meta["Timestamp"] - time.time() * 1000) < 60_000
    (directive,) = meta["CloudWatchMetrics"]
    assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
    assert directive["Namespace"] == "Agents/memory"
    assert directive["Dimensions"] == [["function"]]
    assert doc["function"] == "agent-a"
    names = [d["Name"] for d in directive["Metrics"]]
    assert len(names) == len(set(names)) <= 100
    for definition in directive["Metrics"]:
        assert set(definition) == {"Name", "Unit"} and definition["Unit"] in EMF_UNITS
        value = doc[definition["Name"]]  # every metric is a member of the root
        assert isinstance(value, int | float) and not isinstance(value, bool)
    units = {d["Name"]: d["Unit"] for d in directive["Metrics"]}
    assert units["cold_start_ms"] == "Milliseconds" and units["rss_mb"] == "Megabytes"
    assert units["memory_used_pct"] == "Percent" and units["cache_hit_pct"] == "Percent"
    assert doc["cache_hit_pct"] == 50.0 and doc["index_load_ms.vec_index"] == 40.0
    assert [(a["metric"], a["level"]) for a in doc["alerts"]] == [
        ("cold_start_ms", "warning"), ("cache_hit_rate", "warning")]


def test_emf_without_dimensions_and_unknown_figures():
    doc = emf_document(ColdStartMetrics(file_open_ms=0.25), timestamp_ms=1234)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert doc["_aws"]["Timestamp"] == 1234
    assert directive["Dimensions"] == [[]]
    assert [d["Name"] for d in directive["Metrics"]] == ["file_open_ms"]
    assert "cold_start_ms" not in doc and "cache_hit_pct" not in doc


def test_emit_defaults_to_stdout(capsys):
    emit_metrics(ColdStartMetrics(first_query_ms=1.0))
    assert json.loads(capsys.readouterr().out)["first_query_ms"] == 1.0


@pytest.mark.parametrize("namespace, dimensions", [
    ("", None), ("bad namespace", None), ("x" * 256, None),
    ("Memvid", {"function": ""}), ("Memvid", {"function": 3}),
    ("Memvid", {f"d{i}": "v" for i in range(31)}), ("Memvid", {"rss_mb": "x"}),
    ("Memvid", {":internal": "x"})])
def test_emf_refuses_what_cloudwatch_would_reject(namespace, dimensions):
    with pytest.raises(InvalidInputError):
        emf_document(sample(), namespace=namespace, dimensions=dimensions)


# ----------------------------------------------------------------------------- imports


def test_metrics_import_no_heavy_module():
    code = textwrap.dedent(f"""
        import io, sys
        from memvid_store.coldstart.metrics import emit_metrics
        from memvid_store.coldstart.phases import MetricsRecorder
        rec = MetricsRecorder()
        with rec.measure("open"):
            pass
        emit_metrics(rec.snapshot(), stream=io.StringIO())
        print(",".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True)
    assert out.stdout.strip() == ""


def test_import_ms_times_the_package_import_itself():
    """IMPORT_STARTED is taken before the package's own imports, so they are counted: the
    measured import is most of what ``-X importtime`` reports for the package."""
    import subprocess
    import sys

    code = ("import memvid_store as m\n"
            "print(round((m.IMPORT_FINISHED - m.IMPORT_STARTED) * 1e6))")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                         text=True, check=True, timeout=60)
    measured_us = int(out.stdout.split()[-1])
    package_us = next(int(line.split("|")[1]) for line in out.stderr.splitlines()
                      if line.rstrip().endswith("| memvid_store"))
    assert measured_us >= 0.3 * package_us, (measured_us, package_us)
