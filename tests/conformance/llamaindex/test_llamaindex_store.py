"""LlamaIndex conformance for ``MemvidVectorStore``: class check, index end to end, reopen in a
new process, every query mode through the retriever, async paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from memvid_integrations.llamaindex import MemvidRetriever, MemvidVectorStore

DOCS = [
    Document(text="the launch moved to friday after the budget review", id_="launch",
             metadata={"team": "rocket", "year": 2024}),
    Document(text="penguins live in the southern hemisphere", id_="penguins",
             metadata={"team": "zoo", "year": 2023}),
    Document(text="the budget meeting is every monday", id_="budget",
             metadata={"team": "finance", "year": 2024}),
]


@pytest.fixture
def store(tmp_path):
    s = MemvidVectorStore(str(tmp_path / "li.mv2"))
    yield s
    s.close()


def _index(store: MemvidVectorStore) -> VectorStoreIndex:
    ctx = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex.from_documents(DOCS, storage_context=ctx,
                                           embed_model=MockEmbedding(embed_dim=8))


def test_class() -> None:
    names = [b.__name__ for b in MemvidVectorStore.__mro__]
    assert BasePydanticVectorStore.__name__ in names
    assert MemvidVectorStore.model_fields["stores_text"].default is True


def test_store_fields(store) -> None:
    assert store.stores_text is True
    assert store.flat_metadata is False
    assert store.client is store.memory
    assert store.to_dict()["class_name"] == "MemvidVectorStore"


def test_index_end_to_end(store) -> None:
    index = _index(store)
    hits = index.as_retriever(similarity_top_k=3).retrieve("budget")
    assert {h.node.ref_doc_id for h in hits} == {"launch", "penguins", "budget"}
    for h in hits:
        assert h.score is not None
        assert h.node.get_content() in {d.text for d in DOCS}
        assert h.node.relationships[NodeRelationship.SOURCE].node_id == h.node.ref_doc_id
    response = index.as_query_engine(llm=MockLLM(), similarity_top_k=2).query("budget")
    assert len(response.source_nodes) == 2
    assert isinstance(str(response), str)


def test_from_vector_store_retriever(store) -> None:
    _index(store)
    index = VectorStoreIndex.from_vector_store(store, embed_model=MockEmbedding(embed_dim=8))
    hits = index.as_retriever(similarity_top_k=1,
                              vector_store_query_mode="text_search").retrieve("penguins")
    assert [h.node.ref_doc_id for h in hits] == ["penguins"]


def test_reopen_in_new_process(tmp_path) -> None:
    path = str(tmp_path / "li.mv2")
    with MemvidVectorStore(path) as store:
        _index(store)
    script = textwrap.dedent(f"""
        import json
        from llama_index.core import VectorStoreIndex
        from llama_index.core.embeddings import MockEmbedding
        from memvid_integrations.llamaindex import MemvidVectorStore
        with MemvidVectorStore({path!r}, readonly=True) as store:
            embed = MockEmbedding(embed_dim=8)
            index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
            fts = index.as_retriever(similarity_top_k=1,
                                     vector_store_kwargs={{"mode": "fts"}}).retrieve("penguins")
            vec = index.as_retriever(similarity_top_k=3).retrieve("anything")
            print(json.dumps({{"fts": [[h.node.ref_doc_id, h.node.get_content()] for h in fts],
                              "vec": sorted(h.node.ref_doc_id for h in vec)}}))
    """)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["fts"] == [["penguins", DOCS[1].text]]
    assert got["vec"] == ["budget", "launch", "penguins"]


@pytest.mark.parametrize(("mode", "kwargs"), [
    ("default", {}),
    ("text_search", {}),
    ("sparse", {}),
    ("hybrid", {"alpha": 0.5}),
    ("hybrid", {"alpha": 0.0}),
    ("mmr", {}),
    ("mmr", {"vector_store_kwargs": {"mmr_threshold": 0.2}}),  # LlamaIndex's MMR example
])
def test_query_modes_through_retriever(store, mode, kwargs) -> None:
    index = _index(store)
    hits = index.as_retriever(similarity_top_k=3, vector_store_query_mode=mode,
                              **kwargs).retrieve("budget")
    ids = [h.node.ref_doc_id for h in hits]
    if mode in ("text_search", "sparse") or kwargs.get("alpha") == 0.0:
        assert set(ids) == {"launch", "budget"}  # BM25: only documents with the word
    else:
        assert set(ids) == {"launch", "penguins", "budget"}


@pytest.mark.parametrize("name", ["fts", "lexical", "text_search"])
def test_mode_through_vector_store_kwargs(store, name) -> None:
    index = _index(store)
    hits = index.as_retriever(similarity_top_k=3,
                              vector_store_kwargs={"mode": name}).retrieve("penguins")
    assert [h.node.ref_doc_id for h in hits] == ["penguins"]


def test_filters_through_retriever(store) -> None:
    index = _index(store)
    filters = MetadataFilters(filters=[
        MetadataFilter(key="year", value=2024),
        MetadataFilters(filters=[
            MetadataFilter(key="team", value="rocket"),
            MetadataFilter(key="team", value="zoo"),
        ], condition="or"),
    ])
    hits = index.as_retriever(similarity_top_k=3, filters=filters).retrieve("x")
    assert [h.node.ref_doc_id for h in hits] == ["launch"]


def test_delete_ref_doc_through_index(store) -> None:
    index = _index(store)
    index.delete_ref_doc("budget")
    hits = index.as_retriever(similarity_top_k=3).retrieve("budget")
    assert {h.node.ref_doc_id for h in hits} == {"launch", "penguins"}


def test_memvid_retriever_in_query_engine(store) -> None:
    from llama_index.core.query_engine import RetrieverQueryEngine

    _index(store)
    retriever = MemvidRetriever(store, MockEmbedding(embed_dim=8), similarity_top_k=1,
                                mode="text_search")
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
    response = engine.query("penguins")
    assert [n.node.ref_doc_id for n in response.source_nodes] == ["penguins"]


async def test_async_paths(store) -> None:
    nodes = [TextNode(text=f"note {i} about {w}", id_=f"n{i}", embedding=[1.0, float(i), 0.5])
             for i, w in enumerate(["apples", "pears", "apples and pears"])]
    for n in nodes:
        n.relationships[NodeRelationship.SOURCE] = TextNode(id_="doc").as_related_node_info()
    assert await store.async_add(nodes[:2]) == ["n0", "n1"]
    assert await store.aadd(nodes[2:]) == ["n2"]
    res = await store.aquery(VectorStoreQuery(query_str="pears", similarity_top_k=5,
                                              mode=VectorStoreQueryMode.TEXT_SEARCH))
    assert sorted(res.ids) == ["n1", "n2"]
    got = await store.aget_nodes(filters=MetadataFilters(filters=[
        MetadataFilter(key="ref_doc_id", value="doc", operator=FilterOperator.EQ)]))
    assert [n.node_id for n in got] == ["n0", "n1", "n2"]
    await store.adelete_nodes(["n0"])
    assert [n.node_id for n in await store.aget_nodes()] == ["n1", "n2"]
    await store.adelete("doc")
    assert await store.aget_nodes() == []
    await store.aadd(nodes)
    await store.aclear()
    assert await store.aget_nodes() == []


async def test_async_index_and_retriever(store) -> None:
    ctx = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(DOCS, storage_context=ctx, use_async=True,
                                            embed_model=MockEmbedding(embed_dim=8))
    hits = await index.as_retriever(similarity_top_k=3).aretrieve("budget")
    assert len(hits) == 3
    retriever = MemvidRetriever(store, MockEmbedding(embed_dim=8), similarity_top_k=2,
                                mode="hybrid", alpha=0.5)
    hits = await retriever.aretrieve("budget")
    assert {h.node.ref_doc_id for h in hits} <= {"launch", "budget", "penguins"}
    assert len(hits) == 2
    response = await index.as_query_engine(llm=MockLLM()).aquery("budget")
    assert response.source_nodes
