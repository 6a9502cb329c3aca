"""Run the serverless handler locally: cold invocations in fresh processes, warm ones in one.

1. Builds a sample memory (the bundled notes of examples/data/, repeated up to ``--frames``,
   embedded with the model-free ``HashEmbedder``) unless ``MEMVID_PATH`` / ``--path`` names
   an existing file.
2. Cold: ``--cold`` times, a new Python process imports handler.py (which opens the file)
   and answers one query, as a new Lambda instance would.
3. Warm: one process answers ``--warm`` distinct queries after its first (cold) one, as a
   reused instance would.

The page cache and the bytecode cache are warm (the file was just written, bytecode is
cached under ``<file dir>/pycache`` unless ``PYTHONPYCACHEPREFIX`` is set, and a first
process is run and discarded), so cold here means a new process, not a new machine.

Run: python examples/serverless/local_driver.py [--cold 5] [--warm 20] [--mode hybrid]
     [--frames 2000] [--path FILE] [--build-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/: the bundled notes loader of demo.py
sys.path.insert(0, str(HERE))

from demo import load_notes  # noqa: E402
from settings import MODES, memory_path  # noqa: E402

QUERIES = ("how much is the budget for Q1?", "router factory reset", "when does Atlas launch?",
           "disk latency on the storage cluster", "上海办公室每周有多少工单?",
           "what should I pack for a rainy trip?")
DIM = 384

# One process: import the handler (init: imports + Memory.open), then invoke it.
CHILD = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import handler
t1 = time.perf_counter()
events = json.loads(sys.argv[2])
runs = []
for event in events:
    s = time.perf_counter()
    out = handler.handler(event)
    runs.append({"ms": (time.perf_counter() - s) * 1e3, "cold": out["cold"],
                 "hits": [h["id"] for h in out["hits"]], "metrics": out.get("metrics")})
print("DRIVER " + json.dumps({"init_ms": (t1 - t0) * 1e3, "runs": runs}))
"""


def sample_records(frames: int) -> list[dict[str, Any]]:
    """The bundled notes, then numbered copies of them until there are ``frames`` records."""
    notes = load_notes()
    records = []
    for i in range(frames):
        note = dict(notes[i % len(notes)])
        if i >= len(notes):
            note["id"] = f"{note['id']}-copy{i // len(notes)}"
            note["text"] = f"{note['text']} (copy {i // len(notes)})"
        records.append(note)
    return records


def build(path: Path, frames: int) -> str:
    """Write the sample memory; returns how its vectors were made."""
    from memvid_store import Memory

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    records = sample_records(frames)
    try:
        from memvid_store.embeddings import HashEmbedder
    except ImportError:  # an engine without embedders: fixed pseudo-random vectors
        rng = random.Random(0)
        for rec in records:
            rec["embedding"] = [rng.gauss(0.0, 1.0) for _ in range(DIM)]
        with Memory.create(path, dim=DIM) as mem:
            mem.put_many(records)
        return "random vectors (lexical search only for text queries)"
    with Memory.create(path, embedder=HashEmbedder(DIM)) as mem:
        mem.put_many(records)
    return f"HashEmbedder({DIM})"


