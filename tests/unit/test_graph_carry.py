"""Compaction carries the old file's graph over with renumbered keys instead of rebuilding
it: every kept vector stays under its new gid, dropped versions' nodes are removed (passed
through, never returned), and a graph that cannot be carried is rebuilt as before."""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store import Memory
from memvid_store.engine.hooks import Pieces
from memvid_store.index.vector import graph_carry, kernels
from memvid_store.index.vector.graph_walk import UsearchGraph
from memvid_store.index.vector.hnsw_format import unpack_graph
from memvid_store.index.vector.prepare import prepare_vector
from memvid_store.index.vector.usearch_layout import FREE_KEY, layout
from memvid_store.index.vector.usearch_nodes import keys_at, node_offsets

DIM = 16
INDEX = {"ann_threshold": 100, "lexical": False, "ann_lists": False}  # an HNSW graph


def vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype("f4")


def put(m: Memory, ids: range | list[int], data: np.ndarray, tag: str = "v") -> None:
    m.put_many([{"id": f"f{i}", "text": f"{tag}{i}", "embedding": data[j]}
                for j, i in enumerate(ids)])


def now_between() -> datetime:
    time.sleep(0.002)
    t = datetime.now(UTC)
    time.sleep(0.002)
    return t


def graph_nodes(m: Memory) -> tuple[dict, np.ndarray, np.ndarray, int]:
    """The ann entry's meta, the graph's keys and int8 rows by slot, and its removed
    nodes (as usearch's head counts them)."""
    snap = m._snap()
    ref = snap.toc.find("ann")
    payload = unpack_graph(snap.view.read(ref.offset, ref.length), "usearch").payload
    at = layout(payload)
    offsets, _ = node_offsets(payload, at)
    keys = keys_at(np.frombuffer(payload, np.uint8), offsets)
    rows = np.frombuffer(payload, np.int8, at.rows * at.row_bytes, 8).reshape(at.rows, -1)
    return dict(ref.meta), keys, rows, at.deleted


def assert_graph_holds_the_kept_vectors(m: Memory) -> int:
    """Every node's key is a stored version whose vector is the node's row, each version
    with a vector below ``covered`` has exactly one node; returns the removed nodes."""
    snap = m._snap()
    meta, keys, rows, removed = graph_nodes(m)
    live = keys != np.uint64(FREE_KEY)
    assert int((~live).sum()) == removed and int(live.sum()) == meta["count"]
    assert len(np.unique(keys[live])) == meta["count"]
    for key, row in zip(keys[live].tolist(), rows[live], strict=True):
        assert key < meta["covered"]
        stored = np.frombuffer(snap.embedding(snap.locate(key)), "<f4")
        cos = float(row.astype("f4") @ stored) / (np.linalg.norm(row) * np.linalg.norm(stored))
        assert cos > 0.99
    with_vectors = [g for g in range(meta["covered"]) if snap.embedding(snap.locate(g))]
    assert sorted(keys[live].tolist()) == with_vectors
    return removed


def compacted_with_drops(mem_path: str, opened: list, n: int, superseded: int, seed: int
                         ) -> tuple[Memory, np.ndarray]:
    """A file of ``n`` vectors, every other one of the first ``2 * superseded`` replaced,
    its graph built, then compacted with the replaced versions dropped."""
    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_background=False)
    opened.append(m)
    data = vectors(n + 2 * superseded, seed)
    put(m, range(n), data)
    put(m, range(0, 2 * superseded, 2), data[n:n + superseded], tag="u")
    m.build_index()
    m.compact(retain_after=now_between())
    return m, data


