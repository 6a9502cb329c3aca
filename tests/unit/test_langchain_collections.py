"""LangChain adapters on the engine: own collections, one write per change, relevance
scores like InMemoryVectorStore, time travel by generation, LangChain's indexing API, and
chat history read through the session's index (and following another process's writer)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.indexing import InMemoryRecordManager, aindex, index
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.vectorstores import InMemoryVectorStore

from memvid_integrations.langchain import (
    MemvidChatMessageHistory,
    MemvidRetriever,
    MemvidVectorStore,
)
from memvid_store import Memory
from memvid_store.engine.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[2]
EMB = DeterministicFakeEmbedding(size=8)
TEXTS = [f"note {i} about {topic}" for i, topic in
         enumerate(["budget", "launch", "hiring", "travel", "budget", "launch", "party",
                    "review", "budget", "offsite", "roadmap", "launch"])]


@pytest.fixture
def mem(tmp_path) -> Iterator[Memory]:
    with Memory.create(tmp_path / "shared.mv2", wal_size=1 << 20) as memory:
        yield memory


def populate_neighbours(mem: Memory) -> None:
    """Frames of other collections, with ids, words and vectors the store also uses."""
    other = mem.collection("other")
    other.put_many([{"id": "doc-0", "text": "note 0 about budget", "metadata": {"n": 0},
                     "embedding": EMB.embed_query("note 0 about budget")},
                    {"id": "o-1", "text": "budget launch other", "metadata": {"n": 1},
                     "embedding": EMB.embed_query("budget launch other")}])
    MemvidChatMessageHistory(mem, "s1").add_messages(
        [HumanMessage("what about the budget launch?"), AIMessage("budget note 0")])


# ------------------------------------------------------------------- collections


@pytest.mark.filterwarnings("ignore:Relevance scores must be between")
def test_searches_never_return_other_collections(mem):
    populate_neighbours(mem)
    store = MemvidVectorStore(mem, EMB)
    ids = [f"doc-{i}" for i in range(len(TEXTS))]
    store.add_texts(TEXTS, [{"n": i} for i in range(len(TEXTS))], ids=ids)
    mine = set(ids)
    k = 50
    for mode in ("vector", "hybrid", "lexical"):
        docs = store.similarity_search("budget launch note 0", k=k, mode=mode)
        assert {d.id for d in docs} <= mine
        assert all(d.page_content in TEXTS for d in docs)
    assert len(store.similarity_search("note", k=k)) == len(TEXTS)
    assert {d.id for d in store.similarity_search("x", k=k, filter={"n": {"$lte": 1}})} == {
        "doc-0", "doc-1"}
    scored = store.similarity_search_with_relevance_scores("budget", k=k, mode="hybrid")
    assert {d.id for d, _ in scored} <= mine
    assert {d.id for d in store.max_marginal_relevance_search("budget", k=5, fetch_k=k)} <= mine
    assert [d.page_content for d in store.get_by_ids(["doc-0", "o-1"])] == [TEXTS[0]]
    assert {d.id for d in MemvidRetriever(vectorstore=store, k=k).invoke("budget")} <= mine


def test_delete_touches_only_its_own_collection(mem):
    populate_neighbours(mem)
    store = MemvidVectorStore(mem, EMB)
    store.add_texts(TEXTS[:3], ids=["doc-0", "doc-1", "doc-2"])
    store.delete(["doc-0", "o-1", "never"])  # o-1 lives in "other" only
    assert mem.collection("other").count() == 2
    assert mem.collection("other").get("doc-0").text == "note 0 about budget"
    assert store.collection.ids() == ["doc-1", "doc-2"]

    before = mem.generation
    assert store.delete() is True
    assert mem.generation == before + 1  # one write
    assert store.collection.count() == 0
    assert store.similarity_search("note", k=10) == []
    assert mem.collection("other").count() == 2
    assert [m.content for m in MemvidChatMessageHistory(mem, "s1").messages] == [
        "what about the budget launch?", "budget note 0"]


def test_delete_by_ids_is_one_write(mem):
    store = MemvidVectorStore(mem, EMB)
    store.add_texts(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    before = mem.generation
    store.delete([f"d{i}" for i in range(5)] + ["missing"])
    assert mem.generation == before + 1
    assert store.collection.count() == len(TEXTS) - 5


def test_collection_names_default_and_override(mem):
    a = MemvidVectorStore(mem, EMB)
    b = MemvidVectorStore(mem, EMB, collection="team-b")
    a.add_texts(["alpha"], ids=["x"])
    b.add_texts(["beta"], ids=["x"])
    assert a.collection.name == "langchain" and b.collection.name == "team-b"
    assert [d.page_content for d in a.get_by_ids(["x"])] == ["alpha"]
    assert [d.page_content for d in b.similarity_search("alpha", k=5)] == ["beta"]
    chat = MemvidChatMessageHistory(mem, "s")
    other_chat = MemvidChatMessageHistory(mem, "s", collection="chat-2")
    chat.add_user_message("hi")
    assert chat.collection.name == "langchain-chat" and other_chat.messages == []


def test_collection_option_through_from_texts(tmp_path):
    with MemvidVectorStore.from_texts(["one"], EMB, path=tmp_path / "f.mv2",
                                      collection="docs") as store:
        assert store.collection.name == "docs"
        assert store.memory.collection("docs").count() == 1


# ---------------------------------------------------------------- relevance scores


def twin_stores(mem: Memory) -> tuple[MemvidVectorStore, InMemoryVectorStore]:
    ids = [f"d{i}" for i in range(len(TEXTS))]
    ours = MemvidVectorStore(mem, EMB)
    ours.add_texts(TEXTS, ids=ids)
    reference = InMemoryVectorStore(EMB)
    reference.add_texts(TEXTS, ids=ids)
    return ours, reference


@pytest.mark.filterwarnings("ignore:Relevance scores must be between")
def test_relevance_scores_are_in_memory_cosines(mem):
    ours, reference = twin_stores(mem)
    n = len(TEXTS)
    for query in ("budget", "launch review", "note 7 about party"):
        expected = dict((d.id, s) for d, s in reference.similarity_search_with_score(query, k=n))
        scored = ours.similarity_search_with_score(query, k=n)
        assert {d.id: s for d, s in scored} == pytest.approx(expected, abs=1e-6)
        relevance = ours.similarity_search_with_relevance_scores(query, k=n)
        assert {d.id: s for d, s in relevance} == pytest.approx(expected, abs=1e-6)
        hybrid = ours.similarity_search_with_relevance_scores(query, k=n, mode="hybrid")
        assert {d.id: s for d, s in hybrid} == pytest.approx(expected, abs=1e-6)


@pytest.mark.filterwarnings("ignore:Relevance scores must be between")
@pytest.mark.parametrize("query", ["budget", "launch review"])
def test_score_threshold_keeps_what_in_memory_keeps(mem, query):
    ours, reference = twin_stores(mem)
    n = len(TEXTS)
    cosines = sorted(s for _, s in reference.similarity_search_with_score(query, k=n))
    # thresholds halfway between neighbouring cosines, so float32 storage cannot flip one
    thresholds = [(a + b) / 2 for a, b in pairwise(cosines)
                  if 0 < (a + b) / 2 <= 1 and b - a > 1e-4]
    assert thresholds
    for threshold in thresholds:
        kept = {d.id for d, s in reference.similarity_search_with_score(query, k=n)
                if s >= threshold}
        got = ours.similarity_search_with_relevance_scores(query, k=n,
                                                           score_threshold=threshold)
        assert {d.id for d, _ in got} == kept
        retriever = ours.as_retriever(search_type="similarity_score_threshold",
                                      search_kwargs={"k": n, "score_threshold": threshold})
        assert {d.id for d in retriever.invoke(query)} == kept


class Axis(Embeddings):
    """Texts containing "far" point away from every query; the others close to it."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) if "far" not in t else [-1.0, 0.0, 0.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, (len(text) % 7) / 10, 0.0]


