"""Substring filters (``$contains``, ``$icontains``) on metadata paths and on tags are
answered from the string value columns and the runs' tag lists, each distinct string
tested once, not from every payload. select, count and filtered vector, lexical and
hybrid search agree with a brute-force model over a file with collections, updates,
deletes, sealed runs and a WAL tail, holding the strings a key of ``STRING_KEY_BYTES``
cannot show whole: long ones, ones whose head ends in NUL characters, non-ASCII ones that
lowercase into ASCII, list elements, tags holding NUL characters."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store import Memory
from memvid_store.engine import substrings
from memvid_store.engine.snapshot import Snapshot
from memvid_store.index import listing
from tests.property.model_file import COLLECTIONS, DIM, build, expected

SOURCES = ["email"] * 20 + ["calendar"] * 20 + [
    "Web Mail", "x" * 30 + "tail",  # cut: the key shows 24 bytes
    "ab\x00zz", "abc" + "\x00" * 22 + "after-nul",  # the head of the second ends in NULs
    "\u212aelvin", "Straße", "İstanbul", ["email", "chat room"], {"b": "mail"}, 7, None,
    ["ab", "ab" + "\x00" * 22 + "deep"],  # two strings of one key, one its own string
    "missing"]


def metadata(rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {"kind": rng.choice(["a", "b"])}
    source = rng.choice(SOURCES)
    if source != "missing":
        meta["source"] = source
    return meta


TAGS = ["email", "calendar", "x", "Web Mail", "x" * 30 + "tail", "ab\x00zz",
        "abc" + "\x00" * 22 + "after-nul", "\u212aelvin", "Straße", "İstanbul", "ab",
        "ab" + "\x00" * 22 + "deep", "chat room"]


def frame(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    return metadata(rng), rng.sample(TAGS, rng.choice([0, 1, 1, 2, 3]))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    mem, state = build(str(tmp_path_factory.mktemp("substring") / "m.mv2"), frame, seed=7,
                       steps=50, ids=250, seal_at=(15, 35))
    yield mem, state
    mem.close()


needles = st.sampled_from(["mail", "MAIL", "al", "tail", "xxtail", "after-nul", "zz", "\x00",
                           "deep", "kelvin", "KEL", "ss", "ß", "i̇st", "room", "", "nothing"])
others = st.sampled_from([{}, {"kind": "a"}, {"kind": {"$ne": "b"}}])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["source", "tags"]), needle=needles, fold=st.booleans(),
       other=others, collection=st.sampled_from(COLLECTIONS), seed=st.integers(0, 1000))
def test_substrings_match_the_model(corpus, monkeypatch, field, needle, fold, other,
                                    collection, seed):
    mem, state = corpus
    answered = []
    real = substrings.substring_gids

    def spy(snap, path, text, fold, **kwargs):
        found = real(snap, path, text, fold, **kwargs)
        answered.append(found is not None)
        return found

    monkeypatch.setattr("memvid_store.index.listing.substring_gids", spy)
    handle = mem if collection == "default" else mem.collection(collection)
    spec = {field: {"$icontains" if fold else "$contains": needle}, **other}
    want = expected(state[collection], spec)
    assert sorted(f.id for f in handle.select(spec)) == sorted(want)
    assert handle.count(spec) == len(want)
    with monkeypatch.context() as bulk:  # counted from the postings wherever that applies
        bulk.setattr(listing, "BULK_COUNT", 0)
        bulk.setattr(listing, "BULK_COUNT_LOADED", 0)
        assert handle.count(spec) == len(want)
    query = np.random.default_rng(seed).standard_normal(DIM).astype("<f4")
    hits = handle.find(vector=query, k=5, mode="vector", filter=spec)
    unit = query / np.linalg.norm(query)
    scores = {fid: float(v @ unit / np.linalg.norm(v)) for fid, v in want.items()}
    assert [h.id for h in hits] == sorted(scores, key=lambda fid: (-scores[fid], fid))[:5]
    for mode in ("lexical", "hybrid"):
        found = handle.find("frame", vector=query, k=5, mode=mode, filter=spec)
        assert len(found) == min(5, len(want)) and {h.id for h in found} <= set(want)
    assert answered and all(answered)  # from the value columns


def decodes(monkeypatch) -> list[Any]:
    """The payloads decoded from now on (their arguments), as a list that grows."""
    decoded: list[Any] = []
    real = Snapshot._payload

    def counting(self, *args):
        decoded.append(args)
        return real(self, *args)

    monkeypatch.setattr(Snapshot, "_payload", counting)
    return decoded


def test_a_substring_nothing_holds_decodes_no_payload(tmp_path, monkeypatch):
    """The pathology this answers: a substring no frame holds used to decode every
    payload of the file on each query."""
    with Memory.create(tmp_path / "m.mv2", dim=DIM) as mem:
        rng = np.random.default_rng(1)
        mem.put_many([{"id": f"f{i}", "text": f"note {i}", "metadata": {"lang": "en"},
                       "embedding": rng.standard_normal(DIM).astype("<f4")}
                      for i in range(3000)])
        mem.seal()
    decoded = decodes(monkeypatch)
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        spec = {"lang": {"$contains": "d"}}
        assert mem.find(vector=[1.0] * DIM, k=5, mode="vector", filter=spec) == []
        assert mem.count(spec) == 0 and mem.select(spec) == []
        assert mem.find("note", k=5, mode="lexical", filter=spec) == []
        assert len(mem.find(vector=[1.0] * DIM, k=5, mode="vector",
                            filter={"lang": {"$icontains": "N"}})) == 5
    assert len(decoded) <= 5  # the five hits of the last query, no scan


def test_a_path_of_many_distinct_strings_keeps_its_postings(tmp_path, monkeypatch):
    """Past DISTINCT_MAX distinct strings in a run the path's postings give the candidates
    (the payloads answer), with the same answers."""
    monkeypatch.setattr(substrings, "DISTINCT_MAX", 2)
    with Memory.create(tmp_path / "m.mv2", dim=DIM) as mem:
        mem.put_many([{"id": f"f{i}", "text": f"note {i}",
                       "metadata": {"title": f"title {i}", "kind": "k"},
                       "embedding": [float(i % 5 == d) for d in range(DIM)]}
                      for i in range(50)])
        mem.seal()
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        assert substrings.substring_gids(mem._snap(), "title", "1", False) is None
        assert substrings.substring_gids(mem._snap(), "kind", "k", False) == list(range(50))
        assert sorted(f.id for f in mem.select({"title": {"$contains": "4"}})) == [
            "f14", "f24", "f34", "f4", "f40", "f41", "f42", "f43", "f44", "f45", "f46",
            "f47", "f48", "f49"]
        assert mem.count({"title": {"$icontains": "TITLE 3"}}) == 11


def test_a_fresh_process_answers_a_substring_without_numpy(tmp_path):
    import json
    import subprocess
    import sys

    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        mem.put_many([{"id": f"f{i}", "text": f"budget note {i}",
                       "metadata": {"source": ["email", "chat"][i % 2]}} for i in range(200)])
        mem.seal()
    code = ("import json, sys; from memvid_store import Memory; "
            "m = Memory.open(sys.argv[1], readonly=True); "
            "h = m.find('budget', k=3, mode='lexical', filter={'source': {'$contains': 'mai'}}); "
            "print(json.dumps([len(h), m.count({'source': {'$contains': 'ch'}}), "
            "'numpy' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) == [3, 100, False]


def tagged(i: int) -> dict[str, Any]:
    return {"id": f"f{i}", "text": f"note {i}", "tags": [["project-alpha", "home"],
                                                         ["project-beta"], []][i % 3],
            "embedding": [float(i % 7 == d) for d in range(DIM)]}


def test_tag_substrings_over_runs_without_tag_lists(tmp_path, monkeypatch):
    """Runs written before tag lists existed give all their rows (the payloads answer);
    merging and compaction write the lists."""
    from memvid_store.engine import store

    path = tmp_path / "m.mv2"
    with Memory.create(path, dim=DIM) as mem:
        with monkeypatch.context() as patch:
            patch.setattr(store, "tag_list_parts", lambda tags: {})
            mem.put_many([tagged(i) for i in range(300)])
            mem.seal()
        mem.put_many([tagged(i) for i in range(300, 330)])
        mem.seal()
        runs = mem._snap().runs
        assert [run.has_tag_list for run in runs] == [False, True]
        spec = {"tags": {"$contains": "beta"}}
        want = {f"f{i}" for i in range(1, 330, 3)}
        assert {f.id for f in mem.select(spec)} == want and mem.count(spec) == len(want)
        gids = substrings.substring_gids(mem._snap(), "tags", "beta", False, tags=True)
        assert len(gids) == 300 + 10  # every legacy row, the new run's matches
        assert mem.count({"tags": {"$icontains": "ALPHA"}}) == 110
        mem.compact()
        assert all(run.has_tag_list for run in mem._snap().runs)
        assert {f.id for f in mem.select(spec)} == want
        assert len(substrings.substring_gids(mem._snap(), "tags", "beta", False,
                                             tags=True)) == 110


def test_merges_list_the_tags_of_their_runs(tmp_path):
    with Memory.create(tmp_path / "m.mv2", dim=DIM, wal_size=1 << 20) as mem:
        for step in range(12):  # small runs the size-tiered merges join
            mem.put_many([{"id": f"s{step}-{i}", "text": "t", "tags": [f"tag{step}", "all"]}
                          for i in range(5)])
            mem.seal()
        runs = mem._snap().runs
        assert len(runs) < 12
        assert sorted(t for run in runs for t in run.distinct_tags if t != "all") == sorted(
            f"tag{step}" for step in range(12))
        assert mem.count({"tags": {"$contains": "tag1"}}) == 15  # tag1, tag10, tag11


@pytest.mark.parametrize(("part", "spec"), [("sval", {"source": {"$contains": "mai"}}),
                                            ("gtag", {"tags": {"$contains": "alpha"}})])
def test_damaged_substring_parts_cost_speed_not_answers(tmp_path, part, spec):
    """A flipped byte in the string values or the tag list: the payloads answer."""
    from tests.cli.test_doctor import flip

    path = tmp_path / "m.mv2"
    sources = ["email", "calendar", "chat"]
    with Memory.create(path, dim=DIM) as mem:
        mem.put_many([{**tagged(i), "metadata": {"source": sources[i % 3]}}
                      for i in range(300)])
        mem.seal()
    with Memory.open(path, readonly=True) as mem:
        (run,) = mem._snap().runs
        start, length, _ = run._locate(part)
    flip(path, start + length // 2)
    with Memory.open(path, readonly=True) as mem:
        assert {f.id for f in mem.select(spec)} == {f"f{i}" for i in range(0, 300, 3)}
        assert mem.count(spec) == 100
        hits = mem.find(vector=[1.0] + [0.0] * (DIM - 1), k=5, mode="vector", filter=spec)
        assert len(hits) == 5 and all(h.metadata["source"] == "email" for h in hits)
        assert not mem.verify().ok  # the damage is reported


def test_a_tag_substring_nothing_holds_decodes_no_payload(tmp_path, monkeypatch):
    with Memory.create(tmp_path / "m.mv2", dim=DIM) as mem:
        mem.put_many([tagged(i) for i in range(3000)])
        mem.seal()
    decoded = decodes(monkeypatch)
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        spec = {"tags": {"$contains": "gamma"}}
        assert mem.find(vector=[1.0] * DIM, k=5, mode="vector", filter=spec) == []
        assert mem.count(spec) == 0 and mem.select(spec) == []
        assert mem.find("note", k=5, mode="lexical", filter=spec) == []
    assert decoded == []


def test_tag_substring_counts_read_the_postings_of_the_tags_that_match(tmp_path,
                                                                        monkeypatch):
    """A count of a tag substring is the count of an ``$in`` of the tags that contain it,
    tags only the WAL holds, replaced and deleted versions included."""
    monkeypatch.setattr(listing, "BULK_COUNT", 0)
    monkeypatch.setattr(listing, "BULK_COUNT_LOADED", 0)
    with Memory.create(tmp_path / "m.mv2", dim=DIM) as mem:
        mem.put_many([tagged(i) for i in range(30)])
        mem.seal()
        mem.put("new", id="w", tags=["fresh-tag"])
        mem.update("f0", tags=["fresh-too"])
        with monkeypatch.context() as unread:
            unread.setattr(Snapshot, "record", lambda *a, **k: pytest.fail("a payload read"))
            assert mem.count({"tags": {"$contains": "fresh"}}) == 2
            assert mem.count({"tags": {"$icontains": "ALPHA"}}) == 9  # f0 lost its tag
            assert mem.count({"tags": {"$contains": "nothing"}}) == 0
        mem.delete("w")
        assert mem.count({"$tags": {"$contains": "fresh"}}) == 1
