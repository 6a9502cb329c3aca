"""Where a graph build's and a compaction's memory goes, phase by phase.

``python bench/memory_phases.py --n 300000`` loads ``n`` 128-d bench corpus vectors (no
BM25 index) into a file, then in fresh processes runs ``build_index()`` on one copy and
``compact()`` on another (``--steps``; ``--with-graph`` first gives the loaded file its
graph with ``build_index()`` in a fresh process, so that a compaction carries it over),
sampling ``/proc/self/status`` every 10 ms: the peak resident memory (anonymous and
file-backed: mapped pages of the file count too) in each phase.
Phases: a compaction's chunk commits and its final commit; inside a graph build, the
batches being added, the calibration, the save. Linux only. Writes
``bench/results/memphases-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.machine import machine_info  # noqa: E402
from bench.report import heading, save  # noqa: E402

DIM = 128
BATCH = 10_000

LOAD = """
import json, time
from bench import corpus
from bench.machine import own_peak_rss_mb
from memvid_store import Memory
start = time.perf_counter()
mem = Memory.create(PATH, dim=DIM, index={"lexical": LEXICAL})
for batch in corpus.iter_batches(N, BATCH, dim=DIM, seed=0, ids=False, embeddings=True):
    mem.put_many(batch)
mem.close()
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak": own_peak_rss_mb()}))
"""

# run in a fresh process: samples resident memory per phase while ``STEP`` runs
SAMPLED = """
import json, threading, time
def resident():
    got = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("RssAnon:", "RssFile:")):
                got[line[:7]] = int(line.split()[1]) / 1024
    return got
phase, peaks = ["open"], {}
def sample():
    while True:
        now = resident()
        total = now["RssAnon"] + now["RssFile"]
        if total > peaks.get(phase[0], {"total": 0})["total"]:
            peaks[phase[0]] = {"total": total, "anon": now["RssAnon"], "file": now["RssFile"]}
        time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
def during(owner, name, label):
    real = getattr(owner, name)
    def wrapped(*args, **kwargs):
        outer, phase[0] = phase[0], label
        try:
            return real(*args, **kwargs)
        finally:
            phase[0] = outer
    setattr(owner, name, wrapped)
from memvid_store.engine import store
from memvid_store.index.vector import graph_build, graph_carry, graph_update, hnsw
real_commit = store.Committer.commit
def commit(self, versions, **kwargs):
    carrying = getattr(self.maintainer, "_carried", None) is not None
    phase[0] = ("chunk commits" if versions
                else "commit of the carried graph" if carrying else "final commit")
    return real_commit(self, versions, **kwargs)
store.Committer.commit = commit
during(hnsw.StreamedGraph, "add", "graph: adding batches")
during(graph_update, "_calibrate", "graph: calibration")
during(graph_build, "_saved", "graph: save")
during(graph_build, "relink", "graph: relink (in the save)")
during(graph_carry, "carry_graph", "graph: checked and renumbered")
from memvid_store import Memory
mem = Memory.open(PATH)
phase[0] = STEP
start = time.perf_counter()
getattr(mem, STEP)()
seconds = time.perf_counter() - start
phase[0] = "close"
mem.close()
time.sleep(0.05)
print(json.dumps({"seconds": seconds, "phases": peaks}))
"""


def run_code(code: str, **values: Any) -> str:
    """Run ``code`` in a fresh interpreter with ``values`` bound; its stdout."""
    prelude = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    done = subprocess.run([sys.executable, "-c", prelude + code], check=True,
                          capture_output=True, text=True, cwd=HERE.parent)
    return done.stdout


def measure(n: int, work: Path, steps_wanted: list[str], with_graph: bool = False,
            lexical: bool = False) -> dict[str, Any]:
    loaded = work / "loaded.mv2"
    load = json.loads(run_code(LOAD, PATH=str(loaded), N=n, DIM=DIM, BATCH=BATCH,
                               LEXICAL=lexical).strip().splitlines()[-1])
    steps: dict[str, Any] = {"load": {"seconds": load["seconds"], "phases": {
        "put_many, close (peak of the process)": {"total": load["peak"], "anon": None,
                                                  "file": None}}}}
    if with_graph:  # the loaded file's own graph, which the steps then start from
        out = run_code(SAMPLED, PATH=str(loaded), STEP="build_index")
        steps["build_index (the loaded file's graph)"] = json.loads(
            out.strip().splitlines()[-1])
    for step in steps_wanted:
        path = work / f"{step}.mv2"
        shutil.copy(loaded, path)
        out = run_code(SAMPLED, PATH=str(path), STEP=step)
        steps[step] = json.loads(out.strip().splitlines()[-1])
        path.unlink()
    return steps


def markdown(res: dict[str, Any]) -> str:
    lines = heading("Memory by phase", res)
    index = "with a BM25 index" if res.get("lexical") else "no BM25 index"
    lines += [f"{res['n']:,} frames of 128-d bench corpus vectors, {index}; peak "
              "resident MB in each phase (anonymous + mapped file pages).", "",
              "| step | phase | peak MB | anonymous | file-backed |",
              "| --- | --- | ---: | ---: | ---: |"]
    for step, got in res["steps"].items():
        for phase, peak in got["phases"].items():
            split = (["", ""] if peak["anon"] is None
                     else [f"{peak['anon']:.0f}", f"{peak['file']:.0f}"])
            lines.append(f"| {step} ({got['seconds']:.0f} s) | {phase} | {peak['total']:.0f} | "
                         f"{split[0]} | {split[1]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=300_000)
    ap.add_argument("--steps", default="build_index,compact",
                    help="what to run on copies of the loaded file (comma-separated)")
    ap.add_argument("--with-graph", action="store_true",
                    help="build the loaded file's graph before the steps")
    ap.add_argument("--lexical", action="store_true",
                    help="give the file a BM25 index of the frames' texts too")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memvid-memphases-") as work:
        steps = measure(args.n, Path(work), args.steps.split(","), args.with_graph,
                        args.lexical)
    res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": "python bench/memory_phases.py " + " ".join(argv or sys.argv[1:]),
           "machine": machine_info(), "n": args.n, "lexical": args.lexical, "steps": steps}
    save(res, HERE / "results", "memphases", markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
