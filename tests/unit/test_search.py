"""Memory.find / find_batch: every mode, filters, time travel, WAL data, indexes."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvid_store import (
    DimensionMismatchError,
    FilterError,
    IndexConfig,
    InvalidInputError,
    Memory,
)
from tests.conftest import day

DIM = 8
TOPICS = {
    "garden": "tomato basil watering soil compost seedlings greenhouse",
    "finance": "budget invoice quarterly revenue forecast expenses audit",
    "travel": "flight hotel passport itinerary luggage airport visa",
    "cooking": "recipe oven flour butter simmer garlic onion",
}


def topic_vector(topic: str, jitter: float, rng: random.Random) -> list[float]:
    base = [0.0] * DIM
    base[list(TOPICS).index(topic) * 2] = 1.0
    return [x + rng.uniform(-jitter, jitter) for x in base]


def corpus(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        topic = list(TOPICS)[i % len(TOPICS)]
        words = TOPICS[topic].split()
        text = " ".join(rng.choice(words) for _ in range(12)) + f" item{i}"
        records.append({
            "id": f"{topic}-{i:05d}", "text": text,
            "embedding": topic_vector(topic, 0.3, rng),
            "metadata": {"topic": topic, "n": i, "even": i % 2 == 0},
            "tags": [topic, "odd" if i % 2 else "even"], "created_at": day(i % 365),
        })
    return records


@pytest.fixture
def filled(mem_path, opened) -> Memory:
    m = Memory.create(mem_path, dim=DIM, wal_size=1 << 20)
    opened.append(m)
    m.put_many(corpus(400))
    m.seal()
    return m


def exact_order(mem: Memory, query: list[float], k: int) -> list[str]:
    """Reference: cosine similarity over every current frame, ties by id."""
    def cos(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True)) / (
            math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
    scored = [(-cos(f.embedding, query), f.id) for f in mem.timeline() if f.embedding]
    return [fid for _, fid in sorted(scored)[:k]]


# ------------------------------------------------------------------- lexical


def test_lexical_english_and_chinese(mem_path, opened):
    m = Memory.create(mem_path)
    opened.append(m)
    m.put("The quarterly budget review moved to Friday", id="en")
    m.put("上海办公室每周收到九百张中文工单", id="zh")
    m.put("混合文本 mixed text with ZX-4410 router", id="mix")
    for sealed in (False, True):
        assert [h.id for h in m.find("budget", mode="lexical")] == ["en"]
        assert m.find("上海办公室")[0].id == "zh"
        assert m.find("中文工单")[0].id == "zh"
        assert m.find("zx-4410 router")[0].id == "mix"
        m.seal() if not sealed else None


def test_phrase_queries_need_adjacent_words(mem_path, opened):
    m = Memory.create(mem_path)
    opened.append(m)
    m.put("red apple and green pear", id="a")
    m.put("green apple and red pear", id="b")
    m.seal()
    assert [h.id for h in m.find('"red apple"', mode="lexical")] == ["a"]
    assert {h.id for h in m.find("red apple", mode="lexical")} == {"a", "b"}


@pytest.mark.parametrize("query", [
    "or", "not", "AND OR NOT", '"unbalanced', "title:foo", "(a OR b", "[1 TO 5]", "a^2 b~",
    "c:\\path\\x", "-minus +plus", "*", "?", "", "   ", "'single'", "a AND (b OR", "\\",
])
def test_plain_queries_never_raise(filled, query):
    if not query.strip():
        assert filled.find(query, mode="lexical") == []
    else:
        filled.find(query, mode="lexical")


def test_query_syntax_is_opt_in(filled):
    hits = filled.find("tomato AND basil", mode="lexical", syntax="query")
    assert hits and all("tomato" in h.text and "basil" in h.text for h in hits)
    with pytest.raises(ValueError):
        filled.find("tomato AND (", mode="lexical", syntax="query")


def test_wal_only_frames_are_found_before_seal(filled):
    filled.put("a brand new zeppelin sighting", id="fresh", embedding=[0.0] * (DIM - 1) + [1.0])
    assert filled.stats().wal_records == 1
    assert [h.id for h in filled.find("zeppelin")] == ["fresh"]
    assert filled.find(vector=[0.0] * (DIM - 1) + [1.0], k=1)[0].id == "fresh"
    filled.seal()
    assert [h.id for h in filled.find("zeppelin")] == ["fresh"]


# -------------------------------------------------------------------- vector


def test_vector_search_matches_exact_reference(filled):
    rng = random.Random(7)
    for topic in TOPICS:
        q = topic_vector(topic, 0.2, rng)
        hits = filled.find(vector=q, k=10, mode="vector")
        assert [h.id for h in hits] == exact_order(filled, q, 10)
        assert all(h.id.startswith(topic) for h in hits)
        assert hits[0].ranks == {"vector": 1}
        assert hits == sorted(hits, key=lambda h: (-h.score, h.id))


@pytest.mark.parametrize("distance", ["cosine", "ip", "l2"])
def test_each_distance(mem_path, opened, distance):
    m = Memory.create(mem_path, dim=2, index={"distance": distance})
    opened.append(m)
    m.put("near", embedding=[1.0, 0.0], id="near")
    m.put("far", embedding=[-1.0, 0.0], id="far")
    m.put("long", embedding=[2.5, 0.1], id="long")
    order = [h.id for h in m.find(vector=[1.0, 0.0], k=3)]
    expected = {"cosine": ["near", "long", "far"], "ip": ["long", "near", "far"],
                "l2": ["near", "long", "far"]}[distance]
    assert order == expected


def test_ties_are_broken_by_frame_id(mem_path, opened):
    m = Memory.create(mem_path, dim=2)
    opened.append(m)
    for fid in ["c", "a", "b"]:
        m.put("same words", embedding=[1.0, 1.0], id=fid)
    assert [h.id for h in m.find(vector=[1.0, 1.0], k=3)] == ["a", "b", "c"]
    assert [h.id for h in m.find("same words", k=3)] == ["a", "b", "c"]
    m.seal()
    assert [h.id for h in m.find(vector=[1.0, 1.0], k=2)] == ["a", "b"]


# -------------------------------------------------------------------- hybrid


def test_hybrid_fuses_both_rankings(filled):
    rng = random.Random(3)
    hits = filled.find("budget invoice", vector=topic_vector("finance", 0.2, rng), k=5)
    assert len(hits) == 5 and all(h.id.startswith("finance") for h in hits)
    assert all(set(h.ranks) <= {"lexical", "vector"} and h.ranks for h in hits)
    assert any(set(h.ranks) == {"lexical", "vector"} for h in hits)
    top = hits[0]
    expected = sum(1 / (60 + r) for r in top.ranks.values())
    assert top.score == pytest.approx(expected)


def test_hybrid_top_k_is_a_prefix_of_a_deeper_search(filled):
    """Both sides of hybrid fetch the same depth, so k only cuts the fused list."""
    rng = random.Random(5)
    for topic in TOPICS:
        words = TOPICS[topic].split()
        for query in (" ".join(words[:2]), words[3], f"{words[1]} item7"):
            vector = topic_vector(list(TOPICS)[(len(query)) % len(TOPICS)], 0.4, rng)
            deep = [h.id for h in filled.find(query, vector=vector, k=50)]
            for k in (1, 3, 10):
                assert [h.id for h in filled.find(query, vector=vector, k=k)] == deep[:k]


def test_hybrid_weights(filled):
    rng = random.Random(4)
    q = topic_vector("travel", 0.2, rng)
    vec_only = filled.find("budget", vector=q, k=3, weights={"lexical": 0.0, "vector": 1.0})
    assert all(h.id.startswith("travel") for h in vec_only)


# ------------------------------------------------------------------- filters


def test_filters_return_exactly_k_when_enough_match(filled):
    rng = random.Random(5)
    q = topic_vector("garden", 0.2, rng)
    hits = filled.find(vector=q, k=7, filter={"topic": "cooking", "n": {"$gte": 100}})
    assert len(hits) == 7
    assert all(h.metadata["topic"] == "cooking" and h.metadata["n"] >= 100 for h in hits)
    lex = filled.find("budget", k=5, filter={"tags": "odd", "even": False})
    assert len(lex) == 5 and all("odd" in h.tags for h in lex)
    few = filled.find(vector=q, k=10, filter={"n": {"$in": [1, 2, 3]}})
    assert sorted(h.metadata["n"] for h in few) == [1, 2, 3]


def test_bad_filters_and_arguments(filled):
    with pytest.raises(FilterError):
        filled.find("tomato", filter={"n": {"$near": 3}})
    with pytest.raises(ValueError):
        filled.find("tomato", k=0)
    with pytest.raises(ValueError):
        filled.find("tomato", mode="fuzzy")
    with pytest.raises(ValueError):
        filled.find()
    with pytest.raises(ValueError):
        filled.find(vector=[float("nan")] * DIM)
    with pytest.raises(DimensionMismatchError):
        filled.find(vector=[1.0, 2.0])
    with pytest.raises(ValueError):
        filled.find("x", mode="vector")
    with pytest.raises(ValueError):
        filled.find(vector=[1.0] * DIM, mode="lexical")


# --------------------------------------------------------------- time travel


def test_as_of_search_sees_updates_and_deletes_as_they_were(filled):
    before = datetime.now(UTC)
    time.sleep(0.002)
    filled.update("garden-00000", text="zucchini harvest")
    filled.delete("finance-00001")
    assert [h.id for h in filled.find("zucchini")] == ["garden-00000"]
    old = [h.id for h in filled.find("item0", as_of=before)]
    assert old == ["garden-00000"]
    assert filled.find("item0") == []
    assert "finance-00001" not in {h.id for h in filled.find("item1", k=50)}
    assert "finance-00001" in {h.id for h in filled.find("item1", as_of=before, k=50)}
    view = filled.as_of(before)
    assert [h.id for h in view.find("item0")] == old
    assert [h.text for h in view.find("item0")] != [h.text for h in filled.find("zucchini")]
    filled.seal()
    assert [h.id for h in filled.find("item0", as_of=before)] == old


def test_time_range_filters_event_time(filled):
    hits = filled.find("tomato", k=50, time_range=(day(10), day(20)))
    assert hits and all(day(10) <= h.created_at < day(20) for h in hits)


# ---------------------------------------------------------------- batches


def test_find_batch_equals_single_queries(filled):
    rng = random.Random(9)
    reqs = [{"vector": topic_vector(t, 0.2, rng), "k": 4} for t in TOPICS]
    reqs += [{"text": "passport visa", "k": 3}, {"text": "passport visa", "k": 3},
             {"text": "flour", "vector": reqs[0]["vector"], "k": 5, "filter": {"even": True}}]
    batch = filled.find_batch(reqs)
    singles = [filled.find(**r) for r in reqs]
    assert [[h.id for h in hits] for hits in batch] == [[h.id for h in hits] for hits in singles]


def test_reopen_gives_the_same_results(filled, mem_path):
    rng = random.Random(11)
    q = topic_vector("travel", 0.2, rng)
    before = [(h.id, round(h.score, 5)) for h in filled.find("hotel luggage", vector=q, k=8)]
    filled.close()
    with Memory.open(mem_path, readonly=True) as r:
        after = [(h.id, round(h.score, 5)) for h in r.find("hotel luggage", vector=q, k=8)]
    assert before == after


# ----------------------------------------------------------------- HNSW


@pytest.mark.parametrize("backend", ["usearch", "hnswlib"])
def test_hnsw_index_is_built_and_used(mem_path, opened, backend):
    m = Memory.create(mem_path, dim=DIM, index={"ann_backend": backend, "ann_threshold": 300})
    opened.append(m)
    m.put_many(corpus(600, seed=1))
    m.seal()
    assert m._snap().toc.find("ann") is not None
    rng = random.Random(2)
    recall = []
    for topic in TOPICS:
        q = topic_vector(topic, 0.2, rng)
        got = [h.id for h in m.find(vector=q, k=10)]
        recall.append(len(set(got) & set(exact_order(m, q, 10))) / 10)
        filtered = m.find(vector=q, k=6, filter={"topic": "travel"})
        assert len(filtered) == 6 and all(h.metadata["topic"] == "travel" for h in filtered)
    assert sum(recall) / len(recall) >= 0.9
    m.update("garden-00000", embedding=[0.0] * (DIM - 1) + [5.0])
    assert m.find(vector=[0.0] * (DIM - 1) + [1.0], k=1)[0].id == "garden-00000"


@pytest.mark.parametrize(("dtype", "stored"), [("auto", "i8"), ("i8", "i8"), ("f16", "f16"),
                                               ("f32", "f32")])
def test_graph_scores_equal_exact_scores(tmp_path, opened, dtype, stored):
    """A quantized graph only proposes candidates: hits carry the exact float32 scores."""
    records = corpus(600, seed=4)
    graph = Memory.create(tmp_path / "graph.mv2", dim=DIM,
                          index={"ann_threshold": 300, "ann_dtype": dtype})
    exact = Memory.create(tmp_path / "exact.mv2", dim=DIM, index={"ann_backend": "none"})
    opened.extend([graph, exact])
    for m in (graph, exact):
        m.put_many(records)
        m.seal()
    assert graph._snap().toc.find("ann").meta["dtype"] == stored
    rng = random.Random(5)
    agree = 0
    for topic in TOPICS:
        q = topic_vector(topic, 0.2, rng)
        want = {h.id: h.score for h in exact.find(vector=q, k=10)}
        got = graph.find(vector=q, k=10)
        assert all(abs(h.score - want[h.id]) <= 1e-6 for h in got if h.id in want)
        assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
        agree += len(set(want) & {h.id for h in got})
    assert agree / (10 * len(TOPICS)) >= 0.9


def with_graph(mem_path: str, opened: list[Memory], seed: int) -> Memory:
    """A writer on 600 sealed records, enough for the default graph from 300 vectors."""
    m = Memory.create(mem_path, dim=DIM, index={"ann_threshold": 300})
    opened.append(m)
    m.put_many(corpus(600, seed=seed))
    m.seal()
    return m


def test_graph_candidates_are_rescored_without_mmap_too(mem_path, opened):
    with_graph(mem_path, opened, seed=6)
    rng = random.Random(7)
    queries = [topic_vector(t, 0.2, rng) for t in TOPICS]
    found = []
    for mmap in (True, False):
        with Memory.open(mem_path, readonly=True, mmap=mmap) as r:
            assert r._snap().toc.find("ann").meta["dtype"] == "i8"
            found.append([[(h.id, h.score) for h in r.find(vector=q, k=8)] for q in queries])
    assert found[0] == found[1]


def test_quantized_graph_options_are_checked():
    with pytest.raises(InvalidInputError, match="float32"):
        IndexConfig(ann_backend="hnswlib", ann_dtype="i8")
    with pytest.raises(InvalidInputError, match="cosine"):
        IndexConfig(distance="ip", ann_dtype="i8")
    with pytest.raises(InvalidInputError, match="ann_dtype"):
        IndexConfig(ann_dtype="int4")
    assert IndexConfig(distance="l2").graph_dtype == "f32"
    assert IndexConfig(ann_backend="hnswlib").graph_dtype == "f32"
    assert IndexConfig().graph_dtype == "i8"


def test_hnsw_batch_equals_single_queries(mem_path, opened):
    m = with_graph(mem_path, opened, seed=3)
    rng = random.Random(8)
    reqs = [{"vector": topic_vector(t, 0.2, rng), "k": 5, "filter": {"even": True}}
            for t in TOPICS] + [{"vector": topic_vector("garden", 0.1, rng), "k": 12}]
    assert [[h.id for h in hits] for hits in m.find_batch(reqs)] == [
        [h.id for h in m.find(**r)] for r in reqs]


def test_vector_results_follow_writes_after_a_search(mem_path, opened):
    m = Memory.create(mem_path, dim=2, index={"ann_backend": "none"})
    opened.append(m)
    m.put("a", embedding=[1.0, 0.0], id="a")
    m.put("b", embedding=[0.0, 1.0], id="b")
    m.seal()
    assert [h.id for h in m.find(vector=[1.0, 0.0], k=2)] == ["a", "b"]
    m.update("a", embedding=[-1.0, 0.0])  # the committed version is replaced in the WAL
    m.put("c", embedding=[0.9, 0.1], id="c")
    hits = m.find(vector=[1.0, 0.0], k=3)
    assert [h.id for h in hits] == ["c", "b", "a"] and hits[2].version == 2
    m.delete("c")
    assert [h.id for h in m.find(vector=[1.0, 0.0], k=3)] == ["b", "a"]


@pytest.mark.parametrize("mmap", [True, False])
def test_stored_vectors_are_gathered_across_runs(mem_path, opened, mmap):
    """Graph candidates are read by gid from every run, the same with or without mmap."""
    import numpy as np

    from memvid_store import CorruptFileError
    from memvid_store.index.searcher import searcher_for

    m = Memory.create(mem_path, dim=DIM)
    opened.append(m)
    records = corpus(90, seed=3)
    for start, end in ((0, 60), (60, 80), (80, 90)):  # shrinking commits: three runs
        batch = records[start:end]
        for r in batch[::7]:
            r.pop("embedding")  # versions without a vector in every run
        m.put_many(batch)
        m.seal()
    m.delete(records[1]["id"])
    m.seal()
    m.close()
    with Memory.open(mem_path, readonly=True, mmap=mmap) as r:
        snap = r._snap()
        assert len(snap.runs) >= 3
        stored = searcher_for(snap, r.index_config, r._ctx.cache_root).vectors.hnsw.stored()
        with_vec, without = [], []
        for gid in range(snap.toc.next_gid):
            ref = snap.locate(gid)
            raw = ref.run.vector(ref.row)
            (without if raw is None else with_vec).append((gid, raw))
        assert with_vec and without
        order = list(reversed(with_vec))
        got = stored.gather(np.array([g for g, _ in order]))
        expected = np.frombuffer(b"".join(raw for _, raw in order), "<f4").reshape(-1, DIM)
        assert np.array_equal(got, expected)
        assert stored.gather(np.array([], "<i8")).shape == (0, DIM)
        for bad in (without[0][0], snap.toc.next_gid, -1):
            with pytest.raises(CorruptFileError):
                stored.gather(np.array([with_vec[0][0], bad]))


@pytest.mark.parametrize("damage", ["rows", "offset", "unaligned"])
def test_stored_vectors_refuse_rows_outside_their_blocks(mem_path, opened, damage):
    """A run whose block list disagrees with its rows (fewer rows, an offset past the file
    or off the float grid) fails the gathers that reach it; other rows still gather."""
    import numpy as np

    from memvid_store import CorruptFileError
    from memvid_store.index.vector.stored import StoredVectors

    m = Memory.create(mem_path, dim=DIM)
    opened.append(m)
    m.put_many(corpus(40, seed=5)[:20])
    m.seal()
    m.put_many(corpus(40, seed=5)[20:])
    m.seal()
    snap = m._snap()
    first, last = snap.runs
    offset, rows, crc = last.header["vblocks"][-1]
    changed = {"rows": (offset, rows - 1, crc), "offset": (snap.view.length, rows, crc),
               "unaligned": (offset + 2, rows, crc)}[damage]
    last.header = {**last.header, "vblocks": [*last.header["vblocks"][:-1], changed]}
    stored = StoredVectors(snap)
    good = np.arange(first.base, first.end)
    assert stored.gather(good).shape == (len(good), DIM)
    damaged = [last.end - 1] if damage == "rows" else [last.base]
    with pytest.raises(CorruptFileError, match="outside its blocks"):
        stored.gather(np.array([good[0], *damaged]))


@pytest.mark.parametrize("backend", ["usearch", "hnswlib"])
def test_selective_filters_and_windows_scan_the_admitted_versions(mem_path, opened,
                                                                  backend, monkeypatch):
    """A filter or time range admitting few versions is answered by an exact scan of those
    versions: the exact top k among them, with the same scores as the exact path."""
    import numpy as np  # the subset path serves once numpy is loaded

    from memvid_store.index.vector import subset_scan

    served = []
    real = subset_scan.SubsetScan.ranked

    def spy(self, req, accept):
        found = real(self, req, accept)
        served.append(found is not None)
        return found

    monkeypatch.setattr(subset_scan.SubsetScan, "ranked", spy)
    rng = np.random.default_rng(3)
    m = Memory.create(mem_path, dim=DIM, index={"ann_backend": backend, "ann_threshold": 200})
    opened.append(m)
    vectors = rng.normal(size=(2000, DIM)).astype("<f4")
    m.put_many([{"id": f"f{i:04d}", "text": f"item {i}", "embedding": vectors[i].tolist(),
                 "metadata": {"bucket": i % 100, "rare": i % 500 == 7},
                 "tags": ["pick"] if i % 250 == 3 else [], "created_at": day(i % 200)}
                for i in range(2000)])
    m.seal()
    m.delete("f0107")  # a deleted version is posted too: acceptance drops it
    m.put("fresh", id="wal", embedding=vectors[7].tolist(), metadata={"bucket": 7})

    def exact_top(query, keep, k=5):
        rows = [(f.id, np.asarray(f.embedding, "<f4")) for f in m.timeline() if keep(f)]
        q = query / np.linalg.norm(query)
        scored = sorted((-float(v @ q / np.linalg.norm(v)), fid) for fid, v in rows)
        return [fid for _, fid in scored[:k]]

    cases = [({"bucket": 7}, None, lambda f: f.metadata.get("bucket") == 7),
             ({"rare": True}, None, lambda f: f.metadata.get("rare") is True),
             ({"tags": "pick"}, None, lambda f: "pick" in f.tags),
             (None, (day(3), day(5)), lambda f: day(3) <= f.created_at < day(5))]
    for flt, window, keep in cases:
        for _ in range(5):
            query = rng.normal(size=DIM).astype("<f4")
            served.clear()
            hits = m.find(vector=query.tolist(), k=5, filter=flt, time_range=window)
            assert served == [True]
            assert [h.id for h in hits] == exact_top(query, keep)
            assert all(keep(m.get(h.id)) for h in hits)


def test_selective_lexical_search_equals_the_widening_search(mem_path, opened, monkeypatch):
    """BM25 over just the admitted versions ranks as the index's widening search does:
    same hits in the same order, scores equal to float32 rounding (indexed and WAL
    versions alike)."""
    from memvid_store.index.vector import numpy_free_subset, subset_scan

    m = Memory.create(mem_path, dim=DIM, wal_size=1 << 20)
    opened.append(m)
    records = corpus(1200, seed=5)
    for i, rec in enumerate(records):
        rec["metadata"]["rare"] = i % 97 == 3
        if i % 150 == 0:
            rec["metadata"]["title"] = "budget forecast"
    m.put_many(records[:1000])
    m.seal()
    m.put_many(records[1000:])  # WAL: versions the index does not cover
    m.delete("finance-00001")
    cases = [({"rare": True}, None), ({"topic": "finance", "rare": True}, None),
             ({"tags": "odd", "n": {"$lt": 300}}, None), (None, (day(10), day(14))),
             ({"even": True}, (day(0), day(40)))]
    queries = ["budget forecast", "tomato", "flight hotel", "recipe garlic item", "zzz"]
    for flt, window in cases:
        for q in queries:
            for mode in ("lexical", "hybrid"):
                args = {"k": 5, "mode": mode, "filter": flt, "time_range": window}
                if mode == "hybrid":
                    args["vector"] = topic_vector("finance", 0.3, random.Random(len(q)))
                m._snap().extras.clear()
                fast = m.find(q, **args)
                with monkeypatch.context() as patched:
                    patched.setattr(subset_scan, "SUBSET_MAX", 0)
                    patched.setattr(numpy_free_subset, "SUBSET_MAX", 0)
                    m._snap().extras.clear()
                    slow = m.find(q, **args)
                assert [h.id for h in fast] == [h.id for h in slow], (flt, window, q, mode)
                for a, b in zip(fast, slow, strict=True):
                    assert a.score == pytest.approx(b.score, rel=1e-5, abs=1e-6)


def test_a_filtered_lexical_search_widens_by_the_yield_it_sees():
    from memvid_store.index.searcher import widened

    assert widened(100, 25, 50) == 250  # half found: 2.5x as many (a quarter more)
    assert widened(100, 49, 50) == 200  # nearly all: still at least twice
    assert widened(100, 0, 50) == 1600  # none yet: at most 16x
    assert widened(100, 2, 50) == 1600


def test_a_filter_candidate_set_is_kept_per_snapshot_and_follows_new_writes(mem_path, opened):
    """The candidate set of a filter is computed once per snapshot and filter; writes after
    it (the WAL delta of the same snapshot) are in the next query's set."""
    from memvid_store.index import listing

    m = Memory.create(mem_path, dim=DIM)
    opened.append(m)
    records = corpus(40, seed=8)
    for i, r in enumerate(records):
        r["metadata"] = {"team": "a" if i % 4 == 0 else "b"}
    m.put_many(records[:30])
    m.seal()
    calls = []
    original = listing._candidate_gids
    listing._candidate_gids = lambda *a: calls.append(a[2].spec) or original(*a)
    try:
        query = records[0]["embedding"]
        first = m.find(vector=query, k=20, mode="vector", filter={"team": "a"})
        again = m.find(vector=query, k=19, mode="vector", filter={"team": "a"})  # no result cache
        assert [h.id for h in first][:19] == [h.id for h in again]
        assert len(calls) == 1
        m.put_many(records[30:])  # unsealed: the same snapshot with a longer delta
        later = m.find(vector=query, k=20, mode="vector", filter={"team": "a"})
        want = {r["id"] for i, r in enumerate(records) if i % 4 == 0}
        assert {h.id for h in later} == want and len(calls) == 2
    finally:
        listing._candidate_gids = original


