"""Posting lists: what they cost at ingest, on disk and in merges, and what a lookup costs.

* **ingest**: ``put_many`` of corpus frames with metadata and tags (no embeddings, no search
  indexes, fsync on, 1,000 per call, including ``close()``), each run in a fresh process.
  With ``--baseline DIR`` (a source tree of the code to compare with, e.g. from
  ``git archive <commit>``) the two trees alternate run by run and the ratio of medians is
  reported.
* **bytes**: the posting parts (``tkey``, ``toff``, ``trows``) of the runs of an
  ``--size`` file (default 100k frames), per frame, next to the whole run segments.
* **merge**: ``merge_runs`` of all that file's runs into one, and the share of it spent
  regrouping postings (``merge_postings`` on the same parts); computing the postings of a
  run written without them from its payloads (the one-off cost of an older file's run).
* **lookup**: ``Snapshot.posted`` of a tag term in a fresh snapshot (posting parts
  checked on first use) and warm, and ``posted_count``.

Run ``python bench/postings_bench.py [--baseline DIR] [--repeats 3] [--ingest 20000]
[--size 100000]``; results go to ``bench/results/postings-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BATCH = 1000
ENGINE_ONLY = {"ann_backend": "none", "lexical": False}
TAG = "t\x00topic-3"

CHILD = """
import json, sys, time
tree, bench, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path[:0] = [tree, bench]
from bench import corpus
from memvid_store import Memory
batches = list(corpus.iter_batches(n, {batch}, ids=False, embeddings=False))
t0 = time.perf_counter()
mem = Memory.create(path, index={index!r})
for records in batches:
    mem.put_many(records)
mem.close()
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""


def ingest_once(tree: Path, path: Path, n: int) -> float:
    code = CHILD.format(batch=BATCH, index=ENGINE_ONLY)
    out = subprocess.run([sys.executable, "-c", code, str(tree), str(HERE.parent), str(path),
                          str(n)], capture_output=True, text=True, check=True, timeout=1800)
    path.unlink()
    return float(json.loads(out.stdout)["seconds"])


def ingest_suite(trees: dict[str, Path], n: int, repeats: int, workdir: Path
                 ) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(repeats):
        for name, tree in trees.items():
            seconds[name].append(ingest_once(tree, workdir / f"ingest-{name}.mv2", n))
    out: dict[str, Any] = {"n": n, "repeats": repeats}
    for name, values in seconds.items():
        out[name] = {"seconds": values, "frames_per_s": n / statistics.median(values)}
    if "baseline" in out:
        out["ratio"] = out["postings"]["frames_per_s"] / out["baseline"]["frames_per_s"]
    return out


def median_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def file_suite(n: int, repeats: int, workdir: Path) -> dict[str, Any]:
    import numpy as np

    from bench import corpus
    from memvid_store import Memory
    from memvid_store.engine.runs import (
        NP_TYPES,
        PART_TYPES,
        POSTING_PARTS,
        RunReader,
        merge_postings,
    )
    from memvid_store.engine.store import make_snapshot, merge_runs, read_state

    path = workdir / "postings.mv2"
    with Memory.create(path, index=ENGINE_ONLY) as mem:
        for records in corpus.iter_batches(n, BATCH, ids=False, embeddings=False):
            mem.put_many(records)
    fd = os.open(path, os.O_RDONLY)
    try:
        snap = make_snapshot(fd, read_state(fd), True)
        runs = snap.runs
        posting_bytes = sum(run.header["parts"][p][1] for run in runs for p in POSTING_PARTS)
        run_bytes = sum(run.ref.length for run in runs)
        entries = sum(len(run.part("trows")) for run in runs)
        terms = sum(len(run.part("tkey")) for run in runs)
        merge_ms = median_ms(lambda: merge_runs(runs, snap), repeats)
        parts = [(*(np.frombuffer(run.raw_part(p), NP_TYPES[PART_TYPES[p]])
                    for p in POSTING_PARTS), run.base - runs[0].base) for run in runs]
        regroup_ms = median_ms(lambda: merge_postings(parts), repeats)
        largest = max(runs, key=lambda r: r.n)

        def compute() -> None:
            snap.computed_postings(RunReader(snap.view, largest.ref))

        compute_ms = median_ms(compute, 1)
        fresh = make_snapshot(fd, read_state(fd), True)
        t0 = time.perf_counter()
        hits = len(fresh.posted(TAG))
        first_ms = (time.perf_counter() - t0) * 1e3
        warm_ms = median_ms(lambda: fresh.posted(TAG), repeats * 3)
        count_us = median_ms(lambda: fresh.posted_count(TAG), repeats * 3) * 1e3
        fresh.close(view=True)
        snap.close(view=True)
    finally:
        os.close(fd)
    return {
        "n": n, "runs": len(runs), "run_sizes": [run.n for run in runs],
        "posting_bytes": posting_bytes, "posting_bytes_per_frame": posting_bytes / n,
        "run_bytes_per_frame": run_bytes / n, "file_bytes": path.stat().st_size,
        "postings_per_frame": entries / n, "terms_in_runs": terms,
        "merge_all_ms": merge_ms, "merge_postings_ms": regroup_ms,
        "legacy_compute_ms": compute_ms, "legacy_compute_rows": largest.n,
        "posted_first_ms": first_ms, "posted_warm_ms": warm_ms, "posted_hits": hits,
        "posted_count_us": count_us,
    }