@pytest.mark.filterwarnings("ignore:Relevance scores must be between")
def test_hybrid_relevance_of_a_hit_only_the_lexical_side_found(mem):
    texts = [f"close text number {i}" + "!" * (i % 7) for i in range(60)] + ["zebra far away"]
    store = MemvidVectorStore(mem, Axis())
    store.add_texts(texts, ids=[f"d{i}" for i in range(len(texts))])
    reference = InMemoryVectorStore(Axis())
    reference.add_texts(texts, ids=[f"d{i}" for i in range(len(texts))])
    expected = dict((d.id, s) for d, s in reference.similarity_search_with_score(
        "zebra", k=len(texts)))
    hits = store.similarity_search_with_relevance_scores("zebra", k=5, mode="hybrid")
    got = {d.id: s for d, s in hits}
    engine = store.collection.find("zebra", vector=Axis().embed_query("zebra"), k=5,
                                   mode="hybrid")
    assert "vector" not in next(h for h in engine if h.id == "d60").scores
    assert got["d60"] == pytest.approx(-1 / 1.25 ** 0.5)
    assert got == pytest.approx({i: expected[i] for i in got}, abs=1e-6)


def test_lexical_relevance_is_saturated_bm25(mem):
    store = MemvidVectorStore(mem, EMB)
    store.add_texts(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    raw = store.similarity_search_with_score("budget", k=3, mode="lexical")
    relevance = store.similarity_search_with_relevance_scores("budget", k=3, mode="lexical")
    assert [d.id for d, _ in raw] == [d.id for d, _ in relevance]
    assert [s for _, s in relevance] == pytest.approx([s / (1 + s) for _, s in raw])
    assert all(0 < s < 1 for _, s in relevance)


# ------------------------------------------------------------- time travel by generation


@pytest.mark.filterwarnings("ignore:Relevance scores must be between")
def test_as_of_a_generation_sees_deleted_documents(mem):
    store = MemvidVectorStore(mem, EMB)
    store.add_texts(TEXTS[:4], ids=["a", "b", "c", "d"])
    g = store.memory.generation
    store.delete(["a", "b"])
    store.add_texts(["replacement for c"], ids=["c"])

    assert {d.id for d in store.similarity_search("note", k=10)} == {"c", "d"}
    then = store.similarity_search("note", k=10, as_of=g)
    assert {d.id: d.page_content for d in then} == dict(zip("abcd", TEXTS[:4], strict=True))
    lexical = store.similarity_search("budget", k=10, mode="lexical", as_of=g)
    assert [d.id for d in lexical] == ["a"]
    assert [d.page_content for d in store.get_by_ids(["a", "c"], as_of=g)] == [TEXTS[0],
                                                                               TEXTS[2]]
    assert store.get_by_ids(["a"]) == []
    assert len(store.max_marginal_relevance_search("note", k=4, fetch_k=10, as_of=g)) == 4
    scored = store.similarity_search_with_relevance_scores("note", k=10, mode="hybrid",
                                                           as_of=g)
    assert {d.id for d, _ in scored} == set("abcd")
    retriever = MemvidRetriever(vectorstore=store, k=10, as_of=g)
    assert {d.id for d in retriever.invoke("note")} == set("abcd")


# ---------------------------------------------------------------- indexing API


def docs(*pairs: tuple[str, str]) -> list[Document]:
    return [Document(page_content=text, metadata={"source": source}) for text, source in pairs]


@pytest.mark.parametrize("cleanup", [None, "incremental", "full", "scoped_full"])
def test_index_in_every_cleanup_mode(mem, cleanup):
    populate_neighbours(mem)
    store = MemvidVectorStore(mem, EMB)
    manager = InMemoryRecordManager(namespace="memvid")
    manager.create_schema()
    first = docs(("alpha", "s1"), ("beta", "s1"), ("gamma", "s2"))
    result = index(first, manager, store, cleanup=cleanup, source_id_key="source",
                   key_encoder="sha256")
    assert result["num_added"] == 3
    again = index(first, manager, store, cleanup=cleanup, source_id_key="source",
                   key_encoder="sha256")
    assert again["num_added"] == 0 and again["num_skipped"] == 3

    second = docs(("alpha", "s1"), ("beta v2", "s1"))
    result = index(second, manager, store, cleanup=cleanup, source_id_key="source",
                   key_encoder="sha256")
    texts = {d.page_content for d in store.similarity_search("x", k=10)}
    expected = {
        None: ({"alpha", "beta", "gamma", "beta v2"}, 0),
        "incremental": ({"alpha", "gamma", "beta v2"}, 1),
        "full": ({"alpha", "beta v2"}, 2),
        "scoped_full": ({"alpha", "gamma", "beta v2"}, 1),
    }[cleanup]
    assert (texts, result["num_deleted"]) == expected
    assert store.collection.count() == len(expected[0])
    assert {d.page_content for d in store.get_by_ids(manager.list_keys())} == expected[0]
    assert mem.collection("other").count() == 2  # full cleanup stays in its collection
    assert len(MemvidChatMessageHistory(mem, "s1").messages) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("cleanup", ["incremental", "full"])
async def test_aindex(mem, cleanup):
    store = MemvidVectorStore(mem, EMB)
    manager = InMemoryRecordManager(namespace="memvid")
    await manager.acreate_schema()
    await aindex(docs(("alpha", "s1"), ("beta", "s2")), manager, store, cleanup=cleanup,
                 source_id_key="source", key_encoder="sha256")
    result = await aindex(docs(("alpha v2", "s1")), manager, store, cleanup=cleanup,
                          source_id_key="source", key_encoder="sha256")
    left = {d.page_content for d in await store.asimilarity_search("x", k=10)}
    assert left == ({"alpha v2", "beta"} if cleanup == "incremental" else {"alpha v2"})
    assert result["num_added"] == 1


# ---------------------------------------------------------------- chat history


def test_chat_history_writes_are_one_write_each(mem):
    history = MemvidChatMessageHistory(mem, "s")
    before = mem.generation
    history.add_messages([HumanMessage(f"m{i}") for i in range(10)])
    assert mem.generation == before + 1
    history.clear()
    assert mem.generation == before + 2
    assert history.messages == []
    history.clear()  # nothing to delete: no write
    assert mem.generation == before + 2


def test_chat_history_decodes_only_its_session(mem, monkeypatch):
    store = MemvidVectorStore(mem, EMB)
    store.add_texts([f"document {i}" for i in range(400)])
    for s in range(20):
        MemvidChatMessageHistory(mem, f"other-{s}").add_messages(
            [HumanMessage(f"other {s} {i}") for i in range(20)])
    mine = MemvidChatMessageHistory(mem, "mine")
    mine.add_messages([HumanMessage(f"q{i}") if i % 2 == 0 else AIMessage(f"a{i}")
                       for i in range(7)])
    mem.seal()  # committed runs, as in a file opened later

    decoded: list[int] = []
    record = Snapshot.record

    def counting(self, ref, **options):  # type: ignore[no-untyped-def]
        decoded.append(ref.gid)
        return record(self, ref, **options)

    monkeypatch.setattr(Snapshot, "record", counting)
    assert [m.content for m in mine.messages] == [f"q{i}" if i % 2 == 0 else f"a{i}"
                                                  for i in range(7)]
    assert len(set(decoded)) == 7  # the session's frames, none of the 800 others


WRITER = textwrap.dedent("""
    import sys
    from langchain_core.messages import HumanMessage
    from memvid_integrations.langchain import MemvidChatMessageHistory

    history = MemvidChatMessageHistory(sys.argv[1], "s")
    for line in sys.stdin:
        command = line.strip()
        if command == "clear":
            history.clear()
        else:
            history.add_messages([HumanMessage(command)])
        print("ok", flush=True)
    history.close()
""")


def test_readonly_chat_history_follows_another_process(tmp_path):
    path = tmp_path / "chat.mv2"
    with MemvidChatMessageHistory(path, "s") as history:
        history.add_user_message("first")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")])}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        with MemvidChatMessageHistory(path, "s", readonly=True) as reader:
            assert [m.content for m in reader.messages] == ["first"]

            def tell(command: str) -> None:
                writer.stdin.write(command + "\n")  # type: ignore[union-attr]
                writer.stdin.flush()  # type: ignore[union-attr]
                assert writer.stdout.readline().strip() == "ok"  # type: ignore[union-attr]

            tell("second")
            assert [m.content for m in reader.messages] == ["first", "second"]
            tell("third")
            assert [m.content for m in reader.messages] == ["first", "second", "third"]
            tell("clear")
            assert reader.messages == []
    finally:
        writer.stdin.close()  # type: ignore[union-attr]
        assert writer.wait(timeout=60) == 0


def test_group_by_returns_the_best_document_of_each_source(mem):
    store = MemvidVectorStore(mem, EMB)
    sources = ["a", "a", "a", "b", "b", "c"]
    store.add_texts(TEXTS[:6], [{"source": s} for s in sources],
                    ids=[f"d{i}" for i in range(6)])
    plain = store.similarity_search_with_score(TEXTS[0], k=6)
    best: dict[str, tuple] = {}
    for doc, score in plain:
        best.setdefault(doc.metadata["source"], (doc.id, score))
    grouped = store.similarity_search_with_score(TEXTS[0], k=3, group_by="source")
    assert [d.id for d, _ in grouped] == [doc_id for doc_id, _ in best.values()]
    assert [d.metadata["source"] for d, _ in grouped] == list(best)
    assert all(abs(s - best[d.metadata["source"]][1]) < 1e-6 for d, s in grouped)
