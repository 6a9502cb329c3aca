"""Run every benchmark, write results to bench/results/ and print the tables.

``python bench/run_all.py`` runs the default sizes (a few minutes); ``--full`` or
``MEMVID_BENCH_FULL=1`` adds the 1M-frame runs. ``--only engine`` / ``--only search`` /
``--only coldstart`` / ``--only prefetch`` / ``--only listing`` / ``--only adapters`` runs a
subset (``adapters``: every framework adapter against its in-memory reference, 100k;
``graph``: graph maintenance and compaction, 100k + 30k, ``--full`` 1M + 100k;
``sharded``: fan-out over 4 shards against one file, 100k; ``cluster``: ingestion on 1 and
2 Ray workers, fan-out against shard count, shards served by Ray actors; ``scale``:
ingest, first answer, warm queries and compaction, 100k, ``--full`` 1M and 3M; ``peers``:
warm vector queries beside numpy, faiss, hnswlib and usearch, 1k-100k, ``--full`` 1M).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import (  # noqa: E402
    adapters,
    cluster_bench,
    coldstart,
    engine_bench,
    graph_maintenance,
    listing_bench,
    peers,
    prefetch_bench,
    scale,
    search_bench,
    sharded,
)

# name -> (run(full=...) -> result dict, markdown(result) -> str)
BENCHES: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "engine": (engine_bench.run, engine_bench.markdown),
    "search": (search_bench.run, search_bench.markdown),
    "coldstart": (coldstart.run, coldstart.markdown),
    "prefetch": (prefetch_bench.run, prefetch_bench.markdown),
    "listing": (listing_bench.run, listing_bench.markdown),
    "adapters": (adapters.run, adapters.markdown),
    "graph": (graph_maintenance.run, graph_maintenance.markdown),
    "sharded": (sharded.run, sharded.markdown),
    "cluster": (cluster_bench.run, cluster_bench.markdown),
    "scale": (scale.run, scale.markdown),
    "peers": (peers.run, peers.markdown),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", default=engine_bench.full_requested(),
                        help="include 1M-frame runs (or MEMVID_BENCH_FULL=1)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES),
                        help="run only these benchmarks (repeatable)")
    parser.add_argument("--workdir", help="where benchmark files go (default: temp dir)")
    parser.add_argument("--out", type=Path, default=engine_bench.RESULTS)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    sections, missed, files = [], [], []
    for name in args.only or list(BENCHES):
        run, markdown = BENCHES[name]
        print(f"[{name}] running{' (full)' if args.full else ''}...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        res = run(full=args.full, workdir=args.workdir, out_dir=args.out)
        print(f"[{name}] done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        sections.append(markdown(res))
        files += res.get("files", [])
        missed += [f"{name}: {t['target']}" for t in res.get("targets", []) if not t["met"]]

    report = "# memvid-py benchmarks\n\n" + "\n".join(sections)
    if missed:
        report += "\n**Targets missed:** " + "; ".join(missed) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    latest = args.out / "latest.md"
    latest.write_text(report)
    print(report)
    print("results: " + ", ".join([*files, str(latest)]))
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
