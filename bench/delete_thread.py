"""``MemvidSaver.delete_thread`` of a long LangGraph thread, in a fresh process.

Four threads of ``--turns`` turns each are checkpointed by the one-node chat graph of
``bench/saver_probe.py`` (each turn's blob holds the whole conversation so far), the file
is sealed and the frame cache emptied, then one thread is deleted. Reported: the
deletion's time, median of ``--repeat`` processes. ``--engine DIR`` runs the code of
another checkout. Results: ``bench/results/delete-thread-<stamp>.json`` and ``.md``.

Run ``python bench/delete_thread.py [--turns 150] [--engine DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.engine_bench import RESULTS  # noqa: E402
from bench.report import checkout_rev, heading, new_result, run_in_checkout, save  # noqa: E402

PROBE = """
import json, os, sys, tempfile, time
from bench.saver_probe import build, turn
from memvid_integrations.langgraph import MemvidSaver
from memvid_store import Memory

turns = int(sys.argv[1])
path = os.path.join(tempfile.mkdtemp(), "checkpoints.mv2")
mem = Memory.create(path, sync=False)
saver = MemvidSaver(mem)
graph = build(saver)
for thread in range(4):
    for number in range(1, turns + 1):
        turn(graph, f"t{thread}", number)
mem.seal()
frames = sum(mem.collections().values())
mem._snap().frame_cache.clear()
began = time.perf_counter()
saver.delete_thread("t1")
print(json.dumps({"ms": (time.perf_counter() - began) * 1e3, "frames": frames,
                  "file_mb": os.path.getsize(path) / 2**20}))
"""


def markdown(res: dict[str, Any]) -> str:
    r = res["result"]
    lines = heading("delete_thread of a long LangGraph thread", res)
    lines += [f"4 threads of {r['turns']} turns ({r['frames']:,} frames, {r['file_mb']:.0f} MiB), "
              f"one deleted after the frame cache was emptied, by the code of commit "
              f"{r['engine']}: **{r['ms']:.1f} ms** (median of {r['repeat']} processes: "
              f"{', '.join(f'{ms:.1f}' for ms in r['runs'])}).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine", type=Path, default=HERE.parent,
                        help="a checkout whose code runs (default: this one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = [run_in_checkout(PROBE, [str(args.turns)], args.engine.resolve())
            for _ in range(args.repeat)]
    result = {"turns": args.turns, "repeat": args.repeat, "engine": checkout_rev(args.engine),
              "frames": runs[0]["frames"], "file_mb": runs[0]["file_mb"],
              "runs": [r["ms"] for r in runs], "ms": statistics.median(r["ms"] for r in runs)}
    save(new_result("delete_thread.py", result=result), args.out, "delete-thread", markdown,
         show=True)


if __name__ == "__main__":
    main()
