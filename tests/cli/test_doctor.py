"""`mv2 doctor` and `mv2 verify`: plain-words diagnosis, repair into a new file, exit codes."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from memvid_store import Memory
from memvid_store.cli import ExitCode
from memvid_store.engine import format as fmt

from .support import as_json, fails, ok, run


@pytest.fixture
def mem(tmp_path: Path) -> Path:
    path = tmp_path / "m.mv2"
    with Memory.create(path, wal_size=1 << 20) as m:
        m.put_many([{"id": f"n{i}", "text": f"note number {i} " * 30} for i in range(20)])
        m.update("n3", text="note three, second version")
        m.seal()
        m.put_many([{"id": f"m{i}", "text": f"more {i} " * 30} for i in range(5)])
    return path


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def first_payload_block(path: Path) -> int:
    with Memory.open(path, readonly=True) as m:
        return m._snap().runs[0].header["blocks"][0][0]


def test_healthy(mem: Path) -> None:
    assert "healthy (25 frames" in ok(run("doctor", mem)).stdout
    report = as_json(run("doctor", mem, "--json"))
    assert report["ok"] is True and report["problems"] == [] and report["repair"] is None


def test_damaged_frame_text_is_explained_and_repaired(tmp_path: Path, mem: Path) -> None:
    flip(mem, first_payload_block(mem) + 300)
    result = run("doctor", mem, "--json")
    fails(result, ExitCode.DAMAGED)
    problem = json.loads(result.stdout)["problems"][0]
    assert problem["problem"].startswith("segment:blocks") and "frame texts" in problem["meaning"]
    plain = run("doctor", mem)
    assert plain.exit_code == ExitCode.DAMAGED and "--repair NEW.mv2" in plain.stdout

    fixed = tmp_path / "fixed.mv2"
    result = run("doctor", mem, "--repair", fixed, "--json")
    fails(result, ExitCode.PARTIAL)  # one damaged version was left out
    repair = json.loads(result.stdout)["repair"]
    assert len(repair["skipped"]) == 1 and "a version of frame 'n" in repair["skipped"][0]
    assert repair["changes"] == 25 and repair["frames"] in (24, 25)
    assert as_json(run("verify", fixed, "--json"))["ok"] is True
    lost = repair["skipped"][0].split("'")[1]
    fails(run("get", mem, lost), ExitCode.DAMAGED, "checksum")  # no traceback either
    readable = {f"n{i}" for i in range(20)} | {f"m{i}" for i in range(5)}
    if lost != "n3":  # n3's first version was damaged: its current one is intact
        readable.discard(lost)
    copied = {f["id"]: f for f in as_json(run("timeline", fixed, "--json"))}
    assert set(copied) == readable
    for fid in sorted(readable):  # text and record times survive the copy
        original = as_json(run("get", mem, fid, "--json"))
        assert (copied[fid]["text"], copied[fid]["valid_from"]) == (original["text"],
                                                                  original["valid_from"])


def test_cut_newest_commit_is_explained_and_repaired(tmp_path: Path, mem: Path) -> None:
    os.truncate(mem, os.path.getsize(mem) - 50)
    result = run("doctor", mem, "--json")
    fails(result, ExitCode.DAMAGED)
    meanings = [p["meaning"] for p in json.loads(result.stdout)["problems"]]
    assert any("newest commit was not written completely" in m for m in meanings)
    fixed = tmp_path / "fixed.mv2"
    ok(run("doctor", mem, "--repair", fixed))
    ids = {f["id"] for f in as_json(run("timeline", fixed, "--json"))}
    assert {f"n{i}" for i in range(20)} <= ids
    assert as_json(run("doctor", fixed, "--json"))["ok"] is True


def test_files_that_cannot_be_opened(tmp_path: Path, mem: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a memory file\n" * 100)
    result = run("doctor", text, "--json")
    fails(result, ExitCode.DAMAGED)
    assert "not a .mv2 memory file" in json.loads(result.stdout)["problems"][0]["meaning"]

    data = bytearray(mem.read_bytes())
    for slot in (0, 1):
        raw = bytes(data[slot * fmt.SLOT_SIZE:(slot + 1) * fmt.SLOT_SIZE])
        try:
            header = fmt.unpack_header(raw, slot)
        except Exception:
            continue
        packed = dataclasses.replace(header, version=fmt.FORMAT_VERSION + 1).pack()
        data[slot * fmt.SLOT_SIZE:slot * fmt.SLOT_SIZE + len(packed)] = packed
    newer = tmp_path / "newer.mv2"
    newer.write_bytes(bytes(data))
    fails(run("doctor", newer), ExitCode.DAMAGED, "newer version of memvid-py", "not damaged")
    for command in (["timeline"], ["get", "n1"], ["find", "note"], ["stats"], ["verify"],
                    ["export", tmp_path / "x.jsonl"], ["put", "-"]):
        fails(run(command[0], newer, *command[1:], input="x"), ExitCode.DAMAGED,
              "newer than this library")
    assert newer.read_bytes() == bytes(data)  # nothing was written to it

    fails(run("doctor", tmp_path / "missing.mv2"), ExitCode.NOT_FOUND, "no memory file")
    for both in (40, fmt.SLOT_SIZE + 40):
        flip(mem, both)
    result = run("doctor", mem)
    fails(result, ExitCode.DAMAGED, "restore the file from a copy")


def test_vectors_the_graph_cannot_reach_are_noticed_and_a_repair_reaches_them(
        tmp_path: Path, monkeypatch) -> None:
    """A graph written without its unreachable nodes linked back in (as before they were):
    the file verifies, with a notice saying what to do; the repaired copy's graph reaches
    every vector."""
    import numpy as np

    from memvid_store.index.vector import graph_build
    from memvid_store.index.vector.graph_relink import unreached_keys
    from memvid_store.index.vector.hnsw_format import unpack_graph

    from ..unit.test_graph_relink import Lists

    def orphaning(payload, metric):  # what a build did before: no relinking
        lists = Lists(payload)
        lists.orphan(lists.slot_of(500))
        return 0, 0

    x = np.random.default_rng(4).standard_normal((2000, 16)).astype("<f4")
    path, fixed = tmp_path / "old.mv2", tmp_path / "new.mv2"
    with monkeypatch.context() as old_build:
        old_build.setattr(graph_build, "relink", orphaning)
        with Memory.create(path, dim=16, index={"ann_threshold": 100, "lexical": False,
                                                "ann_lists": False}) as m:  # a graph
            m.put_many([{"id": f"v{i}", "text": "t", "embedding": x[i]} for i in range(2000)])
            m.build_index()
    with Memory.open(path, readonly=True) as m:
        ref = m._snap().toc.find("ann")
        graph = unpack_graph(m._snap().view.read(ref.offset, ref.length), "usearch")
        lost = unreached_keys(graph.payload).tolist()  # 500 and any the build left
        report = m.verify()
        assert 500 in lost and report.ok and len(report.notices) == 1
        assert report.notices[0].startswith(
            f"{len(lost)} vector(s) of the vector graph cannot be reached")
        assert m.find(vector=x[500], k=1, mode="vector")[0].id != "v500"
    out = ok(run("doctor", path))
    assert "healthy" in out.output and f"note: {len(lost)} vector(s)" in out.output
    assert as_json(run("verify", path, "--json"))["notices"] == report.notices
    ok(run("doctor", path, "--repair", fixed))
    with Memory.open(fixed, readonly=True) as m:
        assert m.verify().notices == []
        assert m.find(vector=x[500], k=1, mode="vector")[0].id == "v500"
