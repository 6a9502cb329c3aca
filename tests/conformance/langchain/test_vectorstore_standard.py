"""LangChain's standard integration suites for MemvidVectorStore and MemvidRetriever."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import (
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)

from memvid_integrations.langchain import MemvidRetriever, MemvidVectorStore


class TestMemvidVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path) -> Iterator[VectorStore]:  # type: ignore[override]
        store = MemvidVectorStore(tmp_path / "lc.mv2", self.get_embeddings(), wal_size=1 << 20)
        try:
            yield store
        finally:
            store.close()


_SHARED: dict[str, MemvidVectorStore] = {}


def _populated_store() -> MemvidVectorStore:
    """One store with a few documents, shared by the retriever suite's instances."""
    if "store" not in _SHARED:
        path = os.path.join(tempfile.mkdtemp(prefix="memvid-lc-"), "retriever.mv2")
        texts = ["memvid keeps agent memory in one file", "the launch moved to friday",
                 "time travel answers what the agent knew", "budget review next week",
                 "memory frames carry metadata and tags"]
        _SHARED["store"] = MemvidVectorStore.from_texts(
            texts, DeterministicFakeEmbedding(size=6), path=path, wal_size=1 << 20)
    return _SHARED["store"]


@pytest.fixture(scope="module", autouse=True)
def _close_shared() -> Iterator[None]:
    yield
    store = _SHARED.pop("store", None)
    if store is not None:
        store.close()
        shutil.rmtree(os.path.dirname(store.memory.path), ignore_errors=True)


class TestMemvidRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[MemvidRetriever]:
        return MemvidRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"vectorstore": _populated_store(), "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "agent memory"
