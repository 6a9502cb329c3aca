"""ShardedMemory: exact fan-out against one file holding every frame, routing, pins."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store import (
    AlreadyExistsError,
    ClosedError,
    CorruptFileError,
    DimensionMismatchError,
    FrameNotFoundError,
    InvalidInputError,
    Memory,
    MemoryLockedError,
    MemoryNotFoundError,
    ReadOnlyError,
    ShardedMemory,
)
from memvid_store.index.searcher import Searcher
from memvid_store.sharded import combined, search
from memvid_store.sharded.routing import Router

from ..crash.conftest import parse_layout

DIM = 16
WORDS = [f"w{i}" for i in range(50)]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def records(n: int, seed: int, start: int = 0) -> list[dict]:
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        meta = {"tenant": f"t{rng.randint(0, 5)}", "n": rng.randint(0, 99)}
        if rng.random() < 0.3:
            meta["title"] = " ".join(rng.choices(WORDS, k=2))
        out.append({"id": f"f{i:05d}", "text": " ".join(rng.choices(WORDS, k=rng.randint(2, 30))),
                    "embedding": nrng.standard_normal(DIM).tolist(), "metadata": meta,
                    "tags": rng.sample(["a", "b", "c"], rng.randint(0, 2)),
                    "created_at": T0 + timedelta(seconds=i)})
    return out


def same_hits(got, want, what):
    assert [h.id for h in got] == [h.id for h in want], what
    for g, w in zip(got, want, strict=True):
        assert g.score == pytest.approx(w.score, rel=1e-5, abs=1e-6), (what, g.id)
        assert g.ranks == w.ranks, (what, g.id)
        assert g.text == w.text and g.metadata == w.metadata and g.version == w.version


def same_as_local(remote, local_path, reqs) -> None:
    """A sharded memory read from elsewhere answers ``reqs`` as the local one at
    ``local_path`` does, with its count and generation."""
    with ShardedMemory.open(local_path, readonly=True) as here:
        for req, got, want in zip(reqs, remote.find_batch(reqs), here.find_batch(reqs),
                                  strict=True):
            same_hits(got, want, req)
        assert remote.count() == here.count() and remote.generation == here.generation


def queries(seed: int, count: int) -> list[dict]:
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    out = []
    for _ in range(count):
        vector = nrng.standard_normal(DIM).tolist()
        text = " ".join(rng.sample(WORDS, rng.randint(1, 3)))
        k = rng.choice([1, 5, 10, 30])
        out += [
            {"vector": vector, "k": k, "mode": "vector"},
            {"text": text, "k": k, "mode": "lexical"},
            {"text": f'"{WORDS[rng.randrange(50)]} {WORDS[rng.randrange(50)]}"', "k": k,
             "mode": "lexical"},
            {"text": text, "vector": vector, "k": k},
            {"text": text, "vector": vector, "k": k, "weights": {"lexical": 2.0}},
            {"text": text, "vector": vector, "k": k, "filter": {"n": {"$gte": 60}}},
            {"text": text, "k": k, "filter": {"tenant": f"t{rng.randint(0, 5)}"}},
            {"vector": vector, "k": k, "filter": {"tags": "a"}},
            {"text": text, "vector": vector, "k": k,
             "time_range": (T0 + timedelta(seconds=100), T0 + timedelta(seconds=300))},
            # grouped: best hit per tenant (six groups), per title (most frames alone)
            {"vector": vector, "k": min(k, 6), "mode": "vector", "group_by": "tenant"},
            {"text": text, "k": k, "mode": "lexical", "group_by": "tenant",
             "tie_break": ["n"]},
            {"text": text, "vector": vector, "k": k, "group_by": "title",
             "tie_break": ("created_at",)},
        ]
    return out


@pytest.fixture(params=["combined", "rescored"])
def lexical_path(request, monkeypatch):
    """The fan-out's two exact lexical paths: one index over every shard's segments, or
    each shard's candidates rescored with the summed statistics (where the combined index
    cannot be made, and for selective filters)."""
    if request.param == "rescored":
        monkeypatch.setattr(combined, "combine", lambda indexes, cache_root: None)
    return request.param


@pytest.fixture(params=[None, "tenant"], ids=["by-id", "by-tenant"])
def pair(request, tmp_path):
    """A 4-shard memory and one file given the same writes."""
    sharded = ShardedMemory.create(tmp_path / "m.mv2s", 4, dim=DIM, route=request.param)
    one = Memory.create(tmp_path / "one.mv2", dim=DIM)
    yield sharded, one, tmp_path
    sharded.close()
    one.close()


def write_both(sharded, one, batches):
    for batch in batches:
        sharded.put_many(batch)
        one.put_many(batch)


def compare_finds(sharded, one, seed, count=12):
    reqs = queries(seed, count)
    for req, got, want in zip(reqs, sharded.find_batch(reqs), one.find_batch(reqs), strict=True):
        same_hits(got, want, req)


def test_fan_out_equals_one_file_unsealed_and_sealed(pair, lexical_path):
    sharded, one, tmp = pair
    data = records(600, seed=1)
    write_both(sharded, one, [data[i:i + 100] for i in range(0, 600, 100)])
    compare_finds(sharded, one, seed=2)
    sharded.close()
    one.close()
    sharded, one = ShardedMemory.open(tmp / "m.mv2s"), Memory.open(tmp / "one.mv2")
    try:  # sealed: tantivy indexes in every shard, scores with the summed statistics
        compare_finds(sharded, one, seed=3)
    finally:
        sharded.close()
        one.close()


def test_fan_out_after_updates_and_deletes_and_as_of(pair):
    sharded, one, _ = pair
    data = records(300, seed=4)
    write_both(sharded, one, [data[:150]])
    g1, t1 = sharded.generation, datetime.now(UTC)
    g1_one = one.generation
    write_both(sharded, one, [data[150:]])
    rng = random.Random(5)
    for fid in rng.sample([r["id"] for r in data], 40):
        sharded.delete(fid)
        one.delete(fid)
    for fid in rng.sample([r["id"] for r in data], 40):
        if fid in one:
            text = " ".join(rng.choices(WORDS, k=5))
            assert sharded.update(fid, text=text) == one.update(fid, text=text)
    compare_finds(sharded, one, seed=6)
    assert sharded.count() == one.count() == len(sharded)
    then = sharded.as_of(g1)
    assert then.count() == one.as_of(g1_one).count() == 150
    reqs = queries(7, 4)
    for req, got, want in zip(reqs, then.find_batch(reqs), one.as_of(g1_one).find_batch(reqs),
                              strict=True):
        same_hits(got, want, req)
    assert [f.id for f in sharded.as_of(t1).select()] == [f.id for f in one.as_of(t1).select()]
    with pytest.raises(ReadOnlyError):
        then.put("x")


def test_select_count_get_merge_like_one_file(pair):
    sharded, one, _ = pair
    data = records(400, seed=8)
    write_both(sharded, one, [data[i:i + 80] for i in range(0, 400, 80)])
    for kwargs in ({}, {"reverse": True}, {"limit": 17, "offset": 33},
                   {"filter": {"n": {"$lt": 30}}, "limit": 50},
                   {"filter": {"tenant": "t2"}},
                   {"time_range": (T0 + timedelta(seconds=50), None), "limit": 9}):
        got = [f.id for f in sharded.select(**kwargs)]
        assert got == [f.id for f in one.select(**kwargs)], kwargs
        flt = {k: v for k, v in kwargs.items() if k in ("filter", "time_range")}
        assert sharded.count(**flt) == one.count(**flt)
    # record-time order: one file orders a batch by position, shards write their part of
    # it one after the other; across writes the order is the same
    later = records(12, seed=15, start=1000)
    write_both(sharded, one, [[r] for r in later])
    got = [f.id for f in sharded.select(order_by="valid_from", reverse=True, limit=12)]
    assert got == [r["id"] for r in reversed(later)]
    assert sharded.get("f00007").text == one.get("f00007").text
    assert "f00007" in sharded and "nope" not in sharded
    ids = ["f00007", "nope", "f00300", "f00007"]
    assert [f and (f.id, f.text) for f in sharded.get_many(ids)] == [
        f and (f.id, f.text) for f in one.get_many(ids)]
    with pytest.raises(FrameNotFoundError):
        sharded.get("nope")
    with pytest.raises(InvalidInputError):
        sharded.select(limit=-1)


def test_ties_break_by_frame_id_across_shards(tmp_path):
    with ShardedMemory.create(tmp_path / "m.mv2s", 3) as sharded, \
            Memory.create(tmp_path / "one.mv2") as one:
        batch = [{"id": f"id{i:03d}", "text": "same words here"} for i in range(40)]
        write_both(sharded, one, [batch])
        same_hits(sharded.find("words", k=25), one.find("words", k=25), "ties")
        assert len({h.score for h in sharded.find("words", k=25)}) == 1


def test_writes_go_to_the_owning_shard(tmp_path):
    with ShardedMemory.create(tmp_path / "m.mv2s", 4, route="tenant") as mem:
        mem.put_many([{"text": f"note {i}", "metadata": {"tenant": f"t{i % 3}"}}
                      for i in range(60)])
        homes = {}
        for i, shard in enumerate(mem.shards):
            for f in shard.select():
                homes.setdefault(f.metadata["tenant"], set()).add(i)
        assert all(len(shards) == 1 for shards in homes.values())
        assert mem.count({"tenant": "t1"}) == 20
        with pytest.raises(InvalidInputError, match="tenant"):
            mem.put("no key")
        with pytest.raises(InvalidInputError, match="string, a number"):
            mem.put("list key", metadata={"tenant": ["a"]})
        fid = mem.put("moving", metadata={"tenant": "t0"}, id="mover")
        router = Router(4, "tenant")
        other = next(t for t in ("t1", "t2", "t3", "t4") if
                     router.of_key(t) != router.of_key("t0"))
        with pytest.raises(InvalidInputError, match="delete it first"):
            mem.put("moved", metadata={"tenant": other}, id=fid)
        with pytest.raises(InvalidInputError, match="another shard"):
            mem.update(fid, metadata={"tenant": other})
        mem.delete(fid)
        mem.put("moved", metadata={"tenant": other}, id=fid)
        assert mem.get(fid).text == "moved"


def test_a_bad_batch_writes_no_shard(tmp_path):
    with ShardedMemory.create(tmp_path / "m.mv2s", 4, dim=DIM) as mem:
        good = records(20, seed=9)
        bad = [*good, {"text": "x", "embedding": [1.0] * (DIM + 1)}]
        before = [s.generation for s in mem.shards]
        with pytest.raises(DimensionMismatchError):
            mem.put_many(bad)
        with pytest.raises(InvalidInputError):
            mem.put_many([*good[:5], {"text": "y", "metadata": {"k": float("nan")}}])
        with pytest.raises(FrameNotFoundError):
            mem.delete_many(["nope"])
        assert [s.generation for s in mem.shards] == before and len(mem) == 0
        mem.put_many(good)
        before = [s.generation for s in mem.shards]
        with pytest.raises(InvalidInputError, match="both stored and deleted"):
            mem.put_many(good[:3], delete=[good[1]["id"], good[0]["id"]])
        with pytest.raises(FrameNotFoundError):
            mem.delete_many([good[0]["id"], "nope"])
        assert [s.generation for s in mem.shards] == before and len(mem) == 20
        assert mem.delete_many([good[0]["id"], "nope"], missing_ok=True) == 1
        assert len(mem) == 19


def test_readers_see_pinned_states_only(tmp_path):
    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 4, dim=DIM) as writer:
        writer.put_many(records(40, seed=10))
        reader = ShardedMemory.open(path, readonly=True)
        try:
            assert len(reader) == 40
            writer.put_many(records(40, seed=11, start=40))
            assert len(reader) == 40  # its pinned state until refresh
            assert reader.refresh() == writer.generation
            assert len(reader) == 80
            with pytest.raises(ReadOnlyError):
                reader.put("x")
        finally:
            reader.close()
    with pytest.raises(ClosedError):
        reader.find("x")


def test_a_write_that_stopped_between_shards(tmp_path):
    """A shard written but not pinned: readers do not see it; the next writer pins it."""
    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 2, dim=DIM) as mem:
        mem.put_many(records(10, seed=12))
        shard_path = mem.shards[0].path
    with ShardedMemory.open(path, readonly=True) as reader:
        gen = reader.generation  # the state close() sealed and pinned
    with Memory.open(shard_path) as shard:  # as a writer killed after this shard's write
        shard.put("half a batch", id="half")
    with ShardedMemory.open(path, readonly=True) as reader:
        assert reader.generation == gen and "half" not in reader and len(reader) == 10
    with ShardedMemory.open(path) as writer:
        assert writer.generation == gen + 1 and writer.get("half").text == "half a batch"


def test_pins_survive_a_torn_append_and_refuse_damage(tmp_path):
    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 2, dim=DIM) as mem:
        mem.put_many(records(10, seed=13))
    with ShardedMemory.open(path, readonly=True) as mem:
        gen = mem.generation
    pins = str(path) + ".pins"
    with open(pins, "ab") as f:
        f.write(b"\x07" * 11)  # a crash in the middle of an append
    with ShardedMemory.open(path) as mem:
        assert mem.generation == gen
        mem.put("after the tear")
        assert mem.as_of(gen).count() == 10
    with ShardedMemory.open(path, readonly=True) as mem:
        assert mem.generation > gen and len(mem) == 11
    assert (os.path.getsize(str(path) + ".pins") - 16) % struct.calcsize("<QQ2QI") == 0
    with open(pins, "r+b") as f:  # the first pin, not the last: damage
        f.seek(20)
        byte = f.read(1)[0]
        f.seek(20)
        f.write(bytes([byte ^ 0xFF]))
    with ShardedMemory.open(path, readonly=True) as mem, \
            pytest.raises(CorruptFileError, match="damaged"):
        mem.as_of(1)


def test_bad_manifests_give_typed_errors(tmp_path):
    path = tmp_path / "m.mv2s"
    with pytest.raises(MemoryNotFoundError):
        ShardedMemory.open(path)
    ShardedMemory.create(path, 2).close()
    with pytest.raises(AlreadyExistsError):
        ShardedMemory.create(path, 2)
    good = path.read_bytes()
    path.write_bytes(good.replace(b"m-001.mv2", b"m-009.mv2"))
    with pytest.raises(CorruptFileError, match="checksum"):
        ShardedMemory.open(path)
    path.write_bytes(b"\x00garbage")
    with pytest.raises(CorruptFileError):
        ShardedMemory.open(path)
    path.write_bytes(good)
    os.rename(str(path) + ".pins", str(path) + ".gone")
    with pytest.raises(MemoryNotFoundError):
        ShardedMemory.open(path)
    for bad in (0, "two", [], ["a.mv2", "a.mv2"]):
        with pytest.raises(InvalidInputError):
            ShardedMemory.create(tmp_path / "x.mv2s", bad)
    with pytest.raises(InvalidInputError):
        ShardedMemory.create(tmp_path / "y.mv2s", 2, route="a.b")


def test_a_shard_older_than_its_pin_is_refused(tmp_path):
    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 2, dim=DIM) as mem:
        first = mem.shards[0].path
        shutil.copy(first, tmp_path / "old.mv2")
        mem.put_many(records(20, seed=14))
        assert mem.shards[0].generation > 1
    shutil.copy(tmp_path / "old.mv2", first)
    with pytest.raises(CorruptFileError, match="older than its pinned"):
        ShardedMemory.open(path, readonly=True)


def test_one_writer_at_a_time(tmp_path):
    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 2):
        script = ("from memvid_store import ShardedMemory\n"
                  f"ShardedMemory.open({str(path)!r}, lock_timeout=0)")
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert MemoryLockedError.__name__ in out.stderr


def test_query_syntax_is_refused(tmp_path):
    with ShardedMemory.create(tmp_path / "m.mv2s", 2) as mem:
        mem.put("alpha beta")
        with pytest.raises(InvalidInputError, match="plain query syntax"):
            mem.find_batch([{"text": "alpha AND beta", "syntax": "query"}])


def test_pins_records_are_fixed_size(tmp_path):
    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 3) as mem:
        for i in range(5):
            mem.put(f"note {i}")
    size = os.path.getsize(str(path) + ".pins")
    assert (size - 16) % struct.calcsize("<QQ3QI") == 0


OPS = st.lists(st.one_of(
    st.tuples(st.just("put"), st.integers(0, 29), st.sampled_from(WORDS[:8]),
              st.integers(0, 3)),
    st.tuples(st.just("update"), st.integers(0, 29), st.sampled_from(WORDS[:8])),
    st.tuples(st.just("delete"), st.integers(0, 29)),
    st.tuples(st.just("seal")),
), min_size=1, max_size=25)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, k=st.integers(1, 12), shards=st.integers(1, 5))
def test_random_histories_match_one_file(tmp_path_factory, lexical_path, ops, k, shards):
    """Puts, updates, deletes and seals in any order: every search, listing and count of
    the shards equals one file's, now and as of every sharded generation (each one file's
    state after the same write)."""
    tmp = tmp_path_factory.mktemp("h")
    nrng = np.random.default_rng(len(ops))
    vector = nrng.standard_normal(4).tolist()
    reqs = [{"text": "w1 w2 filler", "k": k}, {"vector": vector, "k": k},
            {"text": "w3", "vector": vector, "k": k, "filter": {"n": {"$gt": 1}}}]

    def same(sharded, one) -> None:
        for req, got, want in zip(reqs, sharded.find_batch(reqs), one.find_batch(reqs),
                                  strict=True):
            same_hits(got, want, req)
        assert sharded.count() == one.count()
        assert [f.id for f in sharded.select()] == [f.id for f in one.select()]

    with ShardedMemory.create(tmp / "m.mv2s", shards, dim=4) as sharded, \
            Memory.create(tmp / "one.mv2", dim=4) as one:
        states = []  # (sharded generation, one file's generation) after each write
        for op in ops:
            fid = f"k{op[1]}" if len(op) > 1 else None
            if op[0] == "put":
                _, _, word, n = op
                rec = {"id": fid, "text": f"{word} {word} filler {n}",
                       "embedding": nrng.standard_normal(4).tolist(), "metadata": {"n": n}}
                sharded.put_many([rec])
                one.put_many([rec])
            elif op[0] == "update" and fid in one:
                assert sharded.update(fid, text=f"{op[2]} changed") == one.update(
                    fid, text=f"{op[2]} changed")
            elif op[0] == "delete" and fid in one:
                sharded.delete(fid)
                one.delete(fid)
            elif op[0] == "seal":
                sharded.seal()
                one.seal()
            states.append((sharded.generation, one.generation))
        same(sharded, one)
        for mine, theirs in states:
            same(sharded.as_of(mine), one.as_of(theirs))


def test_lexical_is_exact_when_shard_statistics_differ(tmp_path, monkeypatch, lexical_path):
    """Tenants with their own vocabularies give shards very different BM25 statistics: each
    shard's local order differs from the global one, and shards fetch in several rounds."""
    rng = random.Random(16)
    batch = []
    for i in range(900):
        tenant = f"t{i % 3}"
        common = {"t0": "alpha", "t1": "beta", "t2": "gamma"}[tenant]
        words = [common] * rng.randint(0, 4) + rng.choices(WORDS, k=rng.randint(1, 40))
        words += ["alpha"] * (rng.random() < 0.05)
        rng.shuffle(words)
        batch.append({"id": f"d{i:04d}", "text": " ".join(words), "metadata": {"tenant": tenant}})
    with ShardedMemory.create(tmp_path / "m.mv2s", 3, route="tenant") as sharded, \
            Memory.create(tmp_path / "one.mv2") as one:
        write_both(sharded, one, [batch[:450], batch[450:]])
        sharded.seal()
        one.seal()
        rounds = []
        fetch = search._ShardLexical.fetch
        monkeypatch.setattr(search._ShardLexical, "fetch",
                            lambda self, limit: rounds.append(limit) or fetch(self, limit))
        for text in ("alpha", "alpha beta", "gamma w3", '"alpha w1"', "w7 w8 w9 beta"):
            for k in (1, 7, 60, 400):
                same_hits(sharded.find(text, k=k, mode="lexical"),
                          one.find(text, k=k, mode="lexical"), (text, k))
        if lexical_path == "rescored":
            assert max(rounds) > min(rounds)  # some shard needed more than its first share
        else:
            assert not rounds  # one search of the combined index, widened as one file's


