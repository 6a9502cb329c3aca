"""One query against a matrix of vectors: the product kernels the exact path could use.

``python bench/product_kernels.py`` times, for one 384-d float32 query against 10k and
100k rows (p50 of 100 distinct queries, the kernels taking turns in rounds), idle and
then with two CPU-burning processes:

* ``vecdot``: ``np.vecdot(matrix, q)`` (numpy's SIMD dot product per row, the calling
  thread only): what ``scoring.score_block`` uses for one query;
* ``blas 1 thread`` / ``blas threads``: ``matrix @ q`` (OpenBLAS's matrix-vector product)
  on one thread and on its default count;
* ``faiss 1 thread`` / ``faiss threads``: ``IndexFlatIP.search(q, 10)`` (faiss's own
  loop plus its top 10), when faiss is installed.

Writes ``bench/results/kernels-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.exact_path import burn, stop  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.report import heading, save  # noqa: E402

DIM = 384
QUERIES = 100
ROUNDS = 4


def kernels(matrix: np.ndarray) -> dict[str, Callable[[np.ndarray], Any]]:
    from memvid_store.index.vector.blas_threads import openblas

    blas = openblas()

    def one_thread(q: np.ndarray) -> Any:
        if blas is None:
            return matrix @ q
        saved = blas.get()
        blas.set(1)
        try:
            return matrix @ q
        finally:
            blas.set(saved)

    out: dict[str, Callable[[np.ndarray], Any]] = {
        "vecdot": lambda q: np.vecdot(matrix, q),
        "blas 1 thread": one_thread,
        "blas threads": lambda q: matrix @ q,
    }
    try:
        import faiss
    except ImportError:
        return out
    index = faiss.IndexFlatIP(DIM)
    index.add(matrix)
    threads = faiss.omp_get_max_threads()

    def faiss_with(n: int) -> Callable[[np.ndarray], Any]:
        def search(q: np.ndarray) -> Any:
            faiss.omp_set_num_threads(n)
            return index.search(q[None, :], 10)
        return search

    out["faiss 1 thread"] = faiss_with(1)
    out["faiss threads"] = faiss_with(threads)
    return out


def timed(chosen: dict[str, Callable[[np.ndarray], Any]], queries: np.ndarray
          ) -> dict[str, float]:
    """p50 ms of each kernel, the kernels taking turns for ``ROUNDS`` rounds."""
    times: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(ROUNDS):
        for name, kernel in chosen.items():
            for q in queries:
                t0 = time.perf_counter()
                kernel(q)
                times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(ts) * 1e3) for name, ts in times.items()}


def markdown(res: dict[str, Any]) -> str:
    lines = heading("One query's product kernels", res)
    names = list(res["rows"][0]["p50_ms"])
    lines += [f"{DIM}-d float32, p50 ms of {QUERIES} queries x {ROUNDS} rounds, kernels "
              "taking turns; loaded: two processes running `while True: pass`.", "",
              "| rows | load | " + " | ".join(names) + " |",
              "| ---: | --- | " + " | ".join("---:" for _ in names) + " |"]
    for row in res["rows"]:
        cells = " | ".join(f"{row['p50_ms'][n]:.3f}" for n in names)
        lines.append(f"| {row['rows']:,} | {row['load']} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10000,100000")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        matrix = rng.standard_normal((n, DIM)).astype(np.float32)
        queries = rng.standard_normal((QUERIES, DIM)).astype(np.float32)
        chosen = kernels(matrix)
        timed(chosen, queries[:10])  # pages and thread pools warm
        rows.append({"rows": n, "load": "idle", "p50_ms": timed(chosen, queries)})
        procs = burn(2)
        try:
            rows.append({"rows": n, "load": "loaded", "p50_ms": timed(chosen, queries)})
        finally:
            stop(procs)
        print(rows[-2], rows[-1], flush=True)
    res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": "python bench/product_kernels.py " + " ".join(argv or sys.argv[1:]),
           "machine": machine_info(), "rows": rows}
    save(res, HERE / "results", "kernels", markdown, show=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
