"""Regions read whole (the tantivy files unpacked, the graph checked) are read ahead: a
mapped file read page by page without it is one disk read per 4 KiB out of the cache."""

from __future__ import annotations

import threading

from memvid_store import Memory, WarmupConfig
from memvid_store.index.vector.hnsw_format import graph_segment

from .conftest import view_calls
from .test_graph_walk import graph_file, queries


def test_the_lexical_files_are_read_ahead_before_they_are_unpacked(tmp_path, monkeypatch):
    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        mem.put_many([{"text": f"note {i} about river {i % 7}"} for i in range(300)])
        mem.seal()
    spans = view_calls(monkeypatch, "prefetch")
    with Memory.open(path, readonly=True, cache_dir=str(tmp_path / "cache"),
                     warmup=WarmupConfig(preload_threshold=0, background=False)) as mem:
        assert not spans
        assert mem.find("river", k=3, mode="lexical")
        files = mem._snap().extras["searcher"]._lex_manifest().files
    assert {(o, n) for o, n, _ in files.values()} <= set(spans)


def test_the_graph_is_read_ahead_before_its_checksum(mem_path, opened, monkeypatch):
    mem = graph_file(mem_path, opened, n=800)
    ref = graph_segment(mem._snap(), mem.index_config)
    mem._snap().extras.clear()
    spans = view_calls(monkeypatch, "prefetch")
    mem.find(vector=queries(1, seed=2)[0], k=3, mode="vector")
    assert (ref.offset, ref.length) in spans


def test_a_hybrid_query_opens_the_lexical_index_while_its_vector_half_runs(mem_path,
                                                                          opened,
                                                                          monkeypatch):
    from memvid_store.index.searcher import Searcher

    mem = graph_file(mem_path, opened, n=800)
    q = queries(1, seed=4)[0]
    expected = [h.id for h in mem.find("note 12", vector=q, k=5, mode="hybrid")]
    threads: list[str] = []
    lexical_index = Searcher.lexical_index

    def spy(self):
        threads.append(threading.current_thread().name)
        return lexical_index(self)

    monkeypatch.setattr(Searcher, "lexical_index", spy)
    mem._snap().extras.clear()
    assert [h.id for h in mem.find("note 12", vector=q, k=5, mode="hybrid")] == expected
    assert "memvid-lexical-open" in threads
    threads.clear()
    mem.find("note 13", vector=q, k=5, mode="hybrid")  # opened: no second thread
    assert "memvid-lexical-open" not in threads


def test_many_rows_read_from_disk_are_hinted_to_the_kernel_first(tmp_path, monkeypatch):
    """A subset scan gathers its candidates' rows: when the first few read slowly (from
    disk), the others' pages are hinted before they are read; when they read fast (cached),
    nothing is; the rows are the same either way."""
    import numpy as np

    from memvid_store.index.vector import graph_walk, stored

    x = np.random.default_rng(5).standard_normal((600, 8)).astype("<f4")
    path = tmp_path / "m.mv2"
    with Memory.create(path, dim=8, index={"ann_threshold": 100, "lexical": False}) as mem:
        mem.put_many([{"id": f"v{i}", "text": "t", "embedding": x[i],
                       "metadata": {"team": i % 3}} for i in range(600)])
    answers = []
    for slow, hinted in ((1.0, 0), (-1.0, 200 - stored.PROBE_ROWS)):
        monkeypatch.setattr(graph_walk, "SLOW_READ_S", slow)  # -1: every read is slow
        spans = view_calls(monkeypatch, "prefetch")
        with Memory.open(path, readonly=True,
                         warmup=WarmupConfig(preload_threshold=0, background=False)) as mem:
            answers.append([h.id for h in mem.find(vector=x[7], k=5, mode="vector",
                                                   filter={"team": 1})])
        rows = [s for s in spans if s[1] == 4 * 8]
        assert len(rows) == hinted
    assert answers[0] == answers[1] and answers[0][0] == "v7"
