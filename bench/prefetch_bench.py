"""Prefetch benchmark: does access-pattern prediction earn its place over a plain frame LRU?

An agent trace (sessions on one topic at a time, topics Zipf-popular, recent periods asked
about more than old ones) is replayed against the same file with the decoded-frame LRU
alone and with the LRU plus ``AccessPatternAnalyzer``-driven prefetching, at cache sizes
of 1 %, 5 % and 20 % of the decoded corpus. It reports the frame-cache hit rate and the
latency of ``find`` (hits carry their text), ``get`` and context reads (``timeline``
around a hit), and each signal of the analyzer on its own.

The trace is made once (finds run to learn what later requests reread) and replayed
identically by every variant. A session picks a topic (Zipf popularity over the corpus
topics) and a period (its age from now exponential, mean 1/8 of the corpus span), then makes
~8 requests: ``find`` with a topic query vector (30 % also with topic words: hybrid), k=8,
in a time range of +-3 % of the span around the period (which drifts); ``get`` of a frame
found earlier in the session or, 30 % of the time, in an earlier session on the topic; and
context reads: ``timeline`` +-3 minutes around a recent hit. Agent clock: 5 s mean between
requests, 120 s between sessions (``Access.at``).

With explicit prefetch, the bench itself observes every request and prefetches the
predicted frames between requests; the ``attach_analyzer`` pairing lets the handle do it
in its background thread. The variants of one cache size replay in lockstep (each request
on every variant's handle, rotating the order) so that machine noise hits them alike.

Run ``python bench/prefetch_bench.py`` (10k frames, 3,000 requests, about six minutes;
``--n``, ``--ops``, ``--full`` for 100k). Results go to
``bench/results/prefetch-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.machine import machine_info, summary  # noqa: E402
from bench.report import write_results  # noqa: E402

RESULTS = HERE / "results"
DEFAULT_N = 10_000
FULL_N = 100_000
DIM = 384
OPS = 3000
WARMUP_SHARE = 0.1  # first part of the trace replayed unmeasured (caches, indexes, analyzer)
CACHE_SHARES = (0.01, 0.05, 0.20)
PREFETCH_SHARE = 0.25  # prefetch window = this share of the cache capacity in frames
MIN_WINDOW = 8

# trace shape
K = 8  # hits per find
SESSION_MEAN = 8  # requests per session (geometric)
P_FIND, P_GET = 0.5, 0.25  # the rest are context reads
P_HYBRID = 0.3  # finds with query text as well as a vector
P_OLD_HIT = 0.3  # gets of a frame seen in an earlier session on the topic
RECENCY = 1 / 8  # mean age of a session's period, as a share of the corpus time span
HALF_WIDTH = 0.03  # half width of a find's time range, as a share of the span
CONTEXT_US = 3 * 60 * 1_000_000  # context read: +- 3 minutes of event time
THINK_S = 5.0  # mean seconds between requests of a session (agent/LLM work)
GAP_S = 120.0  # mean seconds between sessions
ZIPF_S = 1.1  # topic popularity exponent

# analyzer variants: label -> AccessPatternAnalyzer kwargs (None: plain LRU)
VARIANTS: dict[str, dict[str, Any] | None] = {
    "lru": None,
    "lru+prefetch": {},
    "temporal only": {"semantic_based": False, "frequency_based": False},
    "semantic only": {"time_based": False, "frequency_based": False},
    "frequency only": {"time_based": False, "semantic_based": False},
}
KINDS = ("find", "get", "context")
ATTACHED_THINK_S = 0.004  # sleep after each request in the attach_analyzer pairing


@dataclass(slots=True)
class Op:
    """One request of the trace; ``at`` is the agent's clock in seconds."""

    kind: str
    at: float
    vector: np.ndarray | None = None
    text: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    frame_id: str | None = None


