"""End-to-end tests of the ``mv2`` command line (click's CliRunner)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
from click.testing import CliRunner, Result

from memvid_store import Memory, __version__
from memvid_store.cli import ExitCode, cli

WAL = "1MiB"
SEGMENTS_START = 4096 + (1 << 20)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / "agent.mv2")


@pytest.fixture
def created(runner: CliRunner, path: str) -> str:
    ok(runner.invoke(cli, ["create", path, "--wal-size", WAL]))
    return path


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def fails(result: Result, *fragments: str) -> Result:
    """A clean failure: non-zero exit, the given message, no traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result


def as_json(result: Result) -> object:
    return json.loads(ok(result).stdout)


def put(runner: CliRunner, path: str, *args: str, input: str | None = None) -> str:
    return ok(runner.invoke(cli, ["put", path, *args], input=input)).stdout.strip()


def test_end_to_end(runner: CliRunner, created: str) -> None:
    path = created
    fid = put(runner, path, "the budget meeting moved to friday", "--metadata",
              '{"source": "email", "n": 1}', "--tag", "calendar", "--tag", "work",
              "--created-at", "2024-05-01T09:30:00Z")
    piped = put(runner, path, input="from stdin\n")
    assert len({fid, piped}) == 2

    frame = as_json(runner.invoke(cli, ["get", path, fid, "--json"]))
    assert frame["text"] == "the budget meeting moved to friday"
    assert frame["metadata"] == {"source": "email", "n": 1}
    assert frame["tags"] == ["calendar", "work"]
    assert datetime.fromisoformat(frame["created_at"]) == datetime.fromisoformat(
        "2024-05-01T09:30:00+00:00")
    assert frame["version"] == 1 and frame["valid_to"] is None
    assert as_json(runner.invoke(cli, ["get", path, piped, "--json"]))["text"] == "from stdin"

    assert ok(runner.invoke(cli, ["update", path, fid, "--text", "moved to monday"])
              ).stdout.strip() == "2"
    versions = as_json(runner.invoke(cli, ["history", path, fid, "--json"]))
    assert [(v["version"], v["text"]) for v in versions] == [
        (1, "the budget meeting moved to friday"), (2, "moved to monday")]
    assert versions[0]["valid_to"] == versions[1]["valid_from"]
    assert versions[1]["valid_to"] is None
    assert versions[1]["tags"] == ["calendar", "work"]  # kept by update

    before_update = versions[0]["valid_from"]
    old = as_json(runner.invoke(cli, ["timeline", path, "--as-of", before_update, "--json"]))
    assert [f["text"] for f in old if f["id"] == fid] == ["the budget meeting moved to friday"]
    now = as_json(runner.invoke(cli, ["timeline", path, "--json"]))
    assert [f["text"] for f in now] == ["moved to monday", "from stdin"]
    assert set(now[0]) == {"id", "text", "metadata", "tags", "created_at", "version",
                           "valid_from", "valid_to"}

    assert ok(runner.invoke(cli, ["delete", path, fid])).stdout.strip() == f"deleted {fid}"
    fails(runner.invoke(cli, ["get", path, fid]), "Error:", fid)
    old_get = as_json(runner.invoke(cli, ["get", path, fid, "--as-of", before_update,
                                          "--json"]))
    assert old_get["version"] == 1

    stats = as_json(runner.invoke(cli, ["stats", path, "--json"]))
    assert stats["frames"] == 1 and stats["deleted"] == 1 and stats["versions"] == 4
    assert stats["wal_size"] == 1 << 20

    report = as_json(runner.invoke(cli, ["verify", path, "--json"]))
    assert report["ok"] is True and report["problems"] == []
    assert ok(runner.invoke(cli, ["verify", path])).stdout.startswith("ok")

    assert "compacted" in ok(runner.invoke(cli, ["compact", path])).stdout
    assert [f["text"] for f in as_json(runner.invoke(cli, ["timeline", path, "--json"]))] \
        == ["from stdin"]
    assert len(as_json(runner.invoke(cli, ["history", path, fid, "--json"]))) == 2
    ok(runner.invoke(cli, ["verify", path]))