def exact_ids(m: Memory, current: dict[str, np.ndarray], q: np.ndarray, k: int) -> list[str]:
    ids = sorted(current)
    mat = np.stack([current[i] for i in ids])
    scores = (mat / np.linalg.norm(mat, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    return [ids[i] for i in np.argsort(-scores, kind="stable")[:k]]


def test_keeping_all_history_carries_the_graph_as_it_is(mem_path, opened):
    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_background=False)
    opened.append(m)
    data = vectors(1500, 1)
    put(m, range(1200), data)
    put(m, range(0, 300), data[1200:], tag="u")  # superseded versions stay: all history
    m.build_index()
    snap = m._snap()
    ref = snap.toc.find("ann")
    old_bytes = bytes(snap.view.read(ref.offset, ref.length))
    queries = vectors(20, 2)
    before = [[(h.id, h.score) for h in m.find(vector=q, k=10)] for q in queries]
    m.compact()
    snap = m._snap()
    new = snap.toc.find("ann")
    assert bytes(snap.view.read(new.offset, new.length)) == old_bytes
    assert new.meta == ref.meta
    assert [[(h.id, h.score) for h in m.find(vector=q, k=10)] for q in queries] == before


def test_dropped_versions_leave_removed_nodes_that_no_search_returns(mem_path, opened):
    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_background=False)
    opened.append(m)
    data = vectors(2000, 3)
    put(m, range(1600), data)
    current = {f"f{i}": data[i] for i in range(1600)}
    put(m, range(0, 600, 2), data[1600:1900], tag="u")  # 300 superseded, dropped below
    current.update({f"f{i}": data[1600 + j] for j, i in enumerate(range(0, 600, 2))})
    m.delete_many([f"f{i}" for i in range(1000, 1050)])
    for i in range(1000, 1050):
        del current[f"f{i}"]
    m.build_index()
    floor = now_between()
    m.compact(retain_after=floor)
    removed = assert_graph_holds_the_kept_vectors(m)
    assert removed == 350  # 300 superseded and 50 deleted versions' vectors
    found = total = 0
    for q in vectors(40, 4):
        hits = m.find(vector=q, k=10)
        assert all(h.id in current for h in hits)
        for h in hits:  # exact float32 scores of the current vectors
            v = current[h.id]
            assert math.isclose(h.score, float(v @ q) / float(np.linalg.norm(v)
                                                              * np.linalg.norm(q)),
                                rel_tol=1e-5, abs_tol=1e-6)
        found += len({h.id for h in hits} & set(exact_ids(m, current, q, 10)))
        total += 10
    assert found / total >= 0.95
    m.close()
    reopened = Memory.open(mem_path, readonly=True)  # a fresh reader restores the view
    opened.append(reopened)
    assert all(h.id in current for h in reopened.find(vector=vectors(1, 5)[0], k=50))


def test_the_numpy_free_walk_never_returns_a_removed_node(mem_path, opened):
    m, _ = compacted_with_drops(mem_path, opened, 1000, 250, seed=6)
    snap = m._snap()
    ref = snap.toc.find("ann")
    graph = UsearchGraph(snap.view.read(ref.offset, ref.length), DIM)
    assert graph.count == 1000 and graph.size == 1250
    nk = kernels.kernel()
    if nk is None:
        pytest.skip("numkong is not installed")
    for q in vectors(30, 7):
        keys = graph.search(nk.dot, prepare_vector(q.tolist(), DIM, "cosine"), 40, 64)
        assert len(keys) == 40 == len(set(keys))
        assert all(0 <= k < 1000 for k in keys)


def test_extending_a_carried_graph_reuses_its_removed_nodes(mem_path, opened):
    m, _ = compacted_with_drops(mem_path, opened, 1000, 200, seed=8)
    assert graph_nodes(m)[3] == 200
    put(m, range(2000, 2500), vectors(500, 80))
    m.build_index()
    meta, keys, _, removed = graph_nodes(m)
    assert meta["count"] == 1500 and removed == 0 and len(keys) == 1500
    assert_graph_holds_the_kept_vectors(m)