def progress(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


# ----------------------------------------------------------------------------- the file


def build(path: Path, n: int, seed: int) -> float:
    from memvid_store import Memory

    t0 = time.perf_counter()
    with Memory.create(path, dim=DIM, cache=0) as mem:
        for batch in corpus.iter_batches(n, 1000, dim=DIM, seed=seed):
            mem.put_many(batch)
    return time.perf_counter() - t0


def catalog_of(mem: Any) -> tuple[list[str], list[int]]:
    from memvid_store.types import to_us

    frames = mem.timeline()
    return [f.id for f in frames], [to_us(f.created_at) for f in frames]


def decoded_bytes(path: Path, ids: list[str]) -> tuple[int, float]:
    """What the whole corpus occupies in the frame cache, and ms to load one frame into it.

    The load time (id lookup + read + checksum + decompress + parse, via ``prefetch``) is
    what a cache hit saves at most.
    """
    from memvid_store import Memory

    with Memory.open(path, readonly=True, cache=1 << 40) as mem:
        t0 = time.perf_counter()
        mem.prefetch(ids)
        elapsed = time.perf_counter() - t0
        return frame_stats(mem).bytes, elapsed * 1e3 / max(1, len(ids))


# ----------------------------------------------------------------------------- the trace


def execute(mem: Any, op: Op) -> list[tuple[str, datetime]]:
    """Run one request; ``(id, created_at)`` of the frames it returned."""
    from memvid_store.types import from_us

    if op.kind == "find":
        hits = mem.find(text=op.text, vector=op.vector, k=K,
                        time_range=(from_us(op.since_us), from_us(op.until_us)))
        return [(h.id, h.created_at) for h in hits]
    if op.kind == "get":
        frame = mem.get(op.frame_id)
        return [(frame.id, frame.created_at)]
    frames = mem.timeline(from_us(op.since_us), from_us(op.until_us))
    return [(f.id, f.created_at) for f in frames]


def make_trace(mem: Any, n_ops: int, seed: int, times: list[int]) -> list[Op]:
    """A deterministic agent trace; finds are run once to know what later requests reread."""
    from memvid_store.types import to_us

    rng = np.random.default_rng([seed, 17])
    n_topics = corpus.DEFAULT_TOPICS
    qv, qtopics = corpus.query_vectors(4000, dim=DIM, seed=seed)
    vectors = {t: qv[qtopics == t] for t in range(n_topics)}
    texts: dict[int, list[str]] = {}
    for text, topic in corpus.query_texts(2000, seed=seed):
        texts.setdefault(topic, []).append(text)
    ranks = rng.permutation(n_topics) + 1
    popularity = ranks ** -ZIPF_S / np.sum(ranks ** -ZIPF_S)
    first, last = min(times), max(times)
    span = last - first
    half = int(span * HALF_WIDTH)
    seen_by_topic: dict[int, list[tuple[str, int]]] = {}
    ops: list[Op] = []
    at = 0.0
    while len(ops) < n_ops:
        topic = int(rng.choice(n_topics, p=popularity))
        focus = last - min(rng.exponential(span * RECENCY), span)
        hits: list[tuple[str, int]] = []
        older = seen_by_topic.get(topic, [])
        at += rng.exponential(GAP_S)
        for step in range(int(rng.geometric(1 / SESSION_MEAN))):
            if len(ops) >= n_ops:
                break
            at += rng.exponential(THINK_S)
            r = rng.random()
            if step == 0 or not hits or r < P_FIND:
                focus = float(np.clip(focus + rng.normal(0, half / 4), first, last))
                pool = vectors[topic]
                op = Op("find", at, vector=pool[rng.integers(len(pool))],
                        text=(texts[topic][rng.integers(len(texts[topic]))]
                              if rng.random() < P_HYBRID and texts.get(topic) else None),
                        since_us=int(focus) - half, until_us=int(focus) + half)
                hits += [(fid, to_us(t)) for fid, t in execute(mem, op)]
            elif r < P_FIND + P_GET:
                pool = older if older and rng.random() < P_OLD_HIT else hits
                op = Op("get", at, frame_id=pool[rng.integers(len(pool))][0])
            else:
                recent = hits[-2 * K:]
                t = recent[rng.integers(len(recent))][1]
                op = Op("context", at, since_us=t - CONTEXT_US, until_us=t + CONTEXT_US)
            ops.append(op)
        seen_by_topic[topic] = (older + hits)[-256:]
    return ops


# ----------------------------------------------------------------------------- replays


def frame_stats(mem: Any) -> Any:
    """The frame cache's counters (zeros when the cache is disabled)."""
    from memvid_store.coldstart.cache import CacheStats

    found = [s for s in mem.cache_stats() if s.name == "frames"]
    return found[0] if found else CacheStats("frames", 0, 0, 0, 0, 0, 0)


class Replayer:
    """One variant's handle on the file, its analyzer and what it measured.

    With an analyzer, each request is observed and the predicted frames not predicted the
    time before are prefetched before the next request (in the agent's think time); that
    work is timed separately. ``attached``: the handle's own ``attach_analyzer`` observes
    finds and gets and prefetches in its background thread instead.
    """

    def __init__(self, path: Path, lru_bytes: int, window: int,
                 variant: dict[str, Any] | None, catalog: tuple[list[str], list[int]],
                 attached: bool = False) -> None:
        from memvid_store import Memory
        from memvid_store.coldstart.analyzer import AccessPatternAnalyzer
        from memvid_store.config import CacheConfig

        self.window = window
        config = CacheConfig(lru_size=lru_bytes, prefetch_window=max(window, 1))
        self.mem = Memory.open(path, readonly=True, cache=config)
        self.analyzer = None
        self.attached = attached and variant is not None
        if variant is not None:
            self.analyzer = AccessPatternAnalyzer(**variant)
            if self.attached:
                self.mem.attach_analyzer(self.analyzer)
            else:
                self.analyzer.set_catalog(*catalog)
        self.latency: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.work: list[float] = []
        self.requested = 0
        self.previous: set[str] = set()
        self.start: Any = None

    def step(self, op: Op, measured: bool) -> None:
        from memvid_store.coldstart.analyzer import Access
        from memvid_store.types import to_us

        if measured and self.start is None:
            self.start = frame_stats(self.mem)
        t0 = time.perf_counter()
        result = execute(self.mem, op)
        elapsed = time.perf_counter() - t0
        if measured:
            self.latency[op.kind].append(elapsed)
        if self.analyzer is None or self.attached:
            return
        t1 = time.perf_counter()
        self.analyzer.observe(Access(tuple(fid for fid, _ in result),
                                     tuple(to_us(t) for _, t in result), op.vector, op.at))
        ids = self.analyzer.predict_next_access(self.analyzer.prefetch_budget(self.window))
        fresh = [fid for fid in ids if fid not in self.previous]
        self.previous = set(ids)
        self.mem.prefetch(fresh)
        if measured:
            self.work.append(time.perf_counter() - t1)
            self.requested += len(fresh)

    def result(self) -> dict[str, Any]:
        end = frame_stats(self.mem)
        self.mem.close()
        hits, misses = end.hits - self.start.hits, end.misses - self.start.misses
        measured = sum(len(v) for v in self.latency.values())
        row: dict[str, Any] = {
            "hit_rate": hits / (hits + misses) if hits + misses else None,
            "hits": hits, "misses": misses, "evictions": end.evictions - self.start.evictions,
            "latency_ms": {kind: {"p50": pct(v, 50) * 1e3, "p95": pct(v, 95) * 1e3,
                                  "mean": float(np.mean(v)) * 1e3 if v else float("nan"),
                                  "count": len(v)} for kind, v in self.latency.items()},
            "prefetch_ms_per_request": (None if self.attached else
                                        float(np.mean(self.work)) * 1e3 if self.work else 0.0),
            "prefetch_ids_per_request": (None if self.attached else
                                         self.requested / measured if measured else 0.0),
        }
        if self.analyzer is not None:
            row["coverage"] = self.analyzer.stats().coverage
        return row


def lockstep(trace: list[Op], replayers: list[Replayer], warmup: int,
             think: float = 0.0) -> list[dict[str, Any]]:
    """Replay ``trace`` on every replayer, request by request, rotating who goes first.

    Paired this way, a noisy neighbour on the machine slows every variant alike. ``think``
    seconds of sleep follow each request (background prefetching runs meanwhile).
    """
    gc.collect()
    try:
        for i, op in enumerate(trace):
            shift = i % len(replayers)
            for r in replayers[shift:] + replayers[:shift]:
                r.step(op, i >= warmup)
                if think:
                    time.sleep(think)
        return [r.result() for r in replayers]
    finally:
        for r in replayers:
            r.mem.close()


def size_suite(path: Path, trace: list[Op], total_bytes: int, n: int,
               catalog: tuple[list[str], list[int]], warmup: int, attached: bool,
               failures: list[str]) -> list[dict[str, Any]]:
    """Every variant at every cache size; the no-cache baseline runs with the 1 % size.

    With ``attached``, a second lockstep per size pairs plain LRU with ``attach_analyzer``
    (background prefetching, ``ATTACHED_THINK_S`` of sleep after each request); an
    error there is appended to ``failures`` and the other figures are kept.
    """
    from memvid_store import MemvidError

    rows = []
    frame_bytes = total_bytes / n
    for share in CACHE_SHARES:
        lru_bytes = int(total_bytes * share)
        capacity = int(lru_bytes / frame_bytes)
        window = max(MIN_WINDOW, int(capacity * PREFETCH_SHARE))
        setups: list[tuple[str, int, dict[str, Any] | None]] = [
            (label, lru_bytes, variant) for label, variant in VARIANTS.items()]
        if share == CACHE_SHARES[0]:
            setups.insert(0, ("no cache", 0, None))
        progress(f"cache {share:.0%} ({capacity} frames, prefetch window {window}): "
                 f"{', '.join(label for label, _, _ in setups)}")
        replayers = [Replayer(path, size, window, variant, catalog)
                     for _, size, variant in setups]
        for (label, size, variant), row in zip(setups, lockstep(trace, replayers, warmup),
                                               strict=True):
            rows.append({"cache_share": share if size else 0.0, "lru_bytes": size,
                         "capacity_frames": capacity if size else 0,
                         "window": window if variant is not None else 0, "variant": label,
                         **row})
        if not attached:
            continue
        progress(f"cache {share:.0%}: lru vs attach_analyzer (background thread)")
        pair = [Replayer(path, lru_bytes, window, None, catalog),
                Replayer(path, lru_bytes, window, {}, catalog, attached=True)]
        try:
            paired = lockstep(trace, pair, warmup, ATTACHED_THINK_S)
        except MemvidError as exc:  # reported in the results, the other figures stand
            progress(f"attach_analyzer failed: {exc!r}")
            failures.append(f"attach_analyzer at a {share:.0%} cache failed: {exc!r}")
            continue
        for label, row in zip(("lru (paired)", "attach_analyzer"), paired, strict=True):
            rows.append({"cache_share": share, "lru_bytes": lru_bytes,
                         "capacity_frames": capacity,
                         "window": window if label == "attach_analyzer" else 0,
                         "variant": label, **row})
    return rows


# ----------------------------------------------------------------------------- report


def verdict(rows: list[dict[str, Any]], load_ms: float) -> dict[str, Any]:
    """Prediction vs plain LRU at each cache size, in numbers and honest sentences.

    ``load_ms`` (one frame into the cache) bounds what each extra hit saves.
    """
    per_size = []
    for share in CACHE_SHARES:
        by = {r["variant"]: r for r in rows if r["cache_share"] == share}
        lru, pre = by["lru"], by["lru+prefetch"]
        best = max((v for v in VARIANTS if v != "lru"), key=lambda v: by[v]["hit_rate"])
        requests = sum(v["count"] for v in lru["latency_ms"].values())
        saved = (pre["hits"] - lru["hits"]) / requests * load_ms
        per_size.append({
            "cache_share": share,
            "saved_load_ms_per_request": saved,
            "hit_rate_lru": lru["hit_rate"], "hit_rate_prefetch": pre["hit_rate"],
            "hit_rate_gain_pts": (pre["hit_rate"] - lru["hit_rate"]) * 100,
            "best_variant": best, "best_gain_pts": (by[best]["hit_rate"] - lru["hit_rate"]) * 100,
            **{f"{kind}_p50_ratio": pre["latency_ms"][kind]["p50"] / lru["latency_ms"][kind]["p50"]
               for kind in KINDS},
            "prefetch_ms_per_request": pre["prefetch_ms_per_request"],
        })
    gains = [p["hit_rate_gain_pts"] for p in per_size]
    helped = sum(g >= 1.0 for g in gains)
    if helped == len(gains):
        text = "Prediction raised the frame-cache hit rate at every cache size"
    elif helped:
        text = f"Prediction raised the frame-cache hit rate at {helped} of {len(gains)} sizes"
    else:
        text = "Prediction did not raise the frame-cache hit rate by a point at any size"
    work = statistics.mean(p["prefetch_ms_per_request"] for p in per_size)
    gets = [p["get_p50_ratio"] for p in per_size]
    finds = [p["find_p50_ratio"] for p in per_size]
    text += (f" ({', '.join(f'{g:+.1f}' for g in gains)} points at "
             f"{', '.join(f'{s:.0%}' for s in CACHE_SHARES)}); get p50 x"
             f"{min(gets):.2f}..{max(gets):.2f} and find p50 x{min(finds):.2f}..{max(finds):.2f}"
             f" of plain LRU, for {work:.2f} ms of prefetch work per request done between "
             "requests.")
    pairs = []
    for share in CACHE_SHARES:
        by = {r["variant"]: r for r in rows if r["cache_share"] == share}
        if "attach_analyzer" in by:
            lru, att = by["lru (paired)"], by["attach_analyzer"]
            pairs.append({"cache_share": share,
                          "hit_rate_gain_pts": (att["hit_rate"] - lru["hit_rate"]) * 100,
                          **{f"{kind}_p50_ratio": att["latency_ms"][kind]["p50"]
                             / lru["latency_ms"][kind]["p50"] for kind in KINDS}})
    best_ratio = max((p["saved_load_ms_per_request"] / p["prefetch_ms_per_request"]
                      for p in per_size if p["prefetch_ms_per_request"] > 0), default=0.0)
    text += (f" Each extra hit saves one frame load ({load_ms * 1e3:.0f} µs here): at most "
             f"{max(p['saved_load_ms_per_request'] for p in per_size) * 1e3:.0f} µs per "
             f"request, {best_ratio:.3f}x the prefetch work at best")
    if best_ratio >= 1:
        text += ", so prediction saves more than it costs on this file."
    elif best_ratio > 0:
        text += (", so on this file prediction costs more CPU than it saves; it would pay "
                 f"where a miss costs about {1 / best_ratio:.0f}x more (remote or cold "
                 "storage).")
    else:
        text += ", so on this file prediction does not pay."
    if pairs:
        text += (" With attach_analyzer (background thread, "
                 f"{ATTACHED_THINK_S * 1e3:.0f} ms pauses): "
                 + "; ".join(f"{p['cache_share']:.0%} {p['hit_rate_gain_pts']:+.1f} points, "
                             f"find p50 x{p['find_p50_ratio']:.2f}, get p50 "
                             f"x{p['get_p50_ratio']:.2f}" for p in pairs) + ".")
    return {"per_size": per_size, "attached": pairs, "text": text}


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in res["verdict"]["per_size"]:
        out.append({"target": f"prediction raises the hit rate at a {p['cache_share']:.0%} cache",
                    "value": round(p["hit_rate_gain_pts"], 2), "unit": "points",
                    "goal": ">= 1", "met": p["hit_rate_gain_pts"] >= 1.0})
    return out


def _fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def markdown(res: dict[str, Any]) -> str:
    p = res["parameters"]
    lines = [
        f"## Prefetch: plain frame LRU vs LRU + AccessPatternAnalyzer ({p['n']:,} frames, "
        f"{p['ops']:,} requests)", "",
        f"Machine: {summary(res['machine'])}  ",
        f"Run {res['timestamp']}; corpus {p['n']:,} x {p['dim']}-d, decoded corpus "
        f"{res['decoded_bytes'] / 1e6:.1f} MB in the frame cache, "
        f"{res['load_ms_per_frame'] * 1e3:.0f} µs to load one frame into it; "
        f"trace: {p['trace_mix']}; "
        f"first {p['warmup']} requests unmeasured.", "",
        "| cache | variant | hit rate | evictions | find p50 / p95 ms | get p50 / p95 ms | "
        "context p50 ms | prefetch ms/req | ids/req | coverage |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in res["rows"]:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['cache_share']:.0%} ({r['capacity_frames']:,} fr.) | {r['variant']} | "
            f"{_fmt(r['hit_rate'], 3)} | {r['evictions']:,} | {_fmt(lat['find']['p50'])} / "
            f"{_fmt(lat['find']['p95'])} | {_fmt(lat['get']['p50'], 3)} / "
            f"{_fmt(lat['get']['p95'], 3)} | {_fmt(lat['context']['p50'], 3)} | "
            f"{_fmt(r['prefetch_ms_per_request'])} | {_fmt(r['prefetch_ids_per_request'], 0)} | "
            f"{_fmt(r.get('coverage'))} |")
    lines += ["", f"**Verdict:** {res['verdict']['text']}", ""]
    if res.get("notes"):
        lines += [f"* {note}" for note in res["notes"]] + [""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def run(*, full: bool = False, n: int | None = None, ops: int = OPS, workdir: str | None = None,
        seed: int = 0, keep: bool = False, attached: bool = True,
        out_dir: Path = RESULTS) -> dict[str, Any]:
    """Build the corpus file, make the trace, replay every variant; returns the result dict."""
    from memvid_store import Memory

    n = n or (FULL_N if full else DEFAULT_N)
    base = Path(workdir or os.environ.get("MEMVID_BENCH_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="memvid-prefetch-", dir=base))
    warmup = int(ops * WARMUP_SHARE)
    res: dict[str, Any] = {
        "bench": "prefetch",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": {
            "n": n, "dim": DIM, "ops": ops, "warmup": warmup, "seed": seed, "k": K,
            "cache_shares": list(CACHE_SHARES), "prefetch_share": PREFETCH_SHARE,
            "variants": VARIANTS,
            "trace_mix": (f"sessions of ~{SESSION_MEAN} requests on one topic (Zipf "
                          f"{ZIPF_S} over {corpus.DEFAULT_TOPICS}); {P_FIND:.0%} find "
                          f"(k={K}, {P_HYBRID:.0%} hybrid, time range +-{HALF_WIDTH:.0%} of "
                          f"the span around a recency-skewed focus), {P_GET:.0%} get "
                          f"({P_OLD_HIT:.0%} of frames seen in earlier sessions), "
                          f"{1 - P_FIND - P_GET:.0%} context reads (+-3 min around a hit)"),
            "think_s": THINK_S, "session_gap_s": GAP_S,
        },
        "machine": machine_info(work),
    }
    try:
        path = work / "prefetch.mv2"
        progress(f"building {n:,} frames in {path}")
        res["build_s"] = build(path, n, seed)
        with Memory.open(path, readonly=True) as mem:
            catalog = catalog_of(mem)
            progress(f"making a trace of {ops:,} requests")
            trace = make_trace(mem, ops, seed, catalog[1])
        res["trace_counts"] = {kind: sum(op.kind == kind for op in trace) for kind in KINDS}
        res["decoded_bytes"], res["load_ms_per_frame"] = decoded_bytes(path, catalog[0])
        attached = attached and hasattr(Memory, "attach_analyzer")
        res["parameters"]["attached"] = attached
        res["failures"] = []
        res["rows"] = size_suite(path, trace, res["decoded_bytes"], n, catalog, warmup,
                                 attached, res["failures"])
    finally:
        if keep:
            progress(f"kept files in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    res["verdict"] = verdict(res["rows"], res["load_ms_per_frame"])
    res["notes"] = [*res["failures"],
        "Prefetching runs between requests, as it would in an agent's think time; its CPU "
        "cost is the 'prefetch ms/req' column, not included in the latencies.",
        "The variants of one cache size replay the trace in lockstep (each request on every "
        "variant's handle, rotating the order), so machine noise affects them alike.",
        "Hit rate counts demand lookups only (prefetching neither hits nor misses).",
        "Prefetch window: a quarter of the cache capacity in frames (at least 8), scaled by "
        "the analyzer's prefetch_budget (smaller while its predictions miss).",
    ]
    res["targets"] = targets(res)
    res["files"] = [str(p) for p in write_results(res, out_dir, "prefetch", markdown)]
    return res


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help=f"{FULL_N:,} frames")
    parser.add_argument("--n", type=int, help="frames in the corpus (overrides --full)")
    parser.add_argument("--ops", type=int, default=OPS, help="requests in the trace")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="where the .mv2 file goes (default: temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the .mv2 file")
    parser.add_argument("--no-attached", action="store_true",
                        help="skip the attach_analyzer (background thread) pairing")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(list(argv) if argv is not None else None)
    res = run(full=args.full, n=args.n, ops=args.ops, workdir=args.workdir, seed=args.seed,
              keep=args.keep, attached=not args.no_attached, out_dir=args.out)
    print(markdown(res))
    print("results: " + ", ".join(res["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
