"""Unit tests for the LlamaIndex adapters: filter translation (property test against a
reference), time travel, deletes, errors, the retriever and the chat store."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from memvid_integrations.llamaindex import (
    MemvidChatStore,
    MemvidRetriever,
    MemvidVectorStore,
)
from memvid_integrations.llamaindex.filters import to_memvid_filter
from memvid_store import (
    DimensionMismatchError,
    FilterError,
    Memory,
    MemoryLockedError,
    ReadOnlyError,
)
from memvid_store.index.filters import compile_filter

from ..lockholder import held_by_another_process


def _node(nid: str, text: str, emb: list[float] | None, doc: str = "doc",
          **meta: Any) -> TextNode:
    node = TextNode(id_=nid, text=text, embedding=emb, metadata=meta)
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
    return node


@pytest.fixture(autouse=True)
def _no_network():
    """Everything here is offline: only unix sockets (the event loop's) are allowed."""
    from pytest_socket import disable_socket, enable_socket

    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture
def store(tmp_path):
    s = MemvidVectorStore(str(tmp_path / "u.mv2"), sync=False)
    yield s
    s.close()


# --------------------------------------------------------------------- import isolation

def test_importing_engine_or_integrations_does_not_import_llama_index() -> None:
    code = ("import sys, memvid_store, memvid_integrations, memvid_integrations.llamaindex\n"
            "bad = [m for m in sys.modules if m.startswith('llama_index')]\n"
            "assert not bad, bad\n"
            "from memvid_integrations.llamaindex import MemvidVectorStore\n"
            "assert 'llama_index.core' in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


def test_public_names() -> None:
    import memvid_integrations.llamaindex as pkg

    assert pkg.__all__ == ["MemvidChatStore", "MemvidRetriever", "MemvidVectorStore"]
    with pytest.raises(AttributeError):
        _ = pkg.Nope


# ---------------------------------------------------------------------- filter property

KEYS = ["a", "b", "c", "tags"]
_words = st.text(alphabet="abc", min_size=0, max_size=2)
_nums = st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.0, 1.0, 2.5]))


def _dataset() -> list[dict[str, Any]]:
    """Fixed metadata: numbers, strings, lists, None and missing keys under each key."""
    rng = random.Random(11)
    pool = {
        "a": [0, 1, 2, 3, -1, 1.0, 2.5, None, "1"],
        "b": ["", "a", "ab", "b", "ca", "cab", None, 2],
        "c": [[], ["a"], ["a", "b"], ["bc", "c"], ["ab"], "a", None, [1, 2]],
        "tags": ["a", ["b", "c"], []],
    }
    rows = []
    for _ in range(40):
        rows.append({k: rng.choice(v) for k, v in pool.items() if rng.random() < 0.8})
    return rows


DATA = _dataset()


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x == y
    if isinstance(x, int | float) and isinstance(y, int | float):
        return x == y
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    return type(x) is type(y) and x == y


def _eq(stored: Any, v: Any) -> bool:
    if isinstance(stored, list):
        return _same(stored, v) or any(_same(e, v) for e in stored)
    return _same(stored, v)


def _cmp(stored: Any, v: Any, op: str) -> bool:
    items = stored if isinstance(stored, list) else [stored]
    for s in items:
        num = (isinstance(s, int | float) and not isinstance(s, bool)
               and isinstance(v, int | float))
        comparable = num or (isinstance(s, str) and isinstance(v, str))
        if comparable and {">": s > v, ">=": s >= v, "<": s < v, "<=": s <= v}[op]:
            return True
    return False


def _strings(stored: Any) -> list[str]:
    items = stored if isinstance(stored, list) else [stored]
    return [s for s in items if isinstance(s, str)]


def _ref_filter(f: MetadataFilter, meta: dict[str, Any]) -> bool:
    present, stored, v, op = f.key in meta, meta.get(f.key), f.value, f.operator
    if op == FilterOperator.IS_EMPTY:
        return not present or any(_eq(stored, e) for e in (None, "", []))
    if op == FilterOperator.NE:
        return not (present and _eq(stored, v))
    if op == FilterOperator.NIN:
        return not (present and any(_eq(stored, x) for x in v))
    if not present:
        return False
    if op in (FilterOperator.EQ, FilterOperator.CONTAINS):
        return _eq(stored, v)
    if op in (FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE):
        return _cmp(stored, v, op.value)
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return any(_eq(stored, x) for x in v)
    if op == FilterOperator.ALL:
        return all(_eq(stored, x) for x in v)
    if op == FilterOperator.TEXT_MATCH:
        return any(v in s for s in _strings(stored))
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return any(v.lower() in s.lower() for s in _strings(stored))
    raise AssertionError(op)


