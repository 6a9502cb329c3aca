"""Stateful model test: random operations on a real Memory checked against a plain-Python model.

The model keeps every version of every id with its exact record time (``valid_from``). The
record time of each write is read back once from the store, checked to lie between the
wall-clock times taken around the call and to be later than every earlier write, and then
used as the model's truth; everything else (content, order, visibility at any past time,
history, compaction) is predicted by the model alone.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from memvid_store import (
    DimensionMismatchError,
    Frame,
    FrameNotFoundError,
    HistoryUnavailableError,
    Memory,
)
from memvid_store.engine import compact as compact_module
from memvid_store.engine import store as store_module
from memvid_store.types import from_us, to_us

DIM = 3
WAL_SIZE = 1 << 20
POOL = ["a", "b", "c", "d", "e", "é/ü", "k 7", "🙂", "x" * 40]
T0 = datetime(2024, 1, 1, tzinfo=UTC)
WORDS = ["alpha ", "beta ", "gamma ", "delta ", "epsilon ", "zeta ", "eta "]
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8)),
         timezone(timedelta(hours=14))]

# ------------------------------------------------------------------------ strategies

created_ats = st.one_of(
    st.none(),
    st.sampled_from([T0, T0 + timedelta(days=1), T0 + timedelta(microseconds=1)]),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1),
                 timezones=st.sampled_from(ZONES)),
)
embeddings = st.one_of(
    st.none(),
    st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=DIM,
             max_size=DIM),
)
json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6),
)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=6,
)
metadatas = st.one_of(st.none(), st.dictionaries(st.text(max_size=6), json_values, max_size=3))
tag_lists = st.one_of(st.none(), st.lists(st.text(min_size=1, max_size=5), max_size=3))
ids = st.one_of(st.none(), st.sampled_from(POOL))
records = st.fixed_dictionaries(
    {"text": st.text(max_size=20), "id": ids},
    optional={"embedding": embeddings, "metadata": metadatas, "tags": tag_lists,
              "created_at": created_ats},
)
updates = st.fixed_dictionaries(
    {},
    optional={"text": st.text(max_size=20), "metadata": st.dictionaries(st.text(max_size=4),
                                                                        json_leaf, max_size=2),
              "tags": st.lists(st.text(min_size=1, max_size=5), max_size=2),
              "created_at": created_ats.filter(lambda d: d is not None),
              "embedding": embeddings},
)


def now_us() -> int:
    """Wall-clock µs since the epoch (the clock the engine stamps record times with)."""
    return time.time_ns() // 1000


def big_records(rnd: random.Random, count: int, size: int, named: bool) -> list[dict[str, Any]]:
    """Records with about ``size`` characters of text each; every other one has an embedding.

    The text is random words repeated in long runs: cheap to decompress on every read.
    """
    return [{"text": "".join(rnd.choice(WORDS) * 400 for _ in range(size // 2400)),
             "id": rnd.choice(POOL) if named else None,
             "embedding": array("f", [rnd.random() for _ in range(DIM)]).tolist()
             if i % 2 else None}
            for i in range(count)]


# ----------------------------------------------------------------------------- model


@dataclass
class MVersion:
    """One version of an id as the model predicts it."""

    gid: int  # insertion order over all versions
    version: int
    tombstone: bool
    valid_from: int  # record time, µs
    text: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    created_at: int = 0
    embedding: list[float] | None = None


@dataclass
class Generation:
    """A commit generation and the wall-clock bracket its commit time lies in."""

    number: int
    lo: int
    hi: int


@dataclass
class State:
    """The generation read right after a write, and the model's state then."""

    number: int
    time: int  # the write's record time (the commit's, when the write made a commit)
    frames: list[tuple[str, int, str]]  # (id, version, text) of the timeline, frozen


