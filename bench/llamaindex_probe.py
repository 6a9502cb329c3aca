"""The LlamaIndex adapters at scale: ``delete(ref_doc_id)``, chat ``get_messages`` and queries.

Usage::

    python bench/llamaindex_probe.py [--nodes 100000] [--keys 1000] [--repeats 50]
                                     [--dim 384] [--workdir DIR] [--keep]

One file (fsync on) with ``--nodes`` LlamaIndex nodes from the bench corpus (5 nodes per
source document) in the vector store's collection and ``--keys`` chat keys of 20 messages
each in the chat store's collection, committed with ``seal``. Figures (median and p90 of
``--repeats`` calls, each on a different document or key):

* ``delete(ref_doc_id)``: one document's 5 nodes, one atomic write. Target <= 10 ms.
* ``get_messages``: one 20-message key. Target <= 5 ms.
* ``query`` p50 per mode (default vector, text search, hybrid, MMR), ``similarity_top_k``
  10, through ``MemvidVectorStore.query``.

Results: ``bench/results/llamaindex-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.machine import machine_info, summary  # noqa: E402
from bench.report import write_results  # noqa: E402

RESULTS = HERE / "results"
NODES_PER_DOC = 5
MESSAGES_PER_KEY = 20
TARGETS_MS = {"delete(ref_doc_id)": 10.0, "get_messages": 5.0}


def timed_ms(calls: list[Callable[[], Any]]) -> dict[str, float]:
    """Median and p90 (ms) of running each call once."""
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))],
            "calls": len(times)}


def build(path: str, n_nodes: int, n_keys: int, dim: int) -> dict[str, float]:
    """Fill the file; returns the seconds each part took."""
    from llama_index.core.llms import ChatMessage
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    from memvid_integrations.llamaindex import MemvidChatStore, MemvidVectorStore

    took = {}
    started = time.perf_counter()
    with MemvidVectorStore(path, sync=True) as store:
        done = 0
        for batch in corpus.iter_batches(n_nodes, 1000, dim=dim):
            nodes = []
            for i, rec in enumerate(batch, start=done):
                node = TextNode(id_=rec["id"], text=rec["text"],
                                embedding=rec["embedding"].tolist(),
                                metadata={"topic": rec["metadata"]["topic"]})
                node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(
                    node_id=f"src-{i // NODES_PER_DOC}")
                nodes.append(node)
            store.add(nodes)
            done += len(batch)
        took["add_nodes_s"] = time.perf_counter() - started
        started = time.perf_counter()
        chats = MemvidChatStore(store.memory)
        for k in range(n_keys):
            chats.set_messages(f"user-{k}", [
                ChatMessage(role="user" if j % 2 == 0 else "assistant",
                            content=f"message {j} of user {k}")
                for j in range(MESSAGES_PER_KEY)])
        took["set_messages_s"] = time.perf_counter() - started
        started = time.perf_counter()
        store.memory.seal()
        took["seal_s"] = time.perf_counter() - started
    return took


def measure(path: str, n_nodes: int, n_keys: int, repeats: int, dim: int) -> dict[str, Any]:
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode

    from memvid_integrations.llamaindex import MemvidChatStore, MemvidVectorStore

    out: dict[str, Any] = {}
    with MemvidVectorStore(path, sync=True) as store:
        chats = MemvidChatStore(store.memory)
        out["frames"] = sum(store.memory.collections().values())
        n_docs = n_nodes // NODES_PER_DOC
        step = max(1, n_keys // repeats)
        keys = [f"user-{k}" for k in range(0, n_keys, step)][:repeats]
        for key in keys[:3]:  # warm the postings and payload caches
            chats.get_messages(key)
        out["get_messages"] = timed_ms([lambda k=key: chats.get_messages(k) for key in keys])
        assert len(chats.get_messages(keys[0])) == MESSAGES_PER_KEY
        vectors, _ = corpus.query_vectors(repeats, dim=dim)
        texts = [text for text, _ in corpus.query_texts(repeats)]
        modes = {
            "query default": lambda i: VectorStoreQuery(
                query_embedding=vectors[i].tolist(), similarity_top_k=10),
            "query text_search": lambda i: VectorStoreQuery(
                query_str=texts[i], similarity_top_k=10,
                mode=VectorStoreQueryMode.TEXT_SEARCH),
            "query hybrid": lambda i: VectorStoreQuery(
                query_embedding=vectors[i].tolist(), query_str=texts[i], similarity_top_k=10,
                mode=VectorStoreQueryMode.HYBRID, alpha=0.5),
            "query mmr": lambda i: VectorStoreQuery(
                query_embedding=vectors[i].tolist(), similarity_top_k=10,
                mode=VectorStoreQueryMode.MMR, mmr_threshold=0.5),
        }
        for name, make in modes.items():
            store.query(make(0))
            queries = [make(i) for i in range(repeats)]
            out[name] = timed_ms([lambda q=q: store.query(q) for q in queries])
        docs = [f"src-{d}" for d in range(0, n_docs, max(1, n_docs // repeats))][:repeats]
        gen = store.memory.generation
        out["delete(ref_doc_id)"] = timed_ms([lambda d=doc: store.delete(d) for doc in docs])
        out["delete(ref_doc_id)"]["writes"] = store.memory.generation - gen
        out["delete(ref_doc_id)"]["nodes_left"] = store.collection.count()
    return out


def markdown(res: dict[str, Any]) -> str:
    p = res["params"]
    lines = [f"## LlamaIndex adapters ({p['nodes']:,} nodes + {p['keys']:,} chat keys x "
             f"{MESSAGES_PER_KEY} messages, fsync on)", "", summary(res["machine"]), "",
             "| operation | p50 | p90 | target |", "| --- | --- | --- | --- |"]
    for name, fig in res["figures"].items():
        if not isinstance(fig, dict):
            continue
        target = TARGETS_MS.get(name)
        bound = f"<= {target:.0f} ms" if target else ""
        lines.append(f"| {name} | {fig['p50_ms']:.2f} ms | {fig['p90_ms']:.2f} ms | {bound} |")
    lines.append("")
    lines.append(f"Build: {res['build']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="li-probe-", dir=args.workdir)
    path = os.path.join(workdir, "li.mv2")
    try:
        took = build(path, args.nodes, args.keys, args.dim)
        figures = measure(path, args.nodes, args.keys, args.repeats, args.dim)
        res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "params": vars(args), "machine": machine_info(workdir), "build": took,
               "figures": figures}
        json_path, md_path = write_results(res, RESULTS, "llamaindex", markdown)
        print(markdown(res))
        print(f"results: {json_path} {md_path}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
