"""Embedders to and from LangChain and LlamaIndex; each framework is imported on first use."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError
from ..lazy import LazyModule
from .base import Embedder
from .foreign import ForeignEmbedder


def _require(module: str, extra: str) -> None:
    LazyModule(module, f"memvid-py[{extra}]").load()  # MissingDependencyError naming the extra


def _model_name(obj: Any, attrs: tuple[str, ...]) -> str | None:
    for attr in attrs:
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value and value != "unknown":
            return value
    return None


def to_langchain(embedder: Embedder) -> Any:
    """``embedder`` as LangChain ``Embeddings``.

    Returns a ``memvid_integrations.langchain.embeddings.MemvidEmbeddings``: lists of floats
    as LangChain expects; ``aembed_*`` run in a worker thread.
    """
    _require("langchain_core", "langchain")
    from memvid_integrations.langchain.embeddings import MemvidEmbeddings

    return MemvidEmbeddings(embedder)


def from_langchain(embeddings: Any, *, name: str | None = None,
                   dim: int | None = None) -> Embedder:
    """LangChain ``Embeddings`` as an :class:`Embedder`.

    Args:
        embeddings: any object with LangChain's ``embed_documents``/``embed_query``.
        name: identity recorded in memory files. Default: its ``model``/``model_name``
            attribute; required when it has none.
        dim: vector dimension; measured by embedding one query when None.

    ``to_langchain`` output comes back as the original embedder.
    """
    inner = getattr(embeddings, "memvid_embedder", None)
    if inner is not None and name is None:
        return inner
    name = name or _model_name(embeddings, ("model", "model_name"))
    if name is None:
        raise InvalidInputError(
            f"{type(embeddings).__name__} does not say which model it runs: pass "
            "from_langchain(embeddings, name='<model name>') (it is recorded in memory files)")
    return ForeignEmbedder(name, embeddings.embed_documents, embeddings.embed_query, dim=dim,
                           source=embeddings)


def to_llamaindex(embedder: Embedder, **kwargs: Any) -> Any:
    """``embedder`` as a LlamaIndex ``BaseEmbedding``.

    Returns a ``memvid_integrations.llamaindex.embeddings.MemvidLlamaEmbedding``. ``kwargs``
    go to ``BaseEmbedding`` (e.g. ``embed_batch_size``); ``model_name`` defaults to the
    embedder's name. Async methods run in a worker thread.
    """
    _require("llama_index.core", "llamaindex")
    from memvid_integrations.llamaindex.embeddings import MemvidLlamaEmbedding

    return MemvidLlamaEmbedding(embedder, **kwargs)


def from_llamaindex(embedding: Any, *, name: str | None = None,
                    dim: int | None = None) -> Embedder:
    """A LlamaIndex ``BaseEmbedding`` as an :class:`Embedder`.

    Args:
        embedding: a ``BaseEmbedding``; documents use ``get_text_embedding_batch``, queries
            ``get_query_embedding`` (so query instructions of the model apply).
        name: identity recorded in memory files. Default: its ``model_name`` unless
            ``"unknown"``; required then.
        dim: vector dimension; measured by embedding one query when None.

    ``to_llamaindex`` output comes back as the original embedder.
    """
    inner = getattr(embedding, "memvid_embedder", None)
    if inner is not None and name is None:
        return inner
    name = name or _model_name(embedding, ("model_name",))
    if name is None:
        raise InvalidInputError(
            f"{type(embedding).__name__} does not say which model it runs: pass "
            "from_llamaindex(embedding, name='<model name>') (it is recorded in memory files)")
    return ForeignEmbedder(name, embedding.get_text_embedding_batch,
                           embedding.get_query_embedding, dim=dim, source=embedding)