class Model:
    """Per-id version chains, with visibility and compaction rules on record time."""

    def __init__(self) -> None:
        self.chains: dict[str, list[MVersion]] = {}
        self.known: list[str] = []  # every id ever written, first-write order
        self.next_gid = 0
        self.floor: int | None = None
        self.op_times: list[int] = []
        self.version_base = 0  # the highest version number compaction dropped

    def _new(self, fid: str, rt: int, **fields: Any) -> MVersion:
        chain = self.chains.setdefault(fid, [])
        if fid not in self.known:
            self.known.append(fid)
        v = MVersion(self.next_gid, chain[-1].version + 1 if chain else self.version_base + 1,
                     valid_from=rt, **fields)
        self.next_gid += 1
        chain.append(v)
        return v

    def put(self, recs: list[dict[str, Any]], fids: list[str], rt: int) -> None:
        for rec, fid in zip(recs, fids, strict=True):
            created = rec.get("created_at")
            self._new(fid, rt, tombstone=False, text=rec["text"],
                      metadata=dict(rec.get("metadata") or {}), tags=list(rec.get("tags") or []),
                      created_at=rt if created is None else to_us(created),
                      embedding=rec.get("embedding"))
        self.op_times.append(rt)

    def update(self, fid: str, changes: dict[str, Any], rt: int) -> MVersion:
        old = self.chains[fid][-1]
        fields = {"tombstone": False, "text": old.text, "metadata": old.metadata,
                  "tags": old.tags, "created_at": old.created_at, "embedding": old.embedding}
        for key, value in changes.items():
            fields[key] = to_us(value) if key == "created_at" else value
        self.op_times.append(rt)
        return self._new(fid, rt, **fields)

    def delete(self, fid: str, rt: int) -> None:
        self._new(fid, rt, tombstone=True)
        self.op_times.append(rt)

    def compact(self, floor: int | None) -> None:
        """Drop content versions replaced at or before the floor and tombstones up to it."""
        if self.floor is not None and (floor is None or floor < self.floor):
            floor = self.floor
        self.floor = floor
        if floor is None:
            return
        for fid, chain in list(self.chains.items()):
            kept = []
            for i, v in enumerate(chain):
                to = chain[i + 1].valid_from if i + 1 < len(chain) else math.inf
                if (v.valid_from if v.tombstone else to) > floor:
                    kept.append(v)
                else:
                    self.version_base = max(self.version_base, v.version)
            if kept:
                self.chains[fid] = kept
            else:
                del self.chains[fid]

    # -------------------------------------------------------------- predictions

    def visible_chain(self, fid: str, at: int | None) -> list[MVersion]:
        chain = self.chains.get(fid, [])
        return chain if at is None else [v for v in chain if v.valid_from <= at]

    def current(self, fid: str, at: int | None) -> MVersion | None:
        chain = self.visible_chain(fid, at)
        return chain[-1] if chain and not chain[-1].tombstone else None

    def timeline(self, at: int | None) -> list[tuple[str, MVersion]]:
        live = [(fid, v) for fid in self.chains if (v := self.current(fid, at)) is not None]
        return sorted(live, key=lambda item: (item[1].created_at, item[1].gid))

    def history(self, fid: str, at: int | None) -> list[tuple[MVersion, int | None]] | None:
        """Content versions with their expected valid_to; None when the id is unknown at ``at``."""
        chain = self.visible_chain(fid, at)
        if not chain:
            return None
        return [(v, chain[i + 1].valid_from if i + 1 < len(chain) else None)
                for i, v in enumerate(chain) if not v.tombstone]

    def counts(self) -> tuple[int, int, int]:
        """(live frames, stored versions, tombstones)."""
        versions = [v for chain in self.chains.values() for v in chain]
        live = sum(1 for fid in self.chains if self.current(fid, None) is not None)
        return live, len(versions), sum(v.tombstone for v in versions)


# ---------------------------------------------------------------------------- checks


