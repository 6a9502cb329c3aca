"""A graph node every level-0 link to which was pruned is never found, not even by its own
vector: built graphs have such nodes linked back in, from a free place of a near node's
list or in place of a link its target does not need."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from memvid_store import Memory
from memvid_store.index.vector import graph_build
from memvid_store.index.vector.graph_build import build_graph
from memvid_store.index.vector.graph_relink import relink, unreached_keys
from memvid_store.index.vector.hnsw import AnnParams, get_backend
from memvid_store.index.vector.hnsw_format import graph_header, unpack_graph
from memvid_store.index.vector.usearch_layout import NODE_HEAD, layout
from memvid_store.index.vector.usearch_nodes import keys_at, level0_lists, node_offsets

DIM = 16
N = 2000


def vectors(n: int = N, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype("<f4")


def built(tmp_path, dtype: str = "i8", x: np.ndarray | None = None) -> bytes:
    """A usearch graph of ``x`` (labels 0..n-1) as written into a commit."""
    x = vectors() if x is None else x
    blob, _ = build_graph(get_backend("usearch"), None, [(x, np.arange(len(x)))],
                          metric="cosine", dim=DIM, params=AnnParams(dtype=dtype, build_threads=1),
                          scratch_dir=str(tmp_path), measure=lambda *a: None)
    data = b"".join(bytes(p) for p in blob.parts)
    assert zlib.crc32(data) == blob.crc
    return data


class Lists:
    """Level-0 lists of a writable payload, to cut and fill for a test."""

    def __init__(self, payload: memoryview) -> None:
        self.payload, self.at = payload, layout(payload)
        self.raw = np.frombuffer(payload, np.uint8)
        self.offsets, _ = node_offsets(payload, self.at)
        self.keys = keys_at(self.raw, self.offsets)

    def of(self, slot: int) -> list[int]:
        counts, slots = level0_lists(self.raw, self.offsets[[slot]], self.at)
        return slots[0, : counts[0]].tolist()

    def put(self, slot: int, listed: list[int]) -> None:
        at = int(self.offsets[slot]) + NODE_HEAD
        struct.pack_into(f"<I{len(listed)}I", self.payload, at, len(listed), *listed)

    def orphan(self, slot: int) -> None:
        """Cut every level-0 link to ``slot``."""
        for node in range(self.at.size):
            listed = self.of(node)
            if slot in listed:
                self.put(node, [s for s in listed if s != slot])

    def slot_of(self, key: int) -> int:
        return int(np.flatnonzero(self.keys == np.uint64(key))[0])


def payload_of(data: bytes) -> memoryview:
    header = unpack_graph(data, "usearch")
    start = len(data) - len(header.payload)
    return memoryview(bytearray(data))[start:]


def searched(payload: memoryview, x: np.ndarray, query: int, k: int = 10) -> list[int]:
    """Labels usearch's own search of the patched graph returns for row ``query`` of ``x``."""
    usearch = get_backend("usearch")
    data = bytes(payload)
    head = graph_header("usearch", "cosine", "i8", DIM, N, AnnParams(), 0, len(data))
    index = usearch.open(head + data, dim=DIM, metric="cosine", params=AnnParams(ef_search=64))
    try:
        labels, _ = index.search(x[query : query + 1], k)
        return labels[0].tolist()
    finally:
        index.close()


def test_an_orphaned_node_is_linked_back_in_and_found_again(tmp_path) -> None:
    x = vectors()
    payload = payload_of(built(tmp_path, x=x))
    lists = Lists(payload)
    target = next(s for s in range(N) if s != lists.at.entry and lists.keys[s] == 1234)
    assert unreached_keys(payload).size == 0
    lists.orphan(target)
    lost = unreached_keys(payload).tolist()  # 1234, and nodes only it linked to, if any
    assert 1234 in lost
    assert 1234 not in searched(payload, x, 1234)  # not even its own vector finds it
    assert relink(payload, "cosine") == (len(lost), 0)
    assert unreached_keys(payload).size == 0
    assert searched(payload, x, 1234)[0] == 1234


def test_a_full_list_gives_up_a_link_its_target_does_not_need(tmp_path) -> None:
    x = vectors()
    payload = payload_of(built(tmp_path, x=x))
    lists = Lists(payload)
    target = lists.slot_of(77)
    lists.orphan(target)
    # fill every list that could take the orphan's link: each node's list to capacity
    width = lists.at.connectivity_base
    for node in range(N):
        listed = lists.of(node)
        spare = [s for s in range(N) if s not in listed and s not in (node, target)]
        lists.put(node, listed + spare[: width - len(listed)])
    lost = unreached_keys(payload).tolist()
    assert 77 in lost
    assert relink(payload, "cosine") == (len(lost), 0)
    assert unreached_keys(payload).size == 0  # and no other node lost its last link
    assert searched(payload, x, 77)[0] == 77


@pytest.mark.parametrize("dtype", ["i8", "f32"])
def test_a_graph_build_relinks_before_its_checksum(tmp_path, monkeypatch, dtype) -> None:
    """The bytes a commit writes (and checksums) are the relinked ones, whether the graph
    was saved through a scratch file or held in memory."""
    cut = []
    real = graph_build.relink

    def orphaning(payload, metric):
        lists = Lists(payload)
        slot = lists.slot_of(500)
        lists.orphan(slot)
        cut.append(500 in unreached_keys(payload).tolist())
        return real(payload, metric)

    monkeypatch.setattr(graph_build, "relink", orphaning)
    for scratch in (tmp_path, tmp_path / "missing"):
        blob, _ = build_graph(get_backend("usearch"), None, [(vectors(), np.arange(N))],
                              metric="cosine", dim=DIM,
                              params=AnnParams(dtype=dtype, build_threads=1),
                              scratch_dir=str(scratch), measure=lambda *a: None)
        data = b"".join(bytes(p) for p in blob.parts)
        assert zlib.crc32(data) == blob.crc
        assert unreached_keys(unpack_graph(data, "usearch").payload).size == 0
    assert cut == [True, True]


def test_every_vector_of_a_file_is_found_by_its_own_vector(tmp_path) -> None:
    """End to end: each stored vector is its own nearest neighbour through the graph."""
    x = vectors(1500, seed=3)
    with Memory.create(tmp_path / "m.mv2", dim=DIM,
                       index={"ann_threshold": 100, "lexical": False, "ann_lists": False}) as m:
        m.put_many([{"id": f"f{i}", "text": "t", "embedding": x[i]} for i in range(len(x))])
        m.build_index()
        snap = m._snap()
        ref = snap.toc.find("ann")
        payload = unpack_graph(snap.view.read(ref.offset, ref.length), "usearch").payload
        assert unreached_keys(payload).size == 0
        for i in range(0, len(x), 7):
            assert m.find(vector=x[i], k=1, mode="vector")[0].id == f"f{i}"
