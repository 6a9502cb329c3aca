"""LangChain adapter probe: ingest throughput, chat-history read latency, open time.

Usage::

    python bench/langchain_probe.py [--docs 100000] [--batch 1000] [--dim 64] [--workdir DIR]

* ``add_texts``: ``MemvidVectorStore.add_texts`` in batches of ``--batch`` with a cheap
  deterministic embedder (``HashEmbedding``: hashed lookups into fixed tables), docs/s over
  the whole run including embedding and ``close()``. Target: >= 5,000 docs/s at 100k.
* ``messages``: ``MemvidChatMessageHistory.messages`` of a 20-message session in the same
  file (``--docs`` frames plus the session), median of 200 reads. Target: <= 5 ms.
* ``open``: ``MemvidVectorStore(path, embedder)`` on the existing file, in a fresh process
  (imports done before timing), median of 5; also the time of the first search after it and
  of importing the adapter module after ``langchain_core.embeddings`` (mostly LangChain's
  ``VectorStore`` base class and what it imports).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402


class HashEmbedding(Embeddings):
    """Deterministic and cheap: a text's crc32 picks one row of each of two fixed tables of
    random vectors, and its vector is their normalized sum (16M distinct vectors; an HNSW
    graph is slow to build over many identical ones)."""

    def __init__(self, dim: int = 64, rows: int = 4096) -> None:
        rng = np.random.default_rng(0)
        self.tables = rng.standard_normal((2, rows, dim)).astype(np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        rows = len(self.tables[0])
        keys = np.array([zlib.crc32(t.encode()) for t in texts], dtype=np.int64)
        vectors = self.tables[0][keys % rows] + self.tables[1][(keys // rows) % rows]
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


OPEN_CHILD = """
import sys, time, json
sys.path.insert(0, {root!r})
from bench.langchain_probe import HashEmbedding
i0 = time.perf_counter()
from memvid_integrations.langchain.vectorstores import MemvidVectorStore
i1 = time.perf_counter()
emb = HashEmbedding({dim})
t0 = time.perf_counter()
store = MemvidVectorStore({path!r}, emb)
t1 = time.perf_counter()
store.similarity_search("budget review", k=4)
t2 = time.perf_counter()
store.close()
print(json.dumps({{"import_s": i1 - i0, "open_s": t1 - t0, "first_search_s": t2 - t1}}))
"""


def ingest(path: str, docs: int, batch: int, emb: HashEmbedding) -> dict[str, float]:
    from memvid_integrations.langchain import MemvidVectorStore

    texts = [f"document {i} about topic {i % 97} and item {i * 7919 % 100003}"
             for i in range(docs)]
    metas = [{"topic": i % 97, "n": i} for i in range(docs)]
    start = time.perf_counter()
    store = MemvidVectorStore(path, emb)
    for lo in range(0, docs, batch):
        store.add_texts(texts[lo:lo + batch], metas[lo:lo + batch])
    added = time.perf_counter()
    store.close()
    end = time.perf_counter()
    return {"docs": docs, "add_s": added - start, "close_s": end - added,
            "docs_per_s": docs / (end - start), "docs_per_s_before_close": docs / (added - start)}


def chat_read(path: str, reads: int) -> dict[str, float]:
    from langchain_core.messages import AIMessage, HumanMessage

    from memvid_integrations.langchain import MemvidChatMessageHistory

    with MemvidChatMessageHistory(path, "probe-session") as history:
        history.clear()
        history.add_messages([HumanMessage(f"question {i}") if i % 2 == 0
                              else AIMessage(f"answer {i}") for i in range(20)])
        assert len(history.messages) == 20
        times = []
        for _ in range(reads):
            t0 = time.perf_counter()
            history.messages  # noqa: B018
            times.append(time.perf_counter() - t0)
        frames = sum(history.memory.collections().values())
    return {"frames_in_file": frames, "messages_ms_median": statistics.median(times) * 1e3,
            "messages_ms_p90": sorted(times)[int(len(times) * 0.9)] * 1e3}


def open_time(path: str, dim: int, repeats: int) -> dict[str, float]:
    code = OPEN_CHILD.format(root=str(ROOT), dim=dim, path=path)
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                      text=True, check=True).stdout) for _ in range(repeats)]
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="memvid-lc-probe-", dir=args.workdir)
    path = os.path.join(work, "probe.mv2")
    emb = HashEmbedding(args.dim)
    result = {"add_texts": ingest(path, args.docs, args.batch, emb),
              "chat_history": chat_read(path, args.reads),
              "open": open_time(path, args.dim, args.opens), "path": path}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
