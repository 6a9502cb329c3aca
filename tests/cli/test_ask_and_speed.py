"""`mv2 ask`, `mv2 warmup`, `mv2 bench`, and embedding on put/update."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memvid_store import Memory
from memvid_store.cli import ExitCode

from .support import DATA, EMBEDDER, as_json, fails, ok, run


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "agent.mv2"
    ok(run("ingest", path, DATA / "notes.jsonl", DATA / "notes-more.jsonl",
           DATA / "docs" / "travel", "--embedder", EMBEDDER))
    return path


def test_ask_numbers_and_cites_passages(sample: Path) -> None:
    out = as_json(run("ask", sample, "renew my passport", "--json"))
    cites = out["citations"]
    assert [c["n"] for c in cites] == list(range(1, len(cites) + 1)) and len(cites) == 5
    assert cites[0]["id"] == "trip-067"
    first = cites[0]
    assert first["source"] == "notes-more.jsonl" and first["created_at"]
    assert out["context"].startswith(f"[1] (id {first['id']}; notes-more.jsonl; "
                                     f"{first['created_at'][:10]}) ")
    assert "[5] (id " in out["context"]
    text = ok(run("ask", sample, "renew my passport", "-k", "2")).stdout
    assert text.startswith("Question: renew my passport") and "[2] (id " in text
    assert "[3]" not in text


def test_ask_budget_filter_and_time(sample: Path) -> None:
    short = as_json(run("ask", sample, "ferry timetable import", "--max-chars", "150",
                        "--json"))["citations"]
    assert sum(len(c["text"]) for c in short) <= 150
    assert short[-1]["truncated"] or len(short) == 1
    zh = as_json(run("ask", sample, "成都 熊猫", "--filter", '{"lang": "zh"}', "--json"))
    assert zh["citations"] and all("熊猫" in c["text"] or "成都" in c["text"]
                                   for c in zh["citations"][:2])
    early = as_json(run("ask", sample, "launch", "--as-of", "1", "--json"))
    assert early["citations"] == [] and early["context"] == ""
    assert "nothing in the memory" in ok(run("ask", sample, "launch", "--as-of", "1")).stdout


def test_warmup_reports_each_tier(sample: Path) -> None:
    out = as_json(run("warmup", sample, "--json"))
    tiers = {t["tier"]: t for t in out["tiers"]}
    assert set(tiers) == {"time_index", "lex_index", "vec_index"}
    assert all(t["state"] == "loaded" and t["ms"] >= 0 for t in tiers.values())
    lazy = as_json(run("warmup", sample, "--level", "lazy", "--json"))
    assert all(t["ms"] is None and t["state"] != "loaded" for t in lazy["tiers"])
    assert "lex_index" in ok(run("warmup", sample)).stdout


def test_bench_measures_every_mode(sample: Path) -> None:
    out = as_json(run("bench", sample, "--queries", "12", "--json"))
    assert set(out["modes"]) == {"lexical", "vector", "hybrid"}
    for mode in out["modes"].values():
        assert mode["queries"] == 12 and 0 < mode["p50_ms"] <= mode["p99_ms"]
    assert out["open_ms"] > 0 and out["first_query_ms"] > 0 and out["frames"] > 280
    assert "P99_MS" in ok(run("bench", sample, "--queries", "3")).stdout


def test_bench_without_vectors_and_on_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "m.mv2"
    ok(run("ingest", path, DATA / "notes.jsonl", "--embedder", "none"))
    assert set(as_json(run("bench", path, "--queries", "3", "--json"))["modes"]) == {"lexical"}
    ok(run("create", tmp_path / "empty.mv2"))
    fails(run("bench", tmp_path / "empty.mv2"), ExitCode.ERROR, "no frames")


def test_put_and_update_embed_with_the_files_embedder(tmp_path: Path) -> None:
    path = tmp_path / "m.mv2"
    ok(run("ingest", path, DATA / "notes.jsonl", "--embedder", EMBEDDER))
    fid = ok(run("put", path, "the ferry to Ilha Verde leaves at 7")).stdout.strip()
    with Memory.open(path, readonly=True) as mem:
        first = mem.get(fid).embedding
        assert first is not None and len(first) == 64
    ok(run("update", path, fid, "--text", "a completely different sentence about tea"))
    ok(run("update", path, fid, "--tag", "t"))  # no new text: the vector is kept
    with Memory.open(path, readonly=True) as mem:
        versions = mem.history(fid)
        assert versions[1].embedding != first and versions[2].embedding == versions[1].embedding
    bare = ok(run("put", path, "no vector please", "--embedder", "none")).stdout.strip()
    assert as_json(run("get", path, bare, "--json"))["embedding"] is None
    hits = as_json(run("find", path, "completely different tea", "--json"))
    assert hits[0]["id"] == fid and set(hits[0]["ranks"]) == {"lexical", "vector"}


def test_vector_mode_needs_a_vector_or_an_embedder(tmp_path: Path) -> None:
    path = tmp_path / "m.mv2"
    ok(run("ingest", path, DATA / "notes.jsonl", "--embedder", "none"))
    fails(run("find", path, "launch", "--mode", "vector"), ExitCode.ERROR, "needs an embedder")
    fails(run("find", path, "launch", "--embedder", "nonsense"), ExitCode.ERROR,
          "unknown embedder spec")
    hits = json.loads(ok(run("find", path, "launch", "--embedder", "none", "--json")).stdout)
    assert hits and set(hits[0]["ranks"]) == {"lexical"}
