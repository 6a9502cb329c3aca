"""Negations of what nearly every version holds (``{"lang": {"$ne": "en"}}`` where nearly
every frame is English) are answered from the posting lists: the candidates are the
versions posted under none of the excluded terms, not every version's payload. select,
count and filtered vector search agree with a brute-force model over a file with
collections, updates, deletes, sealed runs and a WAL tail."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store.engine import snapshot
from memvid_store.engine.snapshot import Snapshot
from memvid_store.index import listing
from tests.property.model_file import COLLECTIONS, DIM, build, expected

LANGS = ["en"] * 40 + ["fr", "de", ["en", "fr"], None, "missing"]


def metadata(rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {"kind": rng.choice(["a", "b", "c"]), "n": rng.randint(0, 3),
                            "g": {"k": 1}}
    if rng.random() < 0.05:
        meta["g.k"] = 2  # read before the nested g.k, posted under the same path
    lang = rng.choice(LANGS)
    if lang != "missing":
        meta["lang"] = lang
    return meta


def frame(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    return metadata(rng), ["x"] if rng.random() < 0.95 else ["y"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    mem, state = build(str(tmp_path_factory.mktemp("negation") / "m.mv2"), frame, seed=5,
                       steps=60, ids=300, seal_at=(20, 40))
    yield mem, state
    mem.close()


negations = st.sampled_from([
    {"lang": {"$ne": "en"}}, {"lang": {"$nin": ["en", "de"]}}, {"lang": {"$exists": False}},
    {"lang": {"$not": {"$eq": "en"}}}, {"$nor": [{"lang": "en"}]}, {"$not": {"lang": "en"}},
    {"tags": {"$ne": "x"}}, {"lang": {"$ne": "en", "$exists": True}},
    {"$and": [{"lang": {"$ne": "en"}}, {"tags": {"$ne": "y"}}]},
    # not exact, so nothing is excluded: answered by a scan
    {"g.k": {"$ne": 1}}, {"$not": {"lang": "en", "kind": "a"}},
    {"$nor": [{"lang": "en", "kind": "a"}]}, {"lang": {"$not": {"$gt": "e"}}},
    # $or of branches the postings answer exactly: counted from them (listing._count_or)
    {"$or": [{"lang": {"$ne": "en"}}, {"kind": "a"}]},
    {"$or": [{"lang": {"$ne": "en"}}, {"tags": {"$ne": "x"}}, {"lang": "fr"}]},
    {"$or": [{"lang": "fr"}, {"kind": {"$in": ["a", "b"]}}]},
    # the negation of an $or of exact branches excludes all their terms
    {"$not": {"$or": [{"lang": "en"}, {"kind": "a"}]}},
    {"$nor": [{"$or": [{"lang": "en"}, {"tags": "y"}]}, {"kind": "b"}]},
])
# read without the complement of the postings: a scan, or a positive group
SCANNED = ({"g.k": {"$ne": 1}}, {"$not": {"lang": "en", "kind": "a"}},
           {"$nor": [{"lang": "en", "kind": "a"}]}, {"lang": {"$not": {"$gt": "e"}}},
           {"$or": [{"lang": "fr"}, {"kind": {"$in": ["a", "b"]}}]})
others = st.sampled_from([{}, {"kind": "a"}, {"n": {"$gte": 2}}, {"kind": {"$ne": "b"}},
                          {"$or": [{"kind": "a"}, {"n": 0}]}])


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(negation=negations, other=others, collection=st.sampled_from(COLLECTIONS),
       seed=st.integers(0, 1000))
def test_negations_match_the_model(corpus, monkeypatch, negation, other, collection, seed):
    mem, state = corpus
    calls = []
    real = Snapshot.gids_except

    def spy(self, left_out):
        calls.append(left_out)
        return real(self, left_out)

    monkeypatch.setattr(Snapshot, "gids_except", spy)
    handle = mem if collection == "default" else mem.collection(collection)
    spec = {**other, **negation}  # a key of both: the negation's
    want = expected(state[collection], spec)
    assert sorted(f.id for f in handle.select(spec)) == sorted(want)
    assert handle.count(spec) == len(want)
    with monkeypatch.context() as bulk:  # counted from the columns wherever that applies
        bulk.setattr(listing, "BULK_COUNT", 0)
        bulk.setattr(listing, "BULK_COUNT_LOADED", 0)
        assert handle.count(spec) == len(want)
        bulk.setattr(snapshot, "loaded", lambda name: None)  # row by row, as without numpy
        assert handle.count(spec) == len(want)
        # the complement listed in Python, as without numpy
        assert sorted(f.id for f in handle.select(spec)) == sorted(want)
    query = np.random.default_rng(seed).standard_normal(DIM).astype("<f4")
    hits = handle.find(vector=query, k=5, mode="vector", filter=spec)
    unit = query / np.linalg.norm(query)
    scores = {fid: float(v @ unit / np.linalg.norm(v)) for fid, v in want.items()}
    best = sorted(scores, key=lambda fid: (-scores[fid], fid))[:5]
    assert [h.id for h in hits] == best
    for mode in ("lexical", "hybrid"):  # the BM25 side reads the same candidates
        found = handle.find("frame", vector=query, k=5, mode=mode, filter=spec)
        assert len(found) == min(5, len(want)) and {h.id for h in found} <= set(want)
    assert bool(calls) == (negation not in SCANNED)  # from the postings' complement


def test_a_negation_most_versions_pass_is_not_read_from_the_complement(corpus, monkeypatch):
    """The posting counts alone rule the complement out when it is large."""
    mem, state = corpus
    calls = []
    monkeypatch.setattr(Snapshot, "gids_except", lambda self, gids: calls.append(gids))
    spec = {"lang": {"$ne": "de"}}
    assert mem.count(spec) == len(expected(state["default"], spec))
    assert mem.find(vector=[1.0] * DIM, k=3, mode="vector", filter=spec)
    assert calls == []


def test_a_fresh_process_answers_a_negation_without_numpy(corpus, tmp_path):
    """A count excluding a few thousand postings reads them row by row, and a listing or
    a lexical search lists the complement of the postings in Python: not numpy."""
    import subprocess
    import sys

    mem, state = corpus
    spec = {"lang": {"$ne": "en"}}
    script = ("import json, sys; from memvid_store import Memory; "
              "from memvid_store.index import listing; listing.BULK_COUNT = 0; "
              "m = Memory.open(sys.argv[1], readonly=True); f = json.loads(sys.argv[2]); "
              "print(json.dumps([m.count(f), m.collection('chat').count(f), "
              "sorted(x.id for x in m.select(f)), "
              "sorted(h.id for h in m.find('frame', k=500, mode='lexical', filter=f)), "
              "'numpy' in sys.modules]))")
    copy = tmp_path / "copy.mv2"
    copy.write_bytes(Path(mem.path).read_bytes())
    out = subprocess.run([sys.executable, "-c", script, str(copy), json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    want = sorted(expected(state["default"], spec))
    assert json.loads(out.stdout) == [len(want), len(expected(state["chat"], spec)), want,
                                      want, False]


@pytest.mark.parametrize("spec", [
    {"$or": [{"lang": "fr"}, {"kind": {"$in": ["a", "b"]}}]},
    {"$or": [{"lang": {"$ne": "en"}}, {"kind": "a"}]},
    {"$or": [{"lang": {"$nin": ["en", "fr"]}}, {"tags": {"$ne": "x"}}, {"lang": "de"}]},
    {"$or": [{"lang": {"$exists": False}}, {"tags": "y"}]},
])
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_an_or_of_exact_branches_is_counted_from_the_postings(corpus, monkeypatch, spec,
                                                               collection):
    """Each branch answered exactly by the postings (posted under a term, or under none
    of its excluded ones): the count comes from them, never a payload."""
    mem, state = corpus
    handle = mem if collection == "default" else mem.collection(collection)
    monkeypatch.setattr(listing, "BULK_COUNT", 0)
    monkeypatch.setattr(listing, "BULK_COUNT_LOADED", 0)
    monkeypatch.setattr(Snapshot, "record", lambda *a, **k: pytest.fail("a payload read"))
    assert handle.count(spec) == len(expected(state[collection], spec))
