"""Fresh-process first vector answer of two revisions, each on a file it wrote itself.

``python bench/first_answer_ab.py BEFORE AFTER [--n 100000] [--n-after N] [--dim 384]
[--runs 15] [--numpy] [--cold] [--fresh-cache] [--mode vector|lexical|hybrid] [--filter
JSON] [--files BEFORE.mv2 AFTER.mv2]`` checks both git
revisions out into temporary worktrees (their bytecode compiled, as an installed package
has it), has each write ``--n`` corpus vectors (``bench/corpus.py``; AFTER writes
``--n-after`` when given, so one revision can be compared at two sizes: ``HEAD HEAD --n
100000 --n-after 1000000``) and close the file (graph built), or takes the ``--files``
given, then times, in fresh processes taking turns, spawn to the first
``find(vector=..., mode="vector")`` answer (``--mode``: or a lexical or hybrid one).
``--numpy`` imports numpy first, as most applications have by then; ``--cold`` drops the
file's pages from the page cache before each run (a function's first read of a file on
disk); ``--fresh-cache`` gives each run an empty ``MEMVID_CACHE_DIR`` (a new container,
whose first lexical query unpacks the tantivy files). Prints the medians and their ratio
(AFTER / BEFORE); nothing is written to results.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BUILD = """
import sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2])
from bench import corpus
from memvid_store import Memory
n, dim = int(sys.argv[4]), int(sys.argv[5])
mem = Memory.create(sys.argv[3], dim=dim)
for batch in corpus.iter_batches(n, 10000, dim=dim, seed=0, ids=False, embeddings=True):
    mem.put_many(batch)
getattr(mem, "build_index", mem.seal)()  # revisions before build_index() built at close
mem.close()
"""

ANSWER = """
import os, sys, time, json
if sys.argv[5] == "1":
    fd = os.open(sys.argv[2], os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
t0 = time.perf_counter()
if sys.argv[4] == "1":
    import numpy
sys.path.insert(0, sys.argv[1])
from memvid_store import Memory
mem = Memory.open(sys.argv[2], readonly=True)
mode = sys.argv[6]
text = "topic memory agent" if mode != "vector" else None
vector = json.loads(sys.argv[3]) if mode != "lexical" else None
flt = json.loads(sys.argv[7]) or None
hit = mem.find(text, vector=vector, k=10, mode=mode, filter=flt)[0]
print(json.dumps({"inside_ms": (time.perf_counter() - t0) * 1e3, "id": hit.id}))
"""


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), rev],
                   check=True, capture_output=True)
    return where


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--n-after", type=int, default=None)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--numpy", action="store_true", help="import numpy before the library")
    ap.add_argument("--cold", action="store_true", help="drop the file's cached pages first")
    ap.add_argument("--fresh-cache", action="store_true",
                    help="an empty MEMVID_CACHE_DIR for every run")
    ap.add_argument("--mode", choices=("vector", "lexical", "hybrid"), default="vector")
    ap.add_argument("--filter", default="null", help='a filter as JSON, e.g. \'{"priority": 0}\'')
    ap.add_argument("--files", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="existing files to answer from instead of writing them")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from bench import corpus

    query = json.dumps([float(x) for x in corpus.query_vectors(1, dim=args.dim, draw=7)[0][0]])
    with tempfile.TemporaryDirectory(prefix="memvid-ab-") as work:
        trees, files, times = {}, {}, {}
        try:
            sizes = {"before": args.n, "after": args.n_after or args.n}
            for name, rev in (("before", args.before), ("after", args.after)):
                trees[name] = worktree(rev, Path(work) / name)
                subprocess.run([sys.executable, "-m", "compileall", "-q",
                                str(trees[name] / "memvid_store")], check=True)
                if args.files:
                    files[name] = Path(args.files[name == "after"])
                else:
                    files[name] = Path(work) / f"{name}.mv2"
                    subprocess.run([sys.executable, "-c", BUILD, str(trees[name]), str(REPO),
                                    str(files[name]), str(sizes[name]), str(args.dim)],
                                   check=True)
                times[name] = []
            for _ in range(args.runs + 1):  # the first round warms the page cache
                for name in ("before", "after"):
                    env = dict(os.environ)
                    if args.fresh_cache:
                        env["MEMVID_CACHE_DIR"] = tempfile.mkdtemp(dir=work)
                    start = time.perf_counter()
                    subprocess.run([sys.executable, "-c", ANSWER, str(trees[name]),
                                    str(files[name]), query, str(int(args.numpy)),
                                    str(int(args.cold)), args.mode, args.filter], check=True,
                                   capture_output=True, env=env)
                    times[name].append((time.perf_counter() - start) * 1e3)
                    if args.fresh_cache:
                        shutil.rmtree(env["MEMVID_CACHE_DIR"], ignore_errors=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(tree)], capture_output=True)
    medians = {name: statistics.median(t[1:]) for name, t in times.items()}
    print(json.dumps({"n": args.n, "n_after": args.n_after or args.n, "dim": args.dim,
                      "runs": args.runs, "numpy": args.numpy, "cold": args.cold,
                      "fresh_cache": args.fresh_cache, "mode": args.mode, "files": args.files,
                      "filter": json.loads(args.filter),
                      "before": args.before, "after": args.after,
                      "before_ms": round(medians["before"], 1),
                      "after_ms": round(medians["after"], 1),
                      "ratio": round(medians["after"] / medians["before"], 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
