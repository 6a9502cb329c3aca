"""The BLAS thread count chosen by measurement, against every product on one thread.

``python bench/thread_choice_bench.py [--n 10000] [--queries 500]`` builds a file without
a graph (``bench/exact_path.py``'s, 384-d), opens it in this process alone (no other
library's threads), lets ``find_batch`` learn for ``--learn`` queries, then times distinct
vector queries, ``PER_CALL`` to a ``find_batch`` (one query's product does not use BLAS:
``scoring._products``), in alternating blocks with the choice on (``blas_threads.ADAPTIVE``) and
off (every product of 2^16 to 2^25 multiply-adds on one thread), idle and with two
CPU-burning processes. It reports p50s and the learned time per multiply-add of each
choice. Writes ``bench/results/threads-<stamp>.json`` and ``.md``.
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

from bench.exact_path import build, burn, stop  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.report import heading, save  # noqa: E402

BLOCK = 24
PER_CALL = 2  # queries per find_batch: one product of PER_CALL x rows x 384 multiply-adds


def find_batch(mem: Any, queries: np.ndarray) -> None:
    mem.find_batch([{"vector": q, "k": 10, "mode": "vector"} for q in queries])


def measure(mem: Any, n: int, queries: np.ndarray, learn: int) -> dict[str, Any]:
    """p50 ms of a find_batch with the choice on and off, in alternating blocks."""
    from memvid_store.index.vector import blas_threads

    for start in range(0, learn, PER_CALL):
        find_batch(mem, queries[start:start + PER_CALL])
    times: dict[str, list[float]] = {"chosen": [], "one thread": []}
    for start in range(learn, len(queries), BLOCK):
        name = "chosen" if (start - learn) // BLOCK % 2 == 0 else "one thread"
        blas_threads.ADAPTIVE = name == "chosen"
        try:
            for first in range(start, min(start + BLOCK, len(queries)), PER_CALL):
                began = time.perf_counter()
                find_batch(mem, queries[first:first + PER_CALL])
                times[name].append(time.perf_counter() - began)
        finally:
            blas_threads.ADAPTIVE = True
    choice = blas_threads.choice_of(PER_CALL * n * queries.shape[1])  # one call's product
    return {"p50_ms": {name: float(np.median(ts) * 1e3) for name, ts in times.items()},
            "ns_per_mac": {k: None if v is None else v * 1e9 for k, v in choice.rate.items()},
            "current": choice.current}


def run(n: int, queries: int, learn: int) -> dict[str, Any]:
    from memvid_store import Memory

    rng = np.random.default_rng(7)
    qs = rng.standard_normal((learn + queries, 384)).astype("<f4")
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    out: dict[str, Any] = {"n": n, "conditions": {}}
    with tempfile.TemporaryDirectory(prefix="memvid-threads-") as tmp:
        path = Path(tmp) / "m.mv2"
        build(path, n, 0)
        for cond, burners in (("idle", 0), ("loaded", 2)):
            procs = burn(burners)
            try:
                with Memory.open(path, readonly=True) as mem:
                    out["conditions"][cond] = measure(mem, n, qs, learn)
            finally:
                stop(procs)
    return out


def markdown(res: dict[str, Any]) -> str:
    lines = [*heading("BLAS threads chosen by measurement", res),
             f"{res['n']:,} x 384 file without a graph, `find_batch` of {PER_CALL} vector "
             f"queries (k=10) in this process alone, after {res['learn']} queries to learn; "
             f"blocks of {BLOCK} distinct queries alternating.", "",
             "| load | find_batch p50, chosen | find_batch p50, one thread | ns per multiply-add "
             "(one / all threads) | choice |", "| --- | ---: | ---: | ---: | --- |"]
    for cond, c in res["conditions"].items():
        rate = c["ns_per_mac"]
        shown = " / ".join("-" if rate[k] is None else f"{rate[k]:.3f}" for k in ("one", "all"))
        lines.append(f"| {cond} | {c['p50_ms']['chosen']:.3f} ms | "
                     f"{c['p50_ms']['one thread']:.3f} ms | {shown} | {c['current']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--learn", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    res = run(args.n, args.queries, args.learn)
    res.update(timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               command=f"python bench/thread_choice_bench.py --n {args.n} --queries "
                       f"{args.queries} --learn {args.learn}",
               machine=machine_info(), learn=args.learn)
    save(res, args.out, "threads", markdown, show=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
