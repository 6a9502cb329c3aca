"""Value columns: each run's sorted numbers and string keys by path answer range lookups,
however the run was made (single commit, merges, legacy runs, compaction) and with a WAL
delta on top.

The model is a brute-force walk of what was written; the filter language's comparisons
are checked to be covered by the candidates.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store import Memory
from memvid_store.engine import store
from memvid_store.engine.keys import key_of
from memvid_store.engine.store import make_snapshot, read_state
from memvid_store.engine.terms import numbers_of, strings_of
from memvid_store.engine.value_kinds import NUMBERS, STRINGS, string_key
from memvid_store.engine.verify import verify_file
from memvid_store.errors import DamagedIndexError
from memvid_store.index.filters import compile_filter

from .test_postings import COLLECTIONS, IDS, TAGS, Engine, Spec

NAMES = ("n", "m", "nested", "x.y", "s")
LONG = "x" * 23  # strings longer than a key (24 bytes) share keys
DATES = ("2026-12-02T10:00:00.000001+00:00", "2026-12-02T10:00:00.000002+00:00",
         "2026-12-02T10:00:01+00:00", "2026-12-03")
SCALARS: tuple[Any, ...] = (None, True, False, 0, 1, 1.0, 2.5, -3, -0.0, 7, 2**60, 2**60 + 1,
                            2**53 + 1, 2**53 + 2, -1e300, 0.1, "1", "", "a", "é", "ab",
                            "a\x00", "😀", LONG + "é", LONG + "ab", LONG + "ac", *DATES)
PATHS = ("n", "m", "nested", "nested.n", "nested.m", "x.y", "s", "nested.nested.n", "zz")
BOUNDS: tuple[Any, ...] = (None, -3, -1e300, 0, 0.5, 1, 2.5, 7, 2**53, 2**53 + 1, 2**60,
                           2**60 + 1, -(2**60), 1e301, 10**400)
STRING_BOUNDS: tuple[Any, ...] = (None, "", "\x00", "1", "a", "a\x00", "ab", "b", "é", "😀",
                                  LONG, LONG + "ab", LONG + "abc", "2026-12-02T10:00:00",
                                  "2026-12-02T10:00:00.000001+00:00", "2026-12-03", "z")


def random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if roll < 0.2 and depth < 3:
        return random_metadata(rng, depth + 1)
    if roll < 0.4:
        return [random_value(rng, 3) if rng.random() < 0.2 else rng.choice(SCALARS)
                for _ in range(rng.randrange(4))]
    return rng.choice(SCALARS)


def random_metadata(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    return {rng.choice(NAMES): random_value(rng, depth) for _ in range(rng.randrange(4))}


def random_spec(rng: random.Random) -> Spec:
    key = key_of(rng.choice(COLLECTIONS), rng.choice(IDS) + str(rng.randrange(20)))
    if rng.random() < 0.1:
        return key, None, None
    return key, random_metadata(rng), rng.sample(TAGS, rng.randrange(2))


def model_numbers(meta: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """The numbers of ``meta`` by dotted path, walked independently of engine/terms.py."""
    for name, value in meta.items():
        path = prefix + name
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, int | float) and not isinstance(item, bool):
                yield path, float(item)
        if isinstance(value, dict):
            yield from model_numbers(value, path + ".")


def model_strings(meta: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """The strings of ``meta`` by dotted path, walked like ``model_numbers``."""
    for name, value in meta.items():
        path = prefix + name
        items = value if isinstance(value, list) else [value]
        yield from ((path, item) for item in items if isinstance(item, str))
        if isinstance(value, dict):
            yield from model_strings(value, path + ".")


def between(x: Any, lo: Any, hi: Any, lo_inc: bool, hi_inc: bool) -> bool:
    return ((lo is None or (x >= lo if lo_inc else x > lo))
            and (hi is None or (x <= hi if hi_inc else x < hi)))


def in_range(x: float, lo: Any, hi: Any, lo_inc: bool, hi_inc: bool) -> bool:
    # bounds are rounded to float64 like the numbers, and from 2**53 on are inclusive
    lo, hi = (b if b is None or abs(b) < 1e308 else (math.inf if b > 0 else -math.inf)
              for b in (lo, hi))
    lo, hi = (None if b is None else float(b) for b in (lo, hi))
    lo_inc = lo_inc or (lo is not None and abs(lo) >= 2**53)
    hi_inc = hi_inc or (hi is not None and abs(hi) >= 2**53)
    return ((lo is None or (x >= lo if lo_inc else x > lo))
            and (hi is None or (x <= hi if hi_inc else x < hi)))


def metadata_by_gid(e: Engine) -> dict[int, dict[str, Any]]:
    """What every content version of the engine holds (from its delta and the model)."""
    out: dict[int, dict[str, Any]] = {}
    for ref in e.snap.iter_all():
        if not e.snap.is_tombstone(ref):
            out[ref.gid] = e.snap.load(ref).metadata or {}
    return out


def check(e: Engine, rng: random.Random, queries: int = 60) -> None:
    metas = metadata_by_gid(e)
    for query in range(queries):
        path = PATHS[query % len(PATHS)]
        lo, hi = rng.choice(BOUNDS), rng.choice(BOUNDS)
        lo_inc, hi_inc = rng.random() < 0.5, rng.random() < 0.5
        expected = [gid for gid, meta in metas.items()
                    if any(p == path and in_range(x, lo, hi, lo_inc, hi_inc)
                           for p, x in model_numbers(meta))]
        got = e.snap.ranged(path, lo, hi, lo_inclusive=lo_inc, hi_inclusive=hi_inc)
        assert [ref.gid for ref in got] == expected, (path, lo, hi, lo_inc, hi_inc)
        assert e.snap.ranged_count(path, lo, hi, lo_inclusive=lo_inc,
                                   hi_inclusive=hi_inc) >= len(expected)
        # each comparison of the filter language is covered by a one-sided lookup (two
        # comparisons on a list may be met by different elements: not one interval)
        for op, bound, inclusive, upper in (("$gte" if lo_inc else "$gt", lo, lo_inc, False),
                                            ("$lte" if hi_inc else "$lt", hi, hi_inc, True)):
            if bound is None:
                continue
            flt = compile_filter({path: {op: bound}})
            matched = {gid for gid, meta in metas.items() if flt(meta, [])}
            one_sided = e.snap.ranged(path, None if upper else bound, bound if upper else None,
                                      lo_inclusive=inclusive, hi_inclusive=inclusive)
            assert matched <= {ref.gid for ref in one_sided}, (path, op, bound)
    check_strings(e, rng, metas, queries)
    check_windows(e, rng, metas, queries)
    problems, _ = verify_file(e.fd)
    assert problems == []


def check_strings(e: Engine, rng: random.Random, metas: dict[int, dict[str, Any]],
                  queries: int) -> None:
    """String lookups return every exact match, and only versions whose key (the string's
    UTF-8 cut to 24 bytes, zero-padded) lies within the bounds' keys."""
    for query in range(queries):
        path = PATHS[query % len(PATHS)]
        lo, hi = rng.choice(STRING_BOUNDS), rng.choice(STRING_BOUNDS)
        lo_inc, hi_inc = rng.random() < 0.5, rng.random() < 0.5
        exact = {gid for gid, meta in metas.items()
                 if any(p == path and between(x, lo, hi, lo_inc, hi_inc)
                        for p, x in model_strings(meta))}
        key_lo, key_hi = (None if b is None else string_key(b) for b in (lo, hi))
        by_key = {gid for gid, meta in metas.items()
                  if any(p == path and between(string_key(x), key_lo, key_hi, True, True)
                         for p, x in model_strings(meta))}
        got = e.snap.ranged(path, lo, hi, lo_inclusive=lo_inc, hi_inclusive=hi_inc,
                            kind=STRINGS)
        gids = [ref.gid for ref in got]
        assert gids == sorted(set(gids)) and exact <= set(gids) <= by_key, (path, lo, hi)
        assert e.snap.ranged_count(path, lo, hi, lo_inclusive=lo_inc, hi_inclusive=hi_inc,
                                   kind=STRINGS) >= len(gids)
        for op, bound in (("$gte" if lo_inc else "$gt", lo), ("$lte" if hi_inc else "$lt", hi)):
            if bound is not None:
                flt = compile_filter({path: {op: bound}})
                matched = {gid for gid, meta in metas.items() if flt(meta, [])}
                upper = op.startswith("$l")
                one_sided = e.snap.ranged(path, None if upper else bound,
                                          bound if upper else None, lo_inclusive=True,
                                          hi_inclusive=True, kind=STRINGS)
                assert matched <= {ref.gid for ref in one_sided}, (path, op, bound)


