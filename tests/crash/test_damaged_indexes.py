"""A damaged derived index costs one search path, never the process or the file."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from memvid_store import IndexConfig, Memory

from .conftest import parse_layout

PROC = Path(__file__).with_name("damaged_graph_proc.py")


def exact_hits(path: Path) -> list[list[str]]:
    """Top 5 ids by cosine for the process's queries, by brute force."""
    import numpy as np

    from .damaged_graph_proc import queries

    with Memory.open(path, readonly=True) as mem:
        frames = mem.select()
        ids = [f.id for f in frames]
        mat = np.array([f.embedding for f in frames], dtype=np.float64)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    out = []
    for q in queries(random.Random(3)):
        scores = mat @ (np.array(q) / np.linalg.norm(q))
        out.append([ids[i] for i in np.argsort(-scores, kind="stable")[:5]])
    return out


@pytest.mark.parametrize("backend", ["hnswlib", "usearch"])
def test_a_flipped_graph_byte_never_reaches_the_native_library(tmp_path, backend):
    pytest.importorskip(backend)
    path = tmp_path / "m.mv2"
    rng = random.Random(1)
    with Memory.create(path, dim=8, index=IndexConfig(ann_threshold=200, ann_backend=backend)
                       ) as mem:
        mem.put_many([{"text": f"n{i}", "id": f"n{i}",
                       "embedding": [rng.uniform(-1, 1) for _ in range(8)]} for i in range(600)])
    expected = exact_hits(path)
    data = bytearray(path.read_bytes())
    (graph,) = parse_layout(bytes(data)).segments("ann")
    for offset in (graph.offset, graph.offset + graph.length // 2, graph.offset + graph.length - 1):
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        path.write_bytes(damaged)
        run = subprocess.run([sys.executable, str(PROC), str(path)], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        report = json.loads(run.stdout)
        assert report["hits"] == expected  # the exact scan answers
        assert any("mv2 doctor FILE --repair" in w for w in report["warnings"])
    path.write_bytes(data)


def _lex_file(path: Path) -> list[tuple[str, int]]:
    """(region, offset) of a byte in the BM25 manifest and in one of its tantivy files."""
    from memvid_store.index.lexical.manifest import LexManifest

    data = path.read_bytes()
    (manifest_ref,) = parse_layout(data).segments("lex")
    manifest = LexManifest.from_json(
        data[manifest_ref.offset : manifest_ref.offset + manifest_ref.length])
    name, (offset, length, _) = max(manifest.files.items(), key=lambda f: f[1][1])
    return [("manifest", manifest_ref.offset + manifest_ref.length // 2),
            (name, offset + length // 2)]


@pytest.mark.parametrize("target", [0, 1], ids=["manifest", "tantivy file"])
def test_a_damaged_full_text_index_costs_text_search_only(tmp_path, monkeypatch, target):
    from click.testing import CliRunner

    from memvid_store import DamagedIndexError
    from memvid_store.cli import cli
    from memvid_store.index.damage import DamagedIndexWarning

    monkeypatch.setenv("MEMVID_CACHE_DIR", str(tmp_path / "cache"))  # nothing unpacked yet
    path = tmp_path / "m.mv2"
    with Memory.create(path, dim=4) as mem:
        mem.put_many([{"text": f"harbor note {i}", "id": f"n{i}",
                       "embedding": [1.0, float(i), 0.0, 1.0]} for i in range(300)])
    _, offset = _lex_file(path)[target]
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(data)
    with Memory.open(path, readonly=True) as mem:  # opens: the frames are intact
        assert mem.get("n5").text == "harbor note 5"
        assert len(mem.timeline()) == 300
        assert mem.find(vector=[1, 5, 0, 1], k=1, mode="vector")[0].id == "n5"
        assert mem.count({"tags": []}) == 300
        with pytest.raises(DamagedIndexError, match="mv2 doctor FILE --repair"):
            mem.find("harbor", k=3, mode="lexical")
    # a writer (on another machine: nothing unpacked) goes on: its frames are committed,
    # the damaged index is left as it is
    shutil.rmtree(tmp_path / "cache")
    with pytest.warns(DamagedIndexWarning, match="writes go on"), Memory.open(path) as mem:
        mem.put_many([{"text": f"harbor later {i}", "id": f"n{i}",
                       "embedding": [1.0, float(i), 0.0, 1.0]} for i in range(300, 360)])
        mem.seal()
    with Memory.open(path, readonly=True) as mem:
        assert len(mem.timeline()) == 360 and mem.get("n333").text == "harbor later 333"
        assert mem.count({"tags": []}) == 360
        with pytest.raises(DamagedIndexError, match="mv2 doctor FILE --repair"):
            mem.find("harbor", k=3, mode="lexical")
    fixed = tmp_path / "fixed.mv2"
    repaired = CliRunner().invoke(cli, ["doctor", str(path), "--repair", str(fixed)])
    assert repaired.exit_code == 0, repaired.output
    with Memory.open(fixed, readonly=True) as mem:
        assert mem.find("harbor note 7", k=1, mode="lexical")[0].id == "n7"
        assert mem.find("harbor later 333", k=1, mode="lexical")[0].id == "n333"


@pytest.mark.parametrize("part", ["tkey", "trows", "nval"])
def test_a_damaged_filter_index_costs_filtered_reads_only(tmp_path, part):
    from memvid_store import DamagedIndexError
    from memvid_store.engine.runs import RunReader

    path = tmp_path / "m.mv2"
    with Memory.create(path, dim=4) as mem:
        mem.put_many([{"text": f"note {i}", "id": f"n{i}", "metadata": {"g": i % 7, "x": i},
                       "embedding": [1.0, float(i), 0.0, 1.0]} for i in range(200)])
    data = bytearray(path.read_bytes())
    with Memory.open(path, readonly=True) as mem:
        (run,) = mem._snap().runs
        start, length, _ = RunReader._locate(run, part)
    data[start + length // 2] ^= 0xFF
    path.write_bytes(data)
    with Memory.open(path, readonly=True) as mem:
        assert mem.get("n5").text == "note 5"
        assert len(mem.timeline()) == 200
        assert mem.find(vector=[1, 5, 0, 1], k=1, mode="vector")[0].id == "n5"
        assert mem.find("note", k=1, mode="lexical")
        with pytest.raises(DamagedIndexError, match="mv2 doctor FILE --repair"):
            mem.select({"x": 5} if part != "nval" else {"x": {"$gt": 190}})


def test_a_scan_past_damaged_postings_checks_the_records(tmp_path, monkeypatch):
    """A listing of a common condition reads in order; past a few records it asks the
    postings instead, and when they are damaged the records decide, as before."""
    from memvid_store.engine.runs import RunReader
    from memvid_store.index import listing

    monkeypatch.setattr(listing, "SCAN_DECODES", 4)
    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        mem.put_many([{"text": f"note {i}", "id": f"n{i}", "metadata": {"g": i % 2}}
                      for i in range(400)])
    with Memory.open(path, readonly=True) as mem:
        expected = [f.id for f in mem.select({"g": 0})]
        (run,) = mem._snap().runs
        start, length, _ = RunReader._locate(run, "trows")
    assert len(expected) == 200
    data = bytearray(path.read_bytes())
    data[start + length // 2] ^= 0xFF
    path.write_bytes(data)
    with Memory.open(path, readonly=True) as mem:
        assert [f.id for f in mem.select({"g": 0})] == expected


def test_a_damaged_newest_commit_is_never_written_over(tmp_path):
    """When the WAL no longer holds the damaged commit's writes, the file reads as of the
    commit before (readers are warned) and a writer is refused, so the damaged commit's
    bytes stay for a repair. (When the WAL still holds them, writing is safe:
    tests/unit/test_memory.py.)"""
    from memvid_store import CorruptFileError, DamagedCommitWarning

    path = tmp_path / "m.mv2"
    writer = (f"import os; from memvid_store import Memory\n"
              f"m = Memory.create({str(path)!r})\n"
              "m.put('first', id='a'); m.seal()\n"
              "m.put('second', id='b'); m.seal()\n"  # the WAL starts over after this commit
              "m.put('third', id='c')\n"  # overwrites the start of the WAL
              "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", writer], check=True, timeout=60)
    data = bytearray(path.read_bytes())
    _gen, toc_off, toc_len = parse_layout(bytes(data)).tocs[0]
    data[toc_off + toc_len // 2] ^= 0xFF
    path.write_bytes(data)
    with pytest.warns(DamagedCommitWarning, match="doctor FILE --repair"):
        mem = Memory.open(path, readonly=True)
    with mem:
        assert mem.get("a").text == "first"
        assert not mem.verify().ok
    with pytest.warns(DamagedCommitWarning):
        Memory.open(path, readonly=True, follow=True).close()
    with pytest.raises(CorruptFileError, match="doctor"):
        Memory.open(path)
    assert path.read_bytes() == bytes(data)  # nothing truncated
