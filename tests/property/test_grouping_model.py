"""``find(group_by=, tie_break=)`` against a brute-force model of grouped ranking.

Frames get small integer vectors (many exact ties, and cosines equal in float32 that
differ in float64), a group field that is missing, a value, or another frame's id, and
tie-break fields. The model groups every live frame, scores a group by its best float64
cosine, and orders ties by the tie-break fields, then the frame id.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store import Memory
from memvid_store.errors import (
    FrameNotFoundError,
    InvalidInputError,
    InvalidTypeError,
    MemvidError,
)

DIM = 4
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def cosine(a: list[float], b: list[float]) -> float:
    na, nb = math.sqrt(math.fsum(x * x for x in a)), math.sqrt(math.fsum(x * x for x in b))
    return math.fsum(x * y for x, y in zip(a, b, strict=True)) / (na * nb) if na and nb else 0.0


def model_groups(frames: dict[str, dict[str, Any]], query: list[float], k: int,
                 group_by: str, tie_break: tuple[str, ...]) -> list[tuple[str, float]]:
    """(best frame id, score) of the first ``k`` groups, by brute force."""
    best: dict[Any, tuple[float, str]] = {}
    for fid, f in sorted(frames.items()):
        group = f["metadata"].get(group_by, fid)  # an id names that frame's group
        score = cosine(f["embedding"], query)
        if group not in best or score > best[group][0]:
            best[group] = (score, fid)

    def order(item: tuple[float, str]) -> tuple:
        score, fid = item
        f = frames[fid]
        keys = []
        for name in tie_break:
            value = f["created_at"] if name == "created_at" else f["metadata"].get(name)
            keys.append((1,) if value is None else (0, value))
        return (-score, *keys, fid)

    return [(fid, score) for score, fid in sorted(best.values(), key=order)[:k]]


frame_ids = [f"f{i:02d}" for i in range(60)]
# a few directions, some scaled (equal cosines in float32, not always in float64), and
# the zero vector (cosine 0 with every query)
PALETTE = [[1.0, 1.0, 0.0, 0.0], [3.0, 3.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0],
           [0.0, 0.0, 0.0, 0.0], [1.0, 2.0, -1.0, 0.0], [2.0, 4.0, -2.0, 0.0]]
frames_st = st.dictionaries(
    st.sampled_from(frame_ids),
    st.fixed_dictionaries({
        "embedding": st.one_of(
            st.sampled_from(PALETTE),
            st.lists(st.integers(-1, 2).map(float), min_size=DIM, max_size=DIM)),
        # one large group, so that the first frames searched hold few groups
        "group": st.one_of(st.none(), st.just("big"), st.sampled_from(["g1", "g2"]),
                           st.sampled_from(frame_ids[:6])),
        "rank": st.one_of(st.none(), st.integers(0, 2)),
        "day": st.integers(0, 3),
    }),
    min_size=1, max_size=60)


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=frames_st, query=st.lists(st.integers(-2, 2).map(float), min_size=DIM,
                                        max_size=DIM).filter(any),
       k=st.integers(1, 8), tie_break=st.sampled_from([(), ("rank",), ("created_at",),
                                                      ("rank", "created_at")]),
       seal=st.booleans(), deleted=st.integers(0, 3))
def test_vector_groups_equal_brute_force(tmp_path_factory, frames, query, k, tie_break,
                                         seal, deleted):
    path = str(tmp_path_factory.mktemp("g") / "g.mv2")
    live: dict[str, dict[str, Any]] = {}
    with Memory.create(path, dim=DIM) as mem:
        records = []
        for fid, spec in sorted(frames.items()):
            meta = {k: v for k, v in (("group", spec["group"]), ("rank", spec["rank"]))
                    if v is not None}
            rec = {"id": fid, "text": f"frame {fid}", "embedding": spec["embedding"],
                   "metadata": meta, "created_at": BASE + timedelta(days=spec["day"])}
            records.append(rec)
            live[fid] = rec
        mem.put_many(records)
        if seal:
            mem.seal()
        for fid in sorted(live)[:deleted]:
            mem.delete(fid)
            del live[fid]
        got = [(h.id, h.score) for h in mem.find(vector=query, k=k, mode="vector",
                                                 group_by="group", tie_break=tie_break)]
    want = model_groups(live, query, k, "group", tie_break)
    assert [fid for fid, _ in got] == [fid for fid, _ in want]
    assert all(a == b for (_, a), (_, b) in zip(got, want, strict=True))


def test_a_chunk_naming_its_parent_joins_the_parent(mem_path):
    with Memory.create(mem_path) as mem:
        mem.put("parent one about cats", id="p1", embedding=[1, 0, 0])
        mem.put("chunk one", id="c1", embedding=[0.9, 0.1, 0], metadata={"doc": "p1"})
        mem.put("parent two about dogs", id="p2", embedding=[0, 1, 0])
        mem.put("chunk two", id="c2", embedding=[0.8, 0.2, 0], metadata={"doc": "p2"})
        hits = mem.find(vector=[1, 0.05, 0], k=5, mode="vector", group_by="doc")
        assert [h.id for h in hits] == ["p1", "c2"]
        assert hits[0].score == cosine([1, 0, 0], [1, 0.05, 0])
        plain = mem.find(vector=[1, 0.05, 0], k=5, mode="vector")
        assert [h.id for h in plain] == ["p1", "c1", "c2", "p2"]


def test_a_large_group_makes_the_search_look_further(mem_path):
    with Memory.create(mem_path) as mem:
        mem.put_many([{"id": f"big{i:02d}", "text": "t", "embedding": [1, 0.01 * i],
                       "metadata": {"g": "big"}} for i in range(40)])
        mem.put_many([{"id": f"s{i}", "text": "t", "embedding": [1, 1 + i]} for i in range(6)])
        hits = mem.find(vector=[1, 0], k=4, mode="vector", group_by="g")
        assert [h.id for h in hits] == ["big00", "s0", "s1", "s2"]


def test_a_tie_just_past_the_frames_searched_is_found(mem_path):
    """The 10 frames searched first tie with one more, which the tie-break puts first."""
    with Memory.create(mem_path) as mem:
        mem.put_many([{"id": f"b{i:02d}", "text": "t", "embedding": [1, 0],
                       "metadata": {"g": "big", "rank": 1}} for i in range(12)])
        mem.put("t", id="z", embedding=[2, 0], metadata={"rank": 0})
        hits = mem.find(vector=[1, 0], k=1, mode="vector", group_by="g", tie_break=["rank"])
        assert [h.id for h in hits] == ["z"]


def test_lexical_and_hybrid_groups_are_the_first_hit_of_each_group(mem_path):
    rng = random.Random(3)
    words = ["apple", "pear", "plum", "fig"]
    with Memory.create(mem_path) as mem:
        mem.put_many([{"id": f"f{i:03d}", "text": " ".join(rng.choices(words, k=4)),
                       "embedding": [rng.random() for _ in range(3)],
                       "metadata": {"doc": f"d{i % 7}"}} for i in range(120)])
        for mode, extra in (("lexical", {}), ("hybrid", {"vector": [0.3, 0.2, 0.9]})):
            full = mem.find("apple plum", k=50, mode=mode, **extra)  # hybrid fuses 50 a mode
            seen: dict[str, Any] = {}
            for hit in full:
                seen.setdefault(hit.metadata["doc"], hit)
            want = sorted(seen.values(), key=lambda h: (-h.score, h.id))[:4]
            got = mem.find("apple plum", k=4, mode=mode, group_by="doc", **extra)
            assert [(h.id, h.score) for h in got] == [(h.id, h.score) for h in want]


def test_ties_follow_tie_break_then_frame_id(mem_path):
    with Memory.create(mem_path) as mem:
        mem.put_many([{"id": fid, "text": "same words", "embedding": [1, 1],
                       "metadata": {"rank": rank}, "created_at": BASE + timedelta(days=day)}
                      for fid, rank, day in (("a", 2, 0), ("b", 1, 2), ("c", None, 1),
                                             ("d", 1, 1))])
        q = [1, 1]
        assert [h.id for h in mem.find(vector=q, k=4, mode="vector")] == ["a", "b", "c", "d"]
        by_rank = mem.find(vector=q, k=4, mode="vector", tie_break=["rank"])
        assert [h.id for h in by_rank] == ["b", "d", "a", "c"]  # missing last
        by_time = mem.find("same", k=2, mode="lexical", tie_break="created_at")
        assert [h.id for h in by_time] == ["a", "c"]
        both = mem.find(vector=q, k=4, mode="vector", tie_break=("rank", "created_at"))
        assert [h.id for h in both] == ["d", "b", "a", "c"]


def test_grouped_find_in_views_collections_and_batches(mem_path):
    with Memory.create(mem_path) as mem:
        mem.put("old", id="a", embedding=[1, 0], metadata={"g": "x"})
        mem.put("other", id="b", embedding=[0.5, 0.5], metadata={"g": "y"})
        before = mem.generation
        mem.put("new", id="c", embedding=[1, 0.01], metadata={"g": "x"})
        mem.delete("a")
        chat = mem.collection("chat")
        chat.put("elsewhere", id="a", embedding=[1, 0], metadata={"g": "x"})
        q = [1, 0]
        assert [h.id for h in mem.find(vector=q, k=3, mode="vector", group_by="g")] == ["c", "b"]
        view = mem.as_of(before)
        assert [h.id for h in view.find(vector=q, k=3, mode="vector", group_by="g")] == ["a",
                                                                                          "b"]
        assert [(h.id, h.collection) for h in chat.find(vector=q, group_by="g")] == [
            ("a", "chat")]
        batch = mem.find_batch([{"vector": q, "k": 3, "group_by": "g"},
                                {"vector": q, "k": 3},
                                {"vector": q, "k": 1, "group_by": "g", "as_of": before}])
        assert [[h.id for h in hits] for hits in batch] == [["c", "b"], ["c", "b"], ["a"]]


def test_l2_groups_rank_by_the_engines_scores(mem_path):
    with Memory.create(mem_path, index={"distance": "l2"}) as mem:
        mem.put_many([{"id": f"f{i}", "text": "t", "embedding": [float(i), 0.0],
                       "metadata": {"g": i // 2}} for i in range(8)])
        hits = mem.find(vector=[3.2, 0], k=3, mode="vector", group_by="g")
        assert [h.id for h in hits] == ["f3", "f4", "f1"]  # groups 1, 2, 0
        assert [h.score for h in hits] == [h.score for h in mem.find(
            vector=[3.2, 0], k=8, mode="vector") if h.id in ("f3", "f4", "f1")]


def test_group_values_of_every_kind(mem_path):
    with Memory.create(mem_path) as mem:
        mem.put_many([{"id": fid, "text": "t", "embedding": [1, i], "metadata": {"g": g}}
                      for i, (fid, g) in enumerate([("a", 1), ("b", True), ("c", [1, 2]),
                                                    ("d", [1, 2]), ("e", {"x": 1}),
                                                    ("f", 1.0)])])
        hits = mem.find(vector=[1, 0], k=10, mode="vector", group_by="g")
        assert [h.id for h in hits] == ["a", "b", "c", "e"]  # 1 == 1.0; True is not 1


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"group_by": ""}, InvalidTypeError),
    ({"group_by": 3}, InvalidTypeError),
    ({"tie_break": [1]}, InvalidTypeError),
    ({"tie_break": 5}, InvalidTypeError),
    ({"group_by": "g", "k": 0}, InvalidInputError),
    ({"group_by": "g", "mode": "nope"}, InvalidInputError),
])
def test_bad_grouping_arguments_are_typed_errors(mem_path, kwargs, error):
    with Memory.create(mem_path) as mem:
        mem.put("t", embedding=[1, 0], metadata={"g": 1})
        with pytest.raises(error) as info:
            mem.find("t", vector=[1, 0], **kwargs)
        assert isinstance(info.value, MemvidError)


def test_stored_vectors_are_those_of_the_hits_versions(mem_path):
    with Memory.create(mem_path) as mem:
        mem.put("first", id="a", embedding=[1, 0])
        mem.put("second", id="b", embedding=[0, 1])
        before = mem.generation
        mem.update("a", embedding=[0.6, 0.8])
        old = mem.find(vector=[1, 0], k=2, mode="vector", as_of=before)
        assert [list(v) for v in mem.stored_vectors(old, as_of=before)] == [[1, 0], [0, 1]]
        now = mem.find(vector=[1, 0], k=1, mode="vector")
        assert [[round(x, 6) for x in v] for v in mem.stored_vectors(now)] == [[0.6, 0.8]]
        mem.put("no vector", id="c")
        (plain,) = mem.find("vector", k=1, mode="lexical")
        assert mem.stored_vectors([plain]) == [None]
        mem.delete("b")
        with pytest.raises(FrameNotFoundError):
            mem.stored_vectors(old[1:])


def test_group_by_and_tie_break_read_paths_as_filters_do(mem_path):
    with Memory.create(mem_path) as mem:
        mem.put_many([
            {"id": "a", "text": "t", "embedding": [1, 0], "metadata": {"doc": {"id": "x"}}},
            {"id": "b", "text": "t", "embedding": [1, 0.1], "metadata": {"doc": {"id": "x"}}},
            {"id": "c", "text": "t", "embedding": [1, 0.2], "metadata": {"doc.id": "x"}},
            {"id": "d", "text": "t", "embedding": [1, 0.3],
             "metadata": {"doc": {"id": "y"}, "r": {"k": 1}}},
            {"id": "e", "text": "t", "embedding": [1, 0.3], "metadata": {"r": {"k": 0}}}])
        q = [1, 0]
        assert [h.id for h in mem.find(vector=q, k=5, mode="vector", group_by="doc.id")] == [
            "a", "d", "e"]
        assert [h.id for h in mem.find(vector=q, k=5, mode="vector",
                                       group_by="metadata.doc.id")] == ["a", "d", "e"]
        tied = mem.find(vector=q, k=5, mode="vector", tie_break=["r.k"])
        assert [h.id for h in tied][3:] == ["e", "d"]
        assert [h.id for h in mem.find(vector=q, k=5, mode="vector",
                                       tie_break=["-"])][3:] == ["d", "e"]
