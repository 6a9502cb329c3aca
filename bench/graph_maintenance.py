"""Graph maintenance off the commit path, measured at scale.

``python bench/graph_maintenance.py --n 1000000 --add 100000`` runs each step in a fresh
process on one file of ``bench/corpus.py`` vectors (128-d, no BM25 index):

1. **load**: ``put_many`` of ``n`` frames, then ``close()``;
2. **build_index**: open, ``build_index()`` (the whole graph), close: seconds and the
   process's peak RSS;
3. **add + close**: open, ``put_many`` of ``add`` more frames, ``close()`` (background
   builds off, so the close is measured alone): its seconds, and the graph it leaves;
4. **query**: vector ``find`` p50 of a fresh reader while the added vectors are the
   exact-scanned tail;
5. **background**: open the writer and wait until its background child has committed the
   extended graph: seconds, and the child's peak RSS;
6. **compact**: open, ``compact()``, close: seconds and the process's peak RSS (the
   kept versions stream into the new file; its graph is built whole).

Writes ``bench/results/graph-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.machine import machine_info, summary  # noqa: E402
from bench.report import write_results  # noqa: E402

DIM = 128
BATCH = 10_000
QUERIES = 200

STEPS = {
    "load": """
from bench import corpus
mem = Memory.create(path, dim=DIM, index={"lexical": False})
t0 = time.perf_counter()
for batch in corpus.iter_batches(N, BATCH, dim=DIM, seed=0, ids=False, embeddings=True):
    mem.put_many(batch)
mem.close()
out = {"seconds": time.perf_counter() - t0}
""",
    "build_index": """
mem = Memory.open(path)
t0 = time.perf_counter()
mem.build_index()
mem.close()
out = {"seconds": time.perf_counter() - t0, "graph": graph(path)}
""",
    "add": """
from bench import corpus
mem = Memory.open(path, graph_background=False)
t0 = time.perf_counter()
for batch in corpus.iter_batches(ADD, BATCH, dim=DIM, seed=1, ids=False, embeddings=True):
    mem.put_many(batch)
put_s = time.perf_counter() - t0
t0 = time.perf_counter()
mem.close()
out = {"put_s": put_s, "close_s": time.perf_counter() - t0, "graph": graph(path)}
""",
    "query": """
import numpy as np
from bench import corpus
qv = np.asarray(corpus.query_vectors(QUERIES, dim=DIM, seed=0)[0], "<f4")
mem = Memory.open(path, readonly=True)
for q in qv[:20]:
    mem.find(vector=q, k=10, mode="vector")
times = []
for q in qv:
    t0 = time.perf_counter()
    mem.find(vector=q, k=10, mode="vector")
    times.append(time.perf_counter() - t0)
mem.close()
out = {"p50_ms": float(np.median(times) * 1e3), "p90_ms": float(np.percentile(times, 90) * 1e3)}
""",
    "background": """
mem = Memory.open(path)
t0 = time.perf_counter()
mem._shared.writer.hook.committed(mem._snap())  # what the writer's next commit does
while mem._snap().toc.find("ann").meta["count"] < mem._snap().toc.counters["vectors"]:
    if mem._shared.writer.hook._background.failures:
        raise SystemExit("the background build failed")
    time.sleep(0.2)
seconds = time.perf_counter() - t0
mem.close()
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
out = {"seconds": seconds, "child_peak_rss_mb": child / 2**20, "graph": graph(path)}
""",
    "compact": """
mem = Memory.open(path)
t0 = time.perf_counter()
mem.compact()
seconds = time.perf_counter() - t0
mem.close()
out = {"seconds": seconds, "graph": graph(path)}
""",
}

PRELUDE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from bench.machine import own_peak_rss_mb
from memvid_store import Memory
path, N, ADD, DIM, BATCH, QUERIES = {path!r}, {n}, {add}, {dim}, {batch}, {queries}

def graph(path):  # the vector index: an HNSW graph, or cluster lists (an ann header)
    with Memory.open(path, readonly=True) as r:
        toc = r._snap().toc
        ref, lists = toc.find("ann"), toc.find("lists")
        if ref is None:
            return None
        alone = ref.meta.get("backend") == "lists"
        return {{"count": ref.meta["count"], "kind": "cluster lists" if alone else "graph",
                 "bytes": ref.length + (lists.length if lists is not None else 0),
                 "ef_search": ref.meta.get("ef_search"),
                 "nprobe": lists.meta.get("nprobe") if lists is not None else None,
                 "nlist": lists.meta.get("nlist") if lists is not None else None,
                 "sample_recall": (lists if alone else ref).meta.get("recall")}}
"""

EPILOGUE = """
out["peak_rss_mb"] = own_peak_rss_mb()
print(json.dumps(out))
"""


def run_step(name: str, path: Path, n: int, add: int) -> dict[str, Any]:
    code = (PRELUDE.format(root=str(HERE.parent), path=str(path), n=n, add=add, dim=DIM,
                           batch=BATCH, queries=QUERIES)
            + STEPS[name] + EPILOGUE)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"step {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(name, result, flush=True)
    return result


def index_name(index: dict[str, Any]) -> str:
    return index.get("kind", "graph")


