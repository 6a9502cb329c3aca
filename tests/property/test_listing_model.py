"""select and count against a brute-force model: collections, random filters (the filter
language's reference interpreter decides each frame), event-time windows, record-time
views, order and paging, over a file written with updates, deletes, seals and a WAL tail."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store import Memory
from memvid_store.index import listing
from tests.property.test_filters_model import COMMON, RARE, filters, ref_match

COLLECTIONS = ["default", "chat", "notes"]
T0 = datetime(2024, 1, 1, tzinfo=UTC)
RECORDED = datetime(2001, 1, 1, tzinfo=UTC)  # record times: one second per write, after creation


@dataclass
class State:
    """A frame as the model knows it: the order key of its current version and content."""

    created: datetime
    seq: int  # write order of the current version (ties of created_at)
    meta: dict[str, Any]
    tags: list[str]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 2 and roll < 0.15:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 2 and roll < 0.25:
        return {k: random_value(rng, depth + 1) for k in rng.sample(["b", "c"], rng.randint(1, 2))}
    return rng.choice(COMMON + COMMON + RARE)


def build(path: str) -> tuple[Memory, list[dict[str, dict[str, State]]], list[datetime]]:
    """A file and the model's state after each write (index i: after write i)."""
    rng = random.Random(7)
    mem = Memory.create(path, wal_size=1 << 20, created_at=RECORDED - timedelta(days=1))
    state: dict[str, dict[str, State]] = {c: {} for c in COLLECTIONS}
    history, times = [], []
    seq = 0
    for step in range(120):
        name = rng.choice(COLLECTIONS)
        target = mem if name == "default" else mem.collection(name)
        at = RECORDED + timedelta(seconds=step)
        live = state[name]
        if live and rng.random() < 0.15:
            victims = rng.sample(sorted(live), rng.randint(1, min(2, len(live))))
            target.delete_many(victims, recorded_at=at)
            for fid in victims:
                del live[fid]
        else:
            records = []
            for _ in range(rng.randint(1, 3)):
                fid = f"f{rng.randint(0, 25)}"
                meta = {k: random_value(rng) for k in rng.sample(["a", "b", "a.b", "tags"],
                                                                 rng.randint(0, 3))}
                tags = rng.sample(["a", "b", "urgent"], rng.randint(0, 2))
                created = T0 + timedelta(days=rng.randint(0, 20))
                records.append({"id": fid, "text": f"frame {fid}", "metadata": meta,
                                "tags": tags, "created_at": created})
            target.put_many(records, recorded_at=at)
            for rec in records:
                seq += 1
                live[rec["id"]] = State(rec["created_at"], seq, rec["metadata"], rec["tags"])
        if rng.random() < 0.1:
            mem.seal()
        history.append({c: dict(v) for c, v in state.items()})
        times.append(at)
    return mem, history, times


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    mem, history, times = build(str(tmp_path_factory.mktemp("listing") / "m.mv2"))
    yield mem, history, times
    mem.close()


def expected_ids(frames: dict[str, State], spec: dict[str, Any],
                 window: tuple[datetime | None, datetime | None] | None,
                 order_by: str, reverse: bool) -> list[str]:
    lo, hi = window or (None, None)
    kept = [(fid, s) for fid, s in frames.items()
            if ref_match(spec, s.meta, s.tags)
            and (lo is None or s.created >= lo) and (hi is None or s.created < hi)]
    if order_by == "created_at":
        kept.sort(key=lambda fs: (fs[1].created, fs[1].seq), reverse=reverse)
    else:
        kept.sort(key=lambda fs: fs[1].seq, reverse=reverse)
    return [fid for fid, _ in kept]


days = st.one_of(st.none(), st.integers(0, 21).map(lambda d: T0 + timedelta(days=d)))
windows = st.one_of(st.none(), st.tuples(days, days).filter(
    lambda w: w[0] is None or w[1] is None or w[0] <= w[1]))


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=filters(2), collection=st.sampled_from(COLLECTIONS), window=windows,
       when=st.one_of(st.none(), st.integers(0, 119)), order_by=st.sampled_from(
           ["created_at", "valid_from"]), reverse=st.booleans(),
       page=st.tuples(st.integers(0, 5), st.one_of(st.none(), st.integers(0, 8))))
