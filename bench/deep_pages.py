"""Deep pages of a LangGraph store: ``search(namespace, limit=10, offset=o)`` of one large
namespace, beside LangGraph's ``InMemoryStore`` holding the same items.

``--items`` items (100,000) are put into one namespace with ``batch()`` calls of 1,000
puts, once into a ``MemvidStore`` file (kept in ``--dir`` for later runs) and once into
an ``InMemoryStore``. Each page is then asked for in a fresh process opening the file
(*cold*: its records not decoded yet; the file in the page cache), then again in that
process (*warm*); the reference store is asked in this process, twice. ``--engine DIR``
runs the memvid side with another checkout's code; ``--ttl`` gives every item a time to
live and opens the store with ``omit_expired`` (each search then filters expired items
out; ``InMemoryStore`` has no TTL, so its items live on). Results:
``bench/results/deep-pages-<stamp>.json`` and ``.md``.

Run ``python bench/deep_pages.py [--items 100000] [--ttl] [--engine DIR] [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.engine_bench import RESULTS, progress  # noqa: E402
from bench.report import checkout_rev, heading, new_result, run_in_checkout, save  # noqa: E402

OFFSETS = (0, 1_000, 10_000, 50_000, 90_000)
NAMESPACE = ("users", "u1")
REPEAT = 3

TTL_MINUTES = 60 * 24 * 365
PROBE = """
import json, sys, time
from memvid_integrations.langgraph import MemvidStore
path, offset, ttl = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
config = {"default_ttl": 60 * 24 * 365, "omit_expired": True} if ttl else None
with MemvidStore(path, readonly=True, ttl=config) as store:
    took = []
    for _ in range(2):
        began = time.perf_counter()
        page = store.search(("users", "u1"), limit=10, offset=offset)
        took.append((time.perf_counter() - began) * 1e3)
print(json.dumps({"cold_ms": took[0], "warm_ms": took[1], "keys": [i.key for i in page]}))
"""


def puts(start: int, n: int, ttl: bool = False) -> list[Any]:
    from langgraph.store.base import PutOp

    return [PutOp(NAMESPACE, f"k{i}", {"text": f"item {i}", "n": i},
                  ttl=TTL_MINUTES if ttl else None)
            for i in range(start, min(n, start + 1000))]


def reference(n: int) -> Any:
    from langgraph.store.memory import InMemoryStore

    store = InMemoryStore()
    for start in range(0, n, 1000):
        store.batch(puts(start, n))
    return store


def build(path: Path, n: int, ttl: bool) -> None:
    from memvid_integrations.langgraph import MemvidStore

    if path.exists():
        return
    progress(f"deep pages: writing {n:,} items")
    config = {"default_ttl": TTL_MINUTES, "omit_expired": True} if ttl else None
    with MemvidStore(str(path), ttl=config) as store:
        for start in range(0, n, 1000):
            store.batch(puts(start, n, ttl))


def timed(search: Any, offset: int) -> tuple[float, float, list[str]]:
    took = []
    for _ in range(2):
        began = time.perf_counter()
        page = search(NAMESPACE, limit=10, offset=offset)
        took.append((time.perf_counter() - began) * 1e3)
    return took[0], took[1], [item.key for item in page]


def measure(n: int, path: Path, engine: Path, ttl: bool) -> dict[str, Any]:
    build(path, n, ttl)
    with path.open("rb") as fh:  # the file in the page cache
        while fh.read(1 << 24):
            pass
    ref = reference(n)
    rows = []
    for offset in (o for o in OFFSETS if o < n):
        runs = [run_in_checkout(PROBE, [str(path), str(offset), str(int(ttl))], engine)
                for _ in range(REPEAT)]
        mine = [timed(ref.search, offset) for _ in range(REPEAT)]
        expected = [f"k{i}" for i in range(offset, min(n, offset + 10))]
        assert all(r["keys"] == expected for r in runs), "memvid gave another page"
        assert all(keys == expected for _, _, keys in mine), "InMemoryStore gave another page"
        rows.append({"offset": offset,
                     "cold_ms": statistics.median(r["cold_ms"] for r in runs),
                     "warm_ms": statistics.median(r["warm_ms"] for r in runs),
                     "ref_first_ms": statistics.median(m[0] for m in mine),
                     "ref_again_ms": statistics.median(m[1] for m in mine)})
        progress(f"deep pages: offset {offset:,}: {rows[-1]}")
    return {"items": n, "file_mb": path.stat().st_size / 2**20, "engine": checkout_rev(engine),
            "repeat": REPEAT, "ttl": ttl, "rows": rows}


def markdown(res: dict[str, Any]) -> str:
    r = res["result"]
    lines = heading("Deep pages of a LangGraph store", res)
    lines += [f"{r['items']:,} items in one namespace ({r['file_mb']:.0f} MiB"
              f"{', each with a TTL, read with omit_expired' if r.get('ttl') else ''}), "
              f"`search(ns, limit=10, offset=o)` by the code of commit {r['engine']}: memvid "
              "in a fresh process (cold), then again (warm); InMemoryStore in the bench's "
              f"process, twice. Medians of {r['repeat']}, ms.", "",
              "| offset | memvid cold | memvid warm | InMemoryStore | again "
              "| warm / InMemoryStore |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in r["rows"]:
        ratio = row["warm_ms"] / max(row["ref_again_ms"], 1e-3)
        lines.append(f"| {row['offset']:,} | {row['cold_ms']:.1f} | {row['warm_ms']:.1f} | "
                     f"{row['ref_first_ms']:.1f} | {row['ref_again_ms']:.1f} | {ratio:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--ttl", action="store_true", help="items with a time to live")
    parser.add_argument("--engine", type=Path, default=HERE.parent,
                        help="a checkout whose code reads the file (default: this one)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the store's file is kept for later runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memvid-pages-") as work:
        path = (args.dir or Path(work)) / f"pages-{args.items}{'-ttl' if args.ttl else ''}.mv2"
        result = measure(args.items, path, args.engine.resolve(), args.ttl)
    save(new_result("deep_pages.py", result=result), args.out, "deep-pages", markdown,
         show=True)


if __name__ == "__main__":
    main()
