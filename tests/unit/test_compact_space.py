"""Compaction leaves no more dead space than its own runs: its chunks' runs are merged
once they fill a run, not size-tiered as a writer's commits are (each row's run bytes
rewritten once per tier)."""

from __future__ import annotations

import numpy as np
import pytest

from memvid_store import Memory
from memvid_store.engine import compact
from memvid_store.engine.store import merge_filled, merge_tail
from memvid_store.errors import FrameNotFoundError

DIM = 8


def dead_bytes(mem: Memory) -> int:
    info = mem.stats()
    return info.file_bytes - info.live_bytes


def run_bytes(mem: Memory) -> list[int]:
    return [run.ref.length for run in mem._snap().runs]


@pytest.fixture
def filled(tmp_path):
    path = str(tmp_path / "m.mv2")
    rng = np.random.default_rng(5)
    mem = Memory.create(path, dim=DIM, index={"ann_threshold": 10**9})
    for start in range(0, 2400, 200):  # a writer's runs, merged size-tiered
        mem.put_many([{"id": f"f{i}", "text": f"note {i} about topic {i % 37}",
                       "metadata": {"n": i, "kind": f"k{i % 5}"},
                       "embedding": rng.standard_normal(DIM).astype("f4")}
                      for i in range(start, start + 200)])
        mem.seal()
    mem.delete("f7")
    mem.seal()
    yield mem
    mem.close()


def test_a_compaction_keeping_all_history_leaves_only_live_bytes(filled):
    mem = filled
    before = mem.stats()
    assert mem.verify().ok and before.live_bytes < before.file_bytes
    old_history = [v.text for v in mem.history("f7")]
    mem.compact()
    after = mem.stats()
    assert after.file_bytes < before.file_bytes
    assert 0 <= after.file_bytes - after.live_bytes < 4096
    assert [v.text for v in mem.history("f7")] == old_history


def test_verify_notices_a_file_mostly_dead(filled, monkeypatch):
    from memvid_store import space

    mem = filled
    monkeypatch.setattr(space, "DEAD_NOTICE_BYTES", 1 << 20)
    monkeypatch.setattr(space, "DEAD_NOTICE_SHARE", 0.25)

    def dead_share() -> float:
        return dead_bytes(mem) / mem.stats().file_bytes

    def noticed() -> list[str]:
        return [n for n in mem.verify().notices if "dead space" in n]

    assert dead_share() < 0.25 and not noticed()
    for i in range(64):  # small commits: each merge leaves the runs it merged behind
        mem.put_many([{"id": f"f{j}", "text": f"edit {i} of {j}"} for j in range(i, 2400, 64)])
        mem.seal()
    assert dead_share() >= 0.25 and dead_bytes(mem) >= 1 << 20
    assert len(noticed()) == 1 and "compact()" in noticed()[0]
    mem.compact()
    assert dead_share() < 0.01 and not noticed()


def test_compaction_leaves_at_most_its_runs_as_dead_space(filled, monkeypatch):
    mem = filled
    before = {q: [h.id for h in mem.find(q, k=20, mode="lexical")]
              for q in ("topic 3", "note 1200", "about")}
    monkeypatch.setattr(compact, "CHUNK_BYTES", 16 << 10)  # a chunk every 130 versions
    monkeypatch.setattr(compact, "RUN_BYTES", 64 << 10)
    mem.compact()
    runs = run_bytes(mem)
    assert len(runs) >= 3 and all(size >= 64 << 10 for size in runs[:-1])
    # the chunks' runs, each merged into a filled run once: nothing else is dead
    assert dead_bytes(mem) <= sum(runs)
    assert {q: [h.id for h in mem.find(q, k=20, mode="lexical")] for q in before} == before
    assert mem.stats().frames == 2399 and mem.get("f8").text == "note 8 about topic 8"
    with pytest.raises(FrameNotFoundError):
        mem.get("f7")


def test_a_single_chunk_leaves_no_dead_space(filled):
    mem = filled
    mem.compact()  # the default chunk (1/32 of the memory bound) holds the whole file
    # dead: the tables of contents of the new file's commits before its last
    assert len(run_bytes(mem)) == 1 and dead_bytes(mem) < 4096


class _Run:
    """A stand-in for a run: its bytes alone matter to the merge policies."""

    def __init__(self, size: int) -> None:
        self.size = size


@pytest.fixture
def sized(monkeypatch):
    from memvid_store.engine import store

    monkeypatch.setattr(store, "_bytes", lambda run: run.size)
    monkeypatch.setattr(store, "_size", lambda run: run.size)
    monkeypatch.setattr(store, "merge_runs",
                        lambda runs, computed: _Run(sum(r.size for r in runs)))


def _stream(merge, chunks: int, chunk: int, **final) -> int:
    """Run bytes written by ``chunks`` commits of one ``chunk``-byte run each, merged by
    ``merge``; and the merges at the end when ``final``."""
    runs: list = []
    written = 0
    for _ in range(chunks):
        before = {id(r) for r in runs}
        runs = merge([*runs, _Run(chunk)], None)
        written += sum(r.size for r in runs if id(r) not in before)
    if final:
        before = {id(r) for r in runs}
        runs = merge(runs, None, final=True)
        written += sum(r.size for r in runs if id(r) not in before)
    return written


def test_filled_runs_write_each_row_twice_where_tiers_write_it_once_a_tier(sized):
    cap, chunk, chunks = 1000, 40, 400  # 25 chunks fill a run
    filled = _stream(lambda runs, c, **kw: merge_filled(runs, c, cap, **kw), chunks, chunk,
                     final=True)
    tiered = _stream(lambda runs, c: merge_tail(runs, c, cap), chunks, chunk)
    assert filled <= 2 * chunks * chunk
    assert tiered >= 3 * chunks * chunk


def test_filling_runs_never_number_more_than_max_runs(sized):
    from memvid_store.engine.store import MAX_RUNS

    runs: list = []
    for _ in range(500):  # a thousand tiny chunks would fill a run
        runs = merge_filled([*runs, _Run(1)], None, 1000)
        assert len(runs) < MAX_RUNS
    runs = merge_filled(runs, None, 1000, final=True)
    assert len(runs) == 1 and runs[0].size == 500
