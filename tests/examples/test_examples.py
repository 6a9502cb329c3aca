"""The examples run offline, each in its own process, and print what they promise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run(script: str, tmp_path: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    out = subprocess.run([sys.executable, str(EXAMPLES / script), "--path",
                          str(tmp_path / "example.mv2"), *args],
                         capture_output=True, text=True, timeout=180, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def sections(output: str, marker: str) -> dict[str, str]:
    """Output split at lines starting with ``marker``: {heading line: following text}."""
    parts = re.split(rf"^{re.escape(marker)}", output, flags=re.M)[1:]
    return {p.splitlines()[0].strip(): p for p in parts}


@pytest.fixture(scope="module")
def real_model() -> None:
    from memvid_store.embeddings import EmbedderUnavailableError, get_embedder

    try:
        get_embedder("default")
    except EmbedderUnavailableError as exc:
        pytest.skip(f"embed extra not installed: {exc}")


def sample_count() -> int:
    return sum(1 for path in (EXAMPLES / "data").glob("*.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def test_demo_with_the_default_model(tmp_path, real_model):
    out = run("demo.py", tmp_path)
    assert "embedder all-MiniLM-L6-v2/int8 (384-d) ready" in out
    assert f"ingested {sample_count()} notes" in out
    modes = sections(out, "== ")
    money = modes["'how much money do we have for the project?': lexical vs vector vs hybrid"]
    vector_line = next(line for line in money.splitlines() if line.strip().startswith("vector"))
    assert "Budget" in vector_line  # a paraphrase BM25 cannot match
    chinese = modes["'上海办公室每周有多少工单?': lexical vs vector vs hybrid"]
    assert "上海办公室" in chinese.splitlines()[3]  # hybrid's top hit
    assert "as of before the update: The launch date for the Atlas agent is 6 May 2024" in out
    assert re.search(r"now +: The launch date .* 13 May 2024", out)
    assert re.search(r"'when does the Atlas agent launch\?' as of before: +.*6 May 2024", out)
    assert "embedder recorded in the file: {'name': 'all-MiniLM-L6-v2/int8', 'dim': 384}" in out
    assert "verify: ok" in out


def test_demo_with_the_hash_embedder(tmp_path):
    out = run("demo.py", tmp_path, "--embedder", "hash")
    assert "embedder hash-384 (384-d)" in out and "verify: ok" in out
    assert "'name': 'hash-384'" in out


def test_langchain_rag(tmp_path):
    out = run("langchain_rag.py", tmp_path, "--embedder", "hash")
    asked = sections(out, ">>> ")
    first = asked["When does the Atlas agent launch?"]
    assert "[launch] The Atlas agent launches on 6 May 2024" in first
    assert "[shanghai] 上海办公室" in asked["上海办公室每周有多少工单?"]
    assert re.search(r"similarity_search with filter kind=decision: \[(budget|cold-start)\]", out)
    assert re.search(r"MMR retriever: \['[\w-]+', '[\w-]+'\]", out)
    now = asked["When does the Atlas agent launch? (now)"]
    past = asked["When does the Atlas agent launch? (as of before the update)"]
    assert "moved to 13 May 2024" in now and "6 May 2024" not in now
    assert "launches on 6 May 2024" in past and "13 May" not in past


def test_langgraph_memory(tmp_path):
    out = run("langgraph_memory.py", tmp_path, "--embedder", "hash")
    assert "Noted: my dog is called Biscuit" in out
    assert "resumes from its checkpoint with 6 messages" in out
    assert "thread 'monday' now has 8 messages" in out
    assert "[tuesday] ben: what is the name of my pet?\n  [tuesday] agent: From memory: " \
           "nothing yet" in out  # memories are per user
    assert re.search(r"one file holds both: \d+ checkpoint records and 3 long-term memories",
                     out)


def test_langgraph_memory_recalls_by_meaning(tmp_path, real_model):
    out = run("langgraph_memory.py", tmp_path)
    assert "ana: what food should I avoid?\n  [monday] agent: From memory: I am allergic " \
           "to peanuts" in out
    assert "ana: what is the name of my pet?\n  [tuesday] agent: From memory: my dog is " \
           "called Biscuit" in out
    assert "released?\n  [tuesday] agent: From memory: my team ships the Atlas agent" in out


def test_llamaindex_rag(tmp_path):
    out = run("llamaindex_rag.py", tmp_path, "--embedder", "hash")
    shown = sections(out, "== ")
    assert "[router] Product code ZX-4410" in shown["'ZX-4410' (hybrid, alpha=0.5)"] \
        .splitlines()[1]
    assert "[shanghai]" in shown["'上海办公室' (text search)"]
    assert re.search(r"sources : \['backlog'", out)
    now = shown["'when does the Atlas agent launch?' now"]
    past = shown["'when does the Atlas agent launch?' as of before the update"]
    assert "moved to 13 May 2024" in now
    assert "launches on 6 May 2024" in past


def test_sharded_memory(tmp_path):
    out = run("sharded_memory.py", tmp_path)
    assert f"{sample_count()} notes over 3 shards" in out
    answers = [line for line in out.splitlines() if "| one file" in line]
    assert len(answers) == 2 and all(line.endswith("| same") for line in answers)
    assert "meetings only (one shard read): ['" in out
    assert re.search(r"as of \d+: 'Kickoff .*'; now: 'Kickoff moved to the harbor office.'",
                     out)
