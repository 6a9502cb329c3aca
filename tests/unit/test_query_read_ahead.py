"""A query reading a mapped file whose pages come from disk: once one of its reads is as
slow as a disk read, the kernel is told the pages of its other reads (its cluster lists,
its rescored rows, its hits' records) before they are read. The answers are the same;
only the order of the page reads changes."""

from __future__ import annotations

import numpy as np
import pytest

from memvid_store import Memory
from memvid_store.engine import snapshot as snapshot_module
from memvid_store.index.vector import graph_walk, lists_search

from .conftest import covered, view_calls

DIM = 16


@pytest.fixture(scope="module")
def lists_file(tmp_path_factory):
    """A file of 3,000 clustered vectors indexed by cluster lists, with metadata."""
    path = tmp_path_factory.mktemp("ahead") / "m.mv2"
    centers = np.random.default_rng(7).standard_normal((12, DIM))
    rng = np.random.default_rng(8)
    data = (centers[rng.integers(0, 12, 3000)] + 0.5 * rng.standard_normal((3000, DIM)))
    with Memory.create(path, dim=DIM, index={"ann_threshold": 1000, "lexical": False},
                       graph_background=False) as mem:
        mem.put_many([{"id": f"f{i}", "text": f"frame {i}", "metadata": {"i": i},
                       "embedding": row.astype("f4")} for i, row in enumerate(data)])
        mem.build_index()
    return path, data.astype("f4")


@pytest.fixture
def prefetched(monkeypatch):
    """The spans the kernel is told about."""
    return view_calls(monkeypatch, "prefetch")


def _slow(monkeypatch, seconds: float) -> None:
    """Reads slower than ``seconds`` count as from disk (-1: every read; 1: none)."""
    monkeypatch.setattr(lists_search, "SLOW_READ_S", seconds)
    monkeypatch.setattr(graph_walk, "SLOW_READ_S", seconds)
    monkeypatch.setattr(snapshot_module, "SLOW_RECORD_S", seconds)


def _answers(path, queries):
    with Memory.open(path, readonly=True, warmup="none") as mem:
        return [[(h.id, h.score, h.text, h.metadata) for h in
                 mem.find(vector=q, k=10, mode="vector")] for q in queries]


def test_slow_reads_tell_the_kernel_the_rest_and_change_no_answer(lists_file, prefetched,
                                                                  monkeypatch):
    path, data = lists_file
    queries = data[::300] + 0.01
    _slow(monkeypatch, 1.0)
    calm = _answers(path, queries)
    assert not prefetched
    _slow(monkeypatch, -1.0)
    assert _answers(path, queries) == calm
    assert any(size == 4 * DIM for _, size in prefetched)  # candidates' rows to rescore
    with Memory.open(path, readonly=True, warmup="none") as mem:
        head = mem._snap().extras["searcher"].vectors.lists.graph()[0].head
        lists = {head.span(j) for j in range(head.header.nlist)}
    assert lists & set(prefetched)  # the cluster lists a query probes


def test_a_slow_record_announces_the_payloads_of_the_others(lists_file, prefetched,
                                                            monkeypatch):
    path, _ = lists_file
    _slow(monkeypatch, -1.0)
    with Memory.open(path, readonly=True, warmup="none") as mem:
        snap = mem._snap()
        refs = [snap.locate(g) for g in (5, 900, 2500)]
        want = [snap.record(r, cached=False) for r in refs]
        snap.frame_cache.clear()
        prefetched.clear()
        assert snap.records(refs) == want
        payloads = {(r.run.item("poff", r.row), r.run.item("plen", r.row)) for r in refs[1:]}
        # the first record read alone, the rest ahead
        assert all(covered(span, prefetched) for span in payloads)
        assert not covered((refs[0].run.item("poff", refs[0].row),
                            refs[0].run.item("plen", refs[0].row)), prefetched)


def test_cached_records_are_not_read_ahead(lists_file, prefetched, monkeypatch):
    path, _ = lists_file
    _slow(monkeypatch, -1.0)
    with Memory.open(path, readonly=True, warmup="none") as mem:
        snap = mem._snap()
        refs = [snap.locate(g) for g in (5, 900, 2500)]
        snap.records(refs)  # now in the frame cache
        prefetched.clear()
        snap.read_ahead(refs)
        assert prefetched == []
