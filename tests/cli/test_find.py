"""`mv2 find`: every mode through the command line, JSON output, time travel, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from memvid_store import Memory
from memvid_store.cli import cli


@pytest.fixture
def path(tmp_path) -> str:
    p = str(tmp_path / "m.mv2")
    with Memory.create(p, dim=2) as m:
        m.put("the budget meeting moved to friday", id="budget", embedding=[1.0, 0.0],
              metadata={"kind": "fact"}, created_at=datetime(2024, 3, 1, tzinfo=UTC))
        m.put("上海办公室的工单", id="zh", embedding=[0.0, 1.0], metadata={"kind": "note"},
              created_at=datetime(2024, 4, 1, tzinfo=UTC))
    return p


def run(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["find", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_modes_and_json(path):
    assert [h["id"] for h in run(path, "budget")] == ["budget"]
    assert [h["id"] for h in run(path, "上海")] == ["zh"]
    hits = run(path, "--vector", "[0.1, 0.9]", "--mode", "vector", "-k", "1")
    assert [h["id"] for h in hits] == ["zh"] and hits[0]["ranks"] == {"vector": 1}
    hybrid = run(path, "budget", "--vector", "[1, 0]")
    assert hybrid[0]["id"] == "budget" and set(hybrid[0]["ranks"]) == {"lexical", "vector"}


def test_filter_window_syntax_and_as_of(path):
    before = datetime.now(UTC).isoformat()
    with Memory.open(path) as m:
        m.update("budget", text="the offsite is in june")
    assert run(path, "budget") == []
    assert [h["id"] for h in run(path, "budget", "--as-of", before)] == ["budget"]
    assert run(path, "--vector", "[1, 0]", "--filter", '{"kind": "note"}')[0]["id"] == "zh"
    assert [h["id"] for h in run(path, "--vector", "[1, 0]", "--since",
                                 "2024-03-15T00:00:00Z")] == ["zh"]
    assert [h["id"] for h in run(path, "offsite AND june", "--syntax", "query")] == ["budget"]


def test_table_output_and_errors(path):
    result = CliRunner().invoke(cli, ["find", path, "budget"])
    assert result.exit_code == 0 and "budget" in result.output and "RANK" in result.output
    bad = CliRunner().invoke(cli, ["find", path, "x", "--filter", '{"k": {"$bogus": 1}}'])
    assert bad.exit_code == 1 and "$bogus" in bad.output and "Traceback" not in bad.output
    dims = CliRunner().invoke(cli, ["find", path, "--vector", "[1, 2, 3]"])
    assert dims.exit_code == 1 and "dimension" in dims.output
    empty = CliRunner().invoke(cli, ["find", path])
    assert empty.exit_code == 2 and "QUERY" in empty.output


def test_group_by(path):
    with Memory.open(path) as m:
        m.put("budget notes, part two", id="budget-2", embedding=[0.9, 0.1],
              metadata={"kind": "fact"})
    assert [h["id"] for h in run(path, "--vector", "[1, 0]", "-k", "3")] == [
        "budget", "budget-2", "zh"]
    grouped = run(path, "--vector", "[1, 0]", "-k", "3", "--group-by", "kind")
    assert [h["id"] for h in grouped] == ["budget", "zh"]
    with Memory.open(path) as m:  # "zh" and "tie" score 0 against [1, 0]: a tie
        m.put("a tie", id="tie", embedding=[0.0, 2.0], metadata={"kind": "other"},
              created_at=datetime(2025, 1, 1, tzinfo=UTC))
    tied = run(path, "--vector", "[1, 0]", "-k", "4")
    assert [h["id"] for h in tied][2:] == ["tie", "zh"]  # by frame id
    by_time = run(path, "--vector", "[1, 0]", "-k", "4", "--tie-break", "created_at")
    assert [h["id"] for h in by_time][2:] == ["zh", "tie"]
    by_kind = run(path, "--vector", "[1, 0]", "-k", "4", "--tie-break", "kind")
    assert [h["id"] for h in by_kind][2:] == ["zh", "tie"]  # "note" < "other"
