"""Graph degree against recall and latency at scale, on usearch directly.

``python bench/graph_degree.py --n 1000000 --configs 16:128,24:96,32:64`` draws ``n``
128-d vectors from the bench corpus's distribution (``bench/corpus.py``: 32 topics,
isotropic noise), and for each ``M:ef_construction`` builds an int8 graph as the engine
does (usearch, unit rows, inner product, batches of 8,192, one thread per core) in a process of its
own, then searches it in another with widths ``--efs``: 300 corpus queries, ``--depths``
candidates each (40: the engine's first round for k = 10; ``ef``: every candidate of the
width) rescored against the float32 vectors, recall@10 against numpy's exact top 10 and p50
of search plus rescoring on one thread. Reports build
seconds, the graph's size and the build's peak RSS beside the vectors' mapped pages.
Writes ``bench/results/degree-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.machine import machine_info, own_peak_rss_mb  # noqa: E402
from bench.report import heading, save  # noqa: E402

DIM = 128
K = 10
QUERIES = 300
BATCH = 8_192


def draw(n: int, work: Path) -> None:
    """The vectors, queries and exact answers, saved in ``work``."""
    rng = np.random.default_rng(7)
    parts = []
    for start in range(0, n, 100_000):
        rows = min(100_000, n - start)
        parts.append(corpus._embed(rng, rng.integers(0, corpus.DEFAULT_TOPICS, rows), DIM, 0,
                                   corpus.DEFAULT_TOPICS, corpus.SPREAD))
    x = np.concatenate(parts)
    q = np.asarray(corpus.query_vectors(QUERIES, dim=DIM, seed=0)[0], "<f4")
    truth = np.concatenate([np.argpartition(-(q[i:i + 100] @ x.T), K - 1, axis=1)[:, :K]
                            for i in range(0, QUERIES, 100)])
    np.save(work / "x.npy", x)
    np.save(work / "q.npy", q)
    np.save(work / "truth.npy", truth)


def build(work: Path, m: int, efc: int) -> dict[str, Any]:
    """Build one graph (in this process) and save it; its figures."""
    from usearch.index import Index

    x = np.load(work / "x.npy", mmap_mode="r")
    index = Index(ndim=DIM, metric="ip", dtype="i8", connectivity=m, expansion_add=efc)
    start = time.perf_counter()
    for first in range(0, len(x), BATCH):
        index.add(np.arange(first, min(len(x), first + BATCH)),
                  np.ascontiguousarray(x[first:first + BATCH]), threads=os.cpu_count() or 1)
    seconds = time.perf_counter() - start
    path = work / f"g{m}-{efc}.usearch"
    index.save(str(path))
    return {"build_s": seconds, "graph_mb": path.stat().st_size / 2**20,
            "peak_rss_mb": own_peak_rss_mb()}


def search(work: Path, m: int, efc: int, efs: list[int], depths: list[str]
           ) -> list[dict[str, Any]]:
    """Recall@10 and p50 of each width and depth on the saved graph (a view of its
    file)."""
    from usearch.index import Index

    x = np.load(work / "x.npy", mmap_mode="r")
    q, truth = np.load(work / "q.npy"), np.load(work / "truth.npy")
    index = Index.restore(str(work / f"g{m}-{efc}.usearch"), view=True)  # keeps the view
    native = index._compiled
    out = []
    for ef in efs:
        native.expansion_search = ef
        for depth_name in depths:
            depth = ef if depth_name == "ef" else int(depth_name)
            for _warm in range(2):  # the first pass faults the graph's pages in
                times, found = [], 0
                for query, want in zip(q, truth, strict=True):
                    start = time.perf_counter()
                    keys = native.search_many(query[None, :], depth, False, 1)[0][0]
                    keys = np.sort(keys[keys >= 0])
                    best = keys[np.argsort(-(x[keys] @ query))[:K]]
                    times.append(time.perf_counter() - start)
                    found += len(set(best.tolist()) & set(want.tolist()))
            out.append({"ef": ef, "depth": depth_name, "recall": found / (K * len(q)),
                        "p50_ms": float(np.median(times) * 1e3)})
    return out


def child(*args: str) -> Any:
    """Run one step in a fresh process; its JSON answer."""
    done = subprocess.run([sys.executable, __file__, "--step", *args], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(res: dict[str, Any]) -> str:
    efs = res["efs"]
    lines = heading("Graph degree at scale", res)
    lines += [f"{res['n']:,} x {DIM}-d bench corpus vectors, int8 graphs (usearch); cells: "
              f"recall@10 / p50 ms ({QUERIES} queries; depth: candidates rescored).", "",
              "| M | ef_construction | build s | graph MB | build peak RSS MB | depth | "
              + " | ".join(f"ef {ef}" for ef in efs) + " |",
              "| ---: | ---: | ---: | ---: | ---: | --- | "
              + " | ".join("---:" for _ in efs) + " |"]
    for row in res["rows"]:
        for depth in res["depths"]:
            cells = " | ".join(f"{s['recall']:.3f} / {s['p50_ms']:.2f}"
                               for s in row["search"] if s["depth"] == depth)
            lines.append(f"| {row['M']} | {row['efc']} | {row['build_s']:.0f} | "
                         f"{row['graph_mb']:.0f} | {row['peak_rss_mb']:.0f} | {depth} | "
                         f"{cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--configs", default="16:128,24:96,32:64", help="M:ef_construction,...")
    ap.add_argument("--efs", default="64,128,192,256,384,512")
    ap.add_argument("--depths", default="40",
                    help="candidates rescored per query: numbers, or ef (all of the width)")
    ap.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    efs = [int(e) for e in args.efs.split(",")]
    depths = args.depths.split(",")
    if args.step:  # a child: build WORK M EFC | search WORK M EFC
        name, work, m, efc = args.step
        got = (build(Path(work), int(m), int(efc)) if name == "build"
               else search(Path(work), int(m), int(efc), efs, depths))
        print(json.dumps(got))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="memvid-degree-") as work:
        draw(args.n, Path(work))
        for config in args.configs.split(","):
            m, efc = config.split(":")
            row = {"M": int(m), "efc": int(efc), **child("build", work, m, efc)}
            row["search"] = child("search", work, m, efc, "--efs", args.efs,
                                  "--depths", args.depths)
            rows.append(row)
            print(row, flush=True)
    res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": "python bench/graph_degree.py " + " ".join(argv or sys.argv[1:]),
           "machine": machine_info(), "n": args.n, "efs": efs, "depths": depths,
           "rows": rows}
    save(res, HERE / "results", "degree", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