@pytest.mark.parametrize("committed", [True, False], ids=["runs", "wal"])
def test_common_conditions_whose_conjunction_is_rare_are_intersected(mem_path, opened,
                                                                     monkeypatch, committed):
    """Each condition alone admits too many versions for an exact subset; together they
    admit few: the posting lists are intersected and the few scored exactly, the answer
    the exact path gives."""
    from memvid_store.index import listing
    from memvid_store.index.filters import compile_filter
    from memvid_store.index.vector import numpy_free_subset, subset_scan

    for module in (numpy_free_subset, subset_scan):
        monkeypatch.setattr(module, "SUBSET_MAX", 20)
    m = Memory.create(mem_path, dim=DIM)
    opened.append(m)
    records = corpus(300, seed=9)
    for i, r in enumerate(records):
        r["metadata"] = {"team": i % 3, "tier": i % 5, "lang": "en" if i % 2 else "de"}
    m.put_many(records)
    if committed:
        m.seal()
    flt = {"team": 1, "tier": 2, "lang": "en"}  # 100, 60 and 150 versions; 10 together
    matches = [r for i, r in enumerate(records) if i % 3 == 1 and i % 5 == 2 and i % 2]
    snap = m._snap()
    gids = listing.candidate_gids(snap, "default", compile_filter(flt), None, 20)
    assert gids is not None and len(matches) == 10 <= len(gids) <= 20  # a superset
    query = records[7]["embedding"]
    hits = m.find(vector=query, k=5, mode="vector", filter=flt)
    exact = sorted(matches, key=lambda r: -_cosine(query, r["embedding"]))[:5]
    assert [h.id for h in hits] == [r["id"] for r in exact]
    monkeypatch.setattr(listing, "INTERSECT_MAX", 1)  # 60 > 1 x 20: too large to read
    other = compile_filter({"team": 2, "tier": 3, "lang": "de"})  # not in the cache
    assert listing.candidate_gids(snap, "default", other, None, 20) is None


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


