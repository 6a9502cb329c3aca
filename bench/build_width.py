"""Graph build time against the build beam width (``ann_ef_construction``).

``python bench/build_width.py [--n 200000] [--widths 200,100,64]`` builds, per width, a
file of ``n`` 128-d bench-corpus records (``put_many`` of 10k, ``close()``), times
``build_index()`` (the graph, its search width calibrated for recall 0.95), then answers
250 corpus queries in the same process after 50 untimed ones: recall@10 against numpy's
exact top 10, and p50. Each width runs in its own process. Writes
``bench/results/build-width-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.engine_bench import RESULTS, progress  # noqa: E402
from bench.memory_phases import run_code  # noqa: E402
from bench.report import heading, new_result, save  # noqa: E402

ONE_WIDTH = """
import json, time
import numpy as np
from bench import corpus
from memvid_store import Memory
rows = []
mem = Memory.create(PATH, dim=128, index={"ann_ef_construction": WIDTH})
for batch in corpus.iter_batches(N, 10_000, dim=128, seed=0, embeddings=True):
    mem.put_many(batch)
    rows.extend(r["embedding"] for r in batch)
mem.close()
x = np.asarray(rows, "<f4")
x /= np.linalg.norm(x, axis=1, keepdims=True)
mem = Memory.open(PATH)
start = time.perf_counter()
mem.build_index()
mem.close()
build = time.perf_counter() - start
queries, _ = corpus.query_vectors(300, dim=128, seed=0)
found, times = [], []
with Memory.open(PATH, readonly=True) as m:
    for q in queries[:50]:
        m.find(vector=q, k=10, mode="vector")
    for q in queries[50:]:
        t0 = time.perf_counter()
        hits = m.find(vector=q, k=10, mode="vector")
        times.append(time.perf_counter() - t0)
        exact = set(np.argpartition(-(x @ (q / np.linalg.norm(q))), 10)[:10].tolist())
        found.append(len({int(h.id.split("-")[1]) for h in hits} & exact) / 10)
print(json.dumps({"width": WIDTH, "build_s": build, "recall": float(np.mean(found)),
                  "p50_ms": float(np.median(times) * 1e3)}))
"""


def markdown(res: dict[str, Any]) -> str:
    lines = heading("Graph build against the build beam width", res)
    lines += [f"{res['n']:,} bench-corpus vectors, 128-d; each width calibrated for recall "
              "0.95 by `build_index()`; 250 corpus queries against numpy's exact top 10.",
              "", "| ef_construction | build s | vectors/s | recall@10 | vector p50 ms |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for row in res["widths"]:
        lines.append(f"| {row['width']} | {row['build_s']:.1f} | "
                     f"{res['n'] / row['build_s']:,.0f} | {row['recall']:.3f} | "
                     f"{row['p50_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--widths", type=lambda s: [int(x) for x in s.split(",")],
                        default=[200, 100, 64])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    res = new_result("build_width.py", n=args.n, widths=[])
    for width in args.widths:
        progress(f"build width {width}: {args.n:,} vectors")
        with tempfile.TemporaryDirectory(prefix="memvid-width-") as work:
            out = run_code(ONE_WIDTH, PATH=str(Path(work) / "w.mv2"), N=args.n, WIDTH=width)
        res["widths"].append(json.loads(out.strip().splitlines()[-1]))
    save(res, args.out, "build-width", markdown, show=True)


if __name__ == "__main__":
    main()