def test_select_and_count_match_the_model(corpus, spec, collection, window, when, order_by,
                                          reverse, page):
    mem, history, times = corpus
    handle = mem if collection == "default" else mem.collection(collection)
    frames = history[-1 if when is None else when][collection]
    as_of = None if when is None else times[when]
    expected = expected_ids(frames, spec, window, order_by, reverse)
    offset, limit = page
    end = None if limit is None else offset + limit
    # every plan gives the model's answer: scans only (checking records, or the postings
    # from the first record on), the default choice, postings only (their candidates
    # ordered one by one, or from the columns in bulk)
    for share, bulk, decodes in ((0.0, None, None), (0.0, None, 1), (None, None, None),
                                 (2.0, None, None), (2.0, 0, None)):
        with patch.object(listing, "SELECTIVE", listing.SELECTIVE if share is None else share), \
                patch.object(listing, "COUNT_SELECTIVE",
                             listing.COUNT_SELECTIVE if share is None else share), \
                patch.object(listing, "BULK_ORDER",
                             listing.BULK_ORDER if bulk is None else bulk), \
                patch.object(listing, "SCAN_DECODES", decodes or listing.SCAN_DECODES):
            got = handle.select(spec, order_by=order_by, reverse=reverse, offset=offset,
                                limit=limit, as_of=as_of, time_range=window)
            assert [f.id for f in got] == expected[offset:end], share
            assert all(f.collection == collection for f in got)
            assert handle.count(spec, as_of=as_of, time_range=window) == len(expected), share
    with patch.object(listing, "BULK_COUNT", 0), patch.object(listing, "BULK_COUNT_LOADED", 0):
        # counts from the columns in bulk wherever they apply (terms, windows, time ranges)
        assert handle.count(spec, as_of=as_of, time_range=window) == len(expected)
        with patch.object(listing, "DEEP_SHARE", 0):  # every page as a deep one
            got = handle.select(spec, order_by=order_by, reverse=reverse, offset=offset,
                                limit=limit, as_of=as_of, time_range=window)
            assert [f.id for f in got] == expected[offset:end]
    # the ids alone, from the postings and columns however many match
    assert handle.select_ids(spec, as_of=as_of, time_range=window) == expected_ids(
        frames, spec, window, "created_at", False)


bounds = st.sampled_from([0, 1, 1.5, 2, -1, "", "a", "b"])
leaves = st.one_of(
    st.builds(lambda k, v: {k: v}, st.sampled_from(["a", "b", "tags"]), st.sampled_from(COMMON)),
    st.builds(lambda k, vs: {k: {"$in": vs}}, st.sampled_from(["a", "b"]),
              st.lists(st.sampled_from(COMMON), min_size=1, max_size=3)),
    st.builds(lambda k, v: {k: {"$ne": v}}, st.sampled_from(["a", "b"]), st.sampled_from(COMMON)),
    st.builds(lambda k, op, v: {k: {op: v}}, st.sampled_from(["a", "b"]),
              st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), bounds),
    st.builds(lambda k, lo, hi: {k: {"$gte": lo, "$lt": hi}}, st.sampled_from(["a", "b"]),
              bounds, bounds))
indexed = st.one_of(
    leaves,
    st.builds(lambda x, y: {**x, **y}, leaves, leaves),
    st.builds(lambda xs: {"$or": xs}, st.lists(leaves, min_size=1, max_size=3)),
    st.builds(lambda x, xs: {**x, "$or": xs}, leaves, st.lists(leaves, min_size=1, max_size=2)))


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=indexed, collection=st.sampled_from(COLLECTIONS), window=windows,
       reverse=st.booleans(),
       page=st.tuples(st.integers(0, 12), st.one_of(st.none(), st.integers(0, 8))))
def test_deep_pages_of_indexed_filters_match_the_model(corpus, spec, collection, window,
                                                       reverse, page):
    """Every page taken as a deep one (from the columns in bulk) where the filter is
    answered from the indexes: terms, windows on a key, their $or."""
    mem, history, _ = corpus
    handle = mem if collection == "default" else mem.collection(collection)
    expected = expected_ids(history[-1][collection], spec, window, "created_at", reverse)
    offset, limit = page
    end = None if limit is None else offset + limit
    with patch.object(listing, "DEEP_SHARE", 0), patch.object(listing, "BULK_COUNT", 0), \
            patch.object(listing, "BULK_COUNT_LOADED", 0):
        got = handle.select(spec, reverse=reverse, offset=offset, limit=limit,
                            time_range=window)
    assert [f.id for f in got] == expected[offset:end]
