"""The numpy-free walk of a usearch int8 graph: same hits as the library, same fallbacks."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from memvid_store import Memory
from memvid_store.index.searcher import searcher_for
from memvid_store.index.vector import kernels, numpy_free_walk
from memvid_store.index.vector.graph_walk import Unsupported, UsearchGraph
from memvid_store.index.vector.numpy_free_walk import NumpyFreeWalk
from memvid_store.index.vector.prepare import prepare_vector

DIM = 16


def records(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    centres = [[rng.gauss(0, 1) for _ in range(DIM)] for _ in range(12)]
    out = []
    for i in range(n):
        c = centres[i % len(centres)]
        out.append({"id": f"r{i:05d}", "text": f"note {i}",
                    "embedding": [x + rng.gauss(0, 0.4) for x in c],
                    "metadata": {"n": i, "group": i % 100}})
    return out


def graph_file(mem_path: str, opened: list, n: int = 3000, **index) -> Memory:
    """A memory whose graph has no cluster lists (they would answer before the graph)."""
    m = Memory.create(mem_path, dim=DIM, index={"ann_threshold": 500, "ann_lists": False,
                                                **index})
    opened.append(m)
    m.put_many(records(n, seed=1))
    m.seal()
    return m


def searcher_of(mem: Memory):
    return searcher_for(mem._snap(), mem.index_config, mem._ctx.cache_root)


def both_paths(monkeypatch, mem: Memory, **query) -> tuple[list, list, bool]:
    """(walk hits, library hits, whether the walk answered) on fresh searchers."""
    answered = []
    ranked = NumpyFreeWalk.ranked

    def spy(self, *args):
        got = ranked(self, *args)
        answered.append(got is not None)
        return got

    monkeypatch.setattr(NumpyFreeWalk, "ranked", spy)
    out = []
    for walk in (True, False):
        monkeypatch.setattr(kernels, "numpy_loaded", lambda w=walk: not w)
        mem._snap().extras.clear()
        out.append([(h.id, h.score) for h in mem.find(mode="vector", **query)])
    return out[0], out[1], any(answered)


def queries(n: int, seed: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[rng.gauss(0, 1) for _ in range(DIM)] for _ in range(n)]


def test_walk_gives_the_library_hits(monkeypatch, mem_path, opened):
    mem = graph_file(mem_path, opened)
    assert mem._snap().toc.find("ann").meta["dtype"] == "i8"
    same = 0
    for q in queries(25, seed=2):
        walked, library, served = both_paths(monkeypatch, mem, vector=q, k=10)
        assert served
        scores = dict(library)
        same += [i for i, _ in walked] == [i for i, _ in library]
        for frame_id, score in walked:  # exact float32 scores wherever both found a hit
            if frame_id in scores:
                assert math.isclose(score, scores[frame_id], rel_tol=1e-5, abs_tol=1e-6)
    assert same >= 23  # both are approximate; they may differ within recall


def test_a_filter_admitting_a_fifth_is_walked_with_one_wider_round(monkeypatch, mem_path,
                                                                   opened):
    """Too many versions for the subset scan, too few among 40 candidates: the walk widens
    once, as the library's second round does, and finds what the library finds."""
    from memvid_store.index.vector import numpy_free_subset, subset_scan

    for module in (numpy_free_subset, subset_scan):  # 600 admitted: no subset scan
        monkeypatch.setattr(module, "SUBSET_MAX", 10)
    mem = graph_file(mem_path, opened)
    widths = []
    search = UsearchGraph.search
    monkeypatch.setattr(UsearchGraph, "search",
                        lambda self, dot, q, k, ef, prefetch=None:
                        widths.append((k, ef)) or search(self, dot, q, k, ef, prefetch))
    same = 0
    for q in queries(10, seed=5):
        walked, library, served = both_paths(monkeypatch, mem, vector=q, k=10,
                                             filter={"group": {"$lt": 20}})
        assert served and len(walked) == 10
        assert all(int(i[1:]) % 100 < 20 for i, _ in walked)
        same += [i for i, _ in walked] == [i for i, _ in library]
    assert same >= 8
    assert {k for k, _ in widths} == {40, 160}  # one widening, 4x the candidates