@pytest.mark.parametrize("change", ["damaged", "too_many_removed", "hnswlib"])
def test_a_graph_that_cannot_be_carried_is_rebuilt(mem_path, opened, change):
    index = {**INDEX, "ann_backend": "hnswlib"} if change == "hnswlib" else INDEX
    m = Memory.create(mem_path, dim=DIM, index=index, graph_background=False)
    data = vectors(1600, 9)
    put(m, range(1000), data)
    superseded = 400 if change == "too_many_removed" else 100
    put(m, range(superseded), data[1000:1000 + superseded], tag="u")
    m.build_index()
    floor = now_between()
    ref = m._snap().toc.find("ann")
    m.close()
    if change == "damaged":
        with open(mem_path, "r+b") as fh:  # a flipped byte inside the graph's nodes
            fh.seek(ref.offset + ref.length - 100)
            b = fh.read(1)
            fh.seek(-1, 1)
            fh.write(bytes([b[0] ^ 0x40]))
    m = Memory.open(mem_path, graph_background=False)
    opened.append(m)
    m.compact(retain_after=floor)
    meta = m._snap().toc.find("ann").meta
    assert meta["count"] == 1000 and meta["covered"] == 1000
    if change != "hnswlib":
        assert assert_graph_holds_the_kept_vectors(m) == 0  # a new graph: nothing removed
    hits = m.find(vector=data[1000], k=1)
    assert hits[0].id == "f0"


def test_a_graph_built_with_other_settings_is_not_carried(mem_path, opened):
    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_background=False)
    opened.append(m)
    put(m, range(500), vectors(500, 11))
    m.build_index()
    kept = np.arange(500)
    assert graph_carry.carry_graph(m._snap(), m.index_config, kept) is not None
    for change in ({"ann_m": 12}, {"ann_ef_construction": 64}, {"ann_dtype": "f32"}):
        other = replace(m.index_config, **change)
        assert graph_carry.carry_graph(m._snap(), other, kept) is None


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(n=st.integers(150, 500), updated=st.sets(st.integers(0, 149), max_size=40),
       deleted=st.sets(st.integers(0, 149), max_size=20),
       later=st.sets(st.integers(0, 149), max_size=20), keep_all=st.booleans(),
       seed=st.integers(0, 2**16))
def test_carried_graphs_hold_exactly_the_kept_vectors(tmp_path_factory, n, updated, deleted,
                                                       later, keep_all, seed):
    """Against the model of what compaction keeps: every node is a kept version's vector
    under its new gid, every kept vector below ``covered`` has one node."""
    path = str(tmp_path_factory.mktemp("carry") / "m.mv2")
    data = vectors(n + 200, seed)
    with Memory.create(path, dim=DIM, index=INDEX, graph_background=False) as m:
        put(m, range(n), data)
        put(m, sorted(updated), data[n:n + len(updated)], tag="u")
        if deleted:
            m.delete_many([f"f{i}" for i in deleted])
        m.build_index()
        floor = now_between()
        put(m, sorted(later), data[n + 50:n + 50 + len(later)], tag="l")
        m.compact(retain_after=None if keep_all else floor)
        removed = assert_graph_holds_the_kept_vectors(m)
        # each update before the floor drops the version it replaced, each delete the
        # version it ended
        dropped = 0 if keep_all else len(updated) + len(deleted)
        carried = dropped <= graph_carry.MAX_REMOVED * (n + len(updated))
        assert removed == (dropped if carried else 0)
        assert m.stats().frames == n - len(deleted - later)


def test_streamed_pieces_that_miss_their_length_fail_the_commit(tmp_path):
    from memvid_store.engine.store import _pwrite_all

    path = tmp_path / "f"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDWR)
    try:
        _pwrite_all(fd, Pieces(6, lambda: [b"abc", memoryview(b"def")]), 0)
        assert path.read_bytes() == b"abcdef"
        with pytest.raises(AssertionError):
            _pwrite_all(fd, Pieces(5, lambda: [b"abc", b"def"]), 0)
    finally:
        os.close(fd)


def test_carrying_reads_the_old_graph_a_block_at_a_time(mem_path, opened, monkeypatch):
    """The rewrite streams: no piece is larger than a copy block or a block of nodes."""
    monkeypatch.setattr(graph_carry, "COPY_BYTES", 4096)
    monkeypatch.setattr(graph_carry, "NODE_BLOCK", 64)
    sizes: list[int] = []
    real = graph_carry._Rewrite.pieces

    def spy(self):
        for piece in real(self):
            sizes.append(len(piece))
            yield piece

    monkeypatch.setattr(graph_carry._Rewrite, "pieces", spy)
    m, _ = compacted_with_drops(mem_path, opened, 2500, 250, seed=10)
    assert sizes and max(sizes) <= max(4096, 64 * 400)
    assert assert_graph_holds_the_kept_vectors(m) == 250