def calibrated(index: dict[str, Any]) -> str:
    """What was calibrated: the graph's search width, or the lists a query reads."""
    if index.get("kind") == "cluster lists":
        return f"{index['nprobe']} of {index['nlist']} lists a query"
    return f"calibrated ef {index['ef_search']}"


def markdown(res: dict[str, Any]) -> str:
    s = res["steps"]
    n, add = res["n"], res["add"]
    frames = n + (add if "add" in s else 0)  # what compact() rewrites
    rows = {
        "load": lambda r: (f"load {n:,} (put_many, close)", f"{r['seconds']:.1f} s"),
        "build_index": lambda r: (
            f"build_index() of {n:,}", f"{r['seconds']:.1f} s, peak RSS "
            f"{r['peak_rss_mb']:.0f} MB, {index_name(r['graph'])} "
            f"{r['graph']['bytes'] / 2**20:.0f} MB"),
        "add": lambda r: (
            f"put_many of {add:,} more, then **close()**",
            f"{r['put_s']:.1f} s, then **{r['close_s'] * 1e3:.2f} ms** (index still "
            f"{r['graph']['count']:,}; the batches were committed as they came)"),
        "query": lambda r: (f"vector find p50 / p90, {add:,} exact-scanned tail",
                            f"{r['p50_ms']:.2f} / {r['p90_ms']:.2f} ms"),
        "background": lambda r: (
            f"background extension to {r['graph']['count']:,}",
            f"{r['seconds']:.1f} s, child peak RSS {r['child_peak_rss_mb']:.0f} MB, "
            f"{calibrated(r['graph'])} (sample recall {r['graph']['sample_recall']})"),
        "compact": lambda r: (f"compact() of {frames:,}", f"{r['seconds']:.1f} s, peak RSS "
                              f"{r['peak_rss_mb']:.0f} MB"),
    }
    lines = [f"## Graph maintenance ({res['timestamp']})", "",
             f"Machine: {summary(res['machine'])}  ", f"Command: `{res['command']}`", "",
             f"{n:,} frames of {DIM}-d bench corpus vectors (no BM25 index), then {add:,} more.",
             "", "| step | figure |", "| --- | --- |"]
    lines += ["| {} | {} |".format(*rows[name](s[name])) for name in s]
    if res.get("targets"):
        lines += ["", "Targets:", ""] + [
            f"- {'met' if t['met'] else 'MISSED'}: {t['target']} ({t['value']:.4g})"
            for t in res["targets"]]
    return "\n".join(lines) + "\n"


def rewrite(json_path: Path) -> Path:
    """The markdown report of a stored JSON result, written again (after a format change)."""
    res = json.loads(json_path.read_text())
    md = json_path.with_suffix(".md")
    md.write_text(markdown(res))
    return md


CLOSE_TARGET_S = 10.0  # close() after adding vectors to a large file
BUILD_RSS_TARGET_MB = 512  # peak RSS of build_index() and of compact() at 1M x 128


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets this run measures (the memory ones at 1M frames only)."""
    s, out = res["steps"], []
    if "add" in s:
        close = s["add"]["close_s"]
        out.append({"target": f"close() after adding {res['add']:,} vectors to "
                              f"{res['n']:,} frames <= {CLOSE_TARGET_S:.0f} s",
                    "value": close, "met": close <= CLOSE_TARGET_S})
    if res["n"] >= 1_000_000:
        for name in ("build_index", "compact"):
            if name in s:
                peak = s[name]["peak_rss_mb"]
                out.append({"target": f"{name}() peak RSS <= {BUILD_RSS_TARGET_MB} MB",
                            "value": peak, "met": peak <= BUILD_RSS_TARGET_MB})
    return out


def measure(n: int, add: int, steps: list[str], command: str, out_dir: Path,
            workdir: str | None = None) -> dict[str, Any]:
    """Run ``steps`` on a temporary file (in ``workdir``); write and return the results."""
    done: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="memvid-graph-", dir=workdir) as work:
        path = Path(work) / "g.mv2"
        for name in steps:
            done[name] = run_step(name, path, n, add)
    res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": command,
           "machine": machine_info(), "n": n, "add": add, "steps": done}
    res["targets"] = targets(res)
    json_path, md_path = write_results(res, out_dir, "graph", markdown)
    res["files"] = [str(json_path), str(md_path)]
    return res


def run(full: bool = False, workdir: str | None = None, out_dir: Path = HERE / "results"
        ) -> dict[str, Any]:
    """``make bench``'s entry: 100k frames + 30k (an extension due and longer than
    ``graph_sync_limit``); ``full``: 1M + 100k."""
    n, add = (1_000_000, 100_000) if full else (100_000, 30_000)
    command = f"python bench/graph_maintenance.py --n {n} --add {add}"
    return measure(n, add, list(STEPS), command, out_dir, workdir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--add", type=int, default=100_000)
    ap.add_argument("--steps", default=",".join(STEPS),
                    help="comma-separated steps to run, in order (load first)")
    args = ap.parse_args(argv)
    command = "python bench/graph_maintenance.py " + " ".join(argv or sys.argv[1:])
    res = measure(args.n, args.add, args.steps.split(","), command, HERE / "results")
    print(f"results: {', '.join(res['files'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
