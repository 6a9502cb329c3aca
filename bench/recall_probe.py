"""Recall of the calibrated graph width against the exact answer, at scale.

``python bench/recall_probe.py --sizes 100000,1000000`` builds, per size, a file of
``bench/corpus.py`` vectors (128-d by default, no BM25 index), calls ``build_index()`` (the
graph is built and its width calibrated, ``index/vector/calibrate.py``), then in the same process
reads the width the file recorded and measures recall@10 and latency of ``find(vector=...,
mode="vector")`` for independent corpus queries against numpy's exact top 10. Writes
``bench/results/recall-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.machine import machine_info, summary  # noqa: E402
from bench.report import save  # noqa: E402

K = 10
BATCH = 10_000


def probe(path: Path, n: int, dim: int, queries: int) -> dict[str, Any]:
    """Build, calibrate and measure one file of ``n`` vectors."""
    from memvid_store import Memory

    t0 = time.perf_counter()
    mem = Memory.create(path, dim=dim, index={"lexical": False})
    vectors = np.empty((n, dim), "<f4")
    ids: list[str] = []
    row = 0
    for batch in corpus.iter_batches(n, BATCH, dim=dim, seed=0, ids=False, embeddings=True):
        for rec in batch:
            vectors[row] = rec["embedding"]
            row += 1
        ids += mem.put_many([{"text": rec["text"][:40], "embedding": rec["embedding"]}
                             for rec in batch])
    put_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mem.build_index()  # the graph and its calibrated width
    mem.close()
    close_s = time.perf_counter() - t0
    row_of = {fid: i for i, fid in enumerate(ids)}
    qv = np.asarray(corpus.query_vectors(queries, dim=dim, seed=0)[0], "<f4")
    truth = exact_top(vectors, qv)
    with Memory.open(path, readonly=True) as mem:
        meta = mem._snap().toc.find("ann").meta
        for q in qv[:20]:
            mem.find(vector=q, k=K, mode="vector")
        times, found = [], 0
        for q, want in zip(qv, truth, strict=True):
            start = time.perf_counter()
            hits = mem.find(vector=q, k=K, mode="vector")
            times.append(time.perf_counter() - start)
            found += len({row_of[h.id] for h in hits} & set(want.tolist()))
    return {"n": n, "dim": dim, "queries": queries, "put_s": put_s, "close_s": close_s,
            "ef_search": meta.get("ef_search"), "sample_recall": meta.get("recall"),
            "recall": found / (K * queries), "p50_ms": float(np.median(times) * 1e3),
            "p90_ms": float(np.percentile(times, 90) * 1e3)}


def exact_top(vectors: np.ndarray, queries: np.ndarray, rows: int = 100_000) -> np.ndarray:
    """Row numbers of each query's exact top K by cosine, block by block of ``rows``."""
    return streamed_top(((vectors[start : start + rows],
                          np.arange(start, min(start + rows, len(vectors))))
                         for start in range(0, len(vectors), rows)), queries)


def streamed_top(blocks: Iterable[tuple[np.ndarray, np.ndarray]], queries: np.ndarray,
                 k: int = K) -> np.ndarray:
    """Row numbers of each query's exact top ``k`` by cosine over ``(vectors, their row
    numbers)`` blocks, keeping only the best ``k`` between blocks."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_s = np.full((len(q), 0), -np.inf, "<f4")
    best_i = np.zeros((len(q), 0), "<i8")
    for block, numbers in blocks:
        if not len(block):
            continue
        scores = q @ (block / np.linalg.norm(block, axis=1, keepdims=True)).T
        scores = np.concatenate([best_s, scores], axis=1)
        index = np.concatenate([best_i, np.broadcast_to(numbers, (len(q), len(numbers)))],
                               axis=1)
        top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(scores, top, axis=1)
        best_i = np.take_along_axis(index, top, axis=1)
    return best_i


def markdown(res: dict[str, Any]) -> str:
    lines = [f"## Recall of calibrated graphs ({res['timestamp']})", "",
             f"Machine: {summary(res['machine'])}  ", f"Command: `{res['command']}`", "",
             "| frames | dim | ef (calibrated) | sample recall | recall@10 of queries | "
             "p50 ms | p90 ms | build_index() s |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["rows"]:
        lines.append(f"| {r['n']:,} | {r['dim']} | {r['ef_search']} | {r['sample_recall']} | "
                     f"{r['recall']:.3f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                     f"{r['close_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100000", help="comma-separated frame counts")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args(argv)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="memvid-recall-") as work:
            rows.append(probe(Path(work) / "r.mv2", n, args.dim, args.queries))
            print(rows[-1], flush=True)
    res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": "python bench/recall_probe.py " + " ".join(argv or sys.argv[1:]),
           "machine": machine_info(), "rows": rows}
    save(res, HERE / "results", "recall", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
