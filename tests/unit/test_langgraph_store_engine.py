"""MemvidStore served by the engine: exact filter translation, exact max pooling over
engine candidates, no read at open, a shared file, TTL sweeps, a reader in another
process."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytest.importorskip("langgraph")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.base import ListNamespacesOp, MatchCondition, PutOp, SearchOp

from memvid_integrations.langgraph import MemvidStore
from memvid_integrations.langgraph.store_filters import project, translate
from memvid_store import Memory
from memvid_store.index.filters import compile_filter
from memvid_store.reads import Reads

from .test_langgraph_store import Reference, normalize

# ----------------------------------------------------- LangGraph's comparison


def compare(item_value: Any, filter_value: Any) -> bool:
    """LangGraph's ``_compare_values``, with ordering that never raises (a value or
    operand ``float()`` refuses does not match)."""
    if isinstance(filter_value, dict):
        if any(k.startswith("$") for k in filter_value):
            return all(apply(item_value, k, v) for k, v in filter_value.items())
        if not isinstance(item_value, dict):
            return False
        return all(compare(item_value.get(k), v) for k, v in filter_value.items())
    if isinstance(filter_value, list | tuple):
        return (isinstance(item_value, list | tuple) and len(item_value) == len(filter_value)
                and all(compare(a, b) for a, b in zip(item_value, filter_value, strict=True)))
    return item_value == filter_value


def apply(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return value == operand
    if op == "$ne":
        return value != operand
    try:
        a, b = float(value), float(operand)
    except (TypeError, ValueError, OverflowError):
        return False
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def matches(value: dict[str, Any], flt: dict[str, Any]) -> bool:
    return all(compare(value.get(k), v) for k, v in flt.items())


# ------------------------------------------------------------------ strategies

KEYS = ["a", "b", "c.d", "e/f", "[0]"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.0, 1.0, 2.5, -1.5]),
    st.sampled_from(["x", "y", "1", "2.5", " 3 ", "inf", "-inf", "nan", "1e400", "abc",
                     "z" * 70, "z" * 71]),
    st.sampled_from([float("inf"), float("-inf"), 2 ** 60, 2 ** 60 + 1]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
    max_leaves=8)
documents = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)
ops = st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"])
conditions = st.recursive(
    st.one_of(scalars, st.dictionaries(ops, st.one_of(scalars, values), min_size=1,
                                       max_size=2)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(KEYS), inner, max_size=2)),
    max_leaves=6)
filters = st.dictionaries(st.sampled_from(KEYS), conditions, min_size=1, max_size=3)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, filters)
def test_translated_filter_matches_exactly_what_langgraph_matches(value, flt):
    spec = translate(flt)
    compiled = compile_filter(spec)
    meta = json.loads(json.dumps(project(value)))  # as the engine stores it
    got = True if compiled is None else compiled(meta, [])
    assert got == matches(value, flt), (spec, meta)


# ------------------------------------------------ random store operations


def embed(texts: list[str]) -> list[list[float]]:
    """Small integer vectors: many exact ties between items."""
    out = []
    for text in texts:
        rng = random.Random(text)
        out.append([float(rng.randint(-1, 2)) for _ in range(4)])
    return out


NAMESPACES = [("a",), ("a", "b"), ("a", "c"), ("a", "b", "d"), ("b", "x", "y"), ("c",)]
WORDS = ["apple", "pear", "plum", "fig", "kiwi"]


def random_value(rng: random.Random) -> dict[str, Any]:
    value: dict[str, Any] = {"text": " ".join(rng.choices(WORDS, k=rng.randint(2, 3))),
                             "n": rng.choice([0, 1, 2, 2.0, 3, True, False]),
                             "s": rng.choice(["1", "2", "2.0", "10"])}
    if rng.random() < 0.5:
        value["tags"] = rng.sample(WORDS, rng.randint(0, 3))
    if rng.random() < 0.5:
        value["nested"] = {"x": rng.randint(0, 2), "y": rng.choice([None, "p", ["p", 1]])}
    if rng.random() < 0.3:
        value["opt"] = rng.choice([None, "p", 1])
    return value


def random_filter(rng: random.Random) -> dict[str, Any] | None:
    choices = [
        None,
        {"n": rng.choice([1, 2, True, 2.0])},
        {"n": {rng.choice(["$gt", "$gte", "$lt", "$lte"]): rng.choice([1, "1.5", 2, True])}},
        {"s": {rng.choice(["$gt", "$lte"]): rng.choice([1, "2", 5.5])}},
        {"s": rng.choice(["1", "2"]), "n": {"$ne": rng.choice([1, 2])}},
        {"opt": {"$ne": rng.choice([None, "p", 1])}},
        {"opt": None},
        {"nested": {"x": rng.randint(0, 2)}},
        {"nested": {"y": rng.choice([None, "p", ["p", 1], ["p"]])}},
        {"nested": {"$eq": {"x": rng.randint(0, 2), "y": None}}},
        {"tags": rng.sample(WORDS, rng.randint(0, 2))},
        {"tags": rng.choice(WORDS)},  # a scalar never matches a stored list
        {"tags": [rng.choice(WORDS), {"$ne": "fig"}]},
    ]
    return rng.choice(choices)


def random_ops(rng: random.Random) -> list[Any]:
    roll = rng.random()
    ns, key = rng.choice(NAMESPACES), f"k{rng.randrange(6)}"
    if roll < 0.4:
        index = rng.choice([None, None, False, ["tags[*]"], ["text", "nested.y"]])
        return [PutOp(ns, key, random_value(rng), index=index)]
    if roll < 0.5:
        return [PutOp(ns, key, None)]
    if roll < 0.85:
        prefix = rng.choice(NAMESPACES)[: rng.randint(0, 2)]
        query = " ".join(rng.sample(WORDS, 2)) if rng.random() < 0.6 else None
        return [SearchOp(prefix, random_filter(rng), rng.randint(1, 7), rng.randint(0, 4),
                         query)]
    conditions = []
    for kind in ("prefix", "suffix"):
        if rng.random() < 0.5:
            ns = rng.choice(NAMESPACES)
            path = tuple("*" if rng.random() < 0.3 else x for x in ns[: rng.randint(1, len(ns))])
            conditions.append(MatchCondition(kind, path if kind == "prefix" else path[-2:]))
    return [ListNamespacesOp(tuple(conditions), rng.choice([None, 1, 2, 3]),
                             rng.randint(1, 8), rng.randint(0, 2))]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_operations_with_richer_filters_match_in_memory_store(tmp_path, seed):
    rng = random.Random(seed)
    index = {"dims": 4, "embed": embed, "fields": ["text", "tags[*]"]}
    ref = Reference(index=index)
    with MemvidStore(str(tmp_path / "s.mv2"), index=index, sync=False) as store:
        for step in range(250):
            batch = random_ops(rng)
            assert normalize(store.batch(batch)) == normalize(ref.batch(batch)), (step, batch)


# ------------------------------------------------------------ max pooling


def brute_force(items: dict[tuple, tuple[int, list[list[float]]]], query: list[float],
                offset: int, limit: int) -> list[tuple[tuple, float]]:
    """Exhaustive max-pooled cosine ranking in float64, ties by insertion order."""
    import numpy as np

    q = np.asarray(query, dtype=np.float64)
    scored = []
    for key, (order, vectors) in items.items():
        mat = np.asarray(vectors, dtype=np.float32).astype(np.float64)
        norms = np.linalg.norm(mat, axis=1)
        sims = [float(mat[i] @ q / (norms[i] * np.linalg.norm(q))) if norms[i] else 0.0
                for i in range(len(mat))]
        scored.append((-max(sims), order, key))
    scored.sort()
    return [(key, -s) for s, _, key in scored[offset:offset + limit]]


@pytest.mark.parametrize("seed", [1, 2])
def test_multi_vector_max_pooling_equals_brute_force(tmp_path, seed):
    rng = random.Random(seed)
    dims = 6
    vectors_of: dict[str, list[float]] = {}

    def embed_texts(texts: list[str]) -> list[list[float]]:
        return [vectors_of.setdefault(t, [rng.gauss(0, 1) for _ in range(dims)])
                for t in texts]

    index = {"dims": dims, "embed": embed_texts, "fields": ["parts[*]"]}
    items: dict[tuple, tuple[int, list[list[float]]]] = {}
    with MemvidStore(str(tmp_path / "p.mv2"), index=index, sync=False) as store:
        for i in range(120):
            ns = (rng.choice(["u", "v"]), rng.choice(["1", "2"]))
            parts = [f"t{rng.randrange(400)}" for _ in range(rng.randint(1, 6))]
            key = f"k{i % 90}"
            store.put(ns, key, {"parts": parts, "g": i % 3})
            order = items[(ns, key)][0] if (ns, key) in items else i
            items[(ns, key)] = (order, embed_texts(parts))
        # iteration order: namespace first insertion, then key insertion
        first = {}
        for (ns, _), (order, _) in sorted(items.items(), key=lambda kv: kv[1][0]):
            first.setdefault(ns, order)
        ranked = {k: ((first[k[0]], order), vecs) for k, (order, vecs) in items.items()}
        for _ in range(25):
            query_text = f"t{rng.randrange(400)}"
            query = embed_texts([query_text])[0]
            offset, limit = rng.randint(0, 30), rng.randint(1, 25)
            prefix = rng.choice([(), ("u",), ("v", "2")])
            pool = {k: v for k, v in ranked.items() if k[0][:len(prefix)] == prefix}
            got = [((h.namespace, h.key), h.score) for h in
                   store.search(prefix, query=query_text, offset=offset, limit=limit)]
            want = brute_force(pool, query, offset, limit)
            assert [k for k, _ in got] == [k for k, _ in want]
            assert all(math.isclose(a, b, abs_tol=1e-12) for (_, a), (_, b) in zip(
                got, want, strict=True))


# ----------------------------------------------------------- open and files


def test_opening_reads_no_item(tmp_path, monkeypatch):
    path = str(tmp_path / "many.mv2")
    index = {"dims": 4, "embed": embed, "fields": ["text"]}
    with MemvidStore(path, index=index, sync=False) as store:
        store.batch([PutOp(("u", str(i % 7)), f"k{i}", {"text": f"apple {i}"})
                     for i in range(3000)])
    decoded = []
    original = Reads._frame

    def counting(self, snap, ref, valid_to=None, v=None):
        decoded.append(ref)
        return original(self, snap, ref, valid_to, v)

    monkeypatch.setattr(Reads, "_frame", counting)
    with MemvidStore(path, index=index) as store:
        assert decoded == []
        assert store.get(("u", "3"), "k3").value == {"text": "apple 3"}
        assert len(decoded) == 1
        hits = store.search(("u", "3"), query="apple", limit=3)
        assert len(hits) == 3 and len(decoded) < 40


def test_store_never_touches_other_collections(tmp_path):
    with Memory.create(tmp_path / "shared.mv2", sync=False) as mem:
        others = mem.collection("langgraph-other")
        same_ids = MemvidStore(mem, collection="langgraph-other")
        same_ids.put(("t",), "k", {"v": 1}, ttl=1e-6)
        before = sorted(others.ids())
        mem.put("plain", id="plain", metadata={"kind": "item", "exp": 0})
        store = MemvidStore(mem, ttl={"omit_expired": True})
        store.put(("t",), "k", {"v": 2}, ttl=1e-6)
        import time
        time.sleep(0.01)
        assert store.search(("t",)) == [] and store.list_namespaces() == []
        assert store.sweep_ttl() == 1
        assert store.collection.ids() == []
        assert sorted(others.ids()) == before and mem.ids() == ["plain"]
        assert same_ids.get(("t",), "k").value == {"v": 1}


def test_sweep_deletes_items_vectors_and_empty_namespaces(tmp_path):
    index = {"dims": 4, "embed": embed, "fields": ["tags[*]"]}
    with MemvidStore(str(tmp_path / "t.mv2"), index=index, sync=False) as store:
        store.put(("a", "b"), "gone", {"tags": ["apple", "pear", "fig"]}, ttl=1e-6)
        store.put(("a", "c"), "gone", {"tags": ["apple"]}, ttl=1e-6)
        store.put(("a", "c"), "kept", {"tags": ["kiwi", "plum"]}, ttl=60)
        import time
        time.sleep(0.01)
        assert store.sweep_ttl() == 2
        left = store.collection.timeline()
        assert sorted(f.metadata["kind"] for f in left) == ["item", "ns", "vec"]
        assert store.list_namespaces() == [("a", "c")]
        assert [h.key for h in store.search(("a",), query="kiwi")] == ["kept"]


WRITER = textwrap.dedent("""
    import sys
    from memvid_integrations.langgraph import MemvidStore
    with MemvidStore(sys.argv[1]) as store:
        store.put(("w",), "late", {"v": "from the writer"})
        store.put(("w", "x"), "later", {"v": 2})
""")


def test_reader_follows_a_writer_in_another_process(tmp_path):
    path = str(tmp_path / "f.mv2")
    with MemvidStore(path) as store:
        store.put(("w",), "early", {"v": 1})
    reader = MemvidStore(path, readonly=True)
    try:
        assert reader.readonly and [i.key for i in reader.search(("w",))] == ["early"]
        out = subprocess.run([sys.executable, "-c", WRITER, path], capture_output=True,
                             text=True, timeout=60, cwd=str(tmp_path),
                             env={**__import__("os").environ, "PYTHONPATH": ":".join(sys.path)})
        assert out.returncode == 0, out.stderr
        assert reader.get(("w",), "late").value == {"v": "from the writer"}
        assert [i.key for i in reader.search(("w",))] == ["early", "late", "later"]
        assert reader.list_namespaces() == [("w",), ("w", "x")]
    finally:
        reader.close()
