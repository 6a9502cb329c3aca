"""Graph search widths calibrated at build time on held-out vectors: the recall target
holds for queries the graph has never seen, is recorded in the file (kept when too few
vectors are added to measure), and ``ann_ef_search`` still overrides it."""

from __future__ import annotations

import numpy as np
import pytest

from memvid_store import Memory
from memvid_store.config import IndexConfig
from memvid_store.errors import InvalidInputError
from memvid_store.index.vector.hnsw_format import DEFAULT_EF_SEARCH, round_width, search_width

DIM = 32
N = 4000


def vectors(n: int, seed: int) -> np.ndarray:
    """Isotropic Gaussian rows: the hard case for a graph (no clusters to follow)."""
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype("<f4")


def build(path: str, data: np.ndarray, **index) -> Memory:
    """A memory with an HNSW graph (no cluster lists: they would be the index)."""
    m = Memory.create(path, dim=DIM, index={"ann_threshold": 500, "ann_lists": False,
                                            **index})
    m.put_many([{"text": f"t{i}", "id": str(i), "embedding": row} for i, row in enumerate(data)])
    m.seal()
    return m


def held_out_recall(m: Memory, data: np.ndarray, seed: int) -> float:
    queries = vectors(100, seed)
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    truth = np.argsort(-(queries @ unit.T), axis=1)[:, :10]
    found = sum(len({int(h.id) for h in m.find(vector=q, k=10, mode="vector")}
                    & set(want.tolist())) for q, want in zip(queries, truth, strict=True))
    return found / 1000


@pytest.mark.parametrize("dtype", ["i8", "f32"])
def test_calibrated_width_keeps_recall_for_new_queries(mem_path: str, dtype: str) -> None:
    data = vectors(N, 1)
    m = build(mem_path, data, ann_dtype=dtype)
    try:
        meta = m._snap().toc.find("ann").meta
        assert meta["recall"] >= 0.96 and meta["recall_sample"] == 256
        assert held_out_recall(m, data, 2) >= 0.93  # 1,000 neighbours: the sample's noise
    finally:
        m.close()


def test_a_lower_target_gives_a_narrower_search(tmp_path) -> None:
    data = vectors(N, 3)
    widths = []
    for target in (0.7, 0.99):
        m = build(str(tmp_path / f"{target}.mv2"), data, recall_target=target)
        widths.append(m._snap().toc.find("ann").meta["ef_search"])
        m.close()
    assert widths[0] < widths[1]


def test_graphs_extended_later_are_calibrated_over_all_their_vectors(mem_path: str) -> None:
    data = vectors(2 * N, 4)
    m = build(mem_path, data[:N])
    try:
        m.put_many([{"text": f"t{i}", "id": str(i), "embedding": data[i]}
                    for i in range(N, 2 * N)])
        m.seal()
        meta = m._snap().toc.find("ann").meta
        assert meta["count"] == 2 * N and meta["recall"] >= 0.96
        assert held_out_recall(m, data, 5) >= 0.93
    finally:
        m.close()


def test_a_few_new_vectors_keep_the_graphs_width(mem_path: str) -> None:
    data = vectors(N + 50, 7)
    m = build(mem_path, data[:N])
    try:
        before = m._snap().toc.find("ann").meta
        m.put_many([{"text": f"t{i}", "id": str(i), "embedding": data[i]}
                    for i in range(N, N + 50)])
        m.build_index()  # a seal leaves a tail this short to the exact scan
        after = m._snap().toc.find("ann").meta
        assert after["count"] == N + 50
        assert (after["ef_search"], after["recall"]) == (before["ef_search"], before["recall"])
    finally:
        m.close()


def test_ann_ef_search_overrides_the_calibrated_width(mem_path: str) -> None:
    m = build(mem_path, vectors(N, 6))
    try:
        ref = m._snap().toc.find("ann")
        assert search_width(ref, IndexConfig()) == ref.meta["ef_search"]
        assert search_width(ref, IndexConfig(ann_ef_search=40)) == 40
        legacy = type(ref)(ref.kind, ref.offset, ref.length, ref.crc,
                           {k: v for k, v in ref.meta.items() if k != "ef_search"})
        assert search_width(legacy, IndexConfig()) == DEFAULT_EF_SEARCH
    finally:
        m.close()


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, True, "0.9", float("nan")])
def test_recall_target_is_checked(bad) -> None:
    with pytest.raises(InvalidInputError, match="recall_target"):
        IndexConfig(recall_target=bad)