def test_walk_finds_what_usearch_finds(mem_path, opened):
    mem = graph_file(mem_path, opened)
    snap = mem._snap()
    ref = snap.toc.find("ann")
    graph = UsearchGraph(snap.view.read(ref.offset, ref.length), DIM)
    ann, _ = searcher_of(mem).vectors.hnsw.open()
    nk = kernels.kernel()
    overlap = []
    for q in queries(40, seed=3):
        unit = prepare_vector(q, DIM, "cosine")
        keys = graph.search(nk.dot, unit, 40, 160)
        labels, _ = ann.search(np.frombuffer(unit, "<f4")[None, :], 40, ef=160)
        assert len(keys) == 40 == len(set(keys))
        overlap.append(len(set(keys) & set(labels[0].tolist())) / 40)
    assert sum(overlap) / len(overlap) >= 0.97


def test_a_selective_filter_is_scored_over_the_versions_it_admits(monkeypatch, mem_path,
                                                                   opened):
    """Without numpy too: the numpy-free subset scan answers, the walk is not tried."""
    mem = graph_file(mem_path, opened)
    walked, library, walk_answered = both_paths(monkeypatch, mem, vector=queries(1, seed=4)[0],
                                                k=3, filter={"group": 7})
    assert not walk_answered
    assert [i for i, _ in walked] == [i for i, _ in library] and len(walked) == 3
    assert [s for _, s in walked] == pytest.approx([s for _, s in library], rel=1e-6)
    assert {i for i, _ in walked} <= {f"r{i:05d}" for i in range(7, 3000, 100)}


def test_walks_stop_once_they_cost_a_library_load(monkeypatch, mem_path, opened):
    mem = graph_file(mem_path, opened)
    monkeypatch.setattr(kernels, "numpy_loaded", lambda: False)
    mem._snap().extras.clear()
    walk = searcher_of(mem).vectors.walk
    for q in queries(3, seed=5):
        mem.find(vector=q, k=5, mode="vector")
    assert walk.graph and walk.seconds > 0
    spent = walk.seconds
    monkeypatch.setattr(numpy_free_walk, "WALK_BUDGET_S", spent)
    mem.find(vector=queries(1, seed=6)[0], k=5, mode="vector")
    assert walk.seconds == spent  # the library answered


def test_walk_serves_while_a_background_warmup_opens_the_graph(mem_path, opened):
    mem = graph_file(mem_path, opened, n=800)
    mem._snap().extras.clear()
    searcher = searcher_of(mem)
    searcher.defer_vectors = True  # numpy is loaded here; the graph is not open yet
    q = queries(1, seed=12)[0]
    walked = [h.id for h in mem.find(vector=q, k=5, mode="vector")]
    assert searcher.vectors.walk.graph and searcher.vectors.hnsw.graph() == (None, 0)
    searcher.defer_vectors = False
    mem._snap().extras.clear()
    assert [h.id for h in mem.find(vector=q, k=5, mode="vector")] == walked


@pytest.mark.parametrize("index", [{"ann_dtype": "f32"}, {"ann_backend": "hnswlib"}])
def test_other_graphs_are_left_to_the_library(monkeypatch, mem_path, opened, index):
    mem = graph_file(mem_path, opened, n=800, **index)
    walked, library, served = both_paths(monkeypatch, mem, vector=queries(1, seed=7)[0], k=5)
    assert not served and walked == library


def test_versions_the_graph_does_not_cover_are_left_to_the_library(monkeypatch, mem_path,
                                                                  opened):
    mem = graph_file(mem_path, opened, n=800)
    mem.put_many([{**r, "id": f"wal-{i}"} for i, r in enumerate(records(5, seed=8))])
    q = records(5, seed=8)[2]["embedding"]
    walked, library, served = both_paths(monkeypatch, mem, vector=q, k=3)
    assert not served and walked == library and walked[0][0] == "wal-2"


def test_vectors_written_after_a_walk_are_found(monkeypatch, mem_path, opened):
    mem = graph_file(mem_path, opened, n=800)
    monkeypatch.setattr(kernels, "numpy_loaded", lambda: False)
    mem._snap().extras.clear()
    mem.find(vector=queries(1, seed=10)[0], k=3, mode="vector")
    assert searcher_of(mem).vectors.walk.graph
    new = records(3, seed=11)[1]
    mem.put_many([{**new, "id": "late"}])
    assert mem.find(vector=new["embedding"], k=3, mode="vector")[0].id == "late"