def test_combined_lexical_index_is_derived_and_replaceable(tmp_path, monkeypatch):
    """The index over every shard's BM25 segments lives in the cache: the next reader uses
    it again, a damaged copy is made again, and where it cannot be made (no hard links)
    each shard's candidates are rescored; every answer equals one file's."""
    cache = tmp_path / "cache"
    data = records(400, seed=31)
    with ShardedMemory.create(tmp_path / "m.mv2s", 3, dim=DIM) as sharded, \
            Memory.create(tmp_path / "one.mv2", dim=DIM) as one:
        write_both(sharded, one, [data[:200], data[200:]])
    texts = ["w1 w2", '"w3 w4"', "w5", "w7 w8 w9 w10"]

    def compare() -> list:
        with ShardedMemory.open(tmp_path / "m.mv2s", readonly=True, cache_dir=cache) as s, \
                Memory.open(tmp_path / "one.mv2", readonly=True, cache_dir=cache) as o:
            for text in texts:
                for k in (1, 10, 50):
                    same_hits(s.find(text, k=k, mode="lexical"),
                              o.find(text, k=k, mode="lexical"), (text, k))
        return sorted(cache.rglob("shards-*/meta.json"))

    (meta,) = compare()
    made = meta.stat().st_mtime_ns
    assert compare() == [meta] and meta.stat().st_mtime_ns == made  # used again
    meta.write_text("{not json")
    assert compare() == [meta] and json.loads(meta.read_text())["segments"]  # made again
    shutil.rmtree(meta.parent)
    monkeypatch.setattr(combined.os, "link", lambda *a: (_ for _ in ()).throw(
        OSError("no hard links here")))
    assert compare() == []  # rescored per shard