class PlateauIndex:
    """A stand-in graph that finds the exact top 10 of a share of the queries growing
    with the width, up to 90 %: no width reaches the 0.96 goal."""

    def __init__(self, data: np.ndarray, held: np.ndarray) -> None:
        unit = data / np.linalg.norm(data, axis=1, keepdims=True)
        self.unit = np.delete(unit, held, axis=0)
        self.labels = np.delete(np.arange(len(data)), held)

    def search(self, queries: np.ndarray, depth: int, ef: int) -> tuple[np.ndarray, None]:
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        top = self.labels[np.argsort(-(q @ self.unit.T), axis=1)[:, :depth]]
        found = int(len(q) * min(0.9, ef / 128))
        top[found:] = -1
        return top, None


def test_a_recall_plateau_below_the_goal_takes_the_narrowest_width_that_reaches_it() -> None:
    from memvid_store.index.vector.calibrate import calibrate

    data = vectors(3000, 8)
    held = np.arange(0, 3000, 12)  # 250 queries
    index = PlateauIndex(data, held)
    got = calibrate(index, [(data, np.arange(len(data)))], data[held], held,
                    metric="cosine", dtype="f32", target=0.95)
    assert got is not None and got.ef_search == 128  # not the widest, 4096
    assert abs(got.recall - 0.9) < 0.01


@pytest.mark.parametrize("slice_rows", [1, 7, 10_000])
def test_the_samples_exact_answer_is_the_same_whatever_the_slices(monkeypatch,
                                                                   slice_rows: int) -> None:
    """The sample's exact top K, scored a slice of rows at a time across blocks of uneven
    sizes, is numpy's top K over every vector not held out."""
    from memvid_store.index.vector import calibrate as calibration

    monkeypatch.setattr(calibration, "SLICE_ROWS", slice_rows)
    data = vectors(600, 8)
    gids = np.arange(1000, 1600)
    held = gids[::9]
    blocks = [(data[a:b], gids[a:b]) for a, b in ((0, 5), (5, 260), (260, 261), (261, 600))]
    queries = calibration.scoring.prepare_queries(data[::9], DIM, "cosine")
    released = []
    got = calibration._exact_top(blocks, queries, held, "cosine", released.append)
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    scores = queries @ unit.T
    scores[:, np.isin(gids, held)] = -np.inf
    want = gids[np.argsort(-scores, axis=1, kind="stable")[:, : calibration.K]]
    assert [set(row) for row in got.tolist()] == [set(row) for row in want.tolist()]
    assert len(released) == len(blocks)


def test_a_widened_round_searches_wider_with_the_square_root_of_its_depth() -> None:
    assert round_width(512, 40, 40) == 512  # the first round: the calibrated width
    assert round_width(16, 40, 40) == 40  # never narrower than the candidates asked for
    assert round_width(512, 160, 40) == 1024  # four times the depth, twice the width
    assert round_width(100, 640, 40) == 640
    widths = [round_width(512, depth, 40) for depth in range(40, 3000, 37)]
    assert widths == sorted(widths)


def test_filtered_queries_widen_their_graph_rounds(mem_path: str, monkeypatch) -> None:
    """A filter admitting a tenth of the vectors leaves the first round short of k: the
    next round asks for four times the candidates at twice the width."""
    from memvid_store.index.vector import hnsw, numpy_free_subset, subset_scan

    for module in (subset_scan, numpy_free_subset):  # the graph answers, not a subset scan
        monkeypatch.setattr(module, "SUBSET_MAX", 0)
    data = vectors(N, 9)
    m = Memory.create(mem_path, dim=DIM, index={"ann_threshold": 500, "ann_ef_search": 128,
                                                "ann_lists": False})  # the graph answers
    m.put_many([{"text": f"t{i}", "id": str(i), "embedding": row, "metadata": {"part": i % 10}}
                for i, row in enumerate(data)])
    m.build_index()
    rounds: list[tuple[int, int]] = []
    search = hnsw._UsearchIndex.search

    def spy(self, queries, k, *, ef=None, ordered=True):
        rounds.append((k, ef))
        return search(self, queries, k, ef=ef, ordered=ordered)

    monkeypatch.setattr(hnsw._UsearchIndex, "search", spy)
    try:
        query = vectors(1, 10)[0]
        hits = m.find(vector=query, k=10, mode="vector", filter={"part": 0})
        assert len(hits) == 10 and all(h.metadata["part"] == 0 for h in hits)
        assert rounds[:2] == [(40, 128), (160, 256)]  # not (160, 160): the depth alone
    finally:
        m.close()