def check_windows(e: Engine, rng: random.Random, metas: dict[int, dict[str, Any]],
                  queries: int) -> None:
    """A window (a lower and an upper comparison on one path) admits every match, lists
    holding elements on either side included, and its count bounds it."""
    for query in range(queries):
        path = PATHS[query % len(PATHS)]
        kind, pool = (NUMBERS, BOUNDS[1:]) if query % 2 else (STRINGS, STRING_BOUNDS[1:])
        lo, hi = rng.choice(pool), rng.choice(pool)
        if kind is NUMBERS and (abs(lo) > 1e308 or abs(hi) > 1e308):
            continue  # beyond float64: the planner makes no range of them
        flt = compile_filter({path: {"$gte" if query % 3 else "$gt": lo,
                                     "$lte" if query % 5 else "$lt": hi}})
        matched = {gid for gid, meta in metas.items() if flt(meta, [])}
        got = [ref.gid for ref in e.snap.windowed(path, lo, hi, kind=kind)]
        assert got == sorted(set(got)) and matched <= set(got), (path, lo, hi)
        assert e.snap.windowed_count(path, lo, hi, kind=kind) >= len(got)


def test_strings_of_walks_paths_like_terms() -> None:
    meta = {"a": "x", "b": ["y", 1, ["z"], {"c": "w"}], "d": {"e": "v"}, "f": None}
    assert sorted(strings_of(meta)) == [("a", "x"), ("b", "y"), ("d.e", "v")]
    assert string_key("é") == "é".encode() + b"\x00" * 22
    assert string_key(LONG + "abc") == (LONG + "a").encode()
    assert string_key("a") < string_key("a\x00b") < string_key("ab") < string_key("é")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = Engine(tmp_path / "r.mv2")
    yield e
    e.close()


