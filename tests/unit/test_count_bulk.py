"""Counts of many matches come from the posting and vto columns in bulk: the same numbers
as reading every match, through updates, deletes, collections, merges and the WAL delta."""

from __future__ import annotations

import random

import pytest

from memvid_store import Memory
from memvid_store.index import listing


def _slow(monkeypatch, target, spec) -> int:
    with monkeypatch.context() as patch:
        patch.setattr(listing, "BULK_COUNT", 10**12)
        patch.setattr(listing, "BULK_COUNT_LOADED", 10**12)
        return target.count(spec)


def test_bulk_counts_equal_the_counts_read_match_by_match(tmp_path, monkeypatch):
    bulk = []
    real = listing._count_posted
    monkeypatch.setattr(listing, "_count_posted", lambda s, r: bulk.append(
        real(s, r)) or bulk[-1])
    rng = random.Random(3)
    model: dict[str, dict[str, dict]] = {"default": {}, "chat": {}}
    with Memory.create(tmp_path / "m.mv2", wal_size=1 << 20) as mem:
        targets = {"default": mem, "chat": mem.collection("chat")}
        for step in range(12):
            for name, target in targets.items():
                records = [{"id": f"f{rng.randint(0, 2999)}", "text": "x",
                            "metadata": {"k": rng.choice(["a", "b"]), "n": rng.randint(0, 3)},
                            "tags": rng.sample(["t1", "t2"], rng.randint(0, 2))}
                           for _ in range(rng.randint(300, 900))]
                target.put_many(records)
                for rec in records:
                    model[name][rec["id"]] = rec
                if step % 3 == 2:  # deletes, in the WAL or committed
                    victims = rng.sample(sorted(model[name]), 200)
                    target.delete_many(victims)
                    for fid in victims:
                        del model[name][fid]
            if step % 2 == 1:
                mem.seal()
            for name, target in targets.items():
                for spec in ({"k": "a"}, {"n": 2}, {"tags": "t1"}):
                    key, value = next(iter(spec.items()))
                    want = sum(1 for rec in model[name].values()
                               if (value in (rec.get("tags") or []) if key == "tags"
                                   else rec["metadata"][key] == value))
                    got = target.count(spec)
                    assert got == want == _slow(monkeypatch, target, spec), (step, name, spec)
    assert sum(n is not None for n in bulk) > 20  # the bulk path answered most late counts


def test_small_counts_keep_the_match_by_match_path(tmp_path, monkeypatch):
    calls = []
    real = listing._count_posted
    monkeypatch.setattr(listing, "_count_posted", lambda s, r: calls.append(
        real(s, r)) or calls[-1])
    with Memory.create(tmp_path / "m.mv2") as mem:
        mem.put_many([{"text": "x", "metadata": {"k": i % 2}} for i in range(100)])
        assert mem.count({"k": 1}) == 50
    assert calls == [None]


@pytest.mark.parametrize("spec", [{"k": {"$in": ["a", "b"]}}, {"k": "a", "n": 1},
                                  {"n": {"$gt": 1}}])
def test_other_filters_are_counted_match_by_match(tmp_path, spec):
    with Memory.create(tmp_path / "m.mv2") as mem:
        mem.put_many([{"text": "x", "metadata": {"k": "ab"[i % 2], "n": i % 3}}
                      for i in range(3000)])
        want = sum(1 for i in range(3000)
                   if (("ab"[i % 2] in ("a", "b")) if "$in" in str(spec) else True)
                   and (i % 2 == 0 and i % 3 == 1 if "n" in spec and "k" in spec else True)
                   and (i % 3 > 1 if spec == {"n": {"$gt": 1}} else True))
        assert mem.count(spec) == want


def test_bulk_window_counts_equal_the_counts_read_match_by_match(tmp_path, monkeypatch):
    from datetime import UTC, datetime, timedelta

    rng = random.Random(4)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    with Memory.create(tmp_path / "m.mv2", wal_size=1 << 20) as mem:
        chat = mem.collection("chat")
        for step in range(8):
            for target in (mem, chat):
                target.put_many([{"id": f"f{rng.randint(0, 4999)}", "text": "x",
                                  "created_at": t0 + timedelta(hours=rng.randint(0, 999))}
                                 for _ in range(1500)])
                target.delete_many([f"f{rng.randint(0, 4999)}" for _ in range(100)],
                                   missing_ok=True)
            if step % 2:
                mem.seal()
            for target in (mem, chat):
                for lo, hi in ((0, 1000), (100, 700), (None, 300), (500, None)):
                    window = (None if lo is None else t0 + timedelta(hours=lo),
                              None if hi is None else t0 + timedelta(hours=hi))
                    with monkeypatch.context() as patch:
                        patch.setattr(listing, "BULK_COUNT", 10**12)
                        patch.setattr(listing, "BULK_COUNT_LOADED", 10**12)
                        slow = target.count(time_range=window)
                    assert target.count(time_range=window) == slow, (step, window)
