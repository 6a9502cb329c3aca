"""Negations on a large file, as a user meets them: ``python bench/negation_probe.py FILE``.

``FILE`` is a memory written by the bench corpus (``bench/scale.py`` or ``build_index()``
on ``bench/corpus.py`` records: every frame has ``lang: "en"``, ``priority`` 0-4 and one
of a few ``source`` values). A fresh process opens it read-only, answers one unfiltered
vector query (the graph opened), then for each negation times a filtered vector ``find``
(the first and a second one with another query), ``select(limit=10)`` and ``count``:

* ``{"lang": {"$ne": "en"}}``: admits nothing (every frame is English);
* ``{"priority": {"$ne": 0}}``, ``{"source": {"$nin": ["web"]}}``: admit most frames.

``--filter JSON`` (repeatable) times those filters instead, e.g. substrings:
``--filter '{"lang": {"$contains": "d"}}' --filter '{"source": {"$icontains": "ALEND"}}'``.
Run it at two commits to compare. Writes ``bench/results/negation-<stamp>.json`` and
``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.machine import machine_info, summary  # noqa: E402
from bench.report import save  # noqa: E402

NEGATIONS = ({"lang": {"$ne": "en"}}, {"priority": {"$ne": 0}}, {"source": {"$nin": ["web"]}})


def ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1e3, 2)


def probe(path: str, filters: tuple[dict[str, Any], ...] = NEGATIONS) -> list[dict[str, Any]]:
    import numpy as np

    from memvid_store import Memory

    rows = []
    with Memory.open(path, readonly=True) as mem:
        rng = np.random.default_rng(7)
        queries = rng.standard_normal((2, mem.dim)).astype("<f4")
        mem.find(vector=queries[0][::-1].copy(), k=10, mode="vector")
        for flt in filters:
            row: dict[str, Any] = {"filter": flt}
            for name, query in (("find_first_ms", queries[0]), ("find_second_ms", queries[1])):
                start = time.perf_counter()
                row["hits"] = len(mem.find(vector=query, k=10, mode="vector", filter=flt))
                row[name] = ms(start)
            start = time.perf_counter()
            row["selected"] = len(mem.select(flt, limit=10))
            row["select_ms"] = ms(start)
            start = time.perf_counter()
            row["count"] = mem.count(flt)
            row["count_ms"] = ms(start)
            rows.append(row)
            print(row, flush=True)
    return rows


def markdown(res: dict[str, Any]) -> str:
    lines = [f"# Filters ({res['file']}, {res['frames']:,} frames)", "",
             summary(res["machine"]), "",
             "| filter | hits | find first ms | find second ms | select(10) ms | count "
             "| count ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["rows"]:
        lines.append(f"| `{r['filter']}` | {r['hits']} | {r['find_first_ms']} | "
                     f"{r['find_second_ms']} | {r['select_ms']} | {r['count']:,} | "
                     f"{r['count_ms']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/negation_probe.py")
    parser.add_argument("file")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--filter", action="append", type=json.loads, default=None,
                        help="a filter as JSON (repeatable; default: the negations)")
    args = parser.parse_args(argv)
    from memvid_store import Memory

    with Memory.open(args.file, readonly=True) as mem:
        frames = mem.count()
    res = {"timestamp": datetime.now(UTC).isoformat(), "machine": machine_info(),
           "file": Path(args.file).name, "frames": frames,
           "rows": probe(args.file, tuple(args.filter or NEGATIONS))}
    save(res, args.out, "negation", markdown, show=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
