"""Adapter benchmark sections for the vector stores: LangChain and LlamaIndex.

Each section writes the same ``n`` corpus documents (hash embeddings, ``adapters_kit``)
through the memvid adapter's bulk entry point, into the framework's in-memory store and
into the engine directly (``collection.put_many`` into a file of its own), one batch of
``BATCH`` to each in turn, so the three see the same machine load. Then, with every handle
closed, fresh processes open each store and answer one query (``adapters_child.py``); then
warm in-process figures: the adapter reopened with its public constructor, the reference
store still in memory, and the engine on the adapter's own file
(``Memory.open(path).collection(<the adapter's collection>)``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import adapters_kit as kit
from bench.adapters_kit import Adds, Recorder, collection_name, compare, file_mb, timed

K = 4
FILTER_TOPIC = 3
FILTER_SOURCE = "email"  # with the topic: about 1 document in 256
NODES_PER_DOC = 4  # LlamaIndex nodes per source document (ref_doc_id)
DELETES = 20  # delete(ref_doc_id) calls timed


# ----------------------------------------------------------------------------- LangChain


def engine_add(col: Any, texts: list[str], metas: list[dict[str, Any]], ids: list[str]) -> None:
    """What ``add_texts`` does, straight to the engine: embed, then one ``put_many``."""
    vectors = kit.hash_vectors(texts)
    col.put_many([{"id": i, "text": t, "metadata": m, "embedding": v}
                  for i, t, m, v in zip(ids, texts, metas, vectors, strict=True)])


def langchain(rec: Recorder, work: Path, o: dict[str, Any]) -> None:
    """``MemvidVectorStore`` vs ``InMemoryVectorStore`` vs the engine."""
    from langchain_core.vectorstores import InMemoryVectorStore

    from memvid_integrations.langchain import MemvidVectorStore
    from memvid_store import Memory

    n = o["n"]
    emb = kit.langchain_embeddings()
    path, ref_path, eng_path = (work / "langchain.mv2", work / "langchain-inmemory.json",
                                work / "langchain-engine.mv2")
    queries = kit.query_texts(o["calls"] + o["warmup"] + 1, o["seed"])
    state: dict[str, Any] = {}

    def build() -> dict[str, Any]:
        store = MemvidVectorStore(path, embedding=emb)
        name = state["collection"] = collection_name(store)
        ref = state["ref"] = InMemoryVectorStore(emb)
        mem = Memory.create(eng_path, dim=kit.DIM)
        col = mem.collection(name)
        adds = Adds("memvid", "reference", "engine")
        for batch in kit.records(n, o["seed"]):
            texts = [r["text"] for r in batch]
            metas = [r["metadata"] for r in batch]
            ids = [r["id"] for r in batch]
            adds.run("memvid", len(texts), store.add_texts, texts, metas, ids=ids)
            adds.run("reference", len(texts), ref.add_texts, texts, metas, ids=ids)
            adds.run("engine", len(texts), engine_add, col, texts, metas, ids)
        out = {"collection": name, "add": adds.result()}
        return {**out, **closed(store, mem, lambda: ref.dump(str(ref_path)),
                                (path, ref_path, eng_path))}

    if rec.step("build", build) is None:
        return
    args = {"query": queries[0], "k": K}
    rec.step("fresh", lambda: kit.fresh({
        "memvid": ("lc-memvid", {**args, "path": str(path)}),
        "reference": ("lc-reference", {**args, "path": str(ref_path)}),
        "engine": ("lc-engine", {**args, "path": str(path),
                                 "collection": state["collection"]}),
    }, o["repeats"], o["child_timeout"]))

    store = MemvidVectorStore(path, embedding=emb)
    ref = state["ref"]
    mem = Memory.open(path)
    col = mem.collection(state["collection"])
    flt = {"topic": FILTER_TOPIC, "source": FILTER_SOURCE}

    def ref_flt(doc: Any) -> bool:
        return all(doc.metadata.get(k) == v for k, v in flt.items())

    def search(filtered: bool) -> dict[str, Any]:
        extra = {"filter": flt} if filtered else {}
        ref_extra = {"filter": ref_flt} if filtered else {}
        return compare({
            "memvid": lambda i: store.similarity_search(queries[i], k=K, **extra),
            "reference": lambda i: ref.similarity_search(queries[i], k=K, **ref_extra),
            "engine": lambda i: col.find(vector=kit.hash_vectors([queries[i]])[0], k=K,
                                         mode="vector", **extra),
        }, o["calls"], o["warmup"])

    try:
        rec.step("search", lambda: search(False))
        rec.step("search_filtered", lambda: search(True))
    finally:
        store.close()
        mem.close()


# ----------------------------------------------------------------------------- LlamaIndex


def _nodes(batch: list[dict[str, Any]], first: int) -> list[Any]:
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    vectors = kit.hash_vectors([r["text"] for r in batch]).tolist()
    return [TextNode(id_=r["id"], text=r["text"], metadata=r["metadata"], embedding=v,
                     relationships={NodeRelationship.SOURCE: RelatedNodeInfo(
                         node_id=source_id((first + j) // NODES_PER_DOC))})
            for j, (r, v) in enumerate(zip(batch, vectors, strict=True))]


def source_id(doc: int) -> str:
    return f"src-{doc:07d}"


def llamaindex(rec: Recorder, work: Path, o: dict[str, Any]) -> None:
    """LlamaIndex ``MemvidVectorStore`` vs ``SimpleVectorStore`` vs the engine."""
    from llama_index.core.vector_stores import SimpleVectorStore
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from memvid_integrations.llamaindex import MemvidVectorStore
    from memvid_store import Memory

    n = o["n"]
    embed = kit.llamaindex_embedding()
    path, ref_path, eng_path = (work / "llamaindex.mv2", work / "llamaindex-simple.json",
                                work / "llamaindex-engine.mv2")
    queries = kit.query_texts(o["calls"] + o["warmup"] + 1, o["seed"] + 1)
    state: dict[str, Any] = {}

    def build() -> dict[str, Any]:
        store = MemvidVectorStore(path)
        name = state["collection"] = collection_name(store)
        ref = state["ref"] = SimpleVectorStore()
        mem = Memory.create(eng_path, dim=kit.DIM)
        col = mem.collection(name)
        adds = Adds("memvid", "reference", "engine")
        first = 0
        for batch in kit.records(n, o["seed"]):
            nodes = _nodes(batch, first)
            first += len(batch)
            adds.run("memvid", len(nodes), store.add, nodes)
            adds.run("reference", len(nodes), ref.add, nodes)
            adds.run("engine", len(nodes), col.put_many, [
                {"id": nd.node_id, "text": nd.text, "embedding": nd.embedding,
                 "metadata": {**nd.metadata, "ref_doc_id": nd.ref_doc_id}} for nd in nodes])
        out = {"collection": name, "add": adds.result(),
               "note": "nodes carry their embeddings (computed before add, not timed)"}
        return {**out, **closed(store, mem, lambda: ref.persist(str(ref_path)),
                                (path, ref_path, eng_path))}

    if rec.step("build", build) is None:
        return
    args = {"query": queries[0], "k": K}
    rec.step("fresh", lambda: kit.fresh({
        "memvid": ("li-memvid", {**args, "path": str(path)}),
        "reference": ("li-reference", {**args, "path": str(ref_path)}),
        "engine": ("li-engine", {**args, "path": str(path), "collection": state["collection"]}),
    }, o["repeats"], o["child_timeout"]))

    store = MemvidVectorStore(path)
    ref = state["ref"]
    mem = Memory.open(path)
    col = mem.collection(state["collection"])
    vectors = [embed.get_query_embedding(q) for q in queries]

    def query(target: Any, i: int) -> list[str]:
        return target.query(VectorStoreQuery(query_embedding=vectors[i],
                                             similarity_top_k=K)).ids

    docs = max(1, n // NODES_PER_DOC)
    stride = max(1, docs // (3 * DELETES))

    def doc(peer: int, i: int) -> str:
        """A distinct source document per peer and call, spread over the store."""
        return source_id(((3 * i + peer) * stride) % docs)

    def engine_delete(ref_doc_id: str) -> int:
        ids = [f.id for f in col.select({"ref_doc_id": ref_doc_id})]
        col.delete_many(ids)
        return len(ids)

    def delete() -> dict[str, Any]:
        count = min(DELETES, max(1, docs // 3))
        out = compare({"memvid": lambda i: store.delete(doc(0, i)),
                       "reference": lambda i: ref.delete(doc(1, i)),
                       "engine": lambda i: engine_delete(doc(2, i))}, count, 0)
        out["engine"]["nodes_per_delete"] = engine_delete(doc(2, count + 1))
        gone = store.get_nodes(node_ids=[f"doc-{j:08d}" for j in range(NODES_PER_DOC)])
        out["memvid"]["check"] = f"{len(gone)} nodes of doc {doc(0, 0)} left"
        return out

    try:
        rec.step("query", lambda: compare({
            "memvid": lambda i: query(store, i),
            "reference": lambda i: query(ref, i),
            "engine": lambda i: col.find(vector=vectors[i], k=K, mode="vector"),
        }, o["calls"], o["warmup"]))
        rec.step("delete", delete)
    finally:
        store.close()
        mem.close()


def closed(store: Any, mem: Any, persist: Callable[[], Any],
           paths: tuple[Path, Path, Path]) -> dict[str, Any]:
    """Close the adapter and the engine's memory, persist the reference, and each one's
    seconds and file size (paths: memvid, reference, engine)."""
    out = {"close_s": {"memvid": timed(store.close)[0], "engine": timed(mem.close)[0]},
           "persist_s": {"reference": timed(persist)[0]}}
    out["file_mb"] = dict(zip(("memvid", "reference", "engine"), map(file_mb, paths),
                              strict=True))
    return out
