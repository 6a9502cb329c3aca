"""Graph maintenance off the commit path: what seal()/close() build, the background
builder, build_index(), and what a failed, cancelled or stale build leaves (the file
keeps a usable graph and every committed frame)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from memvid_store import Memory, StoreConfig
from memvid_store.errors import InvalidInputError, InvalidTypeError
from memvid_store.index.maintain import GRAPH_GROWTH, GRAPH_MIN_TAIL

DIM = 16
INDEX = {"ann_threshold": 500, "lexical": False}


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype("f4")


def put(m: Memory, data: np.ndarray, start: int, stop: int) -> None:
    m.put_many([{"id": str(i), "text": f"t{i}", "embedding": data[i]}
                for i in range(start, stop)])


def graph(m: Memory) -> dict | None:
    ref = m._snap().toc.find("ann")
    return None if ref is None else {"offset": ref.offset, **ref.meta}


def exact_top(data: np.ndarray, query: np.ndarray, k: int) -> list[str]:
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    scores = unit @ (query / np.linalg.norm(query))
    return [str(i) for i in np.argsort(-scores, kind="stable")[:k]]


def wait_for(condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def background(m: Memory):
    return m._shared.writer.hook._background


def test_close_leaves_a_long_tail_to_the_exact_scan(mem_path: str) -> None:
    data = rows(1500)
    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_sync_limit=1000,
                      graph_background=False)
    put(m, data, 0, 1500)
    m.close()
    with Memory.open(mem_path, readonly=True) as r:
        assert graph(r) is None
        assert (r.stats().vectors, r.stats().graph_vectors) == (1500, 0)
        for q in data[:5]:  # no graph: every vector is scanned exactly
            assert [h.id for h in r.find(vector=q, k=5, mode="vector")] == exact_top(
                data, q, 5)


def test_close_builds_a_short_due_tail(mem_path: str) -> None:
    data = rows(900)
    with Memory.create(mem_path, dim=DIM, index=INDEX, graph_sync_limit=1000) as m:
        put(m, data, 0, 900)
    with Memory.open(mem_path, readonly=True) as r:
        assert graph(r)["count"] == 900


def test_a_short_tail_does_not_rewrite_the_graph(mem_path: str) -> None:
    """A tail below GRAPH_GROWTH of the graph stays with the exact scan: each extension
    rewrites the whole graph, so seals of a few vectors must not."""
    data = rows(2200)
    with Memory.create(mem_path, dim=DIM, index=INDEX) as m:
        put(m, data, 0, 1000)
        m.seal()
        before = graph(m)
        assert before["count"] == 1000
        short = 1000 + int(1000 * GRAPH_GROWTH) // 2
        assert 2200 - 1000 >= GRAPH_MIN_TAIL > short - 1000
        put(m, data, 1000, short)
        m.seal()
        assert graph(m) == before
        for q in data[1000:short:50]:  # the tail is found exactly
            assert m.find(vector=q, k=1, mode="vector")[0].id == exact_top(data[:short], q,
                                                                           1)[0]
        put(m, data, short, 2200)  # a tail of GRAPH_MIN_TAIL or more is due
        m.seal()
        assert graph(m)["count"] == 2200


def without_builds(path: str) -> Memory:
    """A new memory whose seals and background never build a graph."""
    return Memory.create(path, dim=DIM, index=INDEX, graph_sync_limit=0,
                         graph_background=False)


def test_build_index_builds_everything(mem_path: str) -> None:
    data = rows(1600)
    with without_builds(mem_path) as m:
        put(m, data, 0, 1500)
        m.seal()
        assert graph(m) is None
        m.build_index()
        assert graph(m)["count"] == 1500
        put(m, data, 1500, 1600)  # a tail no seal would build
        m.build_index()
        assert graph(m)["count"] == 1600


def test_build_index_not_complete_builds_only_a_due_extension(mem_path: str) -> None:
    data = rows(3000)
    with without_builds(mem_path) as m:
        put(m, data, 0, 1500)
        m.build_index(complete=False)  # a first graph is always due
        first = graph(m)
        assert first["count"] == 1500
        put(m, data, 1500, 1600)
        m.build_index(complete=False)  # 100 vectors: not worth rewriting 1,500
        assert graph(m) == first
        put(m, data, 1600, 3000)
        m.build_index(complete=False)  # due, and no sync limit applies
        assert graph(m)["count"] == 3000


def test_background_build_is_committed_while_the_writer_is_open(mem_path: str) -> None:
    data = rows(3000, 1)
    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_sync_limit=100)
    try:
        put(m, data, 0, 3000)
        m.seal()  # too long for the seal: the background builder takes it
        for q in data[:20]:  # exact answers while the graph is being built
            assert [h.id for h in m.find(vector=q, k=3, mode="vector")] == exact_top(
                data, q, 3)
        wait_for(lambda: graph(m) is not None)
        assert graph(m)["count"] == 3000 and graph(m)["covered"] == 3000
        assert not background(m).running
        hits = sum(m.find(vector=q, k=1, mode="vector")[0].id == str(i)
                   for i, q in enumerate(data[:200]))
        assert hits >= 190
    finally:
        m.close()
    with Memory.open(mem_path, readonly=True) as r:
        assert graph(r)["count"] == 3000
        assert (r.stats().vectors, r.stats().graph_vectors) == (3000, 3000)
        assert r.verify().ok


def test_close_stops_a_running_build_and_keeps_the_old_graph(
        mem_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = rows(4000, 2)
    with Memory.create(mem_path, dim=DIM, index=INDEX) as m:
        put(m, data, 0, 1000)
    monkeypatch.setenv("MEMVID_FAULT", "graph.stall")  # the child waits until killed
    m = Memory.open(mem_path, graph_sync_limit=100)
    put(m, data, 1000, 4000)
    m.seal()
    proc = background(m)._proc
    assert proc is not None and proc.poll() is None
    m.close()
    assert proc.wait(timeout=10) is not None  # killed, not waited for
    with Memory.open(mem_path, readonly=True) as r:
        assert graph(r)["count"] == 1000
        assert r.count() == 4000
        q = data[3999]
        assert r.find(vector=q, k=1, mode="vector")[0].id == "3999"


def test_a_failed_build_costs_nothing_but_a_warning(
        mem_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = rows(3000, 3)
    monkeypatch.setenv("MEMVID_FAULT", "graph.child")  # the child dies at once
    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_sync_limit=100)
    try:
        put(m, data, 0, 3000)
        with pytest.warns(RuntimeWarning, match="in the background failed"):
            m.seal()
            wait_for(lambda: not background(m).running)
        assert graph(m) is None and m.count() == 3000
        monkeypatch.delenv("MEMVID_FAULT")
        m.build_index()
        assert graph(m)["count"] == 3000
    finally:
        m.close()


def test_a_stale_background_graph_is_dropped(mem_path: str) -> None:
    """A graph prepared on top of a graph that a later commit replaced is never
    committed: build_index() made it stale."""
    data = rows(3000, 4)
    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_sync_limit=100)
    try:
        put(m, data, 0, 2000)
        m.seal()
        worker = background(m)
        assert worker.running
        m.build_index()  # cancels the child and builds it all
        built = graph(m)
        assert built["count"] == 2000 and not worker.running
        stale = worker._ready
        assert stale is None or stale.base != (built["offset"], m._snap().toc.find(
            "ann").crc)
        put(m, data, 2000, 2100)
        m.seal()
        assert graph(m) == built
    finally:
        m.close()


@pytest.mark.parametrize("lists", [False, True])
def test_build_index_completes_a_graph_the_background_prepared(mem_path: str,
                                                               lists: bool) -> None:
    """A graph the background prepared before more vectors came is committed by
    build_index() with the rest: the index covers every vector, not the prepared share."""
    data = rows(4500, 6)
    index = {**INDEX, "ann_lists": lists}
    m = Memory.create(mem_path, dim=DIM, index=index, graph_sync_limit=100)
    try:
        put(m, data, 0, 3000)
        worker = background(m)
        worker._on_ready = lambda: None  # it stays prepared, not committed
        m.seal()
        wait_for(worker.ready)
        put(m, data, 3000, 4500)
        m.build_index()
        assert not worker.ready()
        built = graph(m)
        assert (built["count"], built["covered"]) == (4500, 4500)
        assert (built["backend"] == "lists") is lists
        assert m.stats().graph_vectors == 4500
    finally:
        m.close()


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from memvid_store import Memory
    path = sys.argv[1]
    data = np.random.default_rng(5).standard_normal((4000, 16)).astype("f4")
    m = Memory.open(path, graph_sync_limit=100)
    m.put_many([{"id": str(i), "text": "t", "embedding": data[i]} for i in range(1000, 4000)])
    m.seal()
    print(m._shared.writer.hook._background._proc.pid, flush=True)
    sys.stdin.read()
""")


def test_kill_9_during_a_background_build(mem_path: str, tmp_path) -> None:
    """The writer dies while its child builds: every acknowledged frame is there, the
    file has its old graph, and the orphaned child exits."""
    data = np.random.default_rng(5).standard_normal((4000, 16)).astype("f4")
    with Memory.create(mem_path, dim=DIM, index=INDEX) as m:
        put(m, data, 0, 1000)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, MEMVID_FAULT="graph.stall")
    writer = subprocess.Popen([sys.executable, str(script), mem_path], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = int(writer.stdout.readline())
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    wait_for(lambda: not _alive(child), timeout=10)
    with Memory.open(mem_path) as m:
        assert graph(m)["count"] == 1000
        assert m.count() == 4000
        assert m.verify().ok
        m.build_index()
        assert graph(m)["count"] == 4000


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@pytest.mark.parametrize("value", [-1, 1.5, True, "10"])
def test_graph_sync_limit_is_checked(value) -> None:
    with pytest.raises((InvalidInputError, InvalidTypeError)):
        StoreConfig(graph_sync_limit=value)


def test_graph_background_is_checked() -> None:
    with pytest.raises(InvalidTypeError):
        StoreConfig(graph_background="yes")