def test_plain_output_is_readable(runner: CliRunner, created: str) -> None:
    fid = put(runner, created, "line one\nline two", "--tag", "a",
              "--created-at", "2024-01-02T03:04:05+02:00")
    got = ok(runner.invoke(cli, ["get", created, fid])).stdout
    assert f"id:         {fid}" in got
    assert "created_at: 2024-01-02T01:04:05Z" in got
    assert got.rstrip().endswith("line one\nline two")

    lines = ok(runner.invoke(cli, ["timeline", created])).stdout.splitlines()
    assert lines[0].split() == ["CREATED_AT", "ID", "VER", "TAGS", "TEXT"]
    assert lines[1].split() == ["2024-01-02T01:04:05Z", fid, "1", "a", "line", "one",
                                "line", "two"]
    assert lines[0].index("TEXT") == lines[1].index("line one")

    history = ok(runner.invoke(cli, ["history", created, fid])).stdout.splitlines()
    assert history[0].split() == ["VER", "VALID_FROM", "VALID_TO", "TEXT"]
    stats = ok(runner.invoke(cli, ["stats", created])).stdout
    assert "frames:" in stats and "wal_size:      1.0 MiB" in stats


def test_put_text_sources_and_options(runner: CliRunner, created: str) -> None:
    dash = put(runner, created, "-", input="dash text")
    assert as_json(runner.invoke(cli, ["get", created, dash, "--json"]))["text"] == "dash text"

    out = as_json(runner.invoke(cli, ["put", created, "x", "--id", "note-1", "--json",
                                      "--embedding", "[0.5, 1, -2]"]))
    assert out == {"id": "note-1"}
    frame = as_json(runner.invoke(cli, ["get", created, "note-1", "--json"]))
    assert frame["embedding"] == [0.5, 1.0, -2.0]

    assert put(runner, created, "x2", "--id", "note-1") == "note-1"  # new version
    assert as_json(runner.invoke(cli, ["get", created, "note-1", "--json"]))["version"] == 2
    update = as_json(runner.invoke(cli, ["update", created, "note-1", "--metadata", '{"a": [1]}',
                                         "--tag", "t", "--json"]))
    assert update == {"id": "note-1", "version": 3}
    frame = as_json(runner.invoke(cli, ["get", created, "note-1", "--json"]))
    assert (frame["text"], frame["metadata"], frame["tags"]) == ("x2", {"a": [1]}, ["t"])


def test_timeline_filters(runner: CliRunner, created: str) -> None:
    for day in (3, 1, 2):
        put(runner, created, f"day {day}", "--created-at", f"2024-01-0{day}T00:00:00Z")

    def texts(*args: str) -> list[str]:
        frames = as_json(runner.invoke(cli, ["timeline", created, "--json", *args]))
        return [f["text"] for f in frames]

    assert texts() == ["day 1", "day 2", "day 3"]
    assert texts("--reverse") == ["day 3", "day 2", "day 1"]
    assert texts("--limit", "2") == ["day 1", "day 2"]
    assert texts("--since", "2024-01-02T00:00:00Z") == ["day 2", "day 3"]
    assert texts("--until", "2024-01-02T00:00:00+00:00") == ["day 1"]
    assert texts("--as-of", "1") == []  # generation 1: the empty file
    assert ok(runner.invoke(cli, ["timeline", created, "--as-of", "1"])).stdout.strip() \
        == "(no frames)"


def test_history_of_deleted_frame(runner: CliRunner, created: str) -> None:
    fid = put(runner, created, "short-lived")
    ok(runner.invoke(cli, ["delete", created, fid]))
    versions = as_json(runner.invoke(cli, ["history", created, fid, "--json"]))
    assert len(versions) == 1 and versions[0]["valid_to"] is not None