def test_vector_lists_are_exact_when_one_shard_holds_the_best(tmp_path, monkeypatch):
    """One tenant's vectors all lie near the queries: its shard holds the whole merged list,
    so its first share (the depth over the shard count) is not enough and it is asked for
    the whole depth; the hits equal one file's."""
    rng = np.random.default_rng(17)
    centre = rng.standard_normal(DIM)
    batch = []
    for i in range(600):
        tenant = f"t{i % 3}"
        vector = (centre * 5 if tenant == "t0" else 0) + rng.standard_normal(DIM)
        batch.append({"id": f"d{i:04d}", "text": f"w{i % 7} w{i % 11}",
                      "embedding": vector.tolist(), "metadata": {"tenant": tenant}})
    with ShardedMemory.create(tmp_path / "m.mv2s", 3, dim=DIM, route="tenant") as sharded, \
            Memory.create(tmp_path / "one.mv2", dim=DIM) as one:
        write_both(sharded, one, [batch])
        asked = []
        original = Searcher.vector_ranked_batch
        monkeypatch.setattr(Searcher, "vector_ranked_batch", lambda self, reqs: asked.extend(
            r.k for r in reqs) or original(self, reqs))
        for k in (1, 10, 60):
            query = (centre + rng.standard_normal(DIM) * 0.1).tolist()
            same_hits(sharded.find(vector=query, k=k, mode="vector"),
                      one.find(vector=query, k=k, mode="vector"), ("vector", k))
            same_hits(sharded.find("w3", vector=query, k=k), one.find("w3", vector=query, k=k),
                      ("hybrid", k))
        assert 60 in asked and any(k < 60 for k in asked)  # a share first, then the depth