def assert_frame(frame: Frame, fid: str, v: MVersion, *, embedding: bool = True) -> None:
    got = (frame.id, frame.text, frame.metadata, frame.tags, to_us(frame.created_at),
           frame.version, to_us(frame.valid_from))
    want = (fid, v.text, v.metadata, v.tags, v.created_at, v.version, v.valid_from)
    assert got == want
    assert frame.created_at.tzinfo is not None
    if embedding:
        assert frame.embedding == v.embedding


def check_view(view: Any, model: Model, at: int | None, *, full: bool = False) -> None:
    """Everything readable through ``view`` equals the model's state at record time ``at``.

    ``full`` adds the timeline's filters, ``ids``, ``len`` and ``in``.
    """
    expected = model.timeline(at)
    frames = view.timeline()
    assert [(f.id, f.version) for f in frames] == [(fid, v.version) for fid, v in expected]
    for frame, (fid, v) in zip(frames, expected, strict=True):
        assert_frame(frame, fid, v)
        assert frame.valid_to is None
    if full:
        assert len(view) == len(expected)
        assert view.ids() == [fid for fid, _ in expected]
        rev = view.timeline(reverse=True)
        assert [(f.id, f.version) for f in rev] == [(fid, v.version)
                                                    for fid, v in reversed(expected)]
    if full and expected:
        pivot = expected[len(expected) // 2][1].created_at
        since = [fid for fid, v in expected if v.created_at >= pivot]
        until = [fid for fid, v in expected if v.created_at < pivot]
        assert [f.id for f in view.timeline(since=from_us(pivot))] == since
        assert [f.id for f in view.timeline(until=from_us(pivot))] == until
        assert [f.id for f in view.timeline(limit=2)] == [fid for fid, _ in expected[:2]]
    for fid in model.known:
        cur = model.current(fid, at)
        if cur is None:
            with pytest.raises(FrameNotFoundError):
                view.get(fid)
            assert not full or fid not in view
        else:
            assert_frame(view.get(fid), fid, cur, embedding=False)
            assert not full or fid in view
        hist = model.history(fid, at)
        if hist is None:
            with pytest.raises(FrameNotFoundError):
                view.history(fid)
            continue
        got = view.history(fid)
        assert [f.version for f in got] == [v.version for v, _ in hist]
        for frame, (v, to) in zip(got, hist, strict=True):
            assert_frame(frame, fid, v, embedding=False)
            assert (None if frame.valid_to is None else to_us(frame.valid_to)) == to


# ------------------------------------------------------------------------- machine


class MemoryMachine(RuleBasedStateMachine):
    """Random writes, seals, reopens and compactions against the model."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="mv2-model-")
        self.path = os.path.join(self.dir, "model.mv2")
        self.model = Model()
        self.marks: list[int] = []
        self.generations: list[Generation] = []
        self.states: list[State] = []
        self.mem: Memory | None = None
        self.last_rt = 0

    @initialize(dim=st.sampled_from([None, DIM]))
    def create(self, dim: int | None) -> None:
        lo = now_us()
        self.mem = Memory.create(self.path, dim=dim, wal_size=WAL_SIZE, sync=False,
                                 lock_timeout=0)
        self.generations.append(Generation(self.mem.generation, lo, now_us()))

    def teardown(self) -> None:
        if self.mem is not None:
            self.mem.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    def _record_time(self, fid: str, lo: int, hi: int, *, deleted: bool = False) -> int:
        """Record time of the write just made to ``fid``, checked against wall clock."""
        last = self.mem.history(fid)[-1]
        rt = to_us(last.valid_to if deleted else last.valid_from)
        assert lo <= rt <= hi, (lo, rt, hi)
        assert rt > self.last_rt
        self.last_rt = rt
        return rt

    def _mark(self) -> tuple[int, int]:
        """(generation, number of commits) before a write."""
        return self.mem.generation, len(self.mem.commits())

    def _wrote(self, before: tuple[int, int], rt: int) -> None:
        """After one write: the generation moved by one, plus one per commit the write made
        (a batch committed directly, an automatic commit of a full WAL); remember it with
        the model's state now."""
        gen, commits = before
        log = self.mem.commits()
        assert self.mem.generation == gen + 1 + len(log) - commits
        if log[-1][0] == self.mem.generation:  # a commit's generation names its commit time
            rt = to_us(log[-1][1])
        frames = [(fid, v.version, v.text) for fid, v in self.model.timeline(None)]
        self.states.append(State(self.mem.generation, rt, frames))

    def _committed(self, before: int, lo: int) -> None:
        """Remember the generation of a commit made between ``lo`` and now."""
        gen = self.mem.generation
        assert gen >= before
        if gen > before:
            hi = now_us()
            commit_time = to_us(dict(self.mem.commits())[gen])
            assert lo <= commit_time <= hi
            # the state of a generation is the state at its commit time: writes of the same
            # call stamped after an automatic commit are not part of it
            self.generations.append(Generation(gen, lo, commit_time))

    def live(self) -> list[str]:
        return [fid for fid, _ in self.model.timeline(None)]

    def do_update(self, fid: str, changes: dict[str, Any]) -> None:
        before, lo = self._mark(), now_us()
        version = self.mem.update(fid, **changes)
        rt = self._record_time(fid, lo, now_us())
        assert self.model.update(fid, changes, rt).version == version
        self._wrote(before, rt)

    def do_delete(self, fid: str) -> None:
        before, lo = self._mark(), now_us()
        self.mem.delete(fid)
        rt = self._record_time(fid, lo, now_us(), deleted=True)
        self.model.delete(fid, rt)
        self._wrote(before, rt)

    def _times(self, rnd: random.Random) -> list[int]:
        """Record times to check as_of at: marks plus boundaries of some past writes."""
        ops = self.model.op_times
        picked = rnd.sample(ops, min(4, len(ops)))
        times = list(self.marks)
        for rt in picked:
            times += [rt - 1, rt]
        if self.model.floor is not None:
            times += [self.model.floor - 1, self.model.floor]
        return sorted(set(times))

    def _check_past(self, view: Memory, rnd: random.Random) -> None:
        floor = self.model.floor
        for t in self._times(rnd):
            if floor is not None and t < floor:
                with pytest.raises(HistoryUnavailableError):
                    view.as_of(from_us(t))
                continue
            check_view(view.as_of(from_us(t)), self.model, t)
        for gen in self.generations:
            if floor is not None and gen.hi < floor:
                with pytest.raises(HistoryUnavailableError):
                    view.as_of(gen.number)
            elif floor is None or gen.lo >= floor:
                check_view(view.as_of(gen.number), self.model, gen.hi)
        self._check_states(view, rnd)

    def _check_states(self, view: Memory, rnd: random.Random) -> None:
        """as_of(the generation read after a write) is the state recorded then: its
        timeline for every write, everything for a few."""
        assert view.generation == self.mem.generation
        floor = self.model.floor
        full = rnd.sample(self.states, min(3, len(self.states)))
        for state in self.states:
            if floor is not None and state.time < floor:
                with pytest.raises(HistoryUnavailableError):
                    view.as_of(state.number)
                continue
            past = view.as_of(state.number)
            assert [(f.id, f.version, f.text) for f in past.timeline()] == state.frames
            if state in full:
                check_view(past, self.model, state.time, full=True)

    # -------------------------------------------------------------------- rules

    @rule(rec=records)
    def put(self, rec: dict[str, Any]) -> None:
        before, lo = self._mark(), now_us()
        fid = self.mem.put(**rec)
        rt = self._record_time(fid, lo, now_us())
        if rec["id"] is not None:
            assert fid == rec["id"]
        self.model.put([rec], [fid], rt)
        self._wrote(before, rt)

    @rule(recs=st.lists(records, min_size=1, max_size=5), dup=st.booleans(),
          text=st.text(max_size=5), seal_after=st.booleans())
    def put_many(self, recs: list[dict[str, Any]], dup: bool, text: str,
                 seal_after: bool = False) -> None:
        if dup:  # the same id twice in one batch: the later record is the current version
            recs = [*recs, {"text": text, "id": recs[0]["id"] or "dup"}]
            recs[0] = {**recs[0], "id": recs[-1]["id"]}
        before, lo = self._mark(), now_us()
        fids = self.mem.put_many(recs)
        rt = self._record_time(fids[-1], lo, now_us())
        for rec, fid in zip(recs, fids, strict=True):
            if rec["id"] is not None:
                assert fid == rec["id"]
        self.model.put(recs, fids, rt)
        self._wrote(before, rt)
        if seal_after:  # many small commits: many runs, merged size-tiered
            before, lo = self.mem.generation, now_us()
            self.mem.seal()
            self._committed(before, lo)

    @rule(count=st.integers(1, 8), size=st.sampled_from([2_000, 20_000, 70_000]),
          seed=st.integers(0, 2**16), named=st.booleans())
    def bulk(self, count: int, size: int, seed: int, named: bool) -> None:
        """Large batches: through the WAL, or committed directly when over wal_size / 4."""
        recs = big_records(random.Random(seed), count, size, named)
        before, lo = self._mark(), now_us()
        fids = self.mem.put_many(recs)
        rt = self._record_time(fids[-1], lo, now_us())
        self.model.put(recs, fids, rt)
        self._wrote(before, rt)

    @rule(size=st.sampled_from([100_000, 200_000]), seed=st.integers(0, 2**16),
          named=st.booleans())
    def fill_wal(self, size: int, seed: int, named: bool) -> None:
        """Single puts until the WAL overflows: a put seals the earlier ones on its own."""
        rnd = random.Random(seed)
        start = self.mem.generation
        auto: list[tuple[int, int]] = []  # (generation, index of the put that sealed)
        times: list[int] = []
        for i in range(WAL_SIZE // size + 2):
            before = len(self.mem.commits())
            self.put(big_records(rnd, 1, size, named)[0])
            times.append(self.model.op_times[-1])
            if len(self.mem.commits()) > before:
                auto.append((self.mem.commits()[-1][0], i))
        assert self.mem.generation > start and auto
        commit_times = {g: to_us(t) for g, t in self.mem.commits()}
        for gen, i in auto:  # committed before put i took its record time, after put i - 1
            assert (i == 0 or times[i - 1] < commit_times[gen]) and commit_times[gen] < times[i]
            self.generations.append(Generation(gen, commit_times[gen], commit_times[gen]))

    @rule(kind=st.sampled_from(["naive", "nan", "dim", "text", "key", "value", "unknown"]),
          prefix=st.lists(records, max_size=3))
    def bad_put_many(self, kind: str, prefix: list[dict[str, Any]]) -> None:
        """An invalid record anywhere in a batch stores nothing of the batch."""
        bad: dict[str, Any] = {"text": "bad"}
        error: type[Exception] = ValueError
        if kind == "naive":
            bad["created_at"] = datetime(2024, 1, 1)
        elif kind == "nan":
            bad["embedding"] = [0.0, math.nan, 1.0]
        elif kind == "dim":
            prefix = [*prefix, {"text": "v", "embedding": [1.0] * DIM}]
            bad["embedding"] = [1.0] * (DIM + 1)
            error = DimensionMismatchError
        elif kind == "text":
            bad["text"], error = b"bytes", TypeError
        elif kind == "key":
            bad["metadata"] = {1: "x"}
        elif kind == "value":
            bad["metadata"] = {"k": {1, 2}}
        else:
            bad["colour"], error = "red", TypeError
        with pytest.raises(error):
            self.mem.put_many([*prefix, bad])

    @precondition(lambda self: self.model.timeline(None))
    @rule(data=st.data(), changes=updates)
    def update(self, data: st.DataObject, changes: dict[str, Any]) -> None:
        self.do_update(data.draw(st.sampled_from(self.live())), changes)

    @precondition(lambda self: self.model.timeline(None))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.do_delete(data.draw(st.sampled_from(self.live())))

    @rule(fid=st.sampled_from([*POOL, "never"]))
    def write_missing(self, fid: str) -> None:
        """update/delete of an id that is not current raise FrameNotFoundError."""
        if self.model.current(fid, None) is not None:
            return
        with pytest.raises(FrameNotFoundError):
            self.mem.update(fid, text="x")
        with pytest.raises(FrameNotFoundError):
            self.mem.delete(fid)

    @rule()
    def mark_time(self) -> None:
        time.sleep(0.001)
        self.marks.append(now_us())
        time.sleep(0.001)

    @rule(rnd=st.randoms(use_true_random=False))
    def seal(self, rnd: random.Random) -> None:
        before, lo = self.mem.generation, now_us()
        assert self.mem.seal() == self.mem.generation
        self._committed(before, lo)
        assert self.mem.stats().wal_records == 0
        self._check_past(self.mem, rnd)

    @rule(rnd=st.randoms(use_true_random=False))
    def reopen(self, rnd: random.Random) -> None:
        before, lo = self.mem.generation, now_us()
        self.mem.close()
        self.mem.close()
        self.mem = Memory.open(self.path, sync=False, lock_timeout=0)
        self._committed(before, lo)
        assert self.mem.verify().ok
        self._check_past(self.mem, rnd)

    @rule(rnd=st.randoms(use_true_random=False))
    def check_reader(self, rnd: random.Random) -> None:
        """A read-only handle opened next to the writer sees the same state and past."""
        reader = Memory.open(self.path, readonly=True)
        try:
            check_view(reader, self.model, None, full=True)
            self._check_past(reader, rnd)
        finally:
            reader.close()

    @rule(rnd=st.randoms(use_true_random=False),
          where=st.sampled_from(["none", "op", "after_op", "mark", "now"]),
          seal_first=st.booleans())
    def compact(self, rnd: random.Random, where: str, seal_first: bool = False) -> None:
        if seal_first:  # the newest generation before compaction is a recorded one
            before, lo = self.mem.generation, now_us()
            self.mem.seal()
            self._committed(before, lo)
        floor: int | None = None
        if where == "op" and self.model.op_times:
            floor = rnd.choice(self.model.op_times)
        elif where == "after_op" and self.model.op_times:
            floor = rnd.choice(self.model.op_times) + 1
        elif where == "mark" and self.marks:
            floor = rnd.choice(self.marks)
        elif where == "now":
            time.sleep(0.001)
            floor = now_us()
            self.marks.append(floor)
            time.sleep(0.001)
        before, lo = self.mem.generation, now_us()
        gen = self.mem.compact(None if floor is None else from_us(floor))
        assert gen == self.mem.generation > before
        self.model.compact(floor)
        self._committed(before, lo)
        stats = self.mem.stats()
        want = None if self.model.floor is None else from_us(self.model.floor)
        assert stats.history_floor == want
        assert self.mem.verify().ok
        self._check_past(self.mem, rnd)

    @rule(rnd=st.randoms(use_true_random=False))
    def check_past(self, rnd: random.Random) -> None:
        self._check_past(self.mem, rnd)

    # --------------------------------------------------------------- invariants

    @invariant()
    def current_state(self) -> None:
        if self.mem is None:
            return
        check_view(self.mem, self.model, None, full=True)
        stats = self.mem.stats()
        assert (stats.frames, stats.versions, stats.deleted) == self.model.counts()
        assert stats.dim in (None, DIM)


MemoryMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=35, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
TestMemoryModel = MemoryMachine.TestCase
# a pass takes well under a minute; shrinking a failure can take minutes more
TestMemoryModel.pytestmark = [pytest.mark.timeout(600)]


class _SettingMachine(MemoryMachine):
    """The same model with module settings changed (``SETTINGS``: module, name, value) for
    the machine's life."""

    SETTINGS: tuple[tuple[Any, str, int], ...]

    def __init__(self) -> None:
        super().__init__()
        self._saved = [(module, name, getattr(module, name)) for module, name, _ in self.SETTINGS]
        for module, name, value in self.SETTINGS:
            setattr(module, name, value)

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            for module, name, value in self._saved:
                setattr(module, name, value)


class StreamedCompactionMachine(_SettingMachine):
    """The same model, with compaction writing the kept versions a few at a time (one
    commit of the new file per ``CHUNK_BYTES``) into runs filled to a few KiB
    (``RUN_BYTES``), as it does a large file's."""

    SETTINGS = ((compact_module, "CHUNK_BYTES", 300), (compact_module, "RUN_BYTES", 4096))


class ClosedRunsMachine(_SettingMachine):
    """The same model, with runs closed to merging at a few KiB (``RUN_CAP``), as a large
    file's are at 64 MiB: reads span many runs, merges stop at the closed ones."""

    SETTINGS = ((store_module, "RUN_CAP", 2048),)


for _machine in (StreamedCompactionMachine, ClosedRunsMachine):
    _machine.TestCase.settings = settings(MemoryMachine.TestCase.settings, max_examples=20)
    _machine.TestCase.pytestmark = [pytest.mark.timeout(600)]
TestStreamedCompaction = StreamedCompactionMachine.TestCase
TestClosedRuns = ClosedRunsMachine.TestCase


def _scenario(steps: Callable[[MemoryMachine], None]) -> None:
    machine = MemoryMachine()
    try:
        machine.create(DIM)
        steps(machine)
        machine.current_state()
    finally:
        machine.teardown()


def test_scenario_writes_seal_compact_reopen() -> None:
    """A fixed run: versions, a duplicate batch, update, delete, then every commit kind."""

    def steps(m: MemoryMachine) -> None:
        m.put({"text": "one", "id": "a", "created_at": T0, "embedding": [1.0, 2.0, 3.0]})
        m.mark_time()
        m.put_many([{"text": "two", "id": "b", "created_at": T0}], True, "again")
        m.do_update("a", {"text": "uno", "embedding": None})
        m.mark_time()
        m.do_delete("b")
        m.seal(random.Random(0))
        m.current_state()
        m.compact(random.Random(1), "none", seal_first=True)
        m.reopen(random.Random(2))
        m.put({"text": "b again", "id": "b"})
        m.compact(random.Random(3), "mark", seal_first=True)
        m.reopen(random.Random(4))

    _scenario(steps)


def test_scenario_reopen_before_any_commit() -> None:
    """close() + open() of a memory nothing was ever written to."""

    def steps(m: MemoryMachine) -> None:
        m.mark_time()
        m.reopen(random.Random(0))
        m.put({"text": "first", "id": "a"})
        m.reopen(random.Random(1))

    _scenario(steps)


def test_scenario_auto_seal_and_direct_commit() -> None:
    """Puts that overflow the WAL, a batch committed directly, many small commits."""

    def steps(m: MemoryMachine) -> None:
        m.fill_wal(200_000, 7, True)
        m.bulk(8, 70_000, 11, False)
        for i in range(6):
            m.put_many([{"text": f"t{i}", "id": POOL[i % 3]}], i % 2 == 0, "dup", True)
        m.mark_time()
        m.do_delete(POOL[0])
        m.check_past(random.Random(5))
        m.compact(random.Random(6), "after_op")
        m.reopen(random.Random(7))

    _scenario(steps)
