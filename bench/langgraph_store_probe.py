"""LangGraph ``MemvidStore`` at scale: writes, fresh-process open + first search, search p50.

Builds a store of N items (64-d vectors from a cheap deterministic hashed bag of words,
``text`` indexed, 100 namespaces ``("users", "u<i>")`` plus a ``kind`` field) with
``batch()`` calls of 500 puts, then measures, each in a fresh process:

* the import of ``langgraph.store.base`` alone;
* the engine's first hybrid answer on the same file (``Memory.open`` + ``find``);
* ``MemvidStore`` open + first search (query, namespace prefix, filter);

and in-process the p50 of searches with a query under a namespace prefix (with and without
a filter) and of query-less listings.

``python bench/langgraph_store_probe.py --items 20000 100000`` (results printed as JSON).
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

DIM = 64
WORDS = [f"w{i}" for i in range(500)]


def _word(word: str) -> list[float]:
    seed = zlib.crc32(word.encode())
    return [((seed * (2 * i + 1) * 2654435761) % 2001 - 1000) / 1000 for i in range(DIM)]


def embed(texts: list[str]) -> list[list[float]]:
    """Sum of per-word pseudo-random vectors, 64-d (cheap, deterministic, few exact ties)."""
    out = []
    for text in texts:
        vec = [0.0] * DIM
        for word in text.split():
            vec = [a + b for a, b in zip(vec, _word(word), strict=True)]
        out.append(vec)
    return out


def text_of(i: int) -> str:
    return " ".join(WORDS[zlib.crc32(f"{i}:{p}".encode()) % len(WORDS)] for p in range(4))


def build(path: str, n: int) -> dict[str, float]:
    from langgraph.store.base import PutOp

    from memvid_integrations.langgraph import MemvidStore

    started = time.perf_counter()
    with MemvidStore(path, index={"dims": DIM, "embed": embed, "fields": ["text"]}) as store:
        for start in range(0, n, 500):
            store.batch([PutOp(("users", f"u{i % 100}"), f"k{i}",
                               {"text": text_of(i), "kind": ("fact", "note")[i % 2], "n": i})
                         for i in range(start, min(n, start + 500))])
    seconds = time.perf_counter() - started
    return {"write_seconds": round(seconds, 2), "items_per_second": round(n / seconds)}


CHILD = {
    "import": "import langgraph.store.base",
    "engine": """
from memvid_store import Memory
import bench.langgraph_store_probe as probe
mem = Memory.open(PATH, readonly=True)
mem.collection("langgraph-store").find("w7 w13", vector=probe.embed(["w7 w13"])[0], k=10)
""",
    "store": """
from memvid_integrations.langgraph import MemvidStore
import bench.langgraph_store_probe as probe
store = MemvidStore(PATH, readonly=True,
                    index={"dims": 64, "embed": probe.embed, "fields": ["text"]})
store.search(("users", "u7"), query="w7 w13", filter={"kind": "fact"}, limit=10)
""",
}


def fresh(kind: str, path: str, repeats: int) -> float:
    """Median seconds of ``CHILD[kind]`` in a fresh process (after the interpreter starts)."""
    code = ("import time; t = time.perf_counter()\n" + CHILD[kind].replace("PATH", repr(path))
            + "\nprint(time.perf_counter() - t)")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    runs = []
    for _ in range(repeats + 1):  # the first run warms the page and bytecode caches
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True)
        runs.append(float(out.stdout.split()[-1]))
    return statistics.median(runs[1:])


def p50(func, repeats: int = 200) -> float:
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        func(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(n: int, repeats: int) -> dict[str, float]:
    from memvid_integrations.langgraph import MemvidStore

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "store.mv2")
        out: dict[str, float] = {"items": n, **build(path, n)}
        out["size_mb"] = round(os.path.getsize(path) / 2**20, 1)
        for kind in CHILD:
            out[f"fresh_{kind}_ms"] = round(1000 * fresh(kind, path, repeats), 1)
        with MemvidStore(path, index={"dims": DIM, "embed": embed, "fields": ["text"]}) as s:
            queries = [text_of(i * 17 + 3)[:9] for i in range(50)]
            out["search_prefix_p50_ms"] = round(1000 * p50(
                lambda i: s.search(("users", f"u{i % 100}"), query=queries[i % 50])), 2)
            out["search_prefix_filter_p50_ms"] = round(1000 * p50(
                lambda i: s.search(("users",), query=queries[i % 50],
                                   filter={"kind": "fact", "n": {"$gte": 1000}})), 2)
            out["list_prefix_p50_ms"] = round(1000 * p50(
                lambda i: s.search(("users", f"u{i % 100}"), offset=i % 40)), 2)
            out["get_p50_ms"] = round(1000 * p50(
                lambda i: s.get(("users", f"u{i * 7919 % n % 100}"), f"k{i * 7919 % n}")), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for n in args.items:
        print(json.dumps(measure(n, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