def _ref(filters: MetadataFilters, meta: dict[str, Any]) -> bool:
    results = [_ref(f, meta) if isinstance(f, MetadataFilters) else _ref_filter(f, meta)
               for f in filters.filters]
    if filters.condition == FilterCondition.OR:
        return any(results)
    if filters.condition == FilterCondition.NOT:
        return not any(results)
    return all(results)


@st.composite
def _filter(draw: st.DrawFn) -> MetadataFilter:
    op = draw(st.sampled_from(list(FilterOperator)))
    key = draw(st.sampled_from(KEYS))
    scalar = st.one_of(_words, _nums)
    if op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL):
        lo = 1 if op == FilterOperator.ALL else 0
        value: Any = draw(st.one_of(st.lists(_words, min_size=lo, max_size=3),
                                    st.lists(st.integers(-3, 3), min_size=lo, max_size=3)))
    elif op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        value = draw(st.text(alphabet="abcABC", max_size=2))
    elif op == FilterOperator.IS_EMPTY:
        value = None
    else:
        value = draw(scalar)
    return MetadataFilter(key=key, value=value, operator=op)


_filters = st.recursive(
    st.builds(lambda fs, c: MetadataFilters(filters=fs, condition=c),
              st.lists(_filter(), min_size=1, max_size=3), st.sampled_from(list(FilterCondition))),
    lambda inner: st.builds(lambda fs, c: MetadataFilters(filters=fs, condition=c),
                            st.lists(st.one_of(_filter(), inner), min_size=1, max_size=3),
                            st.sampled_from(list(FilterCondition))),
    max_leaves=6)


@pytest.fixture(scope="module")
def filter_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("filters") / "f.mv2"
    s = MemvidVectorStore(str(path), sync=False)
    s.add([_node(f"n{i:02d}", f"row {i}", [1.0, i / 10.0, 0.5], **meta)
           for i, meta in enumerate(DATA)])
    yield s
    s.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(filters=_filters)
def test_every_operator_matches_reference(filter_store, filters) -> None:
    want = [f"n{i:02d}" for i, meta in enumerate(DATA) if _ref(filters, meta)]
    got = [n.node_id for n in filter_store.get_nodes(filters=filters)]
    assert got == want, to_memvid_filter(filters)
    res = filter_store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.5],
                                              similarity_top_k=len(DATA), filters=filters))
    assert sorted(res.ids) == want


def test_every_operator_is_covered() -> None:
    for op in FilterOperator:
        value: Any = ["a"] if op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY,
                                     FilterOperator.ALL) else "a"
        spec = to_memvid_filter(MetadataFilters(filters=[
            MetadataFilter(key="k", value=value, operator=op)]))
        assert compile_filter(spec) is not None


def test_nested_translation() -> None:
    filters = MetadataFilters(filters=[
        MetadataFilter(key="year", value=2020, operator=">="),
        MetadataFilters(filters=[MetadataFilter(key="team", value="a"),
                                 MetadataFilter(key="tags", value="x")], condition="or"),
        MetadataFilters(filters=[MetadataFilter(key="draft", value=1)], condition="not"),
    ])
    assert to_memvid_filter(filters) == {"$and": [
        {"metadata.year": {"$gte": 2020}},
        {"$or": [{"metadata.team": {"$eq": "a"}}, {"metadata.tags": {"$eq": "x"}}]},
        {"$nor": [{"metadata.draft": {"$eq": 1}}]},
    ]}
    assert to_memvid_filter(None) is None
    assert to_memvid_filter(MetadataFilters(filters=[])) is None


@pytest.mark.parametrize(("op", "value", "match"), [
    ("in", "a", "takes a list"),
    ("all", [], "non-empty"),
    (">", ["a"], "compares numbers or strings"),
    ("text_match", 3, "takes a str"),
])
def test_bad_filter_values_are_refused_by_the_engine(store, op, value, match) -> None:
    filters = MetadataFilters(filters=[MetadataFilter(key="k", value=value, operator=op)])
    with pytest.raises(FilterError, match=match):
        store.get_nodes(filters=filters)
    with pytest.raises(FilterError, match=match):
        store.query(VectorStoreQuery(query_str="x", mode="text_search", filters=filters))


