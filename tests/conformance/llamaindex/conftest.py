"""LlamaIndex conformance: mock models everywhere and no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("llama_index.core")


@pytest.fixture(autouse=True)
def _offline_mocks() -> Iterator[None]:
    """Mock embedding and LLM as the global defaults; sockets other than unix are refused."""
    from llama_index.core import Settings
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM
    from pytest_socket import disable_socket, enable_socket

    Settings.embed_model = MockEmbedding(embed_dim=8)
    Settings.llm = MockLLM()
    disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        enable_socket()
        Settings._embed_model = None
        Settings._llm = None