@pytest.mark.parametrize("route", [None, "tenant"], ids=["by-id", "by-tenant"])
def test_one_pass_over_the_shards_graphs_answers_as_their_own_searches(tmp_path, monkeypatch,
                                                                       route):
    """With a graph in every shard, a vector list comes from one pass over the shards'
    first graph rounds (scored together); it equals what the shards' own searches merge
    to, and the requests one pass cannot answer alone (filters, windows, a shard holding
    more than its share, vectors the graphs do not cover yet) still do."""
    rng = np.random.default_rng(5)
    centre = rng.standard_normal(DIM)
    batch = []
    for i in range(1200):
        tenant = f"t{i % 4}"
        near = tenant == "t0" and route is not None  # one tenant's shard holds the best
        batch.append({"id": f"d{i:04d}", "text": f"w{i % 7} w{i % 11}",
                      "embedding": ((centre * 3 if near else 0)
                                    + rng.standard_normal(DIM)).tolist(),
                      "metadata": {"tenant": tenant, "n": i % 10},
                      "created_at": T0 + timedelta(seconds=i)})
    used = []
    original = search._graph_union
    monkeypatch.setattr(search, "_graph_union", lambda *a: used.append(
        (result := original(*a)) is not None) or result)
    with ShardedMemory.create(tmp_path / "m.mv2s", 4, dim=DIM, route=route,
                              index={"ann_threshold": 100}) as sharded:
        sharded.put_many(batch)
        sharded.build_index()

        def compare(reqs):
            one_pass = sharded.find_batch(reqs)
            with monkeypatch.context() as own:
                own.setattr(search, "_graph_union", lambda *a: None)
                for req, got, want in zip(reqs, one_pass, sharded.find_batch(reqs),
                                          strict=True):
                    same_hits(got, want, req)

        reqs = []
        for q in range(12):
            vector = (centre * (q % 2) + rng.standard_normal(DIM)).tolist()
            for k in (1, 10, 30):
                reqs += [{"vector": vector, "k": k, "mode": "vector"},
                         {"text": "w3", "vector": vector, "k": k},
                         {"vector": vector, "k": k, "filter": {"n": 3}},
                         {"vector": vector, "k": k,
                          "time_range": (T0, T0 + timedelta(seconds=500))}]
        for req in reqs:
            compare([req])
        assert any(used) and not all(used)
        # replaced versions stay in the graphs but are not accepted: a shard with fewer
        # than its share accepted in the first round searches a wider one
        sharded.put_many([{**r, "embedding": (np.asarray(r["embedding"]) * 1.01).tolist()}
                          for r in batch[:900]])
        sharded.build_index()
        used.clear()
        for req in reqs:
            compare([req])
        assert any(used)
        used.clear()
        sharded.put_many([{**r, "id": f"late{i}"} for i, r in enumerate(batch[:50])])
        compare(reqs[:8])  # the graphs do not cover the new vectors: the shards search
        assert not any(used)


