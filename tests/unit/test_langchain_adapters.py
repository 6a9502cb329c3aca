"""LangChain adapters: time travel, filters, search modes, chat history, errors, async."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from memvid_integrations.langchain import (
    MemvidChatMessageHistory,
    MemvidRetriever,
    MemvidVectorStore,
)
from memvid_store import (
    DimensionMismatchError,
    FilterError,
    Memory,
    ReadOnlyError,
)

EMB = DeterministicFakeEmbedding(size=6)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


class NoQueryEmbedding(Embeddings):
    """Embeds documents; fails if a query is embedded (lexical search must not embed)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return EMB.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("lexical search embedded the query")


class SlowEmbedding(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return EMB.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        time.sleep(0.2)
        return EMB.embed_query(text)


@pytest.fixture
def store(tmp_path):
    s = MemvidVectorStore(tmp_path / "lc.mv2", EMB, wal_size=1 << 20)
    yield s
    s.close()


def tick() -> datetime:
    """A record time strictly between two writes."""
    time.sleep(0.002)
    t = datetime.now(UTC)
    time.sleep(0.002)
    return t


# ---------------------------------------------------------------- imports


def test_importing_memvid_does_not_import_langchain():
    code = textwrap.dedent("""
        import sys, memvid_store, memvid_integrations, memvid_integrations.langchain
        print([m for m in ("langchain_core", "langchain", "langgraph") if m in sys.modules])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_lazy_exports_resolve():
    import memvid_integrations.langchain as lc

    assert sorted(lc.__all__) == ["MemvidChatMessageHistory", "MemvidRetriever",
                                  "MemvidVectorStore"]
    assert lc.MemvidVectorStore is MemvidVectorStore


# ---------------------------------------------------------------- vector store


def test_add_search_get_delete_and_reopen(tmp_path):
    path = tmp_path / "r.mv2"
    with MemvidVectorStore.from_documents(
            [Document(page_content="alpha", metadata={"n": 1}, id="a"),
             Document(page_content="beta", metadata={"n": 2})], EMB, path=path) as s:
        assert s.similarity_search("alpha", k=1) == [
            Document(id="a", page_content="alpha", metadata={"n": 1})]
        ids = s.collection.ids()
        assert "a" in ids and len(ids) == 2
        assert s.collection.name == "langchain" and s.memory.ids() == []
    with MemvidVectorStore(path, EMB) as s:
        assert [d.page_content for d in s.get_by_ids(["missing", "a"])] == ["alpha"]
        s.delete(["a", "missing"])
        assert [d.page_content for d in s.similarity_search("alpha", k=5)] == ["beta"]
        s.delete()
        assert s.similarity_search("beta", k=5) == []


def test_time_travel_through_update_and_delete(store):
    store.add_texts(["launch on 6 May", "budget is 10k"], [{"kind": "fact"}] * 2,
                    ids=["launch", "budget"])
    before = tick()
    store.add_texts(["launch moved to 13 May"], [{"kind": "fact"}], ids=["launch"])
    store.delete(["budget"])

    now = store.similarity_search("launch", k=5)
    assert [d.page_content for d in now] == ["launch moved to 13 May"]
    then = store.similarity_search("launch", k=5, as_of=before)
    assert sorted(d.page_content for d in then) == ["budget is 10k", "launch on 6 May"]
    lexical_then = store.similarity_search("budget", k=5, mode="lexical", as_of=before)
    assert [d.id for d in lexical_then] == ["budget"]

    retriever = MemvidRetriever(vectorstore=store, k=5, mode="lexical", as_of=before)
    assert [d.page_content for d in retriever.invoke("launch")] == ["launch on 6 May"]
    assert [d.page_content for d in retriever.invoke("launch", as_of=None)] == [
        "launch moved to 13 May"]
    mmr_then = store.max_marginal_relevance_search("launch", k=2, as_of=before)
    assert sorted(d.page_content for d in mmr_then) == ["budget is 10k", "launch on 6 May"]


def test_filters_in_the_engine_language(store):
    store.add_texts(["a one", "a two", "b three"],
                    [{"kind": "a", "n": 1}, {"kind": "a", "n": 2}, {"kind": "b", "n": 3}],
                    ids=["1", "2", "3"], tags=["doc"])
    assert {d.id for d in store.similarity_search("x", k=5, filter={"kind": "a"})} == {"1", "2"}
    assert [d.id for d in store.similarity_search("x", k=5, filter={"n": {"$gt": 2}})] == ["3"]
    hits = store.similarity_search("x", k=5, filter={"$or": [{"n": 1}, {"kind": "b"}]})
    assert {d.id for d in hits} == {"1", "3"}
    assert len(store.similarity_search("x", k=5, filter={"tags": "doc"})) == 3
    retriever = store.as_retriever(search_kwargs={"k": 5, "filter": {"kind": "b"}})
    assert [d.id for d in retriever.invoke("x")] == ["3"]


def test_time_range_on_created_at(store):
    store.add_texts(["old note", "new note"], ids=["old", "new"],
                    created_at=[T0, T0 + timedelta(days=30)])
    hits = store.similarity_search("note", k=5, time_range=(T0 + timedelta(days=1), None))
    assert [d.id for d in hits] == ["new"]
    retriever = MemvidRetriever(vectorstore=store, time_range=(None, T0 + timedelta(days=1)))
    assert [d.id for d in retriever.invoke("note")] == ["old"]


def test_hybrid_and_lexical_modes(tmp_path):
    with MemvidVectorStore(tmp_path / "m.mv2", NoQueryEmbedding()) as s:
        s.add_texts(["the quarterly budget review", "a cat on the mat", "launch plan"],
                    ids=["budget", "cat", "launch"])
        lexical = s.similarity_search("budget", k=3, mode="lexical")
        assert [d.id for d in lexical] == ["budget"]
        assert [d.id for d in s.similarity_search("cat", k=1, search_type="lexical")] == ["cat"]
        scored = s.similarity_search_with_relevance_scores("budget", k=1, mode="lexical")
        assert scored[0][0].id == "budget" and 0 < scored[0][1] < 1
        with pytest.raises(AssertionError, match="embedded the query"):
            s.similarity_search("budget", k=3, mode="hybrid")
    with MemvidVectorStore(tmp_path / "m.mv2", EMB) as s:
        hybrid = s.similarity_search("launch plan", k=3, mode="hybrid")
        assert hybrid[0].id == "launch" and len(hybrid) == 3
        retriever = MemvidRetriever(vectorstore=s, k=2, mode="hybrid")
        assert retriever.invoke("launch plan")[0].id == "launch"
        with pytest.raises(ValueError, match="mode"):
            s.similarity_search("x", mode="fuzzy")
        with pytest.raises(ValueError, match="lexical"):
            s.similarity_search_by_vector(EMB.embed_query("x"), mode="lexical")


@pytest.mark.filterwarnings("ignore:Relevance scores must be between")
def test_relevance_scores_and_retriever_search_types(store):
    store.add_texts(["foo", "bar", "baz"], ids=["foo", "bar", "baz"])
    scored = store.similarity_search_with_relevance_scores("foo", k=3)
    assert scored[0][0].id == "foo" and scored[0][1] == pytest.approx(1.0)
    assert all(-1.0 <= s <= 1.0 + 1e-6 for _, s in scored)
    with_score = store.similarity_search_with_score("foo", k=1)
    assert with_score[0][1] == pytest.approx(1.0)

    threshold = store.as_retriever(search_type="similarity_score_threshold",
                                   search_kwargs={"score_threshold": 0.99, "k": 3})
    assert [d.id for d in threshold.invoke("foo")] == ["foo"]
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3})
    assert len(mmr.invoke("foo")) == 2 and mmr.invoke("foo")[0].id == "foo"
    by_vector = store.similarity_search_by_vector(EMB.embed_query("bar"), k=1)
    assert [d.id for d in by_vector] == ["bar"]


def test_mmr_prefers_diverse_documents(tmp_path):
    vectors = {"q": [1.0, 0.0, 0.0], "dup1": [1.0, 0.01, 0.0], "dup2": [1.0, 0.02, 0.0],
               "other": [0.7, 0.0, 0.7]}

    class Table(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [vectors[t] for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return vectors[text]

    with MemvidVectorStore(tmp_path / "mmr.mv2", Table()) as s:
        s.add_texts(["dup1", "dup2", "other"], ids=["dup1", "dup2", "other"])
        assert [d.id for d in s.similarity_search("q", k=2)] == ["dup1", "dup2"]
        picked = s.max_marginal_relevance_search("q", k=2, fetch_k=3, lambda_mult=0.3)
        assert [d.id for d in picked] == ["dup1", "other"]


def test_engine_errors_pass_through(store, tmp_path):
    store.add_texts(["six dims"], ids=["x"])
    four = DeterministicFakeEmbedding(size=4)
    other = MemvidVectorStore(store.memory, four)
    with pytest.raises(DimensionMismatchError):
        other.add_texts(["four dims"])
    with pytest.raises(DimensionMismatchError):
        other.similarity_search("four dims")
    with pytest.raises(FilterError, match=r"\$regex"):
        store.similarity_search("x", filter={"kind": {"$regex": "a"}})
    with pytest.raises(FilterError):
        MemvidRetriever(vectorstore=store, filter={"n": {"$bogus": 1}}).invoke("x")
    with pytest.raises(TypeError, match="path="):
        MemvidVectorStore.from_texts(["x"], EMB)


@pytest.mark.asyncio
async def test_async_methods_do_not_block_the_loop(tmp_path):
    s = MemvidVectorStore(tmp_path / "a.mv2", SlowEmbedding())
    try:
        ids = await s.aadd_documents([Document(page_content="foo", id="foo"),
                                      Document(page_content="bar")])
        assert ids[0] == "foo" and len(ids) == 2
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        docs = await s.asimilarity_search("foo", k=1)
        task.cancel()
        assert [d.id for d in docs] == ["foo"]
        assert ticks >= 5  # the loop kept running during the 0.2 s embedding call
        assert [d.id for d in await s.aget_by_ids(["foo"])] == ["foo"]
        scored = await s.asimilarity_search_with_relevance_scores("foo", k=1)
        assert scored[0][0].id == "foo"
        assert len(await s.amax_marginal_relevance_search("foo", k=2, fetch_k=2)) == 2
        await s.adelete(["foo"])
        retriever = MemvidRetriever(vectorstore=s, mode="vector")
        assert [d.id for d in await retriever.ainvoke("foo")] == [ids[1]]
    finally:
        s.close()


# ---------------------------------------------------------------- chat history


def conversation() -> list:
    return [
        SystemMessage("you are terse"),
        HumanMessage("what is 2+2?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "call-1",
                                   "type": "tool_call"}]),
        ToolMessage("4", tool_call_id="call-1"),
        AIMessage("4", id="ai-2"),
    ]


def test_chat_history_round_trip_across_reopen(tmp_path):
    path = tmp_path / "chat.mv2"
    h = MemvidChatMessageHistory(path, "s1")
    msgs = conversation()
    h.add_messages(msgs[:2])
    for m in msgs[2:]:
        h.add_message(m)
    MemvidChatMessageHistory(h.memory, "s2").add_user_message("other session")
    h.close()

    again = MemvidChatMessageHistory(path, "s1")
    try:
        got = again.messages
        assert got == msgs
        assert [m.type for m in got] == ["system", "human", "ai", "tool", "ai"]
        assert got[2].tool_calls[0]["args"] == {"a": 2, "b": 2}
        assert [m.content for m in MemvidChatMessageHistory(again.memory, "s2").messages] == [
            "other session"]
    finally:
        again.close()


def test_chat_history_clear_keeps_the_past(tmp_path):
    with Memory.create(tmp_path / "c.mv2") as mem:
        h = MemvidChatMessageHistory(mem, "s1")
        h.add_messages(conversation())
        before = tick()
        h.clear()
        assert h.messages == []
        past = MemvidChatMessageHistory(mem, "s1", as_of=before)
        assert past.messages == conversation()
        with pytest.raises(ReadOnlyError):
            past.add_user_message("too late")
        with pytest.raises(ReadOnlyError):
            past.clear()
        h.add_user_message("fresh start")
        assert [m.content for m in h.messages] == ["fresh start"]


def test_chat_history_shares_a_file_with_the_vector_store(tmp_path):
    with Memory.create(tmp_path / "shared.mv2") as mem:
        store = MemvidVectorStore(mem, EMB)
        store.add_texts(["launch notes"], ids=["doc"])
        history = MemvidChatMessageHistory(mem, "s1")
        history.add_user_message("launch question")
        assert [d.id for d in store.similarity_search("launch", k=5)] == ["doc"]
        assert [d.id for d in store.similarity_search("launch", k=5, mode="lexical")] == [
            "doc"]
        lexical = history.collection.find("launch", mode="lexical",
                                          filter={"session_id": "s1"})
        assert [h.text for h in lexical] == ["launch question"]
        live = {name: n for name, n in mem.collections().items() if n}
        assert live == {"langchain": 1, "langchain-chat": 1}


@pytest.mark.asyncio
async def test_chat_history_async(tmp_path):
    h = MemvidChatMessageHistory(tmp_path / "a.mv2", "s")
    try:
        await h.aadd_messages([HumanMessage("hi"), AIMessage("hello")])
        assert [m.content for m in await h.aget_messages()] == ["hi", "hello"]
        await h.aclear()
        assert await h.aget_messages() == []
    finally:
        h.close()


@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
def test_runnable_with_message_history(tmp_path):
    with Memory.create(tmp_path / "r.mv2") as mem:
        model = FakeListChatModel(responses=["first answer", "second answer"])
        prompt = ChatPromptTemplate.from_messages(
            [MessagesPlaceholder("history"), ("human", "{question}")])
        chain = RunnableWithMessageHistory(
            prompt | model, lambda sid: MemvidChatMessageHistory(mem, sid),
            input_messages_key="question", history_messages_key="history")
        cfg = {"configurable": {"session_id": "abc"}}
        assert chain.invoke({"question": "q1"}, cfg).content == "first answer"
        assert chain.invoke({"question": "q2"}, cfg).content == "second answer"
        history = MemvidChatMessageHistory(mem, "abc").messages
        assert [(m.type, m.content) for m in history] == [
            ("human", "q1"), ("ai", "first answer"), ("human", "q2"), ("ai", "second answer")]