@pytest.mark.parametrize("flt,admitted", [
    ({"team": 1}, {1}),  # a third: refused when posted under none of the condition's terms
    ({"team": {"$ne": 1}}, {0, 2}),  # two thirds: refused when posted under the excluded one
])
def test_a_filter_refuses_versions_on_the_posting_lists_without_decoding_them(
        mem_path, opened, monkeypatch, flt, admitted):
    """The graph answers (no exact subset); its candidates the posting lists rule out are
    refused there, and only admitted ones have their payload decoded and checked."""
    from memvid_store.engine.snapshot import Snapshot
    from memvid_store.index.vector import numpy_free_subset, subset_scan

    for module in (numpy_free_subset, subset_scan):
        monkeypatch.setattr(module, "SUBSET_MAX", 10)
    m = Memory.create(mem_path, dim=DIM, index={"ann_threshold": 50})
    opened.append(m)
    records = corpus(300, seed=10)
    for i, r in enumerate(records):
        r["metadata"] = {"team": i % 3}
    m.put_many(records)
    m.seal()
    decoded: list[str] = []
    record = Snapshot.record

    def spy(self, ref, *, cached=True):
        got = record(self, ref, cached=cached)
        decoded.append(got[0])
        return got

    monkeypatch.setattr(Snapshot, "record", spy)
    query = records[4]["embedding"]
    hits = m.find(vector=query, k=5, mode="vector", filter=flt)
    want = sorted((r for i, r in enumerate(records) if i % 3 in admitted),
                  key=lambda r: -_cosine(query, r["embedding"]))[:5]
    assert [h.id for h in hits] == [r["id"] for r in want]
    team = {r["id"]: r["metadata"]["team"] for r in records}
    assert decoded and {team[i] for i in decoded} <= admitted


class _Ref:
    def __init__(self, frame_id: str) -> None:
        self._id = frame_id

    def frame_id(self) -> str:
        return self._id


@settings(max_examples=200, deadline=None)
@given(scores=st.lists(st.sampled_from([0.1, 0.2, 0.25, 0.5, 1.0]), max_size=40),
       k=st.integers(1, 45), seed=st.integers(0, 1000))
def test_the_head_of_a_ranking_is_the_head_of_its_whole_order(scores, k, seed):
    """order_head (the fused list of a hybrid query) looks frame ids up only for the ties
    that can reach the first k, and answers as ordering everything."""
    from memvid_store.index.acceptance import order, order_head

    ids = [f"f{i:03d}" for i in range(len(scores))]
    random.Random(seed).shuffle(ids)
    ranked = [(_Ref(i), s) for i, s in zip(ids, scores, strict=True)]
    whole = [(ref.frame_id(), s) for ref, s in order(ranked)[:k]]
    assert [(ref.frame_id(), s) for ref, s in order_head(ranked, k)] == whole
