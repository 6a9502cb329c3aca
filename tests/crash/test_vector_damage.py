"""A flipped byte in a vector is never used silently: every read of it (a frame's
embedding, an exact scan, a graph candidate's rescoring, a filtered subset, a numpy-free
scan or walk) checks it first and raises ChecksumError; the frame's text and the other
frames stay readable."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from memvid_store import ChecksumError, IndexConfig, Memory
from memvid_store.engine import store
from memvid_store.index.vector import kernels

from .conftest import parse_layout

DIM = 8


def _build(path: Path, n: int, ann_threshold: int) -> list[list[float]]:
    rng = random.Random(5)
    vectors = [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(n)]
    with Memory.create(path, dim=DIM, index=IndexConfig(ann_threshold=ann_threshold)) as mem:
        mem.put_many([{"text": f"frame {i}", "id": f"f{i}", "metadata": {"g": i % 10},
                       "embedding": vec} for i, vec in enumerate(vectors)])
    return vectors


def _flip_row(path: Path, row: int) -> None:
    data = bytearray(path.read_bytes())
    (offset, _length), *_ = parse_layout(bytes(data)).vblocks
    data[offset + row * DIM * 4 + 1] ^= 0x10
    path.write_bytes(data)


@pytest.fixture(params=["per-row checksums", "written before them"])
def layout(request, monkeypatch):
    if request.param == "written before them":
        monkeypatch.setattr(store, "vector_checksums", lambda rows: None)
    return request.param


@pytest.mark.parametrize("ann_threshold", [10**6, 100], ids=["exact", "graph"])
@pytest.mark.parametrize("numpy_free", [False, True], ids=["numpy", "numpy-free"])
def test_a_flipped_vector_byte_is_detected_on_every_read(tmp_path, monkeypatch, layout,
                                                           ann_threshold, numpy_free):
    path = tmp_path / "m.mv2"
    vectors = _build(path, 300, ann_threshold)
    _flip_row(path, 42)
    if numpy_free:
        monkeypatch.setattr(kernels, "numpy_loaded", lambda: False)
    with Memory.open(path, readonly=True) as mem:
        assert mem.get("f42").text == "frame 42"  # the payload is intact
        with pytest.raises(ChecksumError):
            _ = mem.get("f42").embedding
        try:  # a graph search may not reach the damaged row; it never scores it unchecked
            hits = mem.find(vector=vectors[42], k=5, mode="vector")
        except ChecksumError:
            pass
        else:
            assert ann_threshold == 100 and "f42" not in [h.id for h in hits]
        with pytest.raises(ChecksumError):  # the filter admits row 42: it is scored
            mem.find(vector=vectors[42], k=5, mode="vector", filter={"g": 2})
        assert mem.get("f7").text == "frame 7"
        assert mem.find("frame", k=3, mode="lexical")
        assert not mem.verify().ok


def test_runs_without_row_checksums_gain_them_when_merged(tmp_path, monkeypatch):
    path = tmp_path / "m.mv2"
    rng = random.Random(9)

    def batch(n: int) -> list[dict]:
        return [{"text": "v", "embedding": [rng.uniform(-1, 1) for _ in range(DIM)]}
                for _ in range(n)]

    with Memory.create(path, dim=DIM) as mem:
        with monkeypatch.context() as patch:  # runs as written before per-row checksums
            patch.setattr(store, "vector_checksums", lambda rows: None)
            for size in (60, 30, 10):
                mem.put_many(batch(size))
                mem.seal()
        assert not any(run.has_vector_checks for run in mem._snap().runs)
        mem.put_many(batch(100))  # merges the old runs
        mem.seal()
        runs = mem._snap().runs
        assert len(runs) == 1 and runs[0].has_vector_checks
        assert mem.verify().ok
        assert len(mem.find(vector=[0.5] * DIM, k=5, mode="vector")) == 5


def test_checking_blocks_whole_in_the_background_changes_no_answer(tmp_path, monkeypatch):
    """After enough rows checked one by one, a thread checks the vector blocks whole; a
    block with a damaged row stays checked row by row, so every query answers as if each
    row were checked alone: the damaged row raises, the others' queries do not."""
    import threading

    from memvid_store.index.vector import stored

    # one build thread: the same graph every run, which reaches the damaged row (a graph
    # built by threads racing can leave a node unreachable, and no query then reads it)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    path = tmp_path / "m.mv2"
    vectors = _build(path, 300, 100)
    _flip_row(path, 42)
    rng = random.Random(11)
    queries = [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(60)]
    queries[30] = vectors[42]

    def outcomes(after: int) -> list:
        monkeypatch.setattr(stored, "ROWS_BEFORE_SWEEP", after)
        out = []
        with Memory.open(path, readonly=True) as mem:
            for q in queries:
                try:
                    out.append([h.id for h in mem.find(vector=q, k=5, mode="vector")])
                except ChecksumError:
                    out.append("damaged")
                for thread in threading.enumerate():  # the sweep done before the next
                    if thread.name == "memvid-vector-checks":
                        thread.join()
        return out

    one_by_one, swept = outcomes(10**9), outcomes(1)
    assert swept == one_by_one
    assert "damaged" in one_by_one and one_by_one.count("damaged") < len(queries)