def test_a_shard_short_of_its_share_in_the_first_round_searches_wider(tmp_path, monkeypatch):
    """A shard whose first graph round holds fewer accepted candidates than its share (its
    nearest versions were replaced) widens its own round, so the one pass leaves the list
    to the shards' searches; the hits are those searches' either way."""
    rng = np.random.default_rng(9)
    centre = rng.standard_normal(DIM)
    centre /= np.linalg.norm(centre)

    def frame(i: int, tenant: str, vector: np.ndarray) -> dict:
        return {"id": f"{tenant}-{i}", "text": "w1", "embedding": vector.tolist(),
                "metadata": {"tenant": tenant}}

    near = [frame(i, "t3", centre * 4 + rng.standard_normal(DIM) * 0.3) for i in range(3)]
    moderate = [frame(i, "t3", centre + rng.standard_normal(DIM)) for i in range(3, 300)]
    others = [frame(i, "t0", centre * 2 + rng.standard_normal(DIM)) for i in range(400)]
    used = []
    original = search._graph_union
    monkeypatch.setattr(search, "_graph_union", lambda *a: used.append(
        (result := original(*a)) is not None) or result)
    with ShardedMemory.create(tmp_path / "m.mv2s", 4, dim=DIM, route="tenant",
                              index={"ann_threshold": 100}) as sharded:
        sharded.put_many(near + moderate + others)
        sharded.put_many([{**f, "embedding": (-centre * 4 + rng.standard_normal(DIM)).tolist()}
                          for f in moderate])  # replaced: their old vectors stay in the graph
        sharded.build_index()
        query = centre.tolist()
        got = sharded.find(vector=query, k=10, mode="vector")
        assert used == [False]
        monkeypatch.setattr(search, "_graph_union", lambda *a: None)
        same_hits(got, sharded.find(vector=query, k=10, mode="vector"), "vector")
        assert {h.id for h in got} >= {f["id"] for f in near}


