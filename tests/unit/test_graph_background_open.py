"""A large graph opens in the background while walks answer (numpy loaded or not)."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from memvid_store.engine.format import crc32
from memvid_store.index.damage import DamagedIndexWarning
from memvid_store.index.vector import hnsw_search, paths
from memvid_store.index.vector.exact import ExactScan
from memvid_store.index.vector.hnsw_format import graph_segment
from memvid_store.index.vector.hnsw_search import HnswSearch
from memvid_store.index.vector.numpy_free_walk import NumpyFreeWalk

from .test_graph_walk import graph_file, queries, records, searcher_of

_OPEN = HnswSearch.open


@pytest.fixture
def large(monkeypatch):
    """Every graph counts as large: it opens in the background."""
    monkeypatch.setattr(paths, "BACKGROUND_OPEN_BYTES", 0)


@pytest.fixture
def gate(monkeypatch):
    """Graph opens take until the returned event is set (holding the graph's lock, as a
    slow open does)."""
    release = threading.Event()
    opened = HnswSearch.open

    def held(self):
        with self._lock:
            assert release.wait(30)
        return opened(self)

    monkeypatch.setattr(HnswSearch, "open", held)
    return release


def library_ids(mem, q, k=5) -> list[str]:
    mem._snap().extras.clear()
    vectors = searcher_of(mem).vectors
    _OPEN(vectors.hnsw)  # the library answers (not the walk, however the test gates opens)
    return [h.id for h in mem.find(vector=q, k=k, mode="vector")]


def test_the_walk_answers_while_the_graph_opens(mem_path, opened, large, gate):
    mem = graph_file(mem_path, opened, n=800)
    q = queries(1, seed=3)[0]
    mem._snap().extras.clear()
    vectors = searcher_of(mem).vectors
    walked = [h.id for h in mem.find(vector=q, k=5, mode="vector")]
    assert vectors.walk.seconds > 0 and not vectors.hnsw.opened
    assert vectors.hnsw._stored is None  # no filter: the stored vectors' table is not made
    gate.set()
    vectors.wait_for_graph()
    assert vectors.hnsw.opened and vectors.hnsw.graph()[0] is not None
    spent = vectors.walk.seconds
    assert [h.id for h in mem.find(vector=queries(1, seed=4)[0], k=5, mode="vector")]
    assert vectors.walk.seconds == spent  # the library answered
    assert walked == library_ids(mem, q)


def test_a_query_the_walk_cannot_serve_waits_for_the_graph(mem_path, opened, large, gate,
                                                           monkeypatch):
    mem = graph_file(mem_path, opened, n=800)
    q = queries(1, seed=5)[0]
    expected = library_ids(mem, q)
    monkeypatch.setattr(NumpyFreeWalk, "ranked", lambda self, reqs, accepts: None)
    scanned = []
    exact_ranked = ExactScan.ranked
    monkeypatch.setattr(ExactScan, "ranked",
                        lambda self, *a: scanned.append(1) or exact_ranked(self, *a))
    mem._snap().extras.clear()
    threading.Timer(0.2, gate.set).start()
    assert [h.id for h in mem.find(vector=q, k=5, mode="vector")] == expected
    assert not scanned and searcher_of(mem).vectors.hnsw.opened


def test_small_graphs_open_with_the_first_query(mem_path, opened):
    mem = graph_file(mem_path, opened, n=800)
    assert graph_segment(mem._snap(), mem.index_config).length < paths.BACKGROUND_OPEN_BYTES
    mem._snap().extras.clear()
    mem.find(vector=queries(1, seed=6)[0], k=5, mode="vector")
    vectors = searcher_of(mem).vectors
    assert vectors.hnsw.opened and vectors.walk.seconds == 0 and vectors._opener is None


def test_closing_while_the_graph_opens_closes_it_once_open(mem_path, opened, large, gate,
                                                          monkeypatch):
    mem = graph_file(mem_path, opened, n=800)
    closes = []
    close = HnswSearch.close
    monkeypatch.setattr(HnswSearch, "close", lambda self: closes.append(1) or close(self))
    mem._snap().extras.clear()
    vectors = searcher_of(mem).vectors
    mem.find(vector=queries(1, seed=7)[0], k=5, mode="vector")
    mem._snap().close()  # what a refresh or close does to a retired snapshot
    assert closes == []
    gate.set()
    vectors.wait_for_graph()
    assert closes == [1] and vectors.hnsw.opened


def test_a_failed_background_open_is_retried_by_a_later_query(mem_path, opened, large,
                                                             monkeypatch):
    mem = graph_file(mem_path, opened, n=800)
    q = queries(1, seed=8)[0]
    expected = library_ids(mem, q)
    opened_for_real = HnswSearch.open
    attempts = []

    def flaky(self):
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk went away for a moment")
        return opened_for_real(self)

    monkeypatch.setattr(HnswSearch, "open", flaky)
    mem._snap().extras.clear()
    vectors = searcher_of(mem).vectors
    assert [h.id for h in mem.find(vector=q, k=5, mode="vector")] == expected  # walked
    vectors.wait_for_graph()
    assert not vectors.hnsw.opened
    spent = vectors.walk.seconds
    assert len(mem.find(vector=queries(1, seed=10)[0], k=5, mode="vector")) == 5
    assert vectors.walk.seconds == spent and vectors.hnsw.opened and len(attempts) == 2


def test_a_damaged_graph_found_in_the_background_leaves_the_exact_scan(
        mem_path, opened, large, gate, monkeypatch):
    """The walk reads the graph bounds-checked; the library never gets bytes that fail
    their checksum, and the exact scan answers from then on."""
    mem = graph_file(mem_path, opened, n=800)
    q = queries(1, seed=9)[0]
    monkeypatch.setattr(hnsw_search, "crc32", lambda data: crc32(data) ^ 1)
    mem._snap().extras.clear()
    vectors = searcher_of(mem).vectors
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(mem.find(vector=q, k=5, mode="vector")) == 5
        gate.set()
        vectors.wait_for_graph()
    assert [w.category for w in caught] == [DamagedIndexWarning]
    assert vectors.hnsw.opened and vectors.hnsw.graph() == (None, 0)
    later = queries(1, seed=10)[0]  # not the walked query, which the result cache keeps
    assert [h.id for h in mem.find(vector=later, k=5, mode="vector")] == exact_ids(later,
                                                                                  800, 5)


def exact_ids(q: list[float], n: int, k: int) -> list[str]:
    """The ``k`` nearest of ``graph_file``'s records by cosine, computed here."""
    rows = np.array([r["embedding"] for r in records(n, seed=1)])
    scores = rows @ np.array(q) / np.linalg.norm(rows, axis=1)
    return [f"r{i:05d}" for i in np.argsort(-scores, kind="stable")[:k]]
