"""Vector searches on a file whose graph was damaged: prints the hits and the warnings seen,
as JSON (run in its own process: a crash shows as a signal exit, not as a test error).

Usage: damaged_graph_proc.py <path>
"""

from __future__ import annotations

import json
import random
import sys
import warnings

from memvid_store import Memory


def queries(rng: random.Random) -> list[list[float]]:
    return [[rng.uniform(-1, 1) for _ in range(8)] for _ in range(20)]


def main(path: str) -> None:
    rng = random.Random(3)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with Memory.open(path, readonly=True) as mem:
            mem.warmup("aggressive", wait=True)
            hits = [[h.id for h in mem.find(vector=q, k=5, mode="vector")]
                    for q in queries(rng)]
    print(json.dumps({"hits": hits, "warnings": [str(w.message) for w in seen]}))


if __name__ == "__main__":
    main(sys.argv[1])
