"""examples/serverless: the local driver runs the handler cold and warm; the handler's contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serverless"
EMF_KEYS = {"Timestamp", "CloudWatchMetrics"}


def driver(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLE / "local_driver.py"), *args],
                          capture_output=True, text=True, timeout=180, check=True)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    # 1,000 x 384-d vectors (1.5 MB) are above the 1 MiB preload threshold: the vector
    # tier is not loaded at open, as with any real memory file
    path = tmp_path_factory.mktemp("serverless") / "sample.mv2"
    driver("--path", str(path), "--frames", "1000", "--build-only")
    assert path.exists()
    return path


def test_driver_reports_cold_and_warm_invocations(sample):
    res = json.loads(driver("--path", str(sample), "--cold", "2", "--warm", "3",
                            "--mode", "hybrid", "--json").stdout)
    assert (res["cold_runs"], res["warm_runs"]) == (2, 3)
    assert res["hits"][0].startswith("note-002")  # "how much is the budget for Q1?"
    cold, warm = res["cold"], res["warm"]
    assert cold["process_ms"] > cold["init_ms"] > 0 and cold["invoke_ms"] > 0
    assert cold["cold_start_ms"] is None or cold["cold_start_ms"] > cold["invoke_ms"]
    assert warm["invoke_ms"] > 0
    # one EMF line per process (2 cold + the warm one): only the first invocation emits
    assert res["emf_lines"] == 3
    doc = res["emf_example"]
    assert set(doc["_aws"]) == EMF_KEYS
    names = {m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"file_open_ms", "first_query_ms", "rss_mb"} <= names


def test_driver_prints_a_table(sample):
    out = driver("--path", str(sample), "--cold", "1", "--warm", "1", "--mode", "lexical").stdout
    assert "| figure | cold (median of 1) | warm (median of 1) |" in out
    assert "invocation: lexical find" in out


def run_handler(path: Path, code: str) -> str:
    env = {**os.environ, "MEMVID_PATH": str(path)}
    prelude = f"import sys; sys.path.insert(0, {str(EXAMPLE)!r}); import handler\n"
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout


def test_lexical_invocations_do_not_import_numpy(sample):
    out = run_handler(sample, """
        import json
        first = handler.handler({"query": "router factory reset", "mode": "lexical", "k": 3})
        second = handler.handler({"query": "budget", "mode": "lexical"})
        print(json.dumps([first["cold"], second["cold"], len(first["hits"]),
                          "metrics" in second, "numpy" in sys.modules]))
    """)
    emf, result = out.strip().splitlines()
    assert set(json.loads(emf)["_aws"]) == EMF_KEYS
    assert json.loads(result) == [True, False, 3, False, False]


@pytest.mark.parametrize("event", [{}, {"query": "  "}, {"query": "x", "mode": "fuzzy"},
                                   {"query": "x", "k": 0}, {"query": "x", "k": "5"}])
def test_bad_events_raise_value_error(sample, event):
    out = run_handler(sample, f"""
        try:
            handler.handler({event!r})
        except ValueError as exc:
            print("ValueError", exc)
    """)
    assert out.startswith("ValueError")


def test_warmup_pings_do_not_touch_the_memory(sample):
    out = run_handler(sample, """
        import json
        from unittest import mock
        with mock.patch.object(handler, "search", side_effect=AssertionError("touched")):
            pings = [handler.handler(e) for e in ({"source": "serverless-plugin-warmup"},
                                                   {"source": "aws.events"}, {"warmer": True})]
        first = handler.handler({"query": "budget", "mode": "lexical"})
        print(json.dumps([pings, first["cold"]]))
    """)
    pings, cold = json.loads(out.strip().splitlines()[-1])
    assert pings == [{"warmup": True}] * 3 and cold is True  # the first real query is cold
