"""Commands about speed: warmup (load indexes ahead of queries) and bench (measure)."""

from __future__ import annotations

import math
import os
import random
import time
from typing import Any

import click

from ._common import (
    MEMORY_PATH,
    CliError,
    echo_json,
    human_bytes,
    json_option,
    open_memory,
    table,
)

MODES = ("lexical", "vector", "hybrid")


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--level", type=click.Choice(["lazy", "balanced", "aggressive"]),
              default="aggressive", show_default=True,
              help="lazy: load nothing ahead (show what is cold); balanced and aggressive: "
                   "load every index tier now, timing each.")
@json_option("Print what was loaded and the timings as JSON.")
def warmup(path: str, level: str, as_json: bool) -> None:
    """Load a file's indexes now (frame tables, BM25, vectors), so that the first queries
    do not wait for them, and show how long each took."""
    from ..memory import Memory  # noqa: F401  (imported before the clock starts)

    started = time.perf_counter()
    with open_memory(path, readonly=True, warmup="none") as mem:
        opened = time.perf_counter() - started
        if not callable(getattr(mem, "warmup", None)):
            raise CliError("this version of memvid-py cannot warm up files (no "
                           "Memory.warmup); upgrade it")
        from ..coldstart.warmup import LOADABLE

        seconds: dict[str, float] = {}
        for tier in LOADABLE if level != "lazy" else ():
            t = time.perf_counter()
            mem.warmup(tiers=[tier], wait=True)
            seconds[tier] = time.perf_counter() - t
        states = mem.warmup(tiers=[], wait=True)
        total = time.perf_counter() - started
    tiers = [{"tier": tier, "state": states.get(tier, "-"),
              "ms": None if tier not in seconds else round(seconds[tier] * 1000, 3)}
             for tier in LOADABLE]
    if as_json:
        echo_json({"path": path, "level": level, "open_ms": round(opened * 1000, 3),
                   "total_ms": round(total * 1000, 3), "tiers": tiers})
        return
    click.echo(f"warmed up {path} ({level}) in {total * 1000:.1f} ms "
               f"(open {opened * 1000:.2f} ms)")
    table(["TIER", "STATE", "MS"],
          [[t["tier"], t["state"], "-" if t["ms"] is None else f"{t['ms']:.2f}"]
           for t in tiers])


# ------------------------------------------------------------------ bench


def query_from(text: str, rng: random.Random) -> str:
    """A short query cut from a frame's text: 2-4 consecutive words, or 2-6 characters of
    text written without spaces (Chinese, Japanese)."""
    words = text.split()
    if len(words) >= 4:
        n = rng.randint(2, 4)
        start = rng.randrange(len(words) - n + 1)
        return " ".join(words[start:start + n])
    flat = "".join(text.split())
    n = min(len(flat), rng.randint(2, 6))
    start = rng.randrange(len(flat) - n + 1) if flat else 0
    return flat[start:start + n]


def _sample(path: str, n: int, seed: int) -> list[tuple[str, list[float] | None]]:
    """``n`` (query text, stored vector) pairs from frames chosen uniformly at random."""
    rng = random.Random(seed)
    chosen: list[Any] = []
    with open_memory(path, readonly=True) as mem:
        for i, frame in enumerate(mem.iter_timeline()):  # reservoir sampling
            if i < n:
                chosen.append(frame)
            else:
                j = rng.randrange(i + 1)
                if j < n:
                    chosen[j] = frame
        return [(query_from(f.text, rng) or f.id, f.embedding) for f in chosen]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def _request(mode: str, text: str, vector: list[float] | None, k: int) -> dict[str, Any]:
    if mode == "lexical":
        return {"text": text, "mode": "lexical", "k": k}
    if mode == "vector":
        return {"vector": vector, "mode": "vector", "k": k}
    return {"text": text, "vector": vector, "mode": "hybrid", "k": k}


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--queries", type=click.IntRange(min=1), default=50, show_default=True,
              help="Number of queries per mode, cut from the file's own texts.")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Hits per query.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the query sample (same seed, same queries).")
@json_option("Print the measurements as JSON.")
def bench(path: str, queries: int, k: int, seed: int, as_json: bool) -> None:
    """Measure this file here: open time, first query, and p50/p99 latency per search mode.

    Queries are words cut from randomly chosen frames; vector queries use those frames'
    stored embeddings, so no embedder is needed. Times are in this process, with the
    file in the OS page cache after the sampling pass.
    """
    from ..memory import Memory  # noqa: F401  (imported before the clock starts)

    sample = _sample(path, queries, seed)
    if not sample:
        raise CliError(f"{path} has no frames to measure")
    started = time.perf_counter()
    with open_memory(path, readonly=True) as mem:
        open_s = time.perf_counter() - started
        has_vectors = mem.dim is not None and all(v is not None for _, v in sample)
        modes = MODES if has_vectors else ("lexical",)
        text0, vector0 = sample[0]
        t0 = time.perf_counter()
        mem.find_batch([_request(modes[-1], text0, vector0, k)])
        first_s = time.perf_counter() - t0
        results: dict[str, dict[str, float]] = {}
        for mode in modes:
            mem.find_batch([_request(mode, *sample[-1], k)])  # load this mode's index first
            times = []
            for text, vector in sample:
                t = time.perf_counter()
                mem.find(**_request(mode, text, vector, k))
                times.append((time.perf_counter() - t) * 1000)
            results[mode] = {"queries": len(times), "p50_ms": percentile(times, 0.5),
                             "p99_ms": percentile(times, 0.99),
                             "mean_ms": sum(times) / len(times)}
        stats = mem.stats()
    out = {"path": path, "frames": stats.frames, "file_bytes": os.path.getsize(path),
           "open_ms": open_s * 1000, "first_query_ms": first_s * 1000,
           "first_query_mode": modes[-1], "modes": results, "k": k, "seed": seed}
    if as_json:
        echo_json(out)
        return
    click.echo(f"{path}: {stats.frames} frames, {human_bytes(out['file_bytes'])}")
    click.echo(f"open {open_s * 1000:.2f} ms, first {modes[-1]} query "
               f"{first_s * 1000:.2f} ms\n")
    table(["MODE", "QUERIES", "P50_MS", "P99_MS", "MEAN_MS"],
          [[mode, str(r["queries"]), f"{r['p50_ms']:.3f}", f"{r['p99_ms']:.3f}",
            f"{r['mean_ms']:.3f}"] for mode, r in results.items()])


COMMANDS = [warmup, bench]
