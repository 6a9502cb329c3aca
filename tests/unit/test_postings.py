"""Posting lists: each run's postings equal the terms of its versions, however it was made.

Versions are committed through the engine's ``Committer`` directly, so keys of other
collections (``<collection> NUL <id>``) can be written before the facade offers them. The
oracle (tests/postings_oracle.py) decodes every payload; the model here is what was written.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store import Memory
from memvid_store.config import StoreConfig
from memvid_store.engine import store
from memvid_store.engine.compact import compact_into
from memvid_store.engine.keys import key_of
from memvid_store.engine.records import Version
from memvid_store.engine.snapshot import Snapshot
from memvid_store.engine.store import Committer, create_file, make_snapshot, read_state
from memvid_store.engine.terms import terms_of
from memvid_store.engine.verify import verify_file
from memvid_store.errors import CorruptFileError, DamagedIndexError

from ..postings_oracle import assert_postings_match, terms_by_gid

COLLECTIONS = ("default", "chat", "docs")
IDS = ("a", "b", "c", "d", "é", "x" * 30, "7")
TAGS = ("red", "green", "blue", "é", "a b")
NAMES = ("kind", "n", "nested", "list", "flag", "x.y")
SCALARS: tuple[Any, ...] = (None, True, False, 0, 1, 1.0, 2.5, -3, "1", "", "red", "é")

Spec = tuple[str, dict[str, Any] | None, list[str] | None]  # key, metadata, tags (None: delete)


def random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if roll < 0.15 and depth < 3:
        return random_metadata(rng, depth + 1)
    if roll < 0.3:
        return [random_value(rng, 3) if rng.random() < 0.2 else rng.choice(SCALARS)
                for _ in range(rng.randrange(4))]
    return rng.choice(SCALARS)


def random_metadata(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    return {rng.choice(NAMES): random_value(rng, depth) for _ in range(rng.randrange(4))}


def random_spec(rng: random.Random) -> Spec:
    key = key_of(rng.choice(COLLECTIONS), rng.choice(IDS) + str(rng.randrange(20)))
    if rng.random() < 0.1:
        return key, None, None
    return key, random_metadata(rng), rng.sample(TAGS, rng.randrange(3))


class Engine:
    """One file written through ``Committer``, with the model of what it holds."""

    def __init__(self, path: Path) -> None:
        self.fd = create_file(str(path), dim=None, wal_size=1 << 20, options={})
        self.committer = Committer(self.fd, make_snapshot(self.fd, read_state(self.fd), True),
                                   sync=False, use_mmap=True)
        self.time = 1_000_000
        self.latest: dict[str, Version] = {}
        self.model: dict[int, set[str]] = {}
        self.pending: list[Version] = []  # versions of the WAL delta (add_delta)

    @property
    def snap(self) -> Snapshot:
        return self.committer.snapshot

    def versions(self, specs: list[Spec]) -> list[Version]:
        snap = self.snap
        gid = snap.toc.next_gid + len(snap.delta)
        out = []
        for key, meta, tags in specs:
            self.time += 1
            prev = self.latest.get(key)
            tomb = meta is None
            v = Version(gid, key, prev.version + 1 if prev else 1, self.time, self.time, tomb,
                        prev.gid if prev else -1, bool(prev and not prev.tombstone),
                        f"text of {key}", meta, tags)
            self.latest[key] = v
            if not tomb:
                self.model[gid] = terms_of(key, meta, tags)
            out.append(v)
            gid += 1
        return out

    def commit(self, specs: list[Spec]) -> Snapshot:
        versions = self.snap.delta + self.versions(specs)
        self.committer.commit(versions, checkpoint_seq=0, dim=None, counters={},
                              commit_time=self.time + 1)
        self.time += 1
        return self.snap

    def add_delta(self, specs: list[Spec]) -> None:
        self.snap.add_delta(self.versions(specs))

    def close(self) -> None:
        self.snap.close(view=True)
        os.close(self.fd)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "e.mv2")
    yield e
    e.close()


def check(e: Engine) -> None:
    assert_postings_match(e.snap, e.model)
    assert terms_by_gid(e.snap) == e.model
    problems, _ = verify_file(e.fd)
    assert problems == []


def test_single_commit(engine: Engine) -> None:
    rng = random.Random(1)
    snap = engine.commit([random_spec(rng) for _ in range(400)])
    assert len(snap.runs) == 1 and snap.runs[0].has_postings
    check(engine)
    # one posting per content version under its collection
    counts = {c: snap.posted_count(f"c\x00{c}") for c in COLLECTIONS}
    assert sum(counts.values()) == len(engine.model)


def test_tombstones_and_empty_commits_post_nothing(engine: Engine) -> None:
    engine.commit([("a", None, None), ("chat\x00b", None, None)])
    assert engine.snap.runs[0].part("tkey").tolist() == []
    assert list(engine.snap.runs[0].part("toff")) == [0]
    engine.commit([("a", {}, [])])
    check(engine)
    assert [r.gid for r in engine.snap.posted("c\x00default")] == [2]


def test_merges_keep_postings(engine: Engine) -> None:
    rng = random.Random(2)
    commits = 0
    for step in range(60):
        engine.commit([random_spec(rng) for _ in range(rng.randrange(1, 25))])
        commits += 1
        if step % 10 == 9:
            check(engine)
    assert len(engine.snap.runs) < commits / 4  # size-tiered merges happened


def test_wal_delta_is_posted_at_once(engine: Engine) -> None:
    rng = random.Random(3)
    engine.commit([random_spec(rng) for _ in range(50)])
    engine.add_delta([random_spec(rng) for _ in range(20)])
    check(engine)
    engine.add_delta([("chat\x00new", {"kind": "fresh"}, ["blue"])])  # after a first use
    check(engine)
    gid = max(engine.model)
    assert engine.snap.posted("v\x00kind\x00sfresh")[-1].gid == gid
    engine.commit([random_spec(rng) for _ in range(5)])  # the delta becomes a run
    check(engine)


def test_memory_wal_delta_and_reopen(mem_path: str, opened: list[Memory]) -> None:
    m = Memory.create(mem_path, wal_size=1 << 20)
    opened.append(m)
    m.put_many([{"text": f"t{i}", "id": str(i), "metadata": {"i": i % 4}, "tags": ["x"]}
                for i in range(30)])
    m.seal()
    m.put("in the wal", id="w", metadata={"i": 1}, tags=["y"])
    assert [ref.frame_id() for ref in m._snap().posted("t\x00y")] == ["w"]
    with Memory.open(mem_path, readonly=True) as ro:  # the WAL replayed into the delta
        snap = ro._snap()
        assert [ref.frame_id() for ref in snap.posted("t\x00y")] == ["w"]
        assert len(snap.posted("v\x00i\x00n1")) == 8 + 1
        assert_postings_match(snap)


def test_compaction_writes_postings(mem_path: str, opened: list[Memory]) -> None:
    m = Memory.create(mem_path, wal_size=1 << 20)
    opened.append(m)
    rng = random.Random(4)
    for _ in range(8):
        ids = {str(rng.randrange(60)) for _ in range(20)}
        m.put_many([{"text": "t", "id": i, "metadata": random_metadata(rng),
                     "tags": rng.sample(TAGS, 2)} for i in sorted(ids)])
        m.delete(min(ids))
        m.seal()
    before = sorted(map(frozenset, terms_by_gid(m._snap()).values()))
    m.compact()
    snap = m._snap()
    assert len(snap.runs) == 1 and snap.runs[0].has_postings
    assert_postings_match(snap)
    assert sorted(map(frozenset, terms_by_gid(snap).values())) == before
    assert m.verify().ok


def test_compaction_of_other_collections(tmp_path: Path, engine: Engine) -> None:
    rng = random.Random(5)
    for _ in range(6):
        engine.commit([random_spec(rng) for _ in range(30)])
    path = tmp_path / "c.mv2"
    fd = compact_into(str(path), engine.snap, None, StoreConfig(), 1 << 20,
                      engine.time + 10)
    try:
        snap = make_snapshot(fd, read_state(fd), True)
        assert len(snap.runs) == 1 and snap.runs[0].has_postings
        assert_postings_match(snap)  # gids renumbered: checked against the payloads
        assert sorted(map(frozenset, terms_by_gid(snap).values())) == sorted(
            map(frozenset, engine.model.values()))
        snap.close(view=True)
    finally:
        os.close(fd)


def test_legacy_runs_gain_postings_when_merged(engine: Engine, monkeypatch) -> None:
    rng = random.Random(6)
    with monkeypatch.context() as patch:  # runs as written before posting lists existed
        patch.setattr(store, "group_postings", lambda keys, rows: {})
        for size in (60, 30, 10):  # three runs: no merge yet
            engine.commit([random_spec(rng) for _ in range(size)])
    snap = engine.snap
    assert [run.has_postings for run in snap.runs] == [False, False, False]
    assert all("tkey" not in run.header["parts"] for run in snap.runs)
    for run in snap.runs:
        run.load_all()
    check(engine)  # postings computed from the payloads; verify() accepts the old layout
    term = "c\x00chat"
    assert snap.posted_count(term) == sum(run.n for run in snap.runs)  # an upper bound
    engine.commit([random_spec(rng) for _ in range(100)])  # merges the three old runs
    snap = engine.snap
    assert len(snap.runs) == 1 and snap.runs[0].has_postings
    check(engine)
    assert snap.posted_count(term) == len(snap.posted(term))


def test_legacy_run_next_to_new_runs(engine: Engine, monkeypatch) -> None:
    rng = random.Random(7)
    with monkeypatch.context() as patch:
        patch.setattr(store, "group_postings", lambda keys, rows: {})
        engine.commit([random_spec(rng) for _ in range(200)])
    engine.commit([random_spec(rng) for _ in range(10)])
    assert [run.has_postings for run in engine.snap.runs] == [False, True]
    check(engine)
    for _ in range(12):  # small commits merge among themselves, then with the old run
        engine.commit([random_spec(rng) for _ in range(20)])
        check(engine)
    assert all(run.has_postings for run in engine.snap.runs)


def _part_position(snap: Snapshot, name: str) -> int:
    run = snap.runs[0]
    rel, length, _ = run.header["parts"][name]
    assert length > 0
    return run.ref.offset + int(run.ref.meta["head"]) + rel + length // 2


@pytest.mark.parametrize("part", ["tkey", "toff", "trows"])
def test_damaged_postings_are_reported_and_refused(tmp_path: Path, part: str) -> None:
    e = Engine(tmp_path / "d.mv2")
    rng = random.Random(8)
    e.commit([random_spec(rng) for _ in range(200)])
    terms = sorted({t for ts in e.model.values() for t in ts})
    pos = _part_position(e.snap, part)
    e.close()
    with open(tmp_path / "d.mv2", "r+b") as fh:
        fh.seek(pos)
        byte = fh.read(1)
        fh.seek(pos)
        fh.write(bytes([byte[0] ^ 0x5A]))
    fd = os.open(tmp_path / "d.mv2", os.O_RDONLY)
    try:
        problems, _ = verify_file(fd)
        assert any("segment:run" in p and part in p for p in problems), problems
        snap = make_snapshot(fd, read_state(fd), True)
        with pytest.raises(DamagedIndexError) as info:
            for term in terms:
                snap.posted(term)
        assert isinstance(info.value, CorruptFileError)
        if part != "trows":  # counts read tkey and toff only
            with pytest.raises(DamagedIndexError):
                snap.posted_count(terms[0])
        snap.close(view=True)
    finally:
        os.close(fd)


def test_a_merge_rebuilds_damaged_postings_from_the_payloads(engine: Engine) -> None:
    rng = random.Random(9)
    engine.commit([random_spec(rng) for _ in range(100)])
    pos = _part_position(engine.snap, "trows")
    os.pwrite(engine.fd, bytes([os.pread(engine.fd, 1, pos)[0] ^ 1]), pos)
    engine.snap.runs[0].release()
    size = 40
    engine.commit([random_spec(rng) for _ in range(size)])
    while len(engine.snap.runs) > 1:  # until one run holds all, the damaged one's rows too
        size *= 2
        engine.commit([random_spec(rng) for _ in range(size)])
    assert len(engine.snap.runs) == 1
    # the merged run's postings are whole again (verify still names the old, dead run)
    assert_postings_match(engine.snap, engine.model)
    assert terms_by_gid(engine.snap) == engine.model


spec_strategy = st.tuples(
    st.sampled_from(COLLECTIONS), st.sampled_from(IDS),
    st.one_of(st.none(), st.dictionaries(
        st.sampled_from(NAMES),
        st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                               st.floats(-2, 2, allow_nan=False), st.text(max_size=3)),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(NAMES), inner, max_size=3), max_leaves=6),
        max_size=4)),
    st.lists(st.sampled_from(TAGS), max_size=3, unique=True),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(st.lists(spec_strategy, min_size=1, max_size=12), min_size=1,
                        max_size=12),
       delta=st.lists(spec_strategy, max_size=6))
def test_postings_match_model(tmp_path_factory: pytest.TempPathFactory,
                              batches: list[list[tuple]], delta: list[tuple]) -> None:
    def spec(t: tuple) -> Spec:
        collection, frame_id, meta, tags = t
        key = key_of(collection, frame_id)
        return (key, None, None) if meta is None else (key, meta, tags)

    e = Engine(tmp_path_factory.mktemp("prop") / "p.mv2")
    try:
        for batch in batches:
            e.commit([spec(t) for t in batch])
        e.add_delta([spec(t) for t in delta])
        check(e)
    finally:
        e.close()


def test_group_postings_sorts_by_term_and_keeps_a_row_once() -> None:
    import numpy as np

    from memvid_store.engine.runs import group_postings

    cols = group_postings(np.array([9, 5, 9, 5, 5], "<u8"), np.array([0, 0, 1, 1, 1], "<u4"))
    assert cols["tkey"].tolist() == [5, 9]
    assert cols["toff"].tolist() == [0, 2, 4]
    assert cols["trows"].tolist() == [0, 1, 0, 1]


def test_open_reads_and_warmup_leave_postings_unread(mem_path: str, opened: list[Memory]
                                                     ) -> None:
    with Memory.create(mem_path, wal_size=1 << 20) as m:
        m.put_many([{"text": f"t{i}", "id": str(i), "tags": ["x"]} for i in range(100)])
    m = Memory.open(mem_path, readonly=True)
    opened.append(m)
    assert m.get("7").text == "t7" and len(m.timeline(limit=5)) == 5
    m.warmup(tiers=["time_index"])
    run = m._snap().runs[0]
    assert not {"tkey", "toff", "trows"} & set(run._parts)
    assert len(m._snap().posted("t\x00x")) == 100
    assert {"tkey", "toff", "trows"} <= set(run._parts)


def test_runs_at_the_cap_are_not_merged_again(engine: Engine, monkeypatch) -> None:
    monkeypatch.setattr(store, "RUN_CAP", 16 << 10)
    rng = random.Random(5)
    closed: dict[int, int] = {}  # offset -> length of the runs at the cap
    for step in range(80):
        engine.commit([random_spec(rng) for _ in range(rng.randrange(1, 25))])
        refs = {run.ref.offset: run.ref.length for run in engine.snap.runs}
        assert closed.items() <= refs.items()  # a closed run stays as written
        closed.update((o, n) for o, n in refs.items() if n >= store.RUN_CAP)
        if step % 20 == 19:
            check(engine)
    assert len(closed) >= 3
    assert max(closed.values()) < 2 * store.RUN_CAP  # a merge stops growing at the cap
