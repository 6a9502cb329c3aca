"""Embedders to and from LangChain ``Embeddings`` and LlamaIndex ``BaseEmbedding``."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import numpy as np
import pytest

from memvid_store import DimensionMismatchError, InvalidInputError, Memory
from memvid_store.embeddings import (
    ForeignEmbedder,
    HashEmbedder,
    from_langchain,
    from_llamaindex,
    to_langchain,
    to_llamaindex,
)
from memvid_store.errors import MissingDependencyError

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.embeddings import MockEmbedding

TEXTS = ["the launch moved to 13 May", "上海办公室", ""]


class SlowEmbedder(HashEmbedder):
    """Sleeps in every call and records the threads it ran on."""

    def __init__(self) -> None:
        super().__init__(16)
        self.threads: set[int] = set()

    def embed_documents(self, texts):
        self.threads.add(threading.get_ident())
        time.sleep(0.2)
        return super().embed_documents(texts)


async def ticks_while(coro) -> tuple[object, int]:
    """Run ``coro`` and count how often the loop got to run something else meanwhile."""
    count = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal count
        while not done.is_set():
            count += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    result = await coro
    done.set()
    await task
    return result, count


# ------------------------------------------------------------------ LangChain

def test_to_langchain_returns_lists_of_the_same_vectors():
    e = HashEmbedder(32)
    lc = to_langchain(e)
    assert isinstance(lc, Embeddings)
    docs = lc.embed_documents(TEXTS)
    assert isinstance(docs, list) and all(isinstance(v, list) for v in docs)
    assert np.allclose(docs, e.embed_documents(TEXTS))
    assert lc.embed_query("上海") == pytest.approx(e.embed_query("上海").tolist())


@pytest.mark.asyncio
async def test_to_langchain_async_does_not_block_the_loop():
    slow = SlowEmbedder()
    lc = to_langchain(slow)
    vectors, ticks = await ticks_while(lc.aembed_documents(["a", "b"]))
    assert len(vectors) == 2 and ticks >= 5
    query, ticks = await ticks_while(lc.aembed_query("a"))
    assert query == vectors[0] and ticks >= 5
    assert threading.get_ident() not in slow.threads


def test_from_langchain_wraps_and_checks():
    fake = DeterministicFakeEmbedding(size=8)
    with pytest.raises(InvalidInputError, match="name="):
        from_langchain(fake)  # it does not say which model it runs
    e = from_langchain(fake, name="fake-8")
    assert isinstance(e, ForeignEmbedder) and e.name == "fake-8" and e.dim == 8  # measured
    out = e.embed_documents(TEXTS)
    assert out.shape == (3, 8) and out.dtype == np.float32 and out.flags.c_contiguous
    assert np.allclose(out[0], fake.embed_query(TEXTS[0]))
    assert e.embed_query("x").shape == (8,)
    assert e.embed_documents([]).shape == (0, 8)
    wrong = from_langchain(fake, name="fake-8", dim=16)
    with pytest.raises(DimensionMismatchError, match="expected 16"):
        wrong.embed_documents(["x"])

    class Named(DeterministicFakeEmbedding):
        model: str = "acme-embed-v2"

    assert from_langchain(Named(size=4)).name == "acme-embed-v2"


def test_langchain_round_trip_returns_the_original():
    e = HashEmbedder(16)
    assert from_langchain(to_langchain(e)) is e
    renamed = from_langchain(to_langchain(e), name="hash-16-copy", dim=16)
    assert renamed is not e and renamed.name == "hash-16-copy"


def test_langchain_vector_store_with_the_hash_embedder(tmp_path):
    from memvid_integrations.langchain import MemvidVectorStore

    with MemvidVectorStore(tmp_path / "lc.mv2", to_langchain(HashEmbedder(64))) as store:
        store.add_texts(["budget approved at 40k", "上海办公室搬家", "penguins swim"],
                        ids=["b", "zh", "p"])
        assert store.similarity_search("上海的办公室", k=1)[0].id == "zh"


def test_memory_with_a_foreign_embedder(tmp_path):
    e = from_langchain(DeterministicFakeEmbedding(size=8), name="fake-8")
    with Memory.create(tmp_path / "f.mv2", embedder=e) as mem:
        fid = mem.put("hello")
        assert mem.get(fid).embedding == pytest.approx(e.embed_query("hello").tolist())
        assert mem.embedder_info == {"name": "fake-8", "dim": 8}


# ------------------------------------------------------------------ LlamaIndex

def test_to_llamaindex_embeds_like_the_embedder():
    e = HashEmbedder(32)
    li = to_llamaindex(e, embed_batch_size=2)
    assert isinstance(li, BaseEmbedding) and li.model_name == "hash-32"
    assert li.embed_batch_size == 2
    batch = li.get_text_embedding_batch(TEXTS)  # several batches of 2
    assert np.allclose(batch, e.embed_documents(TEXTS))
    assert li.get_text_embedding("上海办公室") == pytest.approx(batch[1])
    assert li.get_query_embedding("上海") == pytest.approx(e.embed_query("上海").tolist())


@pytest.mark.asyncio
async def test_to_llamaindex_async_does_not_block_the_loop():
    slow = SlowEmbedder()
    li = to_llamaindex(slow)
    vector, ticks = await ticks_while(li.aget_query_embedding("a"))
    assert len(vector) == 16 and ticks >= 5
    batch, ticks = await ticks_while(li.aget_text_embedding_batch(["a", "b"]))
    assert batch[0] == pytest.approx(vector) and ticks >= 5
    assert threading.get_ident() not in slow.threads


def test_from_llamaindex_wraps_and_round_trips():
    mock = MockEmbedding(embed_dim=8)
    with pytest.raises(InvalidInputError, match="name="):
        from_llamaindex(mock)  # model_name "unknown"
    e = from_llamaindex(mock, name="mock-8")
    assert e.dim == 8 and e.embed_documents(TEXTS).shape == (3, 8)
    assert e.embed_query("q").dtype == np.float32
    mock.model_name = "mock-model"
    assert from_llamaindex(mock).name == "mock-model"
    h = HashEmbedder(16)
    assert from_llamaindex(to_llamaindex(h)) is h


def test_llamaindex_index_with_the_hash_embedder(tmp_path):
    from llama_index.core import Document, StorageContext, VectorStoreIndex

    from memvid_integrations.llamaindex import MemvidVectorStore

    with MemvidVectorStore(str(tmp_path / "li.mv2")) as store:
        index = VectorStoreIndex.from_documents(
            [Document(text="budget approved at 40k", id_="b"),
             Document(text="上海办公室搬家", id_="zh")],
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=to_llamaindex(HashEmbedder(64)))
        hits = index.as_retriever(similarity_top_k=1).retrieve("上海的办公室")
        assert hits[0].node.ref_doc_id == "zh"


# ------------------------------------------------------------------ missing frameworks

def test_missing_framework_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_core", None)
    with pytest.raises(MissingDependencyError, match=r"memvid-py\[langchain\]"):
        to_langchain(HashEmbedder())
    monkeypatch.setitem(sys.modules, "llama_index.core", None)
    with pytest.raises(MissingDependencyError, match=r"memvid-py\[llamaindex\]"):
        to_llamaindex(HashEmbedder())
