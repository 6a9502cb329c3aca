"""A fresh process of the adapter benchmarks: import, open a store, answer its first query.

``python bench/adapters_child.py <case> '<json args>'`` prints one ``RESULT {...}`` line
with the wall-clock time the script began and answered and the phases in ms: ``kit``
(numpy and the hash embedding), ``framework`` (importing the framework), ``adapter``
(importing the memvid adapter, or ``memvid_store`` for an engine case), ``open`` and
``first_query``. Cases: ``<section>-<peer>`` with section ``lc`` (LangChain vector store),
``lg`` (LangGraph store) or ``li`` (LlamaIndex vector store) and peer ``memvid``,
``reference`` (the framework's in-memory store loaded from its own file, where it has one)
or ``engine`` (``Memory.open`` and ``collection(name).find``).
"""

import time

BEGAN = time.time()

import importlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

# what each section's stores and embedding need from the framework ("module:attribute";
# the attribute is resolved too, as the frameworks load some modules lazily)
FRAMEWORK = {
    "lc": ("langchain_core.vectorstores:VectorStore", "langchain_core.vectorstores:"
           "InMemoryVectorStore", "langchain_core.embeddings:Embeddings"),
    "lg": ("langgraph.store.base:BaseStore", "langgraph.store.memory:InMemoryStore",
           "langchain_core.embeddings:Embeddings"),
    "li": ("llama_index.core.vector_stores.types:BasePydanticVectorStore",
           "llama_index.core.vector_stores:SimpleVectorStore",
           "llama_index.core.base.embeddings.base:BaseEmbedding"),
}


def import_framework(section: str) -> None:
    for spec in FRAMEWORK[section]:
        module, attr = spec.split(":")
        getattr(importlib.import_module(module), attr)


def open_store(section: str, peer: str, args: dict[str, Any]) -> Any:
    """The store (or engine collection) of ``section`` for ``peer``, opened from disk."""
    from bench import adapters_kit as kit

    path = args["path"]
    if peer == "engine":
        from memvid_store import Memory

        return Memory.open(path).collection(args["collection"])
    if section == "lc":
        if peer == "memvid":
            from memvid_integrations.langchain import MemvidVectorStore

            return MemvidVectorStore(path, embedding=kit.langchain_embeddings())
        from langchain_core.vectorstores import InMemoryVectorStore

        return InMemoryVectorStore.load(path, embedding=kit.langchain_embeddings())
    if section == "lg":
        from memvid_integrations.langgraph import MemvidStore

        return MemvidStore(path, index={"dims": kit.DIM, "embed": kit.langchain_embeddings(),
                                        "fields": ["text"]})
    if peer == "memvid":
        from memvid_integrations.llamaindex import MemvidVectorStore as LlamaStore

        return LlamaStore(path)
    from llama_index.core.vector_stores import SimpleVectorStore

    return SimpleVectorStore.from_persist_path(path)


def first_query(section: str, peer: str, store: Any, args: dict[str, Any]) -> Any:
    from bench import adapters_kit as kit

    query = args["query"]
    if peer == "engine":
        vector = kit.hash_vectors([query])[0]
        return store.find(vector=vector, k=args["k"], mode="vector", filter=args.get("filter"))
    if section == "lc":
        return store.similarity_search(query, k=args["k"])
    if section == "lg":
        return store.search(tuple(args["prefix"]), query=query, limit=args["k"])
    from llama_index.core.vector_stores.types import VectorStoreQuery

    vector = kit.hash_vectors([query])[0].tolist()
    return store.query(VectorStoreQuery(query_embedding=vector, similarity_top_k=args["k"])).ids


def main() -> None:
    case, args = sys.argv[1], json.loads(sys.argv[2])
    section, peer = case.split("-", 1)
    t0 = time.perf_counter()
    importlib.import_module("bench.adapters_kit")
    t1 = time.perf_counter()
    if peer != "engine":  # the engine needs no framework
        import_framework(section)
    t2 = time.perf_counter()
    if peer == "engine":
        importlib.import_module("memvid_store")
    elif peer == "memvid":
        importlib.import_module({"lc": "memvid_integrations.langchain",
                                 "lg": "memvid_integrations.langgraph",
                                 "li": "memvid_integrations.llamaindex"}[section])
    t3 = time.perf_counter()
    store = open_store(section, peer, args)
    t4 = time.perf_counter()
    hits = first_query(section, peer, store, args)
    t5 = time.perf_counter()
    print("RESULT " + json.dumps({
        "began": BEGAN, "answered": time.time(), "kit_ms": (t1 - t0) * 1e3,
        "framework_ms": (t2 - t1) * 1e3 if peer != "engine" else None,
        "adapter_ms": (t3 - t2) * 1e3,
        "open_ms": (t4 - t3) * 1e3, "first_query_ms": (t5 - t4) * 1e3, "hits": len(hits)}))


if __name__ == "__main__":
    if __package__ in (None, ""):
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