def test_text_match_is_a_substring_and_empty_nested_is_refused() -> None:
    spec = to_memvid_filter(MetadataFilters(filters=[
        MetadataFilter(key="k", value="a.b", operator="text_match_insensitive")]))
    assert spec == {"metadata.k": {"$icontains": "a.b"}}
    with pytest.raises(ValueError, match="at least one filter"):
        to_memvid_filter(MetadataFilters(filters=[MetadataFilters(filters=[])]))


# -------------------------------------------------------------------- store behaviour

def test_round_trip_keeps_relationships_and_ref_doc_id(store) -> None:
    a = _node("a", "first chunk", [1.0, 0.0], doc="D", page=1)
    b = _node("b", "second chunk", [0.0, 1.0], doc="D", page=2)
    a.relationships[NodeRelationship.NEXT] = b.as_related_node_info()
    b.relationships[NodeRelationship.PREVIOUS] = a.as_related_node_info()
    assert store.add([a, b]) == ["a", "b"]
    got = {n.node_id: n for n in store.get_nodes(["a", "b", "missing"])}
    assert got["a"].ref_doc_id == "D" and got["b"].ref_doc_id == "D"
    assert got["a"].next_node.node_id == "b"
    assert got["b"].prev_node.node_id == "a"
    assert got["a"].metadata == {"page": 1}
    assert got["a"].get_content() == "first chunk"
    assert got["a"].embedding == pytest.approx([1.0, 0.0])
    res = store.query(VectorStoreQuery(query_embedding=[0.0, 1.0], similarity_top_k=1))
    assert res.ids == ["b"] and res.nodes[0].prev_node.node_id == "a"
    assert res.similarities[0] == pytest.approx(1.0)


def test_delete_by_ref_doc_id_and_history(store) -> None:
    store.add([_node("a", "alpha", [1.0, 0.0], doc="D1"), _node("b", "beta", [0.0, 1.0],
                                                                 doc="D2")])
    before = datetime.now(UTC)
    store.delete("D1")
    store.delete("unknown-doc")
    assert [n.node_id for n in store.get_nodes()] == ["b"]
    assert [n.node_id for n in store.get_nodes(as_of=before)] == ["a", "b"]
    res = store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=5),
                      as_of=before)
    assert res.ids[0] == "a"


def test_as_of_before_update_returns_old_text(store) -> None:
    store.add([_node("a", "launch is on may 6", [1.0, 0.0])])
    before = datetime.now(UTC)
    store.add([_node("a", "launch moved to may 13", [1.0, 0.0])])
    q = VectorStoreQuery(query_str="launch", similarity_top_k=1,
                         mode=VectorStoreQueryMode.TEXT_SEARCH)
    assert store.query(q).nodes[0].get_content() == "launch moved to may 13"
    assert store.query(q, as_of=before).nodes[0].get_content() == "launch is on may 6"
    past = MemvidVectorStore(store.memory, as_of=before)
    assert past.query(q).nodes[0].get_content() == "launch is on may 6"
    retriever = MemvidRetriever(store, MockEmbedding(embed_dim=2), mode="default",
                                as_of=before)
    assert retriever.retrieve("launch")[0].node.get_content() == "launch is on may 6"


def test_time_range_on_created_at(store) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    new = datetime(2024, 1, 1, tzinfo=UTC)
    store.add([_node("old", "report", [1.0, 0.0])], created_at=old)
    store.add([_node("new", "report", [1.0, 0.0])], created_at=new)
    q = VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=5)
    assert store.query(q, time_range=(datetime(2023, 1, 1, tzinfo=UTC), None)).ids == ["new"]
    scoped = MemvidVectorStore(store.memory, time_range=(None, datetime(2021, 1, 1, tzinfo=UTC)))
    assert scoped.query(q).ids == ["old"]


