"""The adapter benchmark runs end to end at a tiny size and reports every section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import adapters, adapters_kit
from bench.adapters_report import fmt, value

SECTION_TITLES = ("### 1. LangChain vector store", "### 2. LangGraph store",
                  "### 3. LangGraph checkpointer", "### 4. Chat history",
                  "### 5. LlamaIndex vector store")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("results")
    work = tmp_path_factory.mktemp("work")
    code = adapters.main(["--n", "200", "--turns", "12", "--calls", "5", "--warmup", "1",
                          "--repeats", "1", "--workdir", str(work), "--out", str(out)])
    assert code == 0
    (json_path,) = out.glob("adapters-*.json")
    return json.loads(json_path.read_text()), out


def test_every_section_ran_without_errors(result):
    res, _ = result
    assert list(res["sections"]) == list(adapters.SECTIONS)
    for name, sec in res["sections"].items():
        assert sec["status"] == "ok", (name, sec["status"])
        errors = {step: data["error"] for step, data in sec["steps"].items() if "error" in data}
        assert not errors, (name, errors)


def test_report_has_every_section_and_target(result):
    res, out = result
    (md_path,) = out.glob("adapters-*.md")
    report = md_path.read_text()
    for title in SECTION_TITLES:
        assert title in report
    assert "### Targets" in report
    assert len(res["targets"]) == 4
    assert all(t["value"] is not None for t in res["targets"])
    assert "## Adapter benchmark" in (out / "latest.md").read_text()


def test_answers_have_the_expected_sizes(result):
    res, _ = result
    secs = res["sections"]
    assert value(secs["chat"], "read_langchain", "memvid", "result_size") == 20
    assert value(secs["chat"], "read_llamaindex", "memvid", "result_size") == 20
    for peer in ("memvid", "reference", "engine"):
        assert value(secs["langchain"], "search", peer, "result_size") == 4
        assert value(secs["llamaindex"], "query", peer, "result_size") == 4
    assert value(secs["langgraph"], "list_namespaces", "memvid", "result_size") == 100
    assert value(secs["saver"], "turns", "late_turn") == 12


def test_hash_vectors_are_deterministic_unit_rows():
    a = adapters_kit.hash_vectors(["alpha", "beta", "alpha"])
    assert a.shape == (3, adapters_kit.DIM)
    assert (a[0] == a[2]).all() and not (a[0] == a[1]).all()
    assert abs(float((a * a).sum(axis=1).max()) - 1.0) < 1e-5


def test_missing_figures_say_why():
    assert value(None, "build") == "not run"
    assert value({"status": "timeout after 5 s", "steps": {}}, "build") == "timeout"
    assert value({"status": "ok", "steps": {"build": {"error": "x"}}}, "build", "a") == "error"
    assert fmt(None) == "n/a" and fmt(3) == "3" and fmt(1234.5) == "1,234"
