"""Stateful model test of collections and shared writable handles.

Random writes (put, put_many, update, delete, delete_many, clear) go into a few named
collections whose ids collide, through a random one of several writable handles of the
same path (they share one writer); handles are opened and closed, the file is sealed,
compacted, reopened and "crashed" (its bytes copied while the writer is open, then the
copy opened, which replays the WAL). The model is ``{collection: {id: frame}}``; every
open handle must show it (ids, len, count, get, collections(), generation), ``select``
/ ``count`` with a few fixed filters must equal the filter reference interpreter's
answer, ``find`` must stay inside its collection, and ``as_of(generation)`` of every
recorded state must show each collection as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from memvid_store import ClosedError, FrameNotFoundError, Memory
from memvid_store.engine import shared
from tests.property.test_filters_model import ref_match

COLLS = ["default", "chat", "chat2", "é 🙂"]
IDS = ["a", "b", "c", "k 7", "🙂"]
WORDS = ["alpha", "beta", "gamma", "delta"]
T0 = datetime(2024, 1, 1, tzinfo=UTC)
MAX_HANDLES = 3
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"kind": "x"},
    {"tags": "t1"},
    {"n": {"$gt": 1}},
    {"$or": [{"kind": "y"}, {"tags": {"$in": ["t2"]}}]},
    {"kind": {"$exists": False}},
    {"$not": {"n": {"$lte": 1}}},
]

# ------------------------------------------------------------------------ strategies

metadatas = st.fixed_dictionaries({}, optional={"kind": st.sampled_from(["x", "y"]),
                                                "n": st.sampled_from([0, 1, 1.5, 2])})
tag_lists = st.lists(st.sampled_from(["t1", "t2"]), max_size=2, unique=True)
records = st.fixed_dictionaries({
    "id": st.sampled_from(IDS),
    "text": st.lists(st.sampled_from(WORDS), max_size=3).map(lambda w: " ".join(["common", *w])),
    "metadata": metadatas,
    "tags": tag_lists,
    "day": st.integers(0, 3),  # few days: ties of created_at, broken by record order
    "embedding": st.tuples(st.just(1.0), st.sampled_from([-1.0, 0.0, 0.5, 2.0])).map(list),
})
changes = st.fixed_dictionaries({}, optional={
    "text": st.sampled_from(WORDS).map(lambda w: f"common {w} changed"),
    "metadata": metadatas, "tags": tag_lists, "day": st.integers(0, 3),
})
handles_ix = st.integers(0, MAX_HANDLES - 1)
colls = st.sampled_from(COLLS)


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class MFrame:
    """The current version of an id in a collection, as the model predicts it."""

    text: str
    metadata: dict[str, Any]
    tags: list[str]
    day: int
    embedding: list[float]
    version: int
    seq: int  # write order of this version: ties of created_at are in this order

    @property
    def created(self) -> datetime:
        return T0 + timedelta(days=self.day)


class Model:
    """``{collection: {id: current frame}}``, version numbers and the named collections
    that ever stored a version."""

    def __init__(self) -> None:
        self.live: dict[str, dict[str, MFrame]] = {c: {} for c in COLLS}
        self.versions: dict[tuple[str, str], int] = {}
        self.named: set[str] = set()
        self.seq = 0

    def _next(self, coll: str, fid: str) -> int:
        v = self.versions.get((coll, fid), 0) + 1
        self.versions[coll, fid] = v
        self.seq += 1
        return v

    def put(self, coll: str, rec: dict[str, Any]) -> None:
        version = self._next(coll, rec["id"])
        self.live[coll][rec["id"]] = MFrame(rec["text"], dict(rec["metadata"]),
                                            list(rec["tags"]), rec["day"],
                                            list(rec["embedding"]), version, self.seq)
        if coll != "default":
            self.named.add(coll)

    def update(self, coll: str, fid: str, change: dict[str, Any]) -> int:
        old = self.live[coll][fid]
        version = self._next(coll, fid)
        self.live[coll][fid] = MFrame(change.get("text", old.text),
                                      dict(change.get("metadata", old.metadata)),
                                      list(change.get("tags", old.tags)),
                                      change.get("day", old.day), old.embedding, version,
                                      self.seq)
        return version

    def delete(self, coll: str, fid: str) -> None:
        self._next(coll, fid)  # the tombstone takes a version number
        del self.live[coll][fid]

    def ordered(self, coll: str) -> list[tuple[str, MFrame]]:
        """Current frames in ``created_at`` order, ties by record order."""
        return sorted(self.live[coll].items(), key=lambda kv: (kv[1].day, kv[1].seq))

    def collections(self) -> dict[str, int]:
        counts = {c: len(self.live[c]) for c in self.named}
        counts["default"] = len(self.live["default"])
        return dict(sorted(counts.items()))

    def freeze(self) -> dict[str, dict[str, MFrame]]:
        return {c: dict(frames) for c, frames in self.live.items()}


def expected_select(frames: dict[str, MFrame], spec: dict[str, Any] | None,
                    since: int | None = None) -> list[str]:
    kept = [(fid, f) for fid, f in frames.items()
            if (spec is None or ref_match(spec, f.metadata, f.tags))
            and (since is None or f.day >= since)]
    return [fid for fid, _ in sorted(kept, key=lambda kv: (kv[1].day, kv[1].seq))]


def ordered(frames: dict[str, MFrame]) -> list[tuple[str, int, str]]:
    return [(fid, f.version, f.text) for fid, f in sorted(frames.items(),
                                                          key=lambda kv: (kv[1].day, kv[1].seq))]


@dataclass
class State:
    """The generation read right after a write or commit, and the model then."""

    number: int
    frames: dict[str, dict[str, MFrame]]


def put_args(rec: dict[str, Any]) -> dict[str, Any]:
    return {"id": rec["id"], "text": rec["text"], "metadata": rec["metadata"],
            "tags": rec["tags"], "created_at": T0 + timedelta(days=rec["day"]),
            "embedding": rec["embedding"]}


def update_args(change: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in change.items() if k != "day"}
    if "day" in change:
        out["created_at"] = T0 + timedelta(days=change["day"])
    return out


# ---------------------------------------------------------------------------- checks


def check_collection(coll: Any, name: str, frames: dict[str, MFrame], *,
                     full: bool) -> None:
    """``coll`` (a Collection, or a Memory for the default one, or an as_of view of
    either) shows exactly ``frames``."""
    want = ordered(frames)
    listed = coll.timeline()
    assert [(f.id, f.version, f.text) for f in listed] == want, name
    assert all(f.collection == name for f in listed)
    assert coll.ids() == [fid for fid, _, _ in want]
    assert len(coll) == coll.count() == len(want)
    if not full:
        return
    for fid in IDS:
        cur = frames.get(fid)
        if cur is None:
            with pytest.raises(FrameNotFoundError):
                coll.get(fid)
            continue
        got = coll.get(fid)
        assert (got.id, got.collection, got.text, got.metadata, got.tags, got.created_at,
                got.version) == (fid, name, cur.text, cur.metadata, cur.tags, cur.created,
                                 cur.version)
    for spec in FILTERS:
        expected = expected_select(frames, spec)
        assert [f.id for f in coll.select(spec)] == expected, (name, spec)
        assert [f.id for f in coll.select(spec, reverse=True)] == expected[::-1]
        assert coll.count(spec) == len(expected), (name, spec)
    since = T0 + timedelta(days=2)
    assert [f.id for f in coll.select(time_range=(since, None))] == expected_select(
        frames, None, since=2)
    assert coll.count({"kind": "x"}, time_range=(since, None)) == len(
        expected_select(frames, {"kind": "x"}, since=2))


def check_find(coll: Any, name: str, frames: dict[str, MFrame]) -> None:
    """Lexical and vector search of a collection return exactly its current frames (every
    text has the word "common", every frame an embedding, and k covers them all)."""
    lexical = coll.find("common", k=50, mode="lexical")
    vector = coll.find(vector=[1.0, 0.25], k=50, mode="vector")
    for hits in (lexical, vector):
        assert {h.collection for h in hits} <= {name}
        assert sorted((h.id, h.version) for h in hits) == sorted(
            (fid, f.version) for fid, f in frames.items()), name


# ------------------------------------------------------------------------- machine


class CollectionsMachine(RuleBasedStateMachine):
    """Writes into named collections through several shared writable handles."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="mv2-colls-")
        self.path = os.path.join(self.dir, "c0.mv2")
        self.files = 0
        self.model = Model()
        self.handles: list[Memory] = []
        self.colls: list[dict[str, Any]] = []  # per handle: the Collection objects it made
        self.states: list[State] = []
        self.gen = 0
        self.pending = False  # writes in the WAL since the last commit

    @initialize()
    def create(self) -> None:
        self.handles = [Memory.create(self.path, wal_size=1 << 20, sync=False, lock_timeout=0)]
        self.colls = [self._collections(self.handles[0])]
        self.gen = self.handles[0].generation
        self.states.append(State(self.gen, self.model.freeze()))

    def teardown(self) -> None:
        for h in self.handles:
            h.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _collections(mem: Memory) -> dict[str, Any]:
        return {c: mem if c == "default" else mem.collection(c) for c in COLLS}

    def _coll(self, h: int, name: str) -> Any:
        """The collection ``name`` of handle ``h`` (mod the open handles): the object made
        when the handle was opened, or a fresh one."""
        h %= len(self.handles)
        return self.colls[h][name]

    def _open(self) -> None:
        mem = Memory.open(self.path, sync=False, lock_timeout=0)
        self.handles.append(mem)
        self.colls.append(self._collections(mem))

    def _wrote(self, stored: bool) -> None:
        """After a write: one generation more if it stored something, else the same."""
        if stored:
            self.gen += 1
            self.pending = True
            self.states.append(State(self.gen, self.model.freeze()))
        for h in self.handles:
            assert h.generation == self.gen

    def _committed(self, gen: int) -> None:
        assert gen == self.gen + (1 if self.pending else 0)
        if gen != self.gen:
            self.states.append(State(gen, self.model.freeze()))
        self.gen, self.pending = gen, False

    def _live(self, name: str) -> list[str]:
        return sorted(self.model.live[name])

    def _check_states(self) -> None:
        """as_of(generation) of every recorded state shows each collection as it was."""
        mem = self.handles[-1]
        for state in self.states:
            for name in COLLS:
                base = mem if name == "default" else mem.collection(name)
                view = base.as_of(state.number)
                check_collection(view, name, state.frames[name], full=False)
                spec = FILTERS[state.number % len(FILTERS)]
                assert [f.id for f in base.select(spec, as_of=state.number)] == (
                    expected_select(state.frames[name], spec))
                assert base.count(spec, as_of=state.number) == len(
                    expected_select(state.frames[name], spec))

    # -------------------------------------------------------------------- writes

    @rule(h=handles_ix, name=colls, rec=records)
    def put(self, h: int, name: str, rec: dict[str, Any]) -> None:
        assert self._coll(h, name).put(**put_args(rec)) == rec["id"]
        self.model.put(name, rec)
        self._wrote(True)

    @rule(h=handles_ix, name=colls, recs=st.lists(records, min_size=1, max_size=4))
    def put_many(self, h: int, name: str, recs: list[dict[str, Any]]) -> None:
        """Ids may repeat in one batch: the later record is the current version."""
        got = self._coll(h, name).put_many([put_args(r) for r in recs])
        assert got == [r["id"] for r in recs]
        for rec in recs:
            self.model.put(name, rec)
        self._wrote(True)

    @precondition(lambda self: any(self.model.live.values()))
    @rule(h=handles_ix, data=st.data(), change=changes)
    def update(self, h: int, data: st.DataObject, change: dict[str, Any]) -> None:
        name = data.draw(st.sampled_from([c for c in COLLS if self.model.live[c]]))
        fid = data.draw(st.sampled_from(self._live(name)))
        version = self._coll(h, name).update(fid, **update_args(change))
        assert version == self.model.update(name, fid, change)
        self._wrote(True)

    @precondition(lambda self: any(self.model.live.values()))
    @rule(h=handles_ix, data=st.data())
    def delete(self, h: int, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from([c for c in COLLS if self.model.live[c]]))
        fid = data.draw(st.sampled_from(self._live(name)))
        self._coll(h, name).delete(fid)
        self.model.delete(name, fid)
        self._wrote(True)

    @rule(h=handles_ix, name=colls, picked=st.lists(st.sampled_from(IDS), max_size=4),
          missing_ok=st.booleans())
    def delete_many(self, h: int, name: str, picked: list[str], missing_ok: bool) -> None:
        """Ids current in another collection only are missing here; a repeated id counts
        once; without ``missing_ok`` one missing id deletes nothing."""
        coll = self._coll(h, name)
        present = list(dict.fromkeys(f for f in picked if f in self.model.live[name]))
        if not missing_ok and set(picked) - set(present):
            with pytest.raises(FrameNotFoundError):
                coll.delete_many(picked)
            self._wrote(False)
            return
        assert coll.delete_many(picked, missing_ok=missing_ok) == len(present)
        for fid in present:
            self.model.delete(name, fid)
        self._wrote(bool(present))

    @rule(h=handles_ix, name=colls)
    def clear(self, h: int, name: str) -> None:
        present = self._live(name)
        assert self._coll(h, name).clear() == len(present)
        for fid in present:
            self.model.delete(name, fid)
        self._wrote(bool(present))

    @rule(h=handles_ix, name=colls, fid=st.sampled_from(IDS))
    def write_missing(self, h: int, name: str, fid: str) -> None:
        """update/delete of an id not current in this collection (maybe current in
        another) raise FrameNotFoundError and store nothing."""
        if fid in self.model.live[name]:
            return
        coll = self._coll(h, name)
        with pytest.raises(FrameNotFoundError):
            coll.update(fid, text="x")
        with pytest.raises(FrameNotFoundError):
            coll.delete(fid)
        self._wrote(False)

    # ------------------------------------------------------------ handles, commits

    @precondition(lambda self: len(self.handles) < MAX_HANDLES)
    @rule()
    def open_handle(self) -> None:
        """Another writable handle of the path in this process: a share of the writer."""
        self._open()
        assert shared.shares(self.path) == len(self.handles)

    @precondition(lambda self: len(self.handles) > 1)
    @rule(h=handles_ix)
    def close_handle(self, h: int) -> None:
        """Closing one share leaves the others writing; the closed one refuses reads."""
        h %= len(self.handles)
        gone, gone_colls = self.handles.pop(h), self.colls.pop(h)
        gone.close()
        assert shared.shares(self.path) == len(self.handles)
        with pytest.raises(ClosedError):
            gone_colls["chat"].ids()
        with pytest.raises(ClosedError):
            gone.collections()
        self._wrote(False)  # not a commit: the other shares still hold the writer

    @rule(h=handles_ix)
    def seal(self, h: int) -> None:
        self._committed(self.handles[h % len(self.handles)].seal())
        self._wrote(False)

    @rule(h=handles_ix)
    def compact(self, h: int) -> None:
        """Compaction through one share moves every share (and its collections) to the
        new file; history is kept, so every recorded generation still resolves."""
        before = self.gen
        gen = self.handles[h % len(self.handles)].compact()
        assert gen > before
        self.states.append(State(gen, self.model.freeze()))
        self.gen, self.pending = gen, False
        self._wrote(False)
        assert shared.shares(self.path) == len(self.handles)
        assert self.handles[0].verify().ok
        self._check_states()

    @rule(count=st.integers(1, MAX_HANDLES))
    def reopen(self, count: int) -> None:
        """Close every handle (the last one seals) and open ``count`` new ones."""
        if self.pending:
            self.gen += 1
            self.states.append(State(self.gen, self.model.freeze()))
        self.pending = False
        for mem in self.handles:
            mem.close()
        assert shared.shares(self.path) == 0
        self.handles, self.colls = [], []
        for _ in range(count):
            self._open()
        self._wrote(False)
        assert self.handles[0].verify().ok
        self._check_states()

    @rule(count=st.integers(1, MAX_HANDLES))
    def crash(self, count: int) -> None:
        """The file as a killed process leaves it (its bytes while the writer is open,
        WAL unsealed), opened in place of the original: nothing acknowledged is lost and
        the generations read the same."""
        self.files += 1
        copy = os.path.join(self.dir, f"c{self.files}.mv2")
        shutil.copyfile(self.path, copy)
        for mem in self.handles:
            mem.close()
        os.remove(self.path)
        self.path, self.handles, self.colls = copy, [], []
        for _ in range(count):
            self._open()
        self._wrote(False)  # the WAL replayed: same generation, still uncommitted
        assert self.handles[0].verify().ok
        self._check_states()

    @rule()
    def check_states(self) -> None:
        self._check_states()

    # --------------------------------------------------------------- invariants

    @invariant()
    def same_state_everywhere(self) -> None:
        """Every open handle (through the collection objects made when it opened) shows
        the model; the first one is checked in full."""
        if not self.handles:
            return
        want = self.model.collections()
        for i, mem in enumerate(self.handles):
            assert mem.generation == self.gen
            assert mem.collections() == want
            for name in COLLS:
                check_collection(self.colls[i][name], name, self.model.live[name],
                                 full=i == 0)
        first = self.handles[0]
        for name in COLLS:
            fresh = first if name == "default" else first.collection(name)
            check_find(fresh, name, self.model.live[name])


CollectionsMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None, derandomize=True, database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
TestCollectionsModel = CollectionsMachine.TestCase
TestCollectionsModel.pytestmark = [pytest.mark.timeout(600)]


def test_scenario_colliding_ids_shared_handles_crash() -> None:
    """A fixed run: the same ids in every collection, writes through two handles, one
    closed, a crash image reopened, then compaction and a reopen."""
    m = CollectionsMachine()
    try:
        m.create()
        m.open_handle()
        rec = {"id": "a", "text": "common alpha", "metadata": {"kind": "x"}, "tags": ["t1"],
               "day": 1, "embedding": [1.0, 0.5]}
        for i, name in enumerate(COLLS):
            m.put(i, name, {**rec, "text": f"common {WORDS[i]}"})
        m.put_many(1, "chat", [{**rec, "id": "b", "day": 0}, {**rec, "id": "a", "day": 3}])
        m.same_state_everywhere()
        m.delete_many(0, "chat2", ["a", "b"], True)
        m.clear(1, "chat")
        m.same_state_everywhere()
        m.close_handle(0)
        m.put(0, "é 🙂", {**rec, "id": "🙂"})
        m.crash(2)
        m.same_state_everywhere()
        m.compact(1)
        m.reopen(1)
        m.same_state_everywhere()
    finally:
        m.teardown()
