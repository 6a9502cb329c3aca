"""``python -m tests.torture [--quick] [--out DIR] [--keep]``: run every torture kind
(counts from ``config.py``), print the table, write ``torture-<stamp>.md``/``.json``."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[2]


def preload() -> None:
    """Import what trials use before forking, so each trial does not pay for it."""
    import importlib

    for name in ("numpy", "zstandard", "tantivy", "usearch.index", "hnswlib",
                 "memvid_store.index.searcher", "memvid_store.index.lexical",
                 "memvid_store.index.vector", "memvid_store.engine.verify"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def lanes_of(items: list[Any], jobs: int) -> list[list[Any]]:
    return [items[i::jobs] for i in range(jobs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.torture")
    parser.add_argument("--quick", action="store_true", help="the CI subset")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    preload()
    from bench.machine import machine_info, summary
    from bench.report import drop_workdir, write_results

    from . import corpus as corpus_mod
    from .config import Counts
    from .damage import Damage
    from .isolate import run_forked, run_lanes
    from .kills import CHAIN, kill_chain
    from .outcome import tally
    from .probe import probe_file
    from .regions import describe
    from .report import markdown, rss_summary, totals
    from .soak import soak

    counts = Counts.from_env(args.quick)
    work = Path(tempfile.mkdtemp(prefix="memvid-torture-"))
    start = time.monotonic()
    log = lambda msg: print(f"[{time.monotonic() - start:6.0f}s] {msg}", flush=True)  # noqa: E731
    desc = run_forked(lambda: corpus_mod.build(work / "corpus"), 300)
    assert "file" in desc, desc
    goldens, intact_kb = {}, 0
    for snap in desc["snaps"]:
        got = run_forked(lambda s=snap: probe_file(s["file"], desc["plan"]), 120)
        assert "obs" in got and not got["verify"], (snap["name"], got)
        goldens[snap["name"]] = got["obs"]
        intact_kb = max(intact_kb, got["rss_kb"] or 0)  # the same reads of intact files
    baseline = run_forked(lambda: {}, 30)["rss_kb"]
    damage = Damage(desc, goldens)
    specs = (damage.crafted() + damage.truncations(counts.truncations)
             + damage.flips(counts.flips, counts.every_byte))
    log(f"corpus {len(damage.data)} bytes; {len(specs)} damage trials, {counts.kills} kills")

    def damage_lane(lane: int, items: list[dict[str, Any]]) -> Any:
        def run() -> list[dict[str, Any]]:
            lane_dir = work / f"lane-{lane}"
            lane_dir.mkdir()
            out = []
            for i, spec in enumerate(items):
                out.append(damage.run(spec, lane_dir, counts.timeout_s))
                if lane == 0 and i % 500 == 0:
                    log(f"damage trial {i * counts.jobs}/{len(specs)}")
            return out
        return run

    chains = [min(CHAIN, counts.kills - c * CHAIN) for c in range(-(-counts.kills // CHAIN))]

    def kill_lane(lane: int, mine: list[int]) -> Any:
        return lambda: [t for c in mine for t in kill_chain(work / f"kills-{c}", c, chains[c])]

    lanes = [damage_lane(i, items) for i, items in enumerate(lanes_of(specs, counts.jobs))]
    lanes += [kill_lane(i, mine) for i, mine in
              enumerate(lanes_of(list(range(len(chains))), counts.jobs))]
    trials = run_lanes(counts.jobs, lanes)
    log(f"damage and kills done; soak for {counts.soak_s:.0f}s")
    if counts.soak_s > 0:
        trials += run_lanes(1, [lambda: soak(work / "soak", counts.soak_s)])
    table = tally(trials)
    res = {
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": ("make torture" if not args.quick else "python -m tests.torture --quick"),
        "env": {k: v for k, v in os.environ.items() if k.startswith("MEMVID_TORTURE_")},
        "counts": counts.__dict__, "seconds": time.monotonic() - start,
        "machine": machine_info(), "corpus_regions": describe(damage.data),
        "corpus_bytes": len(damage.data), "table": table, "totals": totals(table),
        "rss": rss_summary(table, baseline, intact_kb, len(damage.data)),
        "bad_trials": [t for t in trials if t["outcome"] in
                       ("crashed", "raw error", "silently wrong", "harness")],
    }
    res["machine_summary"] = summary(res["machine"])
    json_path, md_path = write_results(res, args.out, "torture", markdown)
    print(markdown(res))
    print(f"results: {md_path} and {json_path}")
    drop_workdir(work, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