def test_compact_retain_after_drops_history(runner: CliRunner, created: str) -> None:
    fid = put(runner, created, "v1")
    ok(runner.invoke(cli, ["update", created, fid, "--text", "v2"]))
    first = as_json(runner.invoke(cli, ["history", created, fid, "--json"]))[0]["valid_from"]
    cut = as_json(runner.invoke(cli, ["history", created, fid, "--json"]))[1]["valid_from"]
    ok(runner.invoke(cli, ["compact", created, "--retain-after", cut]))
    assert [v["text"] for v in as_json(runner.invoke(cli, ["history", created, fid, "--json"]))
            ] == ["v2"]
    fails(runner.invoke(cli, ["timeline", created, "--as-of", first]),
          "Error:", "compacted away")


def test_verify_reports_damage(runner: CliRunner, created: str) -> None:
    put(runner, created, "some text " * 50)
    with open(created, "r+b") as f:
        f.seek(SEGMENTS_START + 40)
        byte = f.read(1)
        f.seek(SEGMENTS_START + 40)
        f.write(bytes([byte[0] ^ 0xFF]))
    result = runner.invoke(cli, ["verify", created, "--json"])
    assert result.exit_code == ExitCode.DAMAGED, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["problems"]
    plain = runner.invoke(cli, ["verify", created])
    assert plain.exit_code == ExitCode.DAMAGED and "problem(s) found" in plain.stdout
    assert "Traceback" not in plain.output


def test_damaged_headers_are_reported_cleanly(runner: CliRunner, created: str) -> None:
    put(runner, created, "some text " * 50)
    with open(created, "r+b") as f:
        for offset in (20, 2048 + 20):  # inside both header slots
            f.seek(offset)
            f.write(b"\xff\xff")
    report = runner.invoke(cli, ["verify", created, "--json"])
    assert report.exit_code == ExitCode.DAMAGED, report.output
    assert json.loads(report.stdout)["ok"] is False
    for command in (["timeline", created], ["stats", created], ["put", created, "x"]):
        fails(runner.invoke(cli, command), "Error:")


def test_truncated_newest_commit_is_reported_and_readable(runner: CliRunner,
                                                          created: str) -> None:
    put(runner, created, "first")
    put(runner, created, "second")
    with open(created, "r+b") as f:
        f.truncate(os.path.getsize(created) - 50)  # cuts the newest TOC
    report = runner.invoke(cli, ["verify", created, "--json"])
    assert report.exit_code == ExitCode.DAMAGED, report.output
    assert any("TOC" in p for p in json.loads(report.stdout)["problems"])
    frames = as_json(runner.invoke(cli, ["timeline", created, "--json"]))
    assert "first" in [f["text"] for f in frames]


def test_readers_work_while_a_writer_is_open(runner: CliRunner, created: str) -> None:
    with Memory.open(created) as writer:
        writer.put("unsealed")
        frames = as_json(runner.invoke(cli, ["timeline", created, "--json"]))
        assert [f["text"] for f in frames] == ["unsealed"]
        ok(runner.invoke(cli, ["stats", created]))


