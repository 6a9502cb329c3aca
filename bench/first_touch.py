"""What a warm reader's queries cost the first time they read rows, and after.

A query that reads rows no earlier query read pays for them once: their vector rows'
checksums (graph or list candidates rescored), their records decoded into the frame
cache, their pages faulted in. This bench opens a file in a fresh process and times
distinct queries of the corpus's topics in phases:

* ``warm``: the first ``WARM`` queries (the index opened, lists read and checked);
* ``new``: ``PHASE`` queries never asked before;
* ``same``: the same queries again (their rows and records read before);
* ``new again``: ``PHASE`` other new queries, by when a long-lived reader has checked its
  vector blocks whole (``stored.ROWS_BEFORE_SWEEP``);
* ``after reclaim``: ``PHASE`` other new queries after the file's pages were dropped from
  the process and the page cache, as a system reclaiming idle memory drops them between
  an agent's queries (a host under memory pressure, or proactive reclaim such as DAMON's:
  this machine's pages out what was not touched for a minute).

Reported per phase: p50 / p99 and the total, and the time spent checking vector rows and
blocks inside queries (``StoredVectors._check``).

Run ``python bench/first_touch.py --file F.mv2 [--dim 128]`` on a file built from
``bench/corpus.py`` (``bench/peers.py`` builds one the same way), or
``python bench/first_touch.py --n 100000 --dim 384`` to build one first. Results:
``bench/results/first-touch-<stamp>.json`` and ``.md``.
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

from bench import corpus  # noqa: E402
from bench.engine_bench import RESULTS, progress  # noqa: E402
from bench.report import heading, new_result, save  # noqa: E402

WARM, PHASE, K = 200, 400, 10


def build(path: Path, n: int, dim: int) -> None:
    """A file built as users build one (``put_many`` in batches, ``build_index()``)."""
    from memvid_store import Memory

    with Memory.create(path, dim=dim) as mem:
        for batch in corpus.iter_batches(n, 1000, dim=dim):
            mem.put_many(batch)
        mem.build_index()


def drop_pages(mem: Any, path: Path) -> None:
    """Unmap every page of the file from this process and drop them from the page cache
    (clean pages: the next reads come from disk)."""
    view = mem._snap().view
    view.release(0, view.length)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def phases(path: Path, dim: int) -> list[dict[str, Any]]:
    """p50 / p99 / total and in-query check time of each phase (see the module doc)."""
    from memvid_store import Memory
    from memvid_store.index.vector import stored

    checking = [0.0]
    check = stored.StoredVectors._check

    def timed_check(self: Any, *args: Any) -> None:
        began = time.perf_counter()
        try:
            check(self, *args)
        finally:
            checking[0] += time.perf_counter() - began

    stored.StoredVectors._check = timed_check  # type: ignore[method-assign]
    qs, _ = corpus.query_vectors(WARM + 3 * PHASE, dim=dim)
    new, again = qs[WARM : WARM + PHASE], qs[WARM + PHASE : WARM + 2 * PHASE]
    out = []
    with Memory.open(path, readonly=True) as mem:
        for name, batch in (("warm", qs[:WARM]), ("new", new), ("same", new),
                            ("new again", again), ("after reclaim", qs[WARM + 2 * PHASE :])):
            if name == "after reclaim":
                drop_pages(mem, path)
            checking[0], took = 0.0, []
            for q in batch:
                began = time.perf_counter()
                mem.find(vector=q, k=K, mode="vector")
                took.append(time.perf_counter() - began)
            out.append({"phase": name, "queries": len(batch),
                        "p50_us": float(np.percentile(took, 50)) * 1e6,
                        "p99_us": float(np.percentile(took, 99)) * 1e6,
                        "total_ms": sum(took) * 1e3, "checks_ms": checking[0] * 1e3})
    return out


def markdown(res: dict[str, Any]) -> str:
    r = res["result"]
    lines = heading("Queries reading rows for the first time, and after", res)
    lines += [f"{r['frames']:,} frames x {r['dim']}, k={K}, vector mode, distinct queries of "
              "the corpus's topics in a fresh process.", "",
              "| phase | queries | p50 us | p99 us | total ms | checks in queries ms |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {p['phase']} | {p['queries']} | {p['p50_us']:.0f} | {p['p99_us']:.0f} | "
              f"{p['total_ms']:.0f} | {p['checks_ms']:.0f} |" for p in r["phases"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, help="a file built from bench/corpus.py")
    parser.add_argument("--n", type=int, default=100_000, help="frames to build without --file")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memvid-touch-") as work:
        path = args.file
        if path is None:
            progress(f"first touch: building {args.n:,} x {args.dim}")
            path = Path(work) / "touch.mv2"
            build(path, args.n, args.dim)
        from memvid_store import Memory

        with Memory.open(path, readonly=True) as mem:
            frames = len(mem)
        result = {"frames": frames, "dim": args.dim, "phases": phases(path, args.dim)}
    save(new_result("first_touch.py", result=result), args.out, "first-touch", markdown,
         show=True)


if __name__ == "__main__":
    main()