def test_modes_rank_as_expected(store) -> None:
    store.add([_node("cat", "the cat purrs", [1.0, 0.0]),
               _node("dog", "the dog barks at the cat", [0.0, 1.0]),
               _node("cow", "the cow moos", [0.7, 0.7])])
    vec = [0.0, 1.0]

    def ids(mode: str, **kw: Any) -> list[str]:
        q = VectorStoreQuery(query_embedding=vec, query_str="purrs", similarity_top_k=3,
                             mode=VectorStoreQueryMode(mode), **kw)
        return store.query(q).ids

    assert ids("default") == ["dog", "cow", "cat"]
    assert ids("text_search") == ["cat"]
    assert ids("sparse") == ["cat"]
    assert ids("hybrid", alpha=1.0) == ["dog", "cow", "cat"]
    assert ids("hybrid", alpha=0.0) == ["cat"]
    assert ids("hybrid")[0] in {"cat", "dog"}
    # Reciprocal rank fusion (k=60): "cat" is 1st by BM25 and 3rd by vector, "dog" 1st by
    # vector only, so the vector side must weigh ~60x more for "dog" to lead.
    assert ids("hybrid", alpha=0.99)[0] == "dog"
    assert ids("hybrid", alpha=0.9)[0] == "cat"
    assert ids("hybrid", alpha=0.1)[0] == "cat"
    mmr = store.query(VectorStoreQuery(query_embedding=vec, similarity_top_k=2,
                                       mode=VectorStoreQueryMode.MMR, mmr_threshold=0.1))
    assert mmr.ids[0] == "dog" and len(mmr.ids) == 2 and len(mmr.similarities) == 2
    q = VectorStoreQuery(query_embedding=vec, similarity_top_k=3, doc_ids=["doc"],
                         node_ids=["cat", "cow"])
    assert store.query(q).ids == ["cow", "cat"]


def test_store_ignores_foreign_frames(store) -> None:
    store.memory.put("a chat line about cats", embedding=[1.0, 0.0], metadata={"kind": "x"})
    store.add([_node("n", "cats everywhere", [1.0, 0.0])])
    assert [n.node_id for n in store.get_nodes()] == ["n"]
    q = VectorStoreQuery(query_str="cats", similarity_top_k=5,
                         mode=VectorStoreQueryMode.TEXT_SEARCH)
    assert store.query(q).ids == ["n"]
    store.clear()
    assert store.get_nodes() == [] and len(store.memory) == 1


def test_delete_nodes(store) -> None:
    store.add([_node(f"n{i}", f"t{i}", [1.0, float(i)], rank=i) for i in range(4)])
    store.delete_nodes(["n0", "zzz"])
    store.delete_nodes(filters=MetadataFilters(filters=[
        MetadataFilter(key="rank", value=2, operator=">=")]))
    assert [n.node_id for n in store.get_nodes()] == ["n1"]
    with pytest.raises(ValueError, match="clear"):
        store.delete_nodes()


# ------------------------------------------------------------------------- bad input

def test_bad_queries_raise_clear_errors(store) -> None:
    store.add([_node("a", "alpha", [1.0, 0.0])])
    with pytest.raises(ValueError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str="alpha"))
    with pytest.raises(ValueError, match="query_str"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0],
                                     mode=VectorStoreQueryMode.TEXT_SEARCH))
    with pytest.raises(ValueError, match="supports"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0],
                                     mode=VectorStoreQueryMode.SVM))
    with pytest.raises(ValueError, match="alpha"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], query_str="a",
                                     mode=VectorStoreQueryMode.HYBRID, alpha=1.5))
    with pytest.raises(TypeError, match="asof"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0]), asof=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0]), as_of=datetime(2024, 1, 1))
    with pytest.raises(TypeError):
        store.add(["not a node"])
    with pytest.raises(TypeError):
        MemvidVectorStore(123)


def test_engine_errors_pass_through(store, tmp_path) -> None:
    store.add([_node("a", "alpha", [1.0, 0.0])])
    with pytest.raises(DimensionMismatchError):
        store.add([_node("b", "beta", [1.0, 0.0, 0.0])])
    with pytest.raises(DimensionMismatchError):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0, 0.0]))
    with pytest.raises(FilterError):
        store.memory.find("a", filter={"$bogus": 1})
    held = str(tmp_path / "held.mv2")  # the writer lock held by another process
    Memory.create(held).close()
    with held_by_another_process(held), pytest.raises(MemoryLockedError):
        MemvidVectorStore(held, lock_timeout=0.05)
    path = str(tmp_path / "ro.mv2")
    Memory.create(path).close()
    with MemvidVectorStore(path, readonly=True) as ro, pytest.raises(ReadOnlyError):
        ro.add([_node("a", "alpha", [1.0, 0.0])])