@pytest.mark.parametrize("args, message", [
    (["stats", "{missing}"], "no memory file"),
    (["get", "{missing}", "x"], "no memory file"),
    (["put", "{missing}", "x"], "no memory file"),
    (["timeline", "{text}"], "not a .mv2"),
    (["verify", "{text}"], "not a .mv2"),
    (["put", "{text}", "x"], "not a .mv2"),
    (["stats", "{dir}"], "directory"),
    (["create", "{path}"], "already exists"),
    (["create", "{new}", "--wal-size", "lots"], "is not a size"),
    (["create", "{new}", "--wal-size", "100KB"], "wal_size must be between"),
    (["create", "{new}", "--dim", "0"], "--dim"),
    (["put", "{path}", "x", "--metadata", "{bad json"], "malformed JSON"),
    (["put", "{path}", "x", "--metadata", "[1, 2]"], "expected a JSON object"),
    (["put", "{path}", "x", "--created-at", "2024-05-01T09:30:00"], "has no timezone"),
    (["put", "{path}", "x", "--created-at", "yesterday"], "not an ISO 8601 time"),
    (["put", "{path}", "x", "--embedding", '{"a": 1}'], "expected a JSON array"),
    (["put", "{path}", "x", "--embedding", "[1, 2, NaN]"], "finite"),
    (["put", "{path}", "x", "--embedding", '[1, "a"]'], "numbers"),
    (["put", "{path}", "x", "--embedding", "[1, 2]"], "dimensions"),
    (["put", "{path}", "x", "--id", ""], "frame id"),
    (["get", "{path}", "nope"], "no frame with id 'nope'"),
    (["history", "{path}", "nope"], "no frame with id 'nope'"),
    (["delete", "{path}", "nope"], "nope"),
    (["update", "{path}", "nope", "--text", "x"], "nope"),
    (["update", "{path}", "nope"], "nothing to update"),
    (["timeline", "{path}", "--since", "2024-01-01"], "has no timezone"),
    (["timeline", "{path}", "--limit", "-1"], "--limit"),
    (["timeline", "{path}", "--as-of", "999"], "generation 999 does not exist"),
    (["timeline", "{path}", "--as-of", "soon"], "not an ISO 8601 time"),
    (["compact", "{path}", "--retain-after", "2024-01-01T00:00"], "has no timezone"),
])
def test_bad_input_gives_a_clear_message(runner: CliRunner, created: str, tmp_path,
                                         args: list[str], message: str) -> None:
    ok(runner.invoke(cli, ["put", created, "x", "--embedding", "[1, 2, 3]"]))
    text = tmp_path / "notes.txt"
    text.write_text("just some notes, not a memory file\n" * 200)
    (tmp_path / "folder").mkdir()
    names = {"missing": str(tmp_path / "missing.mv2"), "text": str(text), "path": created,
             "dir": str(tmp_path / "folder"), "new": str(tmp_path / "new.mv2")}
    for name, value in names.items():
        args = [a.replace(f"{{{name}}}", value) for a in args]
    fails(runner.invoke(cli, args), "Error", message)
    assert not os.path.exists(names["new"])


class TtyInput(io.BytesIO):
    def isatty(self) -> bool:
        return True


def test_put_without_text_on_a_terminal_is_a_usage_error(runner: CliRunner,
                                                          created: str) -> None:
    fails(runner.invoke(cli, ["put", created], input=TtyInput(b"")), "give TEXT")
    fid = put(runner, created, "-", input=TtyInput(b"explicit dash\n"))
    assert as_json(runner.invoke(cli, ["get", created, fid, "--json"]))["text"] == \
        "explicit dash"


def test_version_and_help(runner: CliRunner) -> None:
    assert __version__ in ok(runner.invoke(cli, ["--version"])).stdout
    assert "Usage: mv2" in ok(runner.invoke(cli, ["--help"])).stdout


def test_python_dash_m(tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "memvid_store", "--help"], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("create", "put", "get", "timeline", "history", "stats", "verify", "compact"):
        assert name in run.stdout
    missing = subprocess.run([sys.executable, "-m", "memvid_store", "stats", "nope.mv2"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert missing.returncode == ExitCode.NOT_FOUND
    assert missing.stderr.startswith("Error: no memory file") and "Traceback" not in missing.stderr


def test_read_commands_do_not_import_numpy(runner: CliRunner, created: str) -> None:
    fid = put(runner, created, "hello")
    ok(runner.invoke(cli, ["update", created, fid, "--text", "bye"]))
    calls = [["--help"], ["timeline", created], ["get", created, fid], ["stats", created],
             ["history", created, fid], ["verify", created], ["timeline", created, "--as-of", "2"]]
    code = ("import sys\nfrom memvid_store.cli import cli\n"
            f"for args in {calls!r}:\n"
            "    try:\n        cli(args)\n    except SystemExit as e:\n"
            "        assert not e.code, args\n"
            "assert 'numpy' not in sys.modules, 'numpy imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "hello" in run.stdout and "bye" in run.stdout