def test_threads_writing_at_once_keep_the_pins_in_order(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 3, dim=DIM) as mem:
        batches = [records(5, seed=40 + i, start=100 * i) for i in range(16)]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(mem.put_many, batches))
        assert len(mem) == 80
        generations = [mem.as_of(g).count() for g in range(1, mem.generation + 1)]
        assert generations == sorted(generations) and generations[-1] == 80
    with ShardedMemory.open(path, readonly=True) as mem:
        assert len(mem) == 80


def test_compact_stats_and_verify(tmp_path):
    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 3, dim=DIM) as mem:
        data = records(60, seed=50)
        mem.put_many(data)
        kept = mem.generation
        for r in data[:20]:
            mem.delete(r["id"])
        stats = mem.stats()
        assert stats.frames == 40 and len(stats.shards) == 3
        assert stats.versions == sum(s.versions for s in stats.shards) == 80
        assert mem.verify().ok
        generation = mem.compact()
        assert generation == mem.generation > kept and len(mem) == 40
        assert mem.as_of(kept).count() == 60  # history kept: retain_after=None
        after = mem.stats()
        assert after.file_bytes == sum(s.file_bytes for s in after.shards)
        assert 0 < after.live_bytes == sum(s.live_bytes for s in after.shards) <= after.file_bytes
    shard = path.parent / "m-001.mv2"
    raw = bytearray(shard.read_bytes())
    (offset, _), *_ = parse_layout(bytes(raw)).vblocks
    raw[offset + 5] ^= 0xFF  # a vector: verify reads it, open does not
    shard.write_bytes(raw)
    with ShardedMemory.open(path, readonly=True) as mem:
        report = mem.verify()
        assert not report.ok and all(p.startswith(str(shard)) for p in report.problems)


def test_mv2_find_searches_a_sharded_memory(tmp_path):
    import json

    from click.testing import CliRunner

    from memvid_store.cli import cli
    from memvid_store.embeddings import get_embedder

    path = tmp_path / "m.mv2s"
    embedder = get_embedder("hash:32")
    with ShardedMemory.create(path, 3, embedder=embedder) as mem:
        mem.put_many([{"text": r["text"], "id": r["id"]} for r in records(80, seed=60)])
        want = mem.find("w3 w4", k=5)  # hybrid: the texts were embedded by the memory
    out = CliRunner().invoke(cli, ["find", str(path), "w3 w4", "-k", "5", "--json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert [h["id"] for h in got] == [h.id for h in want]
    assert [h["score"] for h in got] == pytest.approx([h.score for h in want])
    refused = CliRunner().invoke(cli, ["find", str(path), "w3", "--syntax", "query"])
    assert refused.exit_code != 0 and "plain query syntax" in refused.output
