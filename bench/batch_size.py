"""``put_many`` of one batch, by batch size: records per second, with and without
embeddings, in a fresh process each.

A batch's cost should grow with its records, not their square: each size is written as
one ``put_many`` into a new file (texts and a small metadata dict; 64-d embeddings for
the second column), timed alone. ``--engine DIR`` runs another checkout's code. Results:
``bench/results/batch-size-<stamp>.json`` and ``.md``.

Run ``python bench/batch_size.py [--sizes 1000,10000,50000] [--engine DIR]``.
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

PROBE = """
import json, os, sys, tempfile, time
from memvid_store import Memory
n, embedded = int(sys.argv[1]), sys.argv[2] == "1"
records = [{"text": f"note {i} about the project", "metadata": {"n": i, "kind": "note"}}
           for i in range(n)]
if embedded:
    for i, rec in enumerate(records):
        rec["embedding"] = [((i * 7 + j) % 13) / 13 + 0.01 for j in range(64)]
with Memory.create(os.path.join(tempfile.mkdtemp(), "m.mv2")) as mem:
    began = time.perf_counter()
    mem.put_many(records)
    took = time.perf_counter() - began
print(json.dumps({"per_second": n / took}))
"""


def markdown(res: dict[str, Any]) -> str:
    r = res["result"]
    lines = heading("put_many by batch size", res)
    lines += [f"One `put_many` of each size into a new file, by the code of commit "
              f"{r['engine']}, in a fresh process; records per second.", "",
              "| records in the batch | no embeddings | 64-d embeddings |",
              "| ---: | ---: | ---: |"]
    for row in r["rows"]:
        lines.append(f"| {row['n']:,} | {row['plain']:,.0f} | {row['embedded']:,.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--engine", type=Path, default=HERE.parent,
                        help="a checkout whose code runs (default: this one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    engine = args.engine.resolve()
    rows = [{"n": n, **{kind: run_in_checkout(PROBE, [str(n), flag], engine)["per_second"]
                        for kind, flag in (("plain", "0"), ("embedded", "1"))}}
            for n in (int(s) for s in args.sizes.split(","))]
    result = {"engine": checkout_rev(engine), "rows": rows}
    save(new_result("batch_size.py", result=result), args.out, "batch-size", markdown,
         show=True)


if __name__ == "__main__":
    main()