def test_retriever_arguments(store) -> None:
    with pytest.raises(ValueError, match="similarity_top_k"):
        MemvidRetriever(store, similarity_top_k=0)
    with pytest.raises(ValueError, match="supports"):
        MemvidRetriever(store, mode="svm")
    with pytest.raises(TypeError):
        MemvidRetriever(object())
    store.add([_node("a", "alpha beta", [1.0, 0.0]), _node("b", "gamma", [0.0, 1.0])])
    lexical = MemvidRetriever(store, similarity_top_k=5, mode="lexical")
    assert [h.node.node_id for h in lexical.retrieve("gamma")] == ["b"]  # no embed model used
    filtered = MemvidRetriever(store, MockEmbedding(embed_dim=2), similarity_top_k=5,
                               filters=MetadataFilters(filters=[
                                   MetadataFilter(key="ref_doc_id", value="nope")]))
    assert filtered.retrieve("alpha") == []


# ------------------------------------------------------------------------- chat store

def test_chat_store_with_memory_buffer(tmp_path) -> None:
    path = str(tmp_path / "chat.mv2")
    with MemvidChatStore(path, sync=False) as chats:
        buf = ChatMemoryBuffer.from_defaults(chat_store=chats, chat_store_key="u1",
                                             token_limit=1000)
        buf.put(ChatMessage(role="user", content="hello"))
        buf.put(ChatMessage(role="assistant", content="hi, how can I help?",
                            additional_kwargs={"x": 1}))
        chats.add_message("u2", ChatMessage(role="user", content="other"))
        assert [m.content for m in buf.get()] == ["hello", "hi, how can I help?"]
        assert chats.get_messages("u1")[1].additional_kwargs == {"x": 1}
        assert chats.get_keys() == ["u1", "u2"]
        before = datetime.now(UTC)
        buf.reset()
        assert buf.get() == [] and chats.get_keys() == ["u2"]
        assert [m.content for m in chats.get_messages("u1", as_of=before)] == [
            "hello", "hi, how can I help?"]
        past = MemvidChatStore(chats.memory, as_of=before)
        assert past.get_keys() == ["u1", "u2"]
        with pytest.raises(ReadOnlyError):
            past.add_message("u1", ChatMessage(role="user", content="x"))
    with MemvidChatStore(path) as reopened:
        assert [m.content for m in reopened.get_messages("u2")] == ["other"]


def test_chat_store_deletes(tmp_path) -> None:
    with MemvidChatStore(str(tmp_path / "c.mv2"), sync=False) as chats:
        chats.set_messages("k", [ChatMessage(role="user", content=str(i)) for i in range(4)])
        assert chats.delete_message("k", 1).content == "1"
        assert chats.delete_message("k", 9) is None
        assert chats.delete_last_message("k").content == "3"
        assert [m.content for m in chats.get_messages("k")] == ["0", "2"]
        chats.set_messages("k", [ChatMessage(role="user", content="new")])
        assert [m.content for m in chats.get_messages("k")] == ["new"]
        assert [m.content for m in chats.delete_messages("k")] == ["new"]
        assert chats.delete_messages("k") is None
        assert chats.delete_last_message("k") is None
        with pytest.raises(ValueError, match="key"):
            chats.get_messages("")
        with pytest.raises(TypeError):
            chats.add_message("k", "not a message")
        asyncio.run(chats.async_add_message("k", ChatMessage(role="user", content="async")))
        assert [m.content for m in asyncio.run(chats.aget_messages("k"))] == ["async"]


def test_chat_frames_are_invisible_to_vector_store(tmp_path) -> None:
    mem = Memory.create(str(tmp_path / "shared.mv2"), sync=False)
    try:
        chats = MemvidChatStore(mem)
        vs = MemvidVectorStore(mem)
        chats.add_message("k", ChatMessage(role="user", content="cats"))
        vs.add([_node("n", "cats", [1.0, 0.0])])
        q = VectorStoreQuery(query_str="cats", similarity_top_k=5,
                             mode=VectorStoreQueryMode.TEXT_SEARCH)
        assert vs.query(q).ids == ["n"]
        vs.clear()
        assert [m.content for m in chats.get_messages("k")] == ["cats"]
    finally:
        mem.close()