def test_a_sweep_checks_every_healthy_block_and_stops_at_close(tmp_path, monkeypatch):
    """The sweep leaves every block but the damaged one checked whole; the damaged row
    still raises when read; ``close()`` tells a sweep to stop."""
    import threading

    from memvid_store.index.vector import stored

    monkeypatch.setattr(stored, "ROWS_BEFORE_SWEEP", 1)
    path = tmp_path / "m.mv2"
    with Memory.create(path, dim=DIM) as mem:
        rng = random.Random(3)
        for _ in range(4):  # four runs, a vector block each
            mem.put_many([{"text": "v", "embedding": [rng.uniform(-1, 1) for _ in range(DIM)]}
                          for _ in range(50)])
            mem.seal()
    _flip_row(path, 7)  # in the first block
    with Memory.open(path, readonly=True) as mem:
        snap = mem._snap()
        vectors = stored.StoredVectors(snap)
        last = snap.toc.next_gid - 1
        vectors.gather(np.array([last]))  # a healthy row: checked, then the sweep starts
        for thread in threading.enumerate():
            if thread.name == "memvid-vector-checks":
                thread.join()
        assert vectors._block_done.tolist().count(False) == 1
        with pytest.raises(ChecksumError):
            vectors.gather(np.array([snap.runs[0].base + 7]))
        vectors.close()
        assert vectors._closed.is_set()


@pytest.mark.parametrize("vrow", [0xFFFFFFF0, 3], ids=["past the blocks", "named twice"])
@pytest.mark.parametrize("ann_threshold", [10**6, 100], ids=["exact", "graph build"])
def test_vector_rows_that_miss_the_blocks_never_move_vectors(tmp_path, vrow, ann_threshold):
    """A version's vector row (checksummed, but wrong) is caught before any vector is
    matched to a gid: the exact scan and a graph build raise instead of giving the later
    vectors to other versions."""
    from memvid_store.errors import CorruptFileError
    from tests.torture.crafted import edit_run, main_run, row_of, set_part_value

    path = tmp_path / "v.mv2"
    rng = random.Random(6)
    vectors = [[rng.uniform(-1, 1) for _ in range(DIM)] for _ in range(300)]
    options = {"graph_sync_limit": 0, "graph_background": False}  # no graph yet
    with Memory.create(path, dim=DIM, index=IndexConfig(ann_threshold=ann_threshold),
                       **options) as mem:
        mem.put_many([{"text": f"frame {i}", "id": f"f{i}", "embedding": vec}
                      for i, vec in enumerate(vectors)])
    data = path.read_bytes()
    path.write_bytes(edit_run(data, set_part_value("vrow", row_of(data, main_run(data), "f7"),
                                                   vrow)))
    with Memory.open(path, **options) as mem:
        assert mem._snap().toc.find("ann") is None
        assert mem.get("f7").text == "frame 7"  # the frames stay readable
        with pytest.raises(CorruptFileError, match="vector rows"):
            if ann_threshold == 100:
                mem.build_index()
            else:
                mem.find(vector=vectors[20], k=3, mode="vector")