def test_numbers_of_walks_paths_like_terms() -> None:
    meta = {"a": 1, "b": [2, True, "3", 4.5, [5], {"c": 6}], "d": {"e": -0.5, "f": {"g": 7}},
            "h": False, "i": None, "big": 10**400}
    assert sorted(numbers_of(meta)) == sorted([
        ("a", 1.0), ("b", 2.0), ("b", 4.5), ("d.e", -0.5), ("d.f.g", 7.0),
        ("big", float("inf"))])
    assert numbers_of(None) == [] and numbers_of({"n": float("nan")}) == []


def test_single_commit(engine: Engine) -> None:
    rng = random.Random(1)
    snap = engine.commit([random_spec(rng) for _ in range(300)])
    assert len(snap.runs) == 1 and snap.runs[0].has_values(NUMBERS)
    check(engine, rng)
    run = snap.runs[0]
    nkey, noff, nval = run.part("nkey"), run.part("noff"), run.part("nval")
    assert list(nkey) == sorted(set(nkey))
    for i in range(len(nkey)):
        values = nval[noff[i] : noff[i + 1]].tolist()
        assert values == sorted(values)
    # exact count per run from the bisect positions: distinct numbers per row, not rows
    total = sum(len({x for p, x in model_numbers(m) if p == "n"})
                for m in metadata_by_gid(engine).values())
    assert snap.ranged_count("n", None, None, lo_inclusive=True, hi_inclusive=True) == total


