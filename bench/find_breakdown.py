"""Where a warm vector ``find`` spends its time, beside numpy answering the same queries.

Run ``python bench/find_breakdown.py [--sizes 1000,10000,100000]`` (about 2 minutes on 2
cores). Each size is one file built as users build one (``put_many`` of the corpus, then
``build_index()``: the engine decides between the exact scan and a graph), opened
read-only. After 200 untimed queries, each of 300 distinct corpus queries is timed stage by
stage on the engine's own calls; then 300 others by a whole ``find``, and by numpy:

* ``request``: the arguments validated into a request (``reads.search_scope``);
* ``ranking``: the accepted (version, score) pairs, best first (the exact scan or the
  graph with its rescoring: ``Searcher.vector_ranked_batch``);
* ``hits, cold`` / ``hits, cached``: the 10 ``Hit`` objects built from the ranking, the
  first time (each record read and decoded from the file) and again (from the frame cache);
* ``find``: ``Memory.find(vector=q, k=10, mode="vector")``;
* ``numpy``: ``x @ q``, argpartition, sort of the 10, and their texts from a Python list,
  on the same vectors held in memory (the floor of a brute-force answer with texts).

p50 in microseconds. Results go to ``bench/results/breakdown-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.engine_bench import RESULTS, progress  # noqa: E402
from bench.report import heading, new_result, save  # noqa: E402

DIM = 384
K = 10
WARMUP = 200
QUERIES = 300
STAGES = ("request", "ranking", "hits, cold", "hits, cached", "find", "numpy")


def build(path: Path, n: int, metadata: Callable[[int], dict[str, Any]] | None = None
          ) -> tuple[np.ndarray, list[str]]:
    """The file, and its vectors and texts in insertion order (``metadata(i)``: more
    metadata for record ``i``)."""
    from memvid_store import Memory

    rows, texts = [], []
    with Memory.create(path, dim=DIM) as mem:
        for start, batch in zip(range(0, n, 1000), corpus.iter_batches(n, 1000, dim=DIM),
                                strict=False):
            if metadata is not None:
                for i, rec in enumerate(batch, start):
                    rec["metadata"] = {**rec.get("metadata", {}), **metadata(i)}
            mem.put_many(batch)
            rows.extend(r["embedding"] for r in batch)
            texts.extend(r["text"] for r in batch)
        mem.build_index()
    return np.asarray(rows, "<f4"), texts


def measure(path: Path, x: np.ndarray, texts: list[str]) -> dict[str, Any]:
    """p50 microseconds of each stage, and which path ranked."""
    from memvid_store import Memory
    from memvid_store.reads import search_scope

    qs, _ = corpus.query_vectors(WARMUP + 2 * QUERIES, dim=DIM, draw=11)
    took: dict[str, list[float]] = {stage: [] for stage in STAGES}

    def timed(stage: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        took[stage].append((time.perf_counter() - start) * 1e6)
        return out

    def numpy_answer(q: np.ndarray) -> list[str]:
        s = x @ q
        top = np.argpartition(-s, K)[:K]
        return [texts[i] for i in top[np.argsort(-s[top], kind="stable")]]

    with Memory.open(path, readonly=True) as mem:
        for q in qs[:WARMUP]:
            mem.find(vector=q, k=K, mode="vector")
            numpy_answer(q)
        for q in qs[WARMUP : WARMUP + QUERIES]:
            args = {"vector": q, "k": K, "mode": "vector"}
            _, searcher, (req,) = timed("request", search_scope, mem, [args])
            ranked = timed("ranking", searcher.vector_ranked_batch, [req])[id(req)]
            timed("hits, cold", searcher._hits, ranked[:K], {"vector": ranked})
            timed("hits, cached", searcher._hits, ranked[:K], {"vector": ranked})
        # each in its own pass: numpy's product over its copy of the vectors would evict
        # the engine's data from the CPU cache before the next find, and the reverse
        for q in qs[WARMUP + QUERIES :]:
            timed("find", mem.find, vector=q, k=K, mode="vector")
        for q in qs[WARMUP + QUERIES :]:
            timed("numpy", numpy_answer, q)
        graph = searcher.vectors.has_graph()
    p50 = {stage: float(np.median(values)) for stage, values in took.items()}
    return {"p50_us": p50, "path": "graph" if graph else "exact scan",
            "find_over_numpy": p50["find"] / p50["numpy"]}


def markdown(res: dict[str, Any]) -> str:
    lines = heading("Where a warm vector find spends its time", res)
    lines += [f"{DIM}-d corpus vectors, k={K}, unfiltered; p50 (us) over {QUERIES} distinct "
              f"queries after {WARMUP}. Stages are the engine's own calls on one query "
              "(`hits, cold`: records read and decoded from the file; `hits, cached`: "
              "again, from the frame cache); `find` and `numpy` (product, top 10, texts "
              "from a list) answer 300 other queries, each in its own pass.", "",
              "| frames | path | " + " | ".join(STAGES) + " | find / numpy |",
              "| ---: | --- |" + " ---: |" * (len(STAGES) + 1)]
    for row in res["sizes"]:
        cells = " | ".join(f"{row['p50_us'][stage]:.0f}" for stage in STAGES)
        lines.append(f"| {row['n']:,} | {row['path']} | {cells} | "
                     f"{row['find_over_numpy']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1_000, 10_000, 100_000])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    res = new_result("find_breakdown.py", sizes=[])
    with tempfile.TemporaryDirectory(prefix="memvid-breakdown-") as work:
        for n in args.sizes:
            progress(f"breakdown: building {n:,} x {DIM}")
            path = Path(work) / f"b{n}.mv2"
            x, texts = build(path, n)
            progress(f"breakdown: {n:,}")
            res["sizes"].append({"n": n, **measure(path, x, texts)})
            os.remove(path)
    save(res, args.out, "breakdown", markdown, show=True)


if __name__ == "__main__":
    main()
