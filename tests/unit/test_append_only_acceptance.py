"""An append-only memory's candidates are accepted without reading their rows: every
version is current (``Snapshot.all_live``), so a query of now, without a filter, window or
collection, accepts each candidate. Anything that replaces or deletes a version, and any
query that must test rows, takes the full tests again."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvid_store import Memory
from memvid_store.engine.format import TIME_MAX
from memvid_store.index.acceptance import Acceptance
from memvid_store.index.filters import compile_filter

DIM = 8


def rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype("f4")


def put(mem: Memory, data: np.ndarray, start: int, stop: int, **extra) -> None:
    mem.put_many([{"id": str(i), "text": f"t{i}", "embedding": data[i],
                   "metadata": {"n": i}, **extra} for i in range(start, stop)])


def test_all_live_holds_until_a_version_is_replaced_or_deleted(mem_path):
    data = rows(60)
    with Memory.create(mem_path, dim=DIM) as mem:
        put(mem, data, 0, 20)
        assert mem._snap().all_live()
        mem.seal()
        put(mem, data, 20, 40)  # in the WAL
        assert mem._snap().all_live()
        mem.update("3", text="changed")  # a replaced version, in the WAL
        assert not mem._snap().all_live()
        mem.seal()
        assert not mem._snap().all_live()  # committed: the counters say so
    other = mem_path + ".2"
    with Memory.create(other, dim=DIM) as mem:
        put(mem, data, 0, 20)
        mem.delete("5")
        assert not mem._snap().all_live()


def test_every_candidate_is_accepted_only_when_nothing_must_be_tested(mem_path):
    data = rows(40, 1)
    with Memory.create(mem_path, dim=DIM) as mem:
        put(mem, data, 0, 40)
        snap = mem._snap()
        assert Acceptance(snap, None, None, None)._every
        assert not Acceptance(snap, 123, None, None)._every  # a time: visibility is tested
        assert not Acceptance(snap, None, (0, 10), None)._every  # a window
        assert not Acceptance(snap, None, None, compile_filter({"n": 3}))._every  # a filter
        assert not Acceptance(snap, None, None, None, "notes")._every  # a collection


def test_queries_answer_as_before_through_updates_deletes_and_time(mem_path):
    data = rows(200, 2)
    with Memory.create(mem_path, dim=DIM) as mem:
        put(mem, data, 0, 100)
        time.sleep(0.01)
        before = datetime.now(UTC)
        time.sleep(0.01)
        put(mem, data, 100, 200)
        q = data[150]
        assert mem.find(vector=q, k=1, mode="vector")[0].id == "150"
        assert "150" not in [h.id for h in mem.as_of(before).find(vector=q, k=5,
                                                                      mode="vector")]
        assert mem.find(vector=q, k=3, mode="vector", filter={"n": {"$lt": 100}})[0].id != "150"
        mem.delete("150")
        assert "150" not in [h.id for h in mem.find(vector=q, k=5, mode="vector")]
        mem.update("151", embedding=-data[151])
        hits = mem.find(vector=data[151], k=200, mode="vector")
        assert [h.id for h in hits].count("151") == 1 and hits[0].id != "151"


@pytest.fixture(scope="module")
def forty_frames(tmp_path_factory):
    """The snapshot of a sealed memory of 40 frames, gids 0-39, put ten at a time."""
    mem = Memory.create(str(tmp_path_factory.mktemp("every") / "m.mv2"), dim=DIM)
    data = rows(40, 3)
    for start in range(0, 40, 10):
        put(mem, data, start, start + 10)
        time.sleep(0.002)
    mem.seal()
    yield mem._snap()
    mem.close()


@settings(max_examples=200, deadline=None)
@given(scores=st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.5, 0.7, 0.9, 0.9, 1.0]), max_size=40),
       need=st.integers(1, 12))
def test_taking_every_candidate_keeps_what_testing_each_keeps(forty_frames, scores, need):
    """The first ``need`` candidates and those tied with the last of them, in id order
    within a tie: what the loop testing each candidate (here: a time after every version,
    so each is tested and passes) takes from the same best-first list."""
    snap = forty_frames
    candidates = [(gid, s) for gid, s in zip(range(40), sorted(scores, reverse=True),
                                             strict=False)]
    every = Acceptance(snap, None, None, None)
    tested = Acceptance(snap, 2**62, None, None)
    assert every.every and not tested.every
    fast = every.take(candidates, need)
    slow = tested.take(candidates, need)
    assert [(ref.gid, s) for ref, s in fast] == [(ref.gid, s) for ref, s in slow]



@settings(max_examples=100, deadline=None)
@given(pick=st.one_of(st.none(), st.tuples(st.integers(0, 39), st.integers(-1, 1))))
def test_visibility_of_an_append_only_memory_reads_no_row_and_answers_as_the_rows(
        forty_frames, pick):
    """Every version current: ``visible``, ``valid_to`` and ``is_tombstone`` read no
    row, and agree with the rows' flags and ``vto`` (none a tombstone, every one open)."""
    snap = forty_frames
    assert snap.all_live()
    when = None if pick is None else snap.valid_from(snap.locate(pick[0])) + pick[1]
    for gid in range(40):
        ref = snap.locate(gid)
        to, tombstone = ref.run.item("vto", ref.row), ref.run.item("flags", ref.row) & 1
        assert (snap.valid_to(ref), snap.is_tombstone(ref)) == (to, bool(tombstone))
        rows_say = not tombstone and (
            to == TIME_MAX if when is None else snap.valid_from(ref) <= when < to)
        assert snap.visible(ref, when) == rows_say