def test_layouts_it_does_not_know_are_unsupported(mem_path, opened):
    mem = graph_file(mem_path, opened, n=800)
    snap = mem._snap()
    ref = snap.toc.find("ann")
    raw = bytearray(snap.view.read(ref.offset, ref.length))
    UsearchGraph(memoryview(raw), DIM)
    with pytest.raises(Unsupported):
        UsearchGraph(memoryview(raw), DIM + 1)
    with pytest.raises(Unsupported):
        UsearchGraph(memoryview(raw[: len(raw) // 2]), DIM)
    head = 64 + 8 + 800 * DIM  # our header, usearch's matrix shape and rows
    for pos, value in ((head, ord("X")), (head + 7, 3), (head + 14, 11)):  # magic, major, i8
        bad = bytearray(raw)
        bad[pos] = value
        with pytest.raises(Unsupported):
            UsearchGraph(memoryview(bad), DIM)


@pytest.mark.parametrize("slow", [False, True])
def test_slow_reads_are_prefetched_and_change_no_result(monkeypatch, mem_path, opened, slow):
    """While rows read slowly (from disk), the walk hints the rows and nodes it reads next;
    once they read fast it stops. Either way it visits the same nodes."""
    from memvid_store.index.vector import graph_walk

    mem = graph_file(mem_path, opened, n=1500)
    snap = mem._snap()
    ref = snap.toc.find("ann")
    data = snap.view.read(ref.offset, ref.length)
    graph = UsearchGraph(data, DIM)
    nk = kernels.kernel()
    q = prepare_vector(queries(1, seed=13)[0], DIM, "cosine")
    plain = graph.search(nk.dot, q, 40, 64)
    clock = [0.0]  # the walk's timer: each row read costs what ``slow`` says
    monkeypatch.setattr(graph_walk, "time", SimpleNamespace(perf_counter=lambda: clock[0]))

    def dot(a, b):
        clock[0] += 2 * graph_walk.SLOW_READ_S if slow else 1e-6
        return nk.dot(a, b)

    hinted = []
    got = graph.search(dot, q, 40, 64, prefetch=hinted.extend)
    assert got == plain
    matrix_end = 64 + 8 + 1500 * DIM  # our header, usearch's matrix shape, its rows
    rows = [o for o, n in hinted if o < matrix_end]
    nodes = [(o, n) for o, n in hinted if o >= matrix_end]
    assert all((o - 72) % DIM == 0 and n == DIM  # whole rows of the matrix
               for o, n in hinted if o < matrix_end)
    assert all(o + n <= len(data) for o, n in nodes)
    if slow:
        assert len(rows) > 200 and len(nodes) > 20
    else:  # the first expansion's neighbours only (level 0 lists at most 2 M = 32)
        assert 0 < len(rows) <= 32 and not nodes


CHILD = """
import json, sys
from memvid_store import Memory
with Memory.open(sys.argv[1], readonly=True) as m:
    ids = [[h.id for h in m.find(vector=q, k=5, mode="vector")] for q in json.loads(sys.argv[2])]
    walker = m._snap().extras["searcher"].vectors.walk.graph
print(json.dumps({"ids": ids, "numpy": "numpy" in sys.modules, "walked": bool(walker)}))
"""


def test_a_fresh_process_walks_the_graph_without_numpy(mem_path, opened):
    graph_file(mem_path, opened).close()
    qs = queries(4, seed=9)
    with Memory.open(mem_path, readonly=True) as m:
        want = [[h.id for h in m.find(vector=q, k=5, mode="vector")] for q in qs]
    run = subprocess.run([sys.executable, "-c", CHILD, mem_path, json.dumps(qs)],
                         capture_output=True, text=True, timeout=120, check=True)
    got = json.loads(run.stdout)
    assert got["numpy"] is False and got["walked"] is True
    assert sum(a == b for a, b in zip(got["ids"], want, strict=True)) >= 3
