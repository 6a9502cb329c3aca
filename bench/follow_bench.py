"""Following readers: the cost of the freshness check, and of catching up.

Usage::

    python bench/follow_bench.py [--frames 10000] [--calls 200000] [--workdir DIR] [--keep]

One file of ``--frames`` frames (committed, plus 100 in the WAL), a writable handle and two
readonly handles: one with ``follow=True``, one without. Figures (per call, median of
batches of 1,000 calls; batches of the two readers interleaved so that machine noise hits
them alike):

* ``check``: the follower's freshness check alone (``ReaderFile.news``) when nothing
  changed: two ``pread`` calls and one ``stat``. Target: <= 20 µs.
* ``get`` of the same id on the plain reader and on the follower; the difference is what
  following costs a read that finds nothing new.
* ``after put``: the follower's first ``get`` after one ``put`` by the writer (replays the
  one new WAL record); ``after seal``: its first ``get`` after a commit (reloads the
  header, TOC and WAL, reusing the run readers).

Results: ``bench/results/follow-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.machine import machine_info, summary  # noqa: E402
from bench.report import write_results  # noqa: E402

RESULTS = HERE / "results"
BATCH = 1000
TARGET_US = 20.0


def per_call_us(fn: Callable[[], Any], batches: int) -> list[float]:
    """µs per call of each batch of BATCH calls."""
    out = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(BATCH):
            fn()
        out.append((time.perf_counter() - start) / BATCH * 1e6)
    return out


def interleaved(fns: dict[str, Callable[[], Any]], calls: int) -> dict[str, float]:
    """Median µs per call of each function, their batches interleaved."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(max(1, calls // BATCH)):
        for name, fn in fns.items():
            times[name] += per_call_us(fn, 1)
    return {name: statistics.median(t) for name, t in times.items()}


def run(*, frames: int, calls: int, workdir: str | None, keep: bool) -> dict[str, Any]:
    from memvid_store import Memory

    base = Path(workdir or os.environ.get("MEMVID_BENCH_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="memvid-follow-", dir=base))
    path = str(work / "follow.mv2")
    res: dict[str, Any] = {
        "bench": "follow",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": {"frames": frames, "calls": calls, "batch": BATCH,
                       "target_check_us": TARGET_US},
        "machine": machine_info(work),
    }
    try:
        with Memory.create(path, index={"ann_backend": "none", "lexical": False}) as w:
            for start in range(0, frames, 1000):
                w.put_many([{"text": f"frame {i} " + "x" * 200, "id": f"f{i:07d}"}
                            for i in range(start, min(frames, start + 1000))])
        w = Memory.open(path, sync=False)
        for i in range(100):
            w.put(f"wal frame {i}", id=f"w{i:03d}")
        plain = Memory.open(path, readonly=True)
        fol = Memory.open(path, readonly=True, follow=True)
        probe = f"f{frames // 2:07d}"
        assert plain.get(probe).text == fol.get(probe).text
        check = fol._reader.news  # the freshness check alone
        figures = interleaved({"check": check, "get_plain": lambda: plain.get(probe),
                               "get_follow": lambda: fol.get(probe)}, calls)
        figures["follow_overhead"] = figures["get_follow"] - figures["get_plain"]

        after_put, after_seal = [], []
        for i in range(200):
            w.put(f"new frame {i}", id=f"n{i:03d}")
            start = time.perf_counter()
            fol.get(f"n{i:03d}")
            after_put.append((time.perf_counter() - start) * 1e6)
        for i in range(20):
            w.put(f"sealed frame {i}", id=f"s{i:03d}")
            w.seal()
            start = time.perf_counter()
            fol.get(f"s{i:03d}")
            after_seal.append((time.perf_counter() - start) * 1e6)
        figures["after_put"] = statistics.median(after_put)
        figures["after_seal"] = statistics.median(after_seal)
        res["figures_us"] = figures
        res["targets"] = [{"name": "freshness check, nothing changed", "value_us":
                           figures["check"], "target_us": TARGET_US,
                           "met": figures["check"] <= TARGET_US}]
        for mem in (fol, plain, w):
            mem.close()
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    res["files"] = [str(p) for p in write_results(res, RESULTS, "follow", markdown)]
    return res


def markdown(res: dict[str, Any]) -> str:
    f, p = res["figures_us"], res["parameters"]
    lines = [
        f"## Following readers ({res['timestamp']})", "",
        f"Machine: {summary(res['machine'])}  ",
        f"{p['frames']} frames (+100 in the WAL), {p['calls']} calls per figure, medians of "
        f"batches of {p['batch']} calls, batches interleaved.", "",
        "| figure | µs per call |", "| --- | ---: |",
        f"| freshness check, nothing changed (target <= {p['target_check_us']:g}) | "
        f"{f['check']:.2f} |",
        f"| `get`, reader without follow | {f['get_plain']:.2f} |",
        f"| `get`, following reader | {f['get_follow']:.2f} |",
        f"| following costs a `get` | {f['follow_overhead']:.2f} |",
        f"| first `get` after one `put` (replays one WAL record) | {f['after_put']:.1f} |",
        f"| first `get` after a commit (reload, run readers reused) | {f['after_seal']:.1f} |",
        "",
    ]
    return "\n".join(lines)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(list(argv) if argv is not None else None)
    res = run(frames=args.frames, calls=args.calls, workdir=args.workdir, keep=args.keep)
    print(markdown(res))
    print("results: " + ", ".join(res["files"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