# ------------------------------------------------------------ compaction's memory bound


def test_compact_memory_is_a_size_of_at_least_128_mib():
    from memvid_store import StoreConfig
    from memvid_store.errors import ConfigError, InvalidInputError

    assert StoreConfig().compact_memory == 256 << 20
    assert StoreConfig(compact_memory="512MB").compact_memory == 512 << 20
    assert StoreConfig.from_env({"MEMVID_COMPACT_MEMORY": "1GiB"}).compact_memory == 1 << 30
    for bad in (64 << 20, "100MB", True, 1.5e9):
        with pytest.raises(InvalidInputError, match="compact_memory"):
            StoreConfig(compact_memory=bad)
    with pytest.raises(ConfigError, match="MEMVID_COMPACT_MEMORY"):
        StoreConfig.from_env({"MEMVID_COMPACT_MEMORY": "lots"})


def test_compaction_sizes_chunks_and_runs_from_its_memory_bound(mem_path, opened,
                                                               monkeypatch):
    """Chunks of 1/32 of the bound become commits; runs are filled to 1/8 of it."""
    from memvid_store.engine import compact, store

    monkeypatch.setattr(compact, "CHUNK_BYTES", None)
    commits: list[int] = []
    caps: list[int | None] = []
    real_commit = store.Committer.commit

    def commit(self, versions, **kwargs):
        commits.append(len(versions))
        caps.append(self.merges.keywords["cap"])
        return real_commit(self, versions, **kwargs)

    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_background=False,
                      compact_memory=128 << 20)
    opened.append(m)
    data = vectors(1500, 12)
    m.put_many([{"id": f"f{i}", "text": "x" * 4000, "embedding": data[i]}
                for i in range(1500)])  # about 6 MiB of text
    monkeypatch.setattr(store.Committer, "commit", commit)
    m.compact()
    chunk_commits = [n for n in commits if n]
    assert len(chunk_commits) >= 2 and sum(chunk_commits) == 1500  # 4 MiB chunks
    assert set(caps) == {16 << 20}
    assert m.stats().frames == 1500 and len(m.find(vector=data[3], k=1)) == 1


def test_a_graph_larger_than_the_bound_is_left_to_build_index(mem_path, opened,
                                                              monkeypatch):
    """A graph compaction cannot carry is built only when its estimate fits the bound;
    otherwise the vectors are scanned exactly until build_index() builds it."""
    from memvid_store.index.vector import graph_update

    m = Memory.create(mem_path, dim=DIM, index=INDEX, graph_background=False,
                      graph_sync_limit=0)
    opened.append(m)
    data = vectors(1200, 13)
    put(m, range(1200), data)
    m.seal()
    assert m._snap().toc.find("ann") is None  # longer than graph_sync_limit: no graph yet
    monkeypatch.setattr(graph_update, "NODE_BYTES", (96 << 20) // 1200)  # 1,200 fill 96 MiB
    m.compact()  # bound 256 MiB: three quarters of it hold the graph
    assert m._snap().toc.find("ann") is not None
    m.close()
    m = Memory.open(mem_path, graph_background=False, graph_sync_limit=0)
    opened.append(m)
    monkeypatch.setattr(graph_update, "NODE_BYTES", (200 << 20) // 1200)  # 200 MiB: too big
    put(m, range(1200, 1300), vectors(100, 14))
    # rebuilt, not carried: a damaged graph
    monkeypatch.setattr(graph_carry, "carry_graph", lambda *a: None)
    m.compact()
    assert m._snap().toc.find("ann") is None
    hits = m.find(vector=data[5], k=1)  # the exact scan answers meanwhile
    assert hits[0].id == "f5"
    m.build_index()  # no bound outside compaction
    assert m._snap().toc.find("ann").meta["count"] == 1300
