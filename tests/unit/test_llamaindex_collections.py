"""LlamaIndex adapters on the engine: each in its own collection of a shared file, deletes
and chat mutations as single atomic writes, MMR through LlamaIndex's retriever, ingestion
upserts, and read-only stores following a writer in another process."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import ChatMessage
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from memvid_integrations.llamaindex import MemvidChatStore, MemvidVectorStore
from memvid_store import InvalidInputError, Memory


def _node(nid: str, text: str, emb: list[float], doc: str = "doc", **meta: Any) -> TextNode:
    node = TextNode(id_=nid, text=text, embedding=emb, metadata=meta)
    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
    return node


def _msgs(*contents: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=c) for c in contents]


@pytest.fixture
def mem(tmp_path) -> Iterator[Memory]:
    m = Memory.create(str(tmp_path / "shared.mv2"), sync=False)
    yield m
    m.close()


# ----------------------------------------------------------------------------- isolation

def test_adapters_sharing_a_file_never_see_each_other(mem) -> None:
    store = MemvidVectorStore(mem)
    chats = MemvidChatStore(mem)
    other = mem.collection("other")
    assert store.collection.name == "llamaindex" and chats.collection.name == "llamaindex-chat"
    other.put("cats are everywhere", id="n1", embedding=[1.0, 0.0],
              metadata={"ref_doc_id": "D", "_node_id": "n1"})
    chats.add_message("k", ChatMessage(role="user", content="cats"))
    store.add([_node("n1", "cats purr", [1.0, 0.0], doc="D"),
               _node("n2", "dogs bark", [0.0, 1.0], doc="E")])
    vec = [1.0, 0.0]
    for mode, kw in [("default", {}), ("text_search", {}), ("sparse", {}),
                     ("hybrid", {"alpha": 0.5}), ("mmr", {"mmr_threshold": 0.5})]:
        q = VectorStoreQuery(query_embedding=vec, query_str="cats", similarity_top_k=10,
                             mode=VectorStoreQueryMode(mode), **kw)
        res = store.query(q)
        assert set(res.ids) <= {"n1", "n2"} and "n1" in res.ids, mode
        assert "cats purr" in [n.get_content() for n in res.nodes]
        assert "cats are everywhere" not in [n.get_content() for n in res.nodes]
    assert [n.get_content() for n in store.get_nodes(["n1"])] == ["cats purr"]
    assert [n.node_id for n in store.get_nodes(filters=MetadataFilters(filters=[
        MetadataFilter(key="ref_doc_id", value="D")]))] == ["n1"]
    assert chats.get_keys() == ["k"]
    store.delete("D")  # the same ref_doc_id in the other collection stays
    assert other.get("n1").text == "cats are everywhere"
    store.clear()
    assert store.get_nodes() == []
    assert [m.content for m in chats.get_messages("k")] == ["cats"]
    assert [f.id for f in other.select()] == ["n1"]
    chats.delete_messages("k")
    assert other.count() == 1


def test_collection_keyword_makes_independent_stores(mem) -> None:
    a = MemvidVectorStore(mem, collection="a")
    b = MemvidVectorStore(mem, collection="b")
    a.add([_node("n", "alpha", [1.0, 0.0])])
    b.add([_node("n", "beta", [0.0, 1.0])])
    assert [n.get_content() for n in a.get_nodes()] == ["alpha"]
    b.clear()
    assert [n.get_content() for n in a.get_nodes()] == ["alpha"] and b.get_nodes() == []
    one, two = MemvidChatStore(mem, collection="c1"), MemvidChatStore(mem, collection="c2")
    one.add_message("k", ChatMessage(role="user", content="x"))
    assert two.get_keys() == [] and two.get_messages("k") == []


# ------------------------------------------------------------------- one write each

def test_deletes_are_one_atomic_write(mem) -> None:
    store = MemvidVectorStore(mem)
    store.add([_node(f"n{i}", f"text {i}", [1.0, float(i)], doc=f"D{i % 3}", rank=i)
               for i in range(9)])
    gen = mem.generation
    store.delete("D0")
    assert mem.generation == gen + 1
    assert sorted(n.node_id for n in store.get_nodes()) == [
        "n1", "n2", "n4", "n5", "n7", "n8"]
    assert [n.node_id for n in store.get_nodes(as_of=gen)] == [f"n{i}" for i in range(9)]
    store.delete("unknown")
    assert mem.generation == gen + 1  # nothing to delete: no write
    store.delete_nodes(["n1", "n2", "zzz"])
    assert mem.generation == gen + 2
    store.delete_nodes(["n4", "n5", "n7"], filters=MetadataFilters(filters=[
        MetadataFilter(key="rank", value=5, operator=FilterOperator.GTE)]))
    assert mem.generation == gen + 3
    assert [n.node_id for n in store.get_nodes()] == ["n4", "n8"]
    store.clear()
    assert mem.generation == gen + 4 and store.get_nodes() == []


def test_text_match_filters_delete_and_query(mem) -> None:
    store = MemvidVectorStore(mem)
    store.add([_node("a", "one", [1.0, 0.0], title="Budget Review"),
               _node("b", "two", [1.0, 0.1], title="budget.v2"),
               _node("c", "three", [1.0, 0.2], title=["misc", "Budgets"]),
               _node("d", "four", [1.0, 0.3])])

    def match(value: str, op: str) -> MetadataFilters:
        return MetadataFilters(filters=[MetadataFilter(key="title", value=value, operator=op)])

    assert [n.node_id for n in store.get_nodes(filters=match("Budget", "text_match"))] == [
        "a", "c"]
    assert [n.node_id for n in store.get_nodes(
        filters=match("BUDGET", "text_match_insensitive"))] == ["a", "b", "c"]
    assert store.get_nodes(filters=match("Budge.", "text_match")) == []  # "." is literal
    q = VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=5,
                         filters=match("et.v", "text_match"))
    assert store.query(q).ids == ["b"]
    gen = mem.generation
    store.delete_nodes(filters=match("budget", "text_match_insensitive"))
    assert mem.generation == gen + 1
    assert [n.node_id for n in store.get_nodes()] == ["d"]


def test_chat_mutations_are_one_write_each(mem) -> None:
    chats = MemvidChatStore(mem)
    steps = [
        lambda: chats.add_message("k", ChatMessage(role="user", content="a")),
        lambda: chats.set_messages("k", _msgs("0", "1", "2", "3")),
        lambda: chats.set_messages("k", _msgs("x", "y", "z")),
        lambda: chats.delete_message("k", 1),
        lambda: chats.delete_last_message("k"),
        lambda: chats.add_message("j", ChatMessage(role="user", content="j")),
        lambda: chats.delete_messages("k"),
        lambda: chats.set_messages("j", []),
    ]
    gens = [mem.generation]
    for step in steps:
        step()
        gens.append(mem.generation)
    assert [b - a for a, b in itertools.pairwise(gens)] == [1] * len(steps)
    past = MemvidChatStore(mem, as_of=gens[3])
    assert [m.content for m in past.get_messages("k")] == ["x", "y", "z"]
    assert [m.content for m in chats.get_messages("k", as_of=gens[2])] == ["0", "1", "2", "3"]
    assert [m.content for m in chats.get_messages("k", as_of=gens[5])] == ["x"]
    assert MemvidChatStore(mem, as_of=gens[6]).get_keys() == ["j", "k"]
    assert chats.get_keys() == [] and chats.collection.count() == 0


def test_chat_keys_follow_messages(mem) -> None:
    chats = MemvidChatStore(mem)
    for key in ("b", "a", "a", "weird key\x00/ü" * 100):
        chats.add_message(key, ChatMessage(role="user", content=key[:5]))
    assert chats.get_keys() == sorted({"a", "b", "weird key\x00/ü" * 100})
    assert chats.delete_last_message("a").content == "a"
    assert "a" in chats.get_keys()
    assert chats.delete_message("a", 0).content == "a"
    assert "a" not in chats.get_keys()
    chats.set_messages("b", _msgs("b1", "b2"))
    assert [m.content for m in chats.get_messages("b")] == ["b1", "b2"]
    assert chats.delete_message("b", 5) is None
    assert "b" in chats.get_keys()


# ------------------------------------------------------------------------------ MMR

def test_mmr_through_llamaindex_retriever(mem) -> None:
    store = MemvidVectorStore(mem)
    embed = MockEmbedding(embed_dim=4)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    store.add([_node("near", "a", [1.0, 1.0, 1.0, 1.0]),
               _node("twin", "b", [1.0, 1.0, 1.0, 0.99]),
               _node("far", "c", [1.0, -1.0, 1.0, -1.0])])
    retriever = index.as_retriever(vector_store_query_mode="mmr", similarity_top_k=2,
                                   vector_store_kwargs={"mmr_threshold": 0.2})
    ids = [h.node.node_id for h in retriever.retrieve("anything")]
    assert ids[0] in {"near", "twin"} and ids[1] == "far"  # diversity over the twin
    relevant = index.as_retriever(vector_store_query_mode="mmr", similarity_top_k=2,
                                  vector_store_kwargs={"mmr_threshold": 1.0})
    assert {h.node.node_id for h in relevant.retrieve("anything")} == {"near", "twin"}
    with pytest.raises(InvalidInputError, match="mmr_threshold"):
        store.query(VectorStoreQuery(query_embedding=[1.0] * 4, mode="mmr"),
                    mmr_threshold=2)


# ---------------------------------------------------------------- ingestion upserts

def test_ingestion_pipeline_upserts(mem) -> None:
    from llama_index.core import Document
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore

    store = MemvidVectorStore(mem)
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0),
                         MockEmbedding(embed_dim=4)],
        docstore=SimpleDocumentStore(), vector_store=store,
        docstore_strategy=DocstoreStrategy.UPSERTS)
    pipeline.run(documents=[Document(text="first version", id_="d1"),
                            Document(text="other doc", id_="d2")])
    assert sorted(n.get_content() for n in store.get_nodes()) == ["first version",
                                                                  "other doc"]
    pipeline.run(documents=[Document(text="second version", id_="d1")])
    got = {n.ref_doc_id: n.get_content() for n in store.get_nodes()}
    assert got == {"d1": "second version", "d2": "other doc"}


# ------------------------------------------------------------ following a writer

class _Writer:
    """tests/unit/llamaindex_writer_proc.py in a child process."""

    def __init__(self, path: str) -> None:
        script = os.path.join(os.path.dirname(__file__), "llamaindex_writer_proc.py")
        env = dict(os.environ, PYTHONPATH=os.getcwd())
        self.proc = subprocess.Popen([sys.executable, script, path], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def send(self, **cmd: Any) -> int:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the writer process exited"
        return json.loads(line)["generation"]

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture
def writer(tmp_path) -> Iterator[tuple[str, _Writer]]:
    path = str(tmp_path / "followed.mv2")
    Memory.create(path).close()
    child = _Writer(path)
    try:
        yield path, child
    finally:
        child.stop()


def test_readonly_chat_store_follows_another_process(writer) -> None:
    path, child = writer
    with MemvidChatStore(path, readonly=True) as chats:
        assert chats.get_keys() == []
        child.send(op="add_message", key="u1", content="hello")
        assert [m.content for m in chats.get_messages("u1")] == ["hello"]
        child.send(op="add_message", key="u1", content="again")
        child.send(op="add_message", key="u2", content="other")
        assert [m.content for m in chats.get_messages("u1")] == ["hello", "again"]
        assert chats.get_keys() == ["u1", "u2"]


def test_readonly_vector_store_follows_another_process(writer) -> None:
    path, child = writer
    child.send(op="add_nodes", nodes=[["a", "apples", [1.0, 0.0], "D1"]])
    with MemvidVectorStore(path, readonly=True) as store:
        q = VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=5)
        assert store.query(q).ids == ["a"]
        child.send(op="add_nodes", nodes=[["b", "pears", [0.9, 0.1], "D2"]])
        assert store.query(q).ids == ["a", "b"]
        child.send(op="delete", ref_doc_id="D1")
        assert store.query(q).ids == ["b"]
        assert [n.node_id for n in store.get_nodes()] == ["b"]


def test_group_by_gives_one_node_per_source_document(mem) -> None:
    store = MemvidVectorStore(mem)
    store.add([_node("n1", "alpha one", [1.0, 0.0], doc="D1"),
               _node("n2", "alpha two", [0.9, 0.1], doc="D1"),
               _node("n3", "alpha three", [0.8, 0.2], doc="D2"),
               _node("n4", "alpha four", [0.1, 0.9], doc="D3")])
    query = VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=3)
    assert store.query(query).ids == ["n1", "n2", "n3"]
    grouped = store.query(query, group_by="ref_doc_id")
    assert grouped.ids == ["n1", "n3", "n4"]
    text = VectorStoreQuery(query_str="alpha", similarity_top_k=2,
                            mode=VectorStoreQueryMode.TEXT_SEARCH)
    assert len({store.get_nodes([i])[0].ref_doc_id
                for i in store.query(text, group_by="ref_doc_id").ids}) == 2