def test_tombstones_and_empty_commits_hold_no_values(engine: Engine) -> None:
    engine.commit([("a", None, None), ("b", {"s": "x", "n": True}, [])])
    run = engine.snap.runs[0]
    assert run.part("nkey").tolist() == [] and list(run.part("noff")) == [0]
    assert engine.snap.ranged("n", None, None, lo_inclusive=True, hi_inclusive=True) == []


def test_merges_keep_value_columns(engine: Engine) -> None:
    rng = random.Random(2)
    for step in range(50):
        engine.commit([random_spec(rng) for _ in range(rng.randrange(1, 20))])
        if step % 10 == 9:
            check(engine, rng)
    assert len(engine.snap.runs) < 50 / 4
    assert all(run.has_values(NUMBERS) for run in engine.snap.runs)


def test_wal_delta(engine: Engine) -> None:
    rng = random.Random(3)
    engine.commit([random_spec(rng) for _ in range(80)])
    engine.add_delta([random_spec(rng) for _ in range(25)])
    check(engine, rng)
    engine.add_delta([("new", {"n": [100, 101]}, [])])
    got = engine.snap.ranged("n", 100, 101, lo_inclusive=True, hi_inclusive=True)
    assert [ref.version.id for ref in got] == ["new"]
    assert engine.snap.ranged_count("n", 100, 101, lo_inclusive=True, hi_inclusive=True) == 1
    engine.commit([random_spec(rng) for _ in range(5)])
    check(engine, rng)


def test_legacy_runs_gain_value_columns_when_merged(engine: Engine, monkeypatch) -> None:
    rng = random.Random(4)
    with monkeypatch.context() as patch:  # runs as written before value columns existed
        patch.setattr(store, "group_values", lambda kind, keys, values, rows: {})
        for size in (60, 30, 10):
            engine.commit([random_spec(rng) for _ in range(size)])
    snap = engine.snap
    assert [run.has_values(NUMBERS) for run in snap.runs] == [False] * 3
    assert all(run.has_postings for run in snap.runs)
    check(engine, rng)  # computed from the payloads; verify() accepts the layout
    assert snap.ranged_count("n", 0, 1, lo_inclusive=True, hi_inclusive=True) >= sum(
        run.n for run in snap.runs)
    engine.commit([random_spec(rng) for _ in range(100)])  # merges the old runs
    assert len(engine.snap.runs) == 1 and engine.snap.runs[0].has_values(NUMBERS)
    check(engine, rng)


def test_legacy_run_next_to_new_runs(engine: Engine, monkeypatch) -> None:
    rng = random.Random(5)
    with monkeypatch.context() as patch:
        patch.setattr(store, "group_values", lambda kind, keys, values, rows: {})
        engine.commit([random_spec(rng) for _ in range(150)])
    engine.commit([random_spec(rng) for _ in range(10)])
    assert [run.has_values(NUMBERS) for run in engine.snap.runs] == [False, True]
    check(engine, rng)
    for _ in range(10):
        engine.commit([random_spec(rng) for _ in range(20)])
        check(engine, rng, 20)
    assert all(run.has_values(NUMBERS) for run in engine.snap.runs)