def test_a_filter_the_graph_rarely_finds_scores_its_admitted_versions(mem_path: str,
                                                                      monkeypatch) -> None:
    """The admitted frames' vectors lie away from the query: the graph widens past
    WIDEN_TO_SUBSET candidates without k passing, then the admitted versions (more than
    SUBSET_MAX, at most WIDE_SUBSET_MAX) are scored exactly: the exact top k among them."""
    from memvid_store.index.vector import hnsw, hnsw_search, numpy_free_subset, subset_scan

    for module in (subset_scan, numpy_free_subset):  # the first look finds too many
        monkeypatch.setattr(module, "SUBSET_MAX", 20)
    data = vectors(N, 11)
    data[:, 0] += np.where(np.arange(N) % 40 == 0, -3.0, 3.0)  # the admitted: the far side
    m = Memory.create(mem_path, dim=DIM, index={"ann_threshold": 500, "ann_lists": False})
    m.put_many([{"text": f"t{i}", "id": str(i), "embedding": row,
                 "metadata": {"side": "far" if i % 40 == 0 else "near"}}
                for i, row in enumerate(data)])
    m.build_index()
    rounds: list[int] = []
    search = hnsw._UsearchIndex.search
    scans: list[int] = []
    ranked = subset_scan.SubsetScan.ranked

    def graph_spy(self, queries, k, *, ef=None, ordered=True):
        rounds.append(k)
        return search(self, queries, k, ef=ef, ordered=ordered)

    def subset_spy(self, req, accept, limit=None):
        scans.append(limit)
        return ranked(self, req, accept, limit)

    monkeypatch.setattr(hnsw._UsearchIndex, "search", graph_spy)
    monkeypatch.setattr(subset_scan.SubsetScan, "ranked", subset_spy)
    try:
        query = data[1] / np.linalg.norm(data[1])  # a near one
        hits = m.find(vector=query, k=10, mode="vector", filter={"side": "far"})
        far = data[::40] / np.linalg.norm(data[::40], axis=1, keepdims=True)
        scores = far @ query
        want = [str(40 * i) for i in sorted(range(len(far)), key=lambda i: (-scores[i], i))]
        assert [h.id for h in hits] == want[:10]
        assert scans == [None, hnsw_search.WIDE_SUBSET_MAX]  # too many, then scored
        assert rounds and max(rounds) <= hnsw_search.WIDEN_TO_SUBSET  # none past the switch
    finally:
        m.close()


def test_a_filter_the_graph_finds_often_stays_on_the_graph(mem_path: str,
                                                           monkeypatch) -> None:
    """A fifth of the frames pass: a round short of k still finds most of it, so the
    next round is the graph's, not a scan of the admitted versions."""
    from memvid_store.index.vector import hnsw_search, numpy_free_subset, subset_scan

    for module in (subset_scan, numpy_free_subset):
        monkeypatch.setattr(module, "SUBSET_MAX", 20)
    data = vectors(N, 12)
    m = Memory.create(mem_path, dim=DIM, index={"ann_threshold": 500})
    m.put_many([{"text": f"t{i} note", "id": str(i), "embedding": row,
                 "metadata": {"part": i % 5}} for i, row in enumerate(data)])
    m.build_index()
    scans: list[int | None] = []
    ranked = subset_scan.SubsetScan.ranked

    def subset_spy(self, req, accept, limit=None):
        scans.append(limit)
        return ranked(self, req, accept, limit)

    monkeypatch.setattr(subset_scan.SubsetScan, "ranked", subset_spy)
    try:
        for i in range(5):
            query = vectors(1, 20 + i)[0]
            for text in (None, "note"):  # vector, then hybrid (50 vector candidates)
                hits = m.find(text, vector=query, k=10, filter={"part": 0})
                assert len(hits) == 10 and all(h.metadata["part"] == 0 for h in hits)
        assert scans and hnsw_search.WIDE_SUBSET_MAX not in scans
    finally:
        m.close()
