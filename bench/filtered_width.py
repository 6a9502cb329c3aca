"""Filtered vector queries on a graph: recall and latency by how a widened round searches.

``python bench/filtered_width.py --n 1000000`` builds a file as ``bench/scale.py`` does
(128-d bench corpus records with texts, metadata and a BM25 index; ``--path`` reuses a
file it built), then asks ``find(vector=..., mode="vector", filter={"priority": 0})`` (a
fifth of the records) with each widening policy in turn, in alternating blocks of queries
in one process (after a pass that faults in every page any of them visits), each going
first in turn, so that the machine's load and the page cache favour none:

* ``kept``: a widened round searches at the calibrated width (raised to its depth only);
* ``sqrt``: the width grows with the square root of the depth ratio (the engine's
  ``hnsw_format.round_width``);
* ``linear``: the width grows in proportion to the depth.

Recall@10 is against numpy's exact top 10 among the records the filter admits. Writes
``bench/results/filtered-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
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
from bench.machine import machine_info  # noqa: E402
from bench.report import heading, save  # noqa: E402
from bench.scale import DIM, FILTER, LOAD, exact_answers, recall, run_json  # noqa: E402

QUERIES = 200
BLOCK = 20  # queries per policy before the next policy takes its turn


def kept(ef: int, depth: int, first_depth: int) -> int:
    return max(ef, depth)


def linear(ef: int, depth: int, first_depth: int) -> int:
    return max(ef * depth // first_depth, depth)


def policies() -> dict[str, Any]:
    from memvid_store.index.vector.hnsw_format import round_width

    return {"kept": kept, "sqrt": round_width, "linear": linear}


def measure(path: Path, n: int, passes: int) -> dict[str, Any]:
    from memvid_store import Memory
    from memvid_store.index.searcher import existing_searcher
    from memvid_store.index.vector import hnsw_search

    qv = np.asarray(corpus.query_vectors(QUERIES, dim=DIM, seed=0)[0], "<f4")
    truth = exact_answers(n, qv)[1]
    chosen = policies()
    times: dict[str, list[float]] = {name: [] for name in chosen}
    hits: dict[str, list[list[str]]] = {name: [[] for _ in qv] for name in chosen}
    original = hnsw_search.round_width
    try:
        with Memory.open(path, readonly=True) as mem:
            hnsw_search.round_width = linear  # every page any policy visits, in
            for q in qv:
                mem.find(vector=q, k=10, mode="vector", filter=FILTER)
            names = list(chosen)
            for _ in range(passes):
                for block, first in enumerate(range(0, len(qv), BLOCK)):
                    turn = block % len(names)  # each policy goes first as often as the others
                    for name in names[turn:] + names[:turn]:
                        hnsw_search.round_width = chosen[name]
                        for i in range(first, min(first + BLOCK, len(qv))):
                            # each policy searches, never a cached result
                            existing_searcher(mem._snap())._results.clear()
                            t0 = time.perf_counter()
                            found = mem.find(vector=qv[i], k=10, mode="vector",
                                             filter=FILTER)
                            times[name].append(time.perf_counter() - t0)
                            hits[name][i] = [h.id for h in found]
    finally:
        hnsw_search.round_width = original
    return {name: {"recall": recall(hits[name], truth),
                   "p50_ms": float(np.median(times[name]) * 1e3),
                   "p90_ms": float(np.percentile(times[name], 90) * 1e3)}
            for name in chosen}


def markdown(res: dict[str, Any]) -> str:
    lines = heading("Filtered vector queries by widening policy", res)
    lines += [f"{res['n']:,} records x {DIM}-d, filter {FILTER} (a fifth of them), "
              f"{QUERIES} queries x {res['passes']} passes, k = 10, calibrated width "
              f"{res['ef_search']}; policies alternate every {BLOCK} queries.", "",
              "| widened round's width | recall@10 | p50 ms | p90 ms |",
              "| --- | ---: | ---: | ---: |"]
    for name, row in res["policies"].items():
        lines.append(f"| {name} | {row['recall']:.4f} | {row['p50_ms']:.2f} | "
                     f"{row['p90_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--path", help="a file bench/scale.py's load built with --n records")
    ap.add_argument("--passes", type=int, default=2)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memvid-filtered-") as work:
        path = Path(args.path) if args.path else Path(work) / "filtered.mv2"
        if not args.path:
            run_json(LOAD, PATH=str(path), N=args.n, DIM=DIM, BATCH=10_000)
        from memvid_store import Memory

        with Memory.open(path, readonly=True) as mem:
            meta = mem._snap().toc.find("ann").meta
        res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "command": "python bench/filtered_width.py " + " ".join(argv or sys.argv[1:]),
               "machine": machine_info(), "n": args.n, "passes": args.passes,
               "ef_search": meta.get("ef_search"),
               "policies": measure(path, args.n, args.passes)}
    save(res, HERE / "results", "filtered", markdown, show=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
