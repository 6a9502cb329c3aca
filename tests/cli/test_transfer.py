"""`mv2 export` / `mv2 import`: lossless history, formats, and broken exports."""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memvid_store import Memory
from memvid_store.cli import ExitCode

from .support import as_json, fails, ok, run

T = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A file whose history has every kind of write: batches, updates, deletes, re-puts."""
    path = tmp_path / "src.mv2"
    with Memory.create(path, dim=3) as mem:
        mem.put_many([
            {"id": "a", "text": "alpha", "embedding": [1, 0, 0.5], "tags": ["x"],
             "metadata": {"n": 1, "nested": {"k": [1, 2]}}, "created_at": T},
            {"id": "a", "text": "alpha twice in one batch", "embedding": [1, 0.25, 0]},
            {"id": "b", "text": "beta 北京", "embedding": [0, 1, 0], "created_at": T},
        ])
        mem.update("b", text="beta updated")
        mem.seal()
        mem.delete("a")
        mem.put("alpha is back", id="a", embedding=[0.1, 0.2, 0.3])
        mem.put("no vector here", id="c")
        mem.delete_many(["b", "c"])
    return path


def snapshot(path: Path) -> dict:
    """Everything the read API says about a file, at every record time it knows."""
    with Memory.open(path, readonly=True) as mem:
        changes = list(mem.changes())
        times = sorted({c.recorded_at for c in changes})
        out = {"changes": [(c.kind, c.id, c.recorded_at) for c in changes]}
        for fid in ("a", "b", "c"):
            out[fid] = [(f.version, f.text, f.metadata, f.tags, f.created_at, f.valid_from,
                         f.valid_to, f.embedding) for f in mem.history(fid)]
        for t in times:
            view = mem.as_of(t)
            out[t] = [(f.id, f.version, f.text) for f in view.timeline()]
    return out


@pytest.mark.parametrize("vectors", ["base64", "list"])
def test_round_trip_keeps_all_history(tmp_path: Path, source: Path, vectors: str) -> None:
    export = tmp_path / "out.jsonl"
    summary = as_json(run("export", source, export, "--vectors", vectors, "--json"))
    assert (summary["puts"], summary["deletes"]) == (6, 3)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert lines[0]["format"] == "mv2-export" and lines[0]["dim"] == 3
    assert lines[-1] == {"op": "end", "changes": 9}
    emb = lines[1]["embedding"]
    if vectors == "base64":
        assert struct.unpack("<3f", base64.b64decode(emb)) == (1.0, 0.0, 0.5)
    else:
        assert emb == [1.0, 0.0, 0.5]
    copy = tmp_path / "copy.mv2"
    ok(run("import", export, copy))
    assert snapshot(copy) == snapshot(source)
    assert as_json(run("verify", copy, "--json"))["ok"] is True


def test_stdout_and_stdin(tmp_path: Path, source: Path) -> None:
    text = ok(run("export", source, "-")).stdout
    assert text.startswith('{"format":"mv2-export"')
    copy = tmp_path / "copy.mv2"
    ok(run("import", "-", copy, input=text))
    assert snapshot(copy) == snapshot(source)


def test_compacted_source(tmp_path: Path, source: Path) -> None:
    with Memory.open(source) as mem:
        mem.compact(retain_after=datetime.now(UTC))
    export = tmp_path / "out.jsonl"
    ok(run("export", source, export))
    copy = tmp_path / "copy.mv2"
    ok(run("import", export, copy))

    def current(path: Path) -> list[dict]:
        # version numbers restart at 1 for frames whose first versions were compacted away
        return [{k: v for k, v in f.items() if k != "version"}
                for f in as_json(run("timeline", path, "--json"))]

    assert current(copy) == current(source)


def broken(tmp_path: Path, source: Path, edit) -> Path:
    export = tmp_path / "out.jsonl"
    ok(run("export", source, export))
    lines = export.read_text().splitlines()
    export.write_text("\n".join(edit(lines)) + "\n")
    return export


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[:-1], "truncated"),
    (lambda lines: lines[:-3], "truncated"),
    (lambda lines: [*lines[:2], '{"op": "put", "id": "z"', *lines[2:]], "line 3: malformed"),
    (lambda lines: [*lines[:2], '{"op": "merge", "id": "z"}', *lines[2:]], "unknown op"),
    (lambda lines: [*lines[:2], '{"op": "delete", "id": "z"}', *lines[2:]],
     "missing field 'recorded_at'"),
    (lambda lines: [*lines[:-1], lines[1], lines[-1]], "goes back in time"),
    (lambda lines: [lines[0], *lines[2:]], "counts 9 changes but 8"),
    (lambda lines: ['{"text": "a note"}', *lines], "not an mv2 export"),
    (lambda lines: [lines[0].replace('"format_version":1', '"format_version":9'), *lines[1:]],
     "newer"),
    (lambda lines: [], "empty"),
])
def test_broken_exports_are_refused(tmp_path: Path, source: Path, edit, message: str) -> None:
    export = broken(tmp_path, source, edit)
    copy = tmp_path / "copy.mv2"
    fails(run("import", export, copy), ExitCode.ERROR, message)
    assert not copy.exists()  # all or nothing


def test_import_never_overwrites(tmp_path: Path, source: Path) -> None:
    export = tmp_path / "out.jsonl"
    ok(run("export", source, export))
    before = source.read_bytes()
    fails(run("import", export, source), ExitCode.ERROR, "already exists")
    assert source.read_bytes() == before
    fails(run("import", tmp_path / "missing.jsonl", tmp_path / "n.mv2"), ExitCode.NOT_FOUND,
          "missing.jsonl")
    fails(run("export", tmp_path / "missing.mv2", export), ExitCode.NOT_FOUND, "no memory file")
