"""Warm query latency of two revisions on one file, processes taking turns.

``python bench/warm_ab.py BEFORE AFTER --file FILE.mv2 [--rounds 3] [--filter JSON]
[--mode vector|lexical|hybrid]`` checks both git revisions out into temporary worktrees
(bytecode compiled) and runs, in turn, ``--rounds`` fresh processes of each: open the file
read-only, answer ``--warmup`` distinct corpus queries (``bench/corpus.py``: vectors of the
file's dimension, texts, or both), then time
``--queries`` more. Prints each revision's median over rounds of the per-process p50 and
p99 (ms) and their ratio (AFTER / BEFORE). The file is the same for both, so its graph
and calibrated width are too: what differs is the code. Nothing is written to results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.first_answer_ab import worktree  # noqa: E402

TIMED = """
import json, sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2])
import numpy as np
from bench.corpus import query_texts, query_vectors
from memvid_store import Memory
mem = Memory.open(sys.argv[3], readonly=True)
warmup, count, flt = int(sys.argv[4]), int(sys.argv[5]), json.loads(sys.argv[6]) or None
mode = sys.argv[7]
vectors, _ = query_vectors(warmup + count, dim=mem.dim, draw=9)
texts = [t for t, _ in query_texts(warmup + count, seed=9)]
queries = [(None if mode == "vector" else t, None if mode == "lexical" else v)
           for t, v in zip(texts, vectors)]
for text, vector in queries[:warmup]:
    mem.find(text, vector=vector, k=10, mode=mode, filter=flt)
took = []
for text, vector in queries[warmup:]:
    start = time.perf_counter()
    mem.find(text, vector=vector, k=10, mode=mode, filter=flt)
    took.append((time.perf_counter() - start) * 1e3)
print(json.dumps({"p50": float(np.median(took)), "p99": float(np.percentile(took, 99))}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--file", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--filter", default="null", help='a filter as JSON, e.g. \'{"priority": 0}\'')
    ap.add_argument("--mode", choices=("vector", "lexical", "hybrid"), default="vector")
    args = ap.parse_args(argv)
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="memvid-warm-ab-") as work:
        trees = {}
        try:
            for name, rev in (("before", args.before), ("after", args.after)):
                trees[name] = worktree(rev, Path(work) / name)
                subprocess.run([sys.executable, "-m", "compileall", "-q",
                                str(trees[name] / "memvid_store")], check=True)
            for _ in range(args.rounds):
                for name in ("before", "after"):
                    out = subprocess.run(
                        [sys.executable, "-c", TIMED, str(trees[name]), str(REPO), args.file,
                         str(args.warmup), str(args.queries), args.filter, args.mode],
                        check=True, capture_output=True, text=True)
                    runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(tree)], capture_output=True)
    result = {"file": args.file, "mode": args.mode, "filter": json.loads(args.filter),
              "rounds": args.rounds,
              "before": args.before, "after": args.after}
    for name, got in runs.items():
        for stat in ("p50", "p99"):
            result[f"{name}_{stat}_ms"] = round(statistics.median(r[stat] for r in got), 3)
    result["p50_ratio"] = round(result["after_p50_ms"] / result["before_p50_ms"], 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
