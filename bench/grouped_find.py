"""Grouped vector search (``find(group_by=...)``) beside a plain find and numpy max pooling.

Run ``python bench/grouped_find.py [--sizes 10000,100000] [--chunks 4]`` (about 3 minutes
on 2 cores). Each size is one file of ``n`` 384-d chunks, ``--chunks`` per document
(metadata ``doc``), built as users build one (``put_many``, then ``build_index()``) and
opened read-only. After 100 untimed queries, 300 distinct queries drawn like the corpus
(its topics: ``corpus.query_vectors`` with the corpus's seed) are timed, each kind in its
own pass:

* ``find``: ``find(vector=q, k=10, mode="vector")``, the 10 best chunks;
* ``grouped``: ``find(vector=q, k=10, mode="vector", group_by="doc")``, the best chunk of
  each of the 10 best documents, scored in float64 (what the LangGraph store asks);
* ``numpy``: ``x @ q``, the maximum per document (``np.maximum.reduceat``), the top 10
  documents and their best chunks' texts from a list, on the vectors held in memory.

``recall``: the share of numpy's 10 documents the grouped find returns. p50 in
microseconds. Results go to ``bench/results/grouped-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus, find_breakdown  # noqa: E402
from bench.engine_bench import RESULTS, progress  # noqa: E402
from bench.report import heading, new_result, save  # noqa: E402

DIM = 384
K = 10
WARMUP = 100
QUERIES = 300
KINDS = ("find", "grouped", "numpy")


def build(path: Path, n: int, chunks: int) -> tuple[np.ndarray, list[str]]:
    """The file (chunk i belongs to document i // chunks), its vectors and texts."""
    return find_breakdown.build(path, n, lambda i: {"doc": f"d{i // chunks}"})


def measure(path: Path, x: np.ndarray, texts: list[str], chunks: int) -> dict[str, Any]:
    """p50 microseconds of each kind, the grouped find's recall of numpy's documents."""
    from memvid_store import Memory

    starts = np.arange(0, len(x), chunks)
    qs, _ = corpus.query_vectors(WARMUP + QUERIES, dim=DIM)  # the corpus's topics

    def numpy_docs(q: np.ndarray) -> list[int]:
        s = x @ q
        best = np.maximum.reduceat(s, starts)
        top = np.argpartition(-best, K)[:K]
        top = top[np.argsort(-best[top], kind="stable")]
        _ = [texts[int(starts[d] + np.argmax(s[starts[d]:starts[d] + chunks]))] for d in top]
        return [int(d) for d in top]

    def grouped(mem: Any, q: np.ndarray) -> list[Any]:
        return mem.find(vector=q, k=K, mode="vector", group_by="doc")

    took: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with Memory.open(path, readonly=True) as mem:
        calls = {"find": lambda q: mem.find(vector=q, k=K, mode="vector"),
                 "grouped": lambda q: grouped(mem, q), "numpy": numpy_docs}
        for q in qs[:WARMUP]:
            for call in calls.values():
                call(q)
        for kind, call in calls.items():  # one pass each: no cache eviction between them
            for q in qs[WARMUP:]:
                start = time.perf_counter()
                call(q)
                took[kind].append((time.perf_counter() - start) * 1e6)
        found = [len({int(h.metadata["doc"][1:]) for h in grouped(mem, q)}
                     & set(numpy_docs(q))) / K for q in qs[WARMUP:]]
    p50 = {kind: float(np.median(values)) for kind, values in took.items()}
    return {"p50_us": p50, "recall": float(np.mean(found)),
            "grouped_over_find": p50["grouped"] / p50["find"],
            "grouped_over_numpy": p50["grouped"] / p50["numpy"]}


def markdown(res: dict[str, Any]) -> str:
    lines = heading("Grouped vector search", res)
    lines += [f"{DIM}-d chunks, {res['chunks']} per document, k={K} documents, unfiltered; "
              f"p50 (us) over {QUERIES} distinct queries after {WARMUP}, each kind in its "
              "own pass. `grouped`: `find(..., group_by=\"doc\")` (float64 scores); "
              "`numpy`: product, maximum per document, top 10, texts from a list; "
              "recall: share of numpy's documents the grouped find returns.", "",
              "| chunks | " + " | ".join(KINDS) + " | grouped / find | grouped / numpy "
              "| recall |", "| ---: |" + " ---: |" * (len(KINDS) + 3)]
    for row in res["sizes"]:
        cells = " | ".join(f"{row['p50_us'][kind]:.0f}" for kind in KINDS)
        lines.append(f"| {row['n']:,} | {cells} | {row['grouped_over_find']:.2f} | "
                     f"{row['grouped_over_numpy']:.2f} | {row['recall']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=[10_000, 100_000])
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    res = new_result("grouped_find.py", chunks=args.chunks, sizes=[])
    with tempfile.TemporaryDirectory(prefix="memvid-grouped-") as work:
        for n in args.sizes:
            progress(f"grouped: building {n:,} x {DIM}")
            path = Path(work) / f"g{n}.mv2"
            x, texts = build(path, n, args.chunks)
            progress(f"grouped: {n:,}")
            res["sizes"].append({"n": n, **measure(path, x, texts, args.chunks)})
            os.remove(path)
    save(res, args.out, "grouped", markdown, show=True)


if __name__ == "__main__":
    main()