def invoke(path: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    """One fresh process answering ``events``; adds its wall time and the EMF line."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # bytecode is cached as for an installed package (a deployment ships .pyc files)
    env.setdefault("PYTHONPYCACHEPREFIX", str(path.parent / "pycache"))
    env["MEMVID_PATH"] = str(path)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(HERE), json.dumps(events)],
                         capture_output=True, text=True, env=env, timeout=300)
    wall = (time.perf_counter() - started) * 1e3
    if out.returncode != 0:
        raise SystemExit(f"the handler process failed:\n{out.stderr}")
    lines = out.stdout.splitlines()
    result = json.loads(next(line for line in lines if line.startswith("DRIVER "))[7:])
    emf = [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]
    return {**result, "process_ms": wall, "emf": emf}


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def warm_queries(n: int) -> list[str]:
    """``n`` distinct queries (repeats would be answered by the per-snapshot result cache):
    the fixed questions, then the first words of each bundled note."""
    pool = list(QUERIES) + [" ".join(note["text"].split()[:6]) for note in load_notes()]
    pool = list(dict.fromkeys(pool))
    return [pool[i % len(pool)] + (f" {i // len(pool)}" if i >= len(pool) else "")
            for i in range(n)]


def run(path: Path, cold: int, warm: int, mode: str) -> dict[str, Any]:
    events = [{"query": q, "mode": mode, "k": 5} for q in QUERIES]
    invoke(path, events[:1])  # warm the page and bytecode caches; not counted
    colds = [invoke(path, [events[i % len(events)]]) for i in range(cold)]
    reused = invoke(path, [{"query": q, "mode": mode, "k": 5} for q in warm_queries(warm + 1)])
    warm_ms = [r["ms"] for r in reused["runs"][1:]]
    first = [c["runs"][0] for c in colds]
    return {
        "path": str(path), "mode": mode, "cold_runs": cold, "warm_runs": len(warm_ms),
        "cold": {
            "process_ms": median([c["process_ms"] for c in colds]),
            "init_ms": median([c["init_ms"] for c in colds]),
            "invoke_ms": median([r["ms"] for r in first]),
            "cold_start_ms": median([r["metrics"]["cold_start_ms"] for r in first
                                     if r["metrics"]["cold_start_ms"] is not None]),
            "rss_mb": median([r["metrics"]["rss_mb"] for r in first
                              if r["metrics"]["rss_mb"] is not None]),
        },
        "warm": {"invoke_ms": median(warm_ms),
                 "invoke_p90_ms": sorted(warm_ms)[int(0.9 * (len(warm_ms) - 1))]
                 if warm_ms else None},
        "hits": first[0]["hits"] if first else [],
        "emf_lines": sum(len(c["emf"]) for c in colds) + len(reused["emf"]),
        "emf_example": colds[0]["emf"][0] if colds and colds[0]["emf"] else None,
        "alerts": sorted({a["message"] for r in first for a in r["metrics"]["alerts"]}),
    }


def table(res: dict[str, Any]) -> str:
    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x:,.1f} ms"

    c, w = res["cold"], res["warm"]
    rows = [
        ("new process to answer (wall, seen by the driver)", ms(c["process_ms"]), "-"),
        ("process start to first answer (ColdStartMetrics)", ms(c["cold_start_ms"]), "-"),
        ("init: import handler + Memory.open", ms(c["init_ms"]), "-"),
        (f"invocation: {res['mode']} find, k=5", ms(c["invoke_ms"]),
         f"{ms(w['invoke_ms'])} (p90 {ms(w['invoke_p90_ms'])})"),
        ("RSS after the first answer", "-" if c["rss_mb"] is None else f"{c['rss_mb']:.0f} MB",
         "-"),
    ]
    lines = [f"| figure | cold (median of {res['cold_runs']}) | "
             f"warm (median of {res['warm_runs']}) |", "| --- | ---: | ---: |"]
    lines += [f"| {a} | {b} | {d} |" for a, b, d in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path,
                        default=Path(memory_path()))
    parser.add_argument("--frames", type=int, default=2000, help="frames of the sample file")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the sample file")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--cold", type=int, default=5, help="cold invocations (processes)")
    parser.add_argument("--warm", type=int, default=20, help="warm invocations")
    parser.add_argument("--mode", choices=MODES, default="hybrid")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.cold < 1 or args.warm < 0 or args.frames < 1:
        parser.error("--cold >= 1, --warm >= 0 and --frames >= 1")
    if args.rebuild or not args.path.exists():
        how = build(args.path, args.frames)
        print(f"built {args.path}: {args.frames} frames, {how}", file=sys.stderr)
    if args.build_only:
        return 0
    res = run(args.path, args.cold, args.warm, args.mode)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(table(res))
        print(f"\nfirst cold answer: {res['hits']}")
        print(f"EMF lines printed: {res['emf_lines']} (one per cold process)")
        print(f"alerts: {res['alerts'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