def markdown(res: dict[str, Any]) -> str:
    ing, f = res["ingest"], res["file"]
    lines = [f"# Posting lists ({res['timestamp']})", "", res["machine"], "",
             f"Command: `{res['command']}`", "",
             f"## Ingest: {ing['n']:,} frames with metadata and tags, put_many of {BATCH:,}, "
             f"fsync on, no indexes, median of {ing['repeats']}", "",
             "| code | frames/s | seconds per run |", "| --- | --- | --- |"]
    for name in ("baseline", "postings"):
        if name in ing:
            runs = ", ".join(f"{s:.2f}" for s in ing[name]["seconds"])
            lines.append(f"| {name} | {ing[name]['frames_per_s']:,.0f} | {runs} |")
    if "ratio" in ing:
        lines += ["", f"postings / baseline: **{ing['ratio']:.3f}**"]
    lines += ["", f"## A {f['n']:,}-frame file ({f['runs']} runs: {f['run_sizes']})", "",
              "| figure | value |", "| --- | --- |",
              f"| postings per frame | {f['postings_per_frame']:.2f} |",
              f"| posting bytes per frame | {f['posting_bytes_per_frame']:.1f} |",
              f"| run bytes per frame (all parts) | {f['run_bytes_per_frame']:.1f} |",
              f"| file bytes | {f['file_bytes']:,} |",
              f"| merge_runs of all runs | {f['merge_all_ms']:.1f} ms |",
              f"| of which regrouping postings | {f['merge_postings_ms']:.1f} ms |",
              f"| postings computed from payloads ({f['legacy_compute_rows']:,} rows) | "
              f"{f['legacy_compute_ms']:.0f} ms |",
              f"| posted(tag), fresh snapshot ({f['posted_hits']:,} hits) | "
              f"{f['posted_first_ms']:.2f} ms |",
              f"| posted(tag), warm | {f['posted_warm_ms']:.2f} ms |",
              f"| posted_count(tag), warm | {f['posted_count_us']:.1f} µs |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="source tree of the code to compare")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ingest", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE.parent))
    from bench.machine import machine_info, summary

    trees = {"postings": HERE.parent}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    with tempfile.TemporaryDirectory(dir=os.environ.get("MEMVID_BENCH_DIR")) as tmp:
        work = Path(tmp)
        res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "command": "python bench/postings_bench.py " + " ".join(argv or sys.argv[1:]),
               "machine": summary(machine_info(work)),
               "ingest": ingest_suite(trees, args.ingest, args.repeats, work),
               "file": file_suite(args.size, args.repeats, work)}
    RESULTS.mkdir(exist_ok=True)
    stamp = res["timestamp"].replace(":", "").replace("-", "")[:15]
    (RESULTS / f"postings-{stamp}.json").write_text(json.dumps(res, indent=2) + "\n")
    text = markdown(res)
    (RESULTS / f"postings-{stamp}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