def test_compaction_writes_value_columns(mem_path: str, opened: list[Memory]) -> None:
    m = Memory.create(mem_path, wal_size=1 << 20)
    opened.append(m)
    rng = random.Random(6)
    for _ in range(6):
        ids = {str(rng.randrange(50)) for _ in range(20)}
        m.put_many([{"text": "t", "id": i, "metadata": {"n": rng.randrange(100),
                                                       "l": [rng.random(), "x"]}}
                    for i in sorted(ids)])
        m.seal()
    current = {i: m.get(i).metadata for i in m.ids()}

    def found(lo: float, hi: float) -> list[str]:
        snap = m._snap()
        refs = snap.ranged("n", lo, hi, lo_inclusive=True, hi_inclusive=False)
        return sorted(ref.frame_id() for ref in refs if snap.visible(ref, None))

    expected = sorted(i for i, meta in current.items() if 20 <= meta["n"] < 60)
    assert found(20, 60) == expected
    m.compact()
    snap = m._snap()
    assert len(snap.runs) == 1 and snap.runs[0].has_values(NUMBERS)
    assert found(20, 60) == expected
    assert m.verify().ok


def _part_position(snap: Any, name: str) -> int:
    run = snap.runs[0]
    rel, length, _ = run.header["parts"][name]
    assert length > 0
    return run.ref.offset + int(run.ref.meta["head"]) + rel + length // 2


@pytest.mark.parametrize("part", [*NUMBERS.parts, *STRINGS.parts])
def test_damaged_value_columns_are_reported_and_refused(tmp_path: Path, part: str) -> None:
    e = Engine(tmp_path / "d.mv2")
    rng = random.Random(7)
    e.commit([random_spec(rng) for _ in range(200)])
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
        kind = NUMBERS if part in NUMBERS.parts else STRINGS
        with pytest.raises(DamagedIndexError):
            for path in PATHS:
                snap.ranged(path, None, None, lo_inclusive=True, hi_inclusive=True,
                            kind=kind)
        if part != kind.parts[3]:  # counts read the keys, offsets and values only
            with pytest.raises(DamagedIndexError):
                for path in PATHS:
                    snap.ranged_count(path, None, None, lo_inclusive=True,
                                      hi_inclusive=True, kind=kind)
        snap.close(view=True)
    finally:
        os.close(fd)


def test_open_and_warmup_leave_value_columns_unread(mem_path: str, opened: list[Memory]
                                                    ) -> None:
    with Memory.create(mem_path, wal_size=1 << 20) as m:
        m.put_many([{"text": f"t{i}", "id": str(i), "metadata": {"i": i}} for i in range(50)])
    m = Memory.open(mem_path, readonly=True)
    opened.append(m)
    m.warmup(tiers=["time_index"])
    run = m._snap().runs[0]
    assert m.get("7").text == "t7" and len(m._snap().posted("e\x00i")) == 50
    assert not {"nkey", "noff", "nval", "nrow"} & set(run._parts)
    refs = m._snap().ranged("i", 10, 20, lo_inclusive=False, hi_inclusive=True)
    assert [ref.frame_id() for ref in refs] == [str(i) for i in range(11, 21)]
    assert {"nkey", "noff", "nval", "nrow"} <= set(run._parts)


spec_strategy = st.tuples(
    st.sampled_from(COLLECTIONS), st.sampled_from(IDS),
    st.one_of(st.none(), st.dictionaries(
        st.sampled_from(NAMES),
        st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**64),
                               st.floats(allow_nan=False), st.text(max_size=2)),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                         st.sampled_from(NAMES), inner, max_size=3), max_leaves=6),
        max_size=4)),
)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(st.lists(spec_strategy, min_size=1, max_size=10), min_size=1,
                        max_size=10),
       delta=st.lists(spec_strategy, max_size=5), seed=st.integers(0, 2**16))
def test_ranges_match_model(tmp_path_factory: pytest.TempPathFactory,
                            batches: list[list[tuple]], delta: list[tuple], seed: int) -> None:
    def spec(t: tuple) -> Spec:
        collection, frame_id, meta = t
        key = key_of(collection, frame_id)
        return (key, None, None) if meta is None else (key, meta, [])

    e = Engine(tmp_path_factory.mktemp("prop") / "p.mv2")
    try:
        for batch in batches:
            e.commit([spec(t) for t in batch])
        e.add_delta([spec(t) for t in delta])
        check(e, random.Random(seed), 30)
    finally:
        e.close()
