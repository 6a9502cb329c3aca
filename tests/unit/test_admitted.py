"""A selective filter's lexical search: scoring the admitted versions in memory and
widening the index's candidates give the same hits; the cheaper is chosen."""

from __future__ import annotations

import random

import pytest

from memvid_store import Memory
from memvid_store.index import admitted, searcher

WORDS = [f"w{i}" for i in range(40)]


def test_score_admitted_picks_the_cheaper_path():
    assert admitted.score_admitted(10, 10, 100_000)
    assert not admitted.score_admitted(4000, 10, 100_000)
    assert admitted.score_admitted(0, 1, 0)


@pytest.mark.parametrize("sealed", [False, True])
def test_both_paths_give_the_same_hits(tmp_path, monkeypatch, sealed):
    rng = random.Random(3)
    with Memory.create(tmp_path / "m.mv2") as mem:
        mem.put_many([{"text": " ".join(rng.choices(WORDS, k=rng.randint(3, 25))),
                       "metadata": {"group": i % 8, "n": rng.randint(0, 9)}}
                      for i in range(1500)])
        if sealed:
            mem.seal()
        requests = [{"text": " ".join(rng.sample(WORDS, 2)), "k": k, "mode": "lexical",
                     "filter": flt}
                    for k in (1, 10, 60)
                    for flt in ({"group": 3}, {"group": {"$in": [1, 2]}, "n": {"$gt": 4}},
                                {"n": 7})]
        monkeypatch.setattr(searcher, "RESULT_CACHE", 0)  # each run searches
        monkeypatch.setattr(searcher.Searcher, "_subset_repeats", lambda self, req: False)
        subsets = []
        scored = searcher.Searcher._lexical_subset
        monkeypatch.setattr(searcher.Searcher, "_lexical_subset",
                            lambda self, req, gids: subsets.append(req) or scored(self, req, gids))
        answers, used = {}, {}
        for name, cost in (("subset", 0), ("widen", 10**9)):
            monkeypatch.setattr(admitted, "SUBSET_COST", cost)
            before = len(subsets)
            answers[name] = mem.find_batch(requests)
            used[name] = len(subsets) - before
        assert used == {"subset": len(requests), "widen": 0}
        for req, a, b in zip(requests, answers["subset"], answers["widen"], strict=True):
            assert [h.id for h in a] == [h.id for h in b], req
            assert [h.score for h in a] == pytest.approx([h.score for h in b], rel=1e-5)


def test_a_filter_that_comes_back_is_scored_in_memory(tmp_path, monkeypatch):
    """Widening is the cheaper first query; once a filter has come back SUBSET_REPEATS
    times its admitted versions get a BM25 of their own, kept for the next queries, with
    the same hits as widening gives."""
    rng = random.Random(4)
    with Memory.create(tmp_path / "m.mv2") as mem:
        mem.put_many([{"text": " ".join(rng.choices(WORDS, k=rng.randint(3, 25))),
                       "metadata": {"group": i % 8}} for i in range(1500)])
        mem.seal()
    monkeypatch.setattr(admitted, "SUBSET_COST", 10**9)  # widening is cheaper, once
    subsets = []
    scored = searcher.Searcher._lexical_subset
    monkeypatch.setattr(searcher.Searcher, "_lexical_subset",
                        lambda self, req, gids: subsets.append(req) or scored(self, req, gids))
    texts = [" ".join(rng.sample(WORDS, 2)) for _ in range(8)]
    with monkeypatch.context() as never:
        never.setattr(searcher.Searcher, "_subset_repeats", lambda self, req: False)
        with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
            widened = [mem.find(t, k=10, mode="lexical", filter={"group": 3}) for t in texts]
    assert subsets == []
    with Memory.open(tmp_path / "m.mv2", readonly=True) as mem:
        for t, first in zip(texts, widened, strict=True):
            again = mem.find(t, k=10, mode="lexical", filter={"group": 3})
            assert [h.id for h in again] == [h.id for h in first]
            assert [h.score for h in again] == pytest.approx([h.score for h in first],
                                                             rel=1e-5)
    assert len(subsets) == len(texts) - searcher.SUBSET_REPEATS + 1
