"""Queries while a background warmup loads the indexes (and imports numpy), then the same
queries once it is done; prints both answers as JSON.

Usage: warmup_race_proc.py <path> <level | "env">   ("env": MEMVID_PRELOAD_LEVEL preloads)
"""

from __future__ import annotations

import json
import random
import sys

from memvid_store import Memory


def queries(dim: int) -> list[dict]:
    rng = random.Random(7)
    out = []
    for i in range(60):
        vector = [rng.uniform(-1, 1) for _ in range(dim)]
        mode = ("vector", "hybrid", "lexical")[i % 3]
        out.append({"text": None if mode == "vector" else f"topic {i % 13}",
                    "vector": None if mode == "lexical" else vector, "mode": mode, "k": 5})
    return out


def answer(mem: Memory, request: dict) -> list | str:
    try:
        return [[h.id, h.score] for h in mem.find(**request)]
    except Exception as exc:  # reported: the test names any error
        return f"{type(exc).__name__}: {exc}"


def main(path: str, level: str) -> None:
    mem = Memory.open(path, readonly=True)
    if level != "env":
        mem.warmup(level, wait=False)
    reqs = queries(mem.dim)
    during = [answer(mem, r) for r in reqs]
    mem.warmup(level if level != "env" else "aggressive", wait=True)
    after = [answer(mem, r) for r in reqs]
    print(json.dumps({"during": during, "after": after}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
