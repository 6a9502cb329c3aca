"""Listings whose pages come from disk: a page of 100 frames after the file's pages were
dropped from the process and the page cache (as a host reclaiming idle memory drops
them between an agent's calls).

In a fresh process, each of ``--rounds`` rounds drops the pages, then times one call of
each kind: ``select`` of 100 frames of one topic (spread over the file), oldest or newest
first, ``timeline(since=t, limit=100)`` (100 consecutive frames) and ``get_many`` of 100
random ids, the frame cache emptied before each. Reported: p50 and p90 ms.

Run ``python bench/cold_listing.py --file F.mv2`` (a file built from ``bench/corpus.py``;
``bench/peers.py`` builds one the same way); ``--engine DIR`` runs the calls with the code
of another checkout. Results: ``bench/results/cold-listing-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.engine_bench import RESULTS  # noqa: E402
from bench.report import checkout_rev, heading, new_result, run_in_checkout, save  # noqa: E402

PAGE = 100

PROBE = """
import json, random, sys, time
import numpy as np
from bench.first_touch import drop_pages
from memvid_store import Memory

path, rounds, page = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

with Memory.open(path, readonly=True) as mem:
    ids = mem.ids()
    n = len(ids)
    stamps = [f.created_at for f in mem.timeline()[:: max(1, n // 1000)]]
    topics = 1 + max(f.metadata["topic"] for f in mem.select(limit=2000))
    rng = random.Random(5)
    times = {"select": [], "timeline": [], "get_many": []}
    for r in range(rounds):
        calls = {
            "select": lambda: mem.select({"topic": rng.randrange(topics)}, limit=page,
                                         reverse=rng.random() < 0.5),
            "timeline": lambda: mem.timeline(since=rng.choice(stamps[:-2]), limit=page),
            "get_many": lambda: mem.get_many(rng.sample(ids, page)),
        }
        for name, call in calls.items():
            mem._snap().frame_cache.clear()
            drop_pages(mem, path)
            began = time.perf_counter()
            got = call()
            times[name].append(time.perf_counter() - began)
            assert len(got) == page
print(json.dumps({name: {"p50_ms": float(np.percentile(t, 50)) * 1e3,
                         "p90_ms": float(np.percentile(t, 90)) * 1e3}
                  for name, t in times.items()} | {"frames": n}))
"""


def markdown(res: dict[str, Any]) -> str:
    r = res["result"]
    lines = heading("Listings out of the page cache", res)
    lines += [f"{r['frames']:,} frames; {r['rounds']} rounds, each call after the file's pages "
              f"were dropped, {PAGE} frames a call, by the code of commit {r['engine']}.", "",
              "| call | p50 ms | p90 ms |", "| --- | ---: | ---: |"]
    for name in ("select", "timeline", "get_many"):
        lines.append(f"| {name} | {r[name]['p50_ms']:.1f} | {r[name]['p90_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--engine", type=Path, default=HERE.parent,
                        help="a checkout whose memvid_store reads (default: this one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    got = run_in_checkout(PROBE, [str(args.file.resolve()), str(args.rounds), str(PAGE)],
                          args.engine.resolve())
    result = {**got, "rounds": args.rounds, "engine": checkout_rev(args.engine)}
    save(new_result("cold_listing.py", result=result), args.out, "cold-listing", markdown,
         show=True)


if __name__ == "__main__":
    main()
