"""Listing benchmarks: select / count by tag, metadata and event time, and filtered find.

Run ``python bench/listing_bench.py`` (listing files of 10k, 100k and 1M frames plus a 100k
file with vectors for find, ~10 minutes on 2 cores) or ``--quick`` (10k and 100k). Every
file holds two collections: nine frames in ten in ``default``, every tenth in ``chat``.
Frames carry properties of known selectivity, so each target has a query whose answer is
known exactly:

* the tag ``pick50`` and the metadata value ``{"bucket": "b50"}``: 50 default frames at
  every size (and 5 chat frames, which scoped reads must leave out);
* ``{"bucket": "b1pct"}`` / ``{"bucket": "b01pct"}``: 1 % / 0.1 % of the default frames;
* ``{"kept": {"$ne": "yes"}}``: a negation of what every other frame holds, admitting
  the ``b01pct`` frames (whose ``kept`` is ``"no"``), answered from the postings'
  complement;
* ``{"bucket": {"$contains": "01p"}}``: a substring admitting the ``b01pct`` frames too,
  answered from the string value columns;
* ``created_at`` one frame per minute, so a ``time_range`` selects an exact share; the
  same instant is in the metadata as an ISO 8601 string (``at``), so a window of
  datetime strings (the string value columns) selects the same share.

Listing files are engine only (no embeddings, no search indexes); the find file has 384-d
corpus vectors and the default index (BM25 + HNSW graph). Everything is measured in one
process after ``Memory.open(path, readonly=True)``: the first call, then p50 / p95 over
``--calls`` calls after ``--warmup`` calls. Every answer is checked against the layout;
filtered vector hits are compared with an exact numpy top-k over the matching frames.
Results go to ``bench/results/listing-<stamp>.json`` and ``.md``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.engine_bench import RESULTS, calibrate, progress, read_through  # noqa: E402
from bench.machine import machine_info, summary  # noqa: E402
from bench.report import drop_workdir, finish, report_exit  # noqa: E402
from bench.search_bench import (  # noqa: E402
    exact_topk,
    pct,
    query_args,
    recall_at_k,
    unique_texts,
)

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
FIND_SIZE = 100_000
BATCH = 1000
DIM = 384
K = 10
CALLS = 200
WARMUP = 20
GLOBAL_WARMUP = 200  # distinct vector and hybrid queries after open, before any timing
ENGINE_ONLY = {"ann_backend": "none", "lexical": False}

CHAT = "chat"
CHAT_EVERY = 10  # global row i goes to the chat collection when i % CHAT_EVERY == 9
PICKS = 50  # default frames tagged pick50 and frames with bucket b50 (chat: PICKS // 10)
TAG = "pick50"
BUCKETS = (None, "b50", "b1pct", "b01pct")  # codes 0..3 of Truth.bucket
NEGATION = {"kept": {"$ne": "yes"}}  # admits the b01pct frames
SUBSTRING = {"bucket": {"$contains": "01p"}}  # admits the b01pct frames too
STEP_US = 60_000_000  # created_at of global row i: START + i minutes
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START_US = (corpus.DEFAULT_START - EPOCH) // timedelta(microseconds=1)

TARGET_MS = 2.0
TARGET_FLAT = 2.0  # select p50 at the largest size / at the smallest
TARGET_FILTERED = 2.0  # filtered find p50 / unfiltered p50 of the same mode
MODES = ("vector", "hybrid")


# ----------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Marks:
    """Which frames of a collection of ``size`` frames carry the tag and which bucket.

    ``picks`` evenly spaced frames get the tag, as many others ``b50``; of the rest,
    index % 100 == 1 gets ``b1pct`` and index % 1000 == 11 gets ``b01pct``.
    """

    size: int
    picks: int

    def of(self, j: int) -> tuple[bool, int]:
        stride = max(2, self.size // self.picks)
        slot, pos = divmod(j, stride)
        few = slot < self.picks
        if few and pos == 2 * stride // 3:
            bucket = 1
        else:
            bucket = 2 if j % 100 == 1 else 3 if j % 1000 == 11 else 0
        return few and pos == stride // 3, bucket


def split(n: int) -> tuple[int, int]:
    """Frames of ``default`` and of ``chat`` in a file of ``n`` frames."""
    return n - n // CHAT_EVERY, n // CHAT_EVERY


def decorate(rec: dict[str, Any], i: int, marks: Marks, j: int) -> tuple[bool, int]:
    """Give corpus record ``rec`` (global row ``i``, index ``j`` in its collection) its
    created_at, tag and bucket."""
    rec["created_at"] = EPOCH + timedelta(microseconds=START_US + i * STEP_US)
    rec["metadata"] = {**rec["metadata"], "at": iso(rec["created_at"])}
    tagged, bucket = marks.of(j)
    if tagged:
        rec["tags"] = [*rec["tags"], TAG]
    if bucket:
        rec["metadata"] = {**rec["metadata"], "bucket": BUCKETS[bucket]}
    rec["metadata"]["kept"] = "no" if BUCKETS[bucket] == "b01pct" else "yes"
    return tagged, bucket


def iso(moment: datetime) -> str:
    """The ISO 8601 string stored in metadata ``at`` (one format: strings sort by time)."""
    return moment.isoformat(timespec="microseconds")


def iso_window(bounds: tuple[datetime, datetime]) -> dict[str, Any]:
    """The metadata filter selecting what ``time_range=bounds`` selects."""
    return {"at": {"$gte": iso(bounds[0]), "$lt": iso(bounds[1])}}


class Truth:
    """What the default collection of a file holds, frame by frame in insertion order."""

    def __init__(self, n: int, vectors: bool) -> None:
        self.n = n
        self.d, self.c = split(n)
        self.ids: list[str] = []
        self.stamps = np.empty(self.d, np.int64)
        self.tagged = np.zeros(self.d, bool)
        self.bucket = np.zeros(self.d, np.int8)
        self.vectors = np.empty((self.d, DIM), np.float32) if vectors else None
        self._row_of: dict[str, int] | None = None

    def add(self, j: int, rec: dict[str, Any], tagged: bool, bucket: int) -> None:
        self.stamps[j] = (rec["created_at"] - EPOCH) // timedelta(microseconds=1)
        self.tagged[j] = tagged
        self.bucket[j] = bucket
        if self.vectors is not None:
            self.vectors[j] = rec["embedding"]

    def row_of(self) -> dict[str, int]:
        if self._row_of is None:
            self._row_of = {fid: j for j, fid in enumerate(self.ids)}
        return self._row_of

    def in_bucket(self, name: str) -> np.ndarray:
        return self.bucket == BUCKETS.index(name)

    def window(self, frames: int) -> tuple[tuple[datetime, datetime], np.ndarray]:
        """A ``time_range`` holding exactly ``frames`` default frames (from a third of the
        way in) and the mask of those frames."""
        lo = self.d // 3
        hi = lo + frames
        bounds = (EPOCH + timedelta(microseconds=int(self.stamps[lo])),
                  EPOCH + timedelta(microseconds=int(self.stamps[hi])))
        mask = np.zeros(self.d, bool)
        mask[lo:hi] = True
        return bounds, mask

    def listed(self, mask: np.ndarray) -> list[str]:
        """Ids of the masked frames in created_at order (insertion order here)."""
        return [self.ids[j] for j in np.flatnonzero(mask)]


# ----------------------------------------------------------------------------- build


def build(path: Path, n: int, *, vectors: bool, cache: Path, seed: int
          ) -> tuple[dict[str, Any], Truth]:
    """Write ``n`` corpus frames, put_many per BATCH rows (split between the default and
    the chat collection), then build_index() and close(); only engine calls are timed."""
    from memvid_store import Memory

    if n < 1000:
        raise SystemExit(f"sizes must be at least 1000 frames, got {n}")
    truth = Truth(n, vectors)
    index = None if vectors else ENGINE_ONLY
    t0 = time.perf_counter()
    mem = Memory.create(path, dim=DIM if vectors else None, index=index, cache_dir=str(cache))
    chat = mem.collection(CHAT)
    put = time.perf_counter() - t0
    own, other = Marks(truth.d, PICKS), Marks(truth.c, PICKS // 10)
    i = 0
    for records in corpus.iter_batches(n, BATCH, dim=DIM, seed=seed, ids=False,
                                       embeddings=vectors):
        mine, theirs = [], []
        for rec in records:
            if i % CHAT_EVERY == CHAT_EVERY - 1:
                decorate(rec, i, other, i // CHAT_EVERY)
                theirs.append(rec)
            else:
                j = i - i // CHAT_EVERY
                truth.add(j, rec, *decorate(rec, i, own, j))
                mine.append(rec)
            i += 1
        t0 = time.perf_counter()
        truth.ids += mem.put_many(mine)
        if theirs:
            chat.put_many(theirs)
        put += time.perf_counter() - t0
    t0 = time.perf_counter()
    mem.build_index()
    mem.close()
    close_s = time.perf_counter() - t0
    return {"n": n, "default": truth.d, "chat": truth.c, "vectors": vectors,
            "index": "default (BM25 + HNSW)" if vectors else "engine only",
            "put_s": put, "close_s": close_s, "frames_per_s": n / (put + close_s),
            "file_bytes": path.stat().st_size}, truth


# ----------------------------------------------------------------------------- timing


def timed(call: Callable[[int], Any], calls: int, warmup: int
          ) -> tuple[dict[str, float], list[Any]]:
    """``call(i)`` for i in 0..warmup+calls-1; the first call's time, then p50/p95/mean/max
    over the last ``calls`` calls, and their results."""
    gc.collect()
    times, results = [], []
    first = 0.0
    for i in range(warmup + calls):
        t0 = time.perf_counter()
        out = call(i)
        dt = time.perf_counter() - t0
        if i == 0:
            first = dt
        if i >= warmup:
            times.append(dt * 1e3)
            results.append(out)
    return {"first_ms": first * 1e3, "p50_ms": pct(times, 50), "p95_ms": pct(times, 95),
            "mean_ms": float(np.mean(times)), "max_ms": max(times), "calls": calls}, results


# ----------------------------------------------------------------------------- listing


def listing_cases(truth: Truth) -> list[tuple[str, str, Callable[[Any], Any], Any]]:
    """(name, kind, call on the memory, expected answer) of every listing query."""
    window, in_window = truth.window(PICKS)
    share, in_share = truth.window(truth.d // 100)
    b1 = truth.in_bucket("b1pct")
    return [
        ("select tag pick50", "select", lambda m: m.select({"tags": TAG}),
         truth.listed(truth.tagged)),
        ("select bucket b50", "select", lambda m: m.select({"bucket": "b50"}),
         truth.listed(truth.in_bucket("b50"))),
        ("select time_range (50 frames)", "select", lambda m: m.select(time_range=window),
         truth.listed(in_window)),
        ("count()", "count", lambda m: m.count(), truth.d),
        ("count tag pick50", "count", lambda m: m.count({"tags": TAG}), int(truth.tagged.sum())),
        ("count bucket b1pct", "count", lambda m: m.count({"bucket": "b1pct"}), int(b1.sum())),
        ("count time_range 1%", "count", lambda m: m.count(time_range=share),
         int(in_share.sum())),
        ("select datetime string (50 frames)", "select",
         lambda m: m.select(iso_window(window)), truth.listed(in_window)),
        ("count datetime string 1%", "count", lambda m: m.count(iso_window(share)),
         int(in_share.sum())),
        ("select negation 0.1%", "select", lambda m: m.select(NEGATION),
         truth.listed(truth.in_bucket("b01pct"))),
        ("count negation 0.1%", "count", lambda m: m.count(NEGATION),
         int(truth.in_bucket("b01pct").sum())),
        ("select substring 0.1%", "select", lambda m: m.select(SUBSTRING),
         truth.listed(truth.in_bucket("b01pct"))),
        ("count substring 0.1%", "count", lambda m: m.count(SUBSTRING),
         int(truth.in_bucket("b01pct").sum())),
    ]


def correct(kind: str, got: Any, expected: Any) -> bool:
    if kind == "count":
        return bool(got == expected)
    return [f.id for f in got] == expected and all(f.collection == "default" for f in got)


def listing_suite(path: Path, truth: Truth, cache: Path, calls: int, warmup: int
                  ) -> list[dict[str, Any]]:
    """Every listing query on a readonly handle: timings and whether each answer is right."""
    from memvid_store import Memory

    read_through(path)
    rows = []
    with Memory.open(path, readonly=True, cache_dir=str(cache)) as mem:
        for name, kind, call, expected in listing_cases(truth):
            stats, results = timed(lambda _i, c=call: c(mem), calls, warmup)
            wrong = sum(not correct(kind, r, expected) for r in results)
            rows.append({"n": truth.n, "query": name, "kind": kind,
                         "expected": expected if kind == "count" else len(expected),
                         **stats, "wrong": wrong})
            progress(f"n={truth.n:,} {name}: p50 {stats['p50_ms']:.3f} ms, first "
                     f"{stats['first_ms']:.2f} ms{'' if not wrong else f', {wrong} WRONG'}")
    return rows


# ----------------------------------------------------------------------------- find


def find_cases(truth: Truth) -> list[tuple[str, dict[str, Any], np.ndarray]]:
    """(name, find arguments, mask of the default frames they admit)."""
    every = np.ones(truth.d, bool)
    w1, m1 = truth.window(truth.d // 100)
    w01, m01 = truth.window(truth.d // 1000)
    return [
        ("none", {}, every),
        ("bucket b1pct (1%)", {"filter": {"bucket": "b1pct"}}, truth.in_bucket("b1pct")),
        ("bucket b01pct (0.1%)", {"filter": {"bucket": "b01pct"}}, truth.in_bucket("b01pct")),
        ("time_range 1%", {"time_range": w1}, m1),
        ("time_range 0.1%", {"time_range": w01}, m01),
        ("datetime string 1%", {"filter": iso_window(w1)}, m1),
        ("datetime string 0.1%", {"filter": iso_window(w01)}, m01),
        ("negation 0.1%", {"filter": NEGATION}, truth.in_bucket("b01pct")),
        ("substring 0.1%", {"filter": SUBSTRING}, truth.in_bucket("b01pct")),
    ]


def hit_errors(hits: list[Any], mask: np.ndarray, row_of: dict[str, int]) -> int:
    """Hits outside the default collection or not admitted by the filter / time_range,
    plus a missing-hit error when fewer than min(K, matching frames) came back."""
    bad = sum(h.collection != "default" or h.id not in row_of or not mask[row_of[h.id]]
              for h in hits)
    return bad + (len(hits) < min(K, int(mask.sum())))


def find_suite(path: Path, truth: Truth, cache: Path, calls: int, warmup: int, seed: int
               ) -> dict[str, Any]:
    """Vector and hybrid find, unfiltered and with each filter / time_range."""
    from memvid_store import Memory

    assert truth.vectors is not None
    pool, _ = corpus.query_vectors(warmup + calls, dim=DIM, seed=seed)
    texts = unique_texts(warmup + calls, seed)
    pre_v, _ = corpus.query_vectors(GLOBAL_WARMUP, dim=DIM, seed=seed, draw=1)
    pre_t = unique_texts(GLOBAL_WARMUP, seed + 1)
    row_of = truth.row_of()
    cases = find_cases(truth)
    timed_q = pool[warmup:]
    # best first, so the columns past the matching frames (scored -inf) are dropped
    exact = {name: exact_topk(truth.vectors, timed_q, K, rows=mask)[:, :min(K, int(mask.sum()))]
             for name, _, mask in cases}
    read_through(path)
    out: dict[str, Any] = {"n": truth.n, "default": truth.d, "rows": []}
    with Memory.open(path, readonly=True, cache_dir=str(cache)) as mem:
        t0 = time.perf_counter()
        mem.find(pre_t[0], vector=pre_v[0], k=K)  # opens the graph and the BM25 index
        out["first_find_ms"] = (time.perf_counter() - t0) * 1e3
        for q, text in zip(pre_v, pre_t, strict=True):  # distinct: the result cache is per
            mem.find(vector=q, k=K, mode="vector")  # query, the graph's pages map on use
            mem.find(text, vector=q, k=K, mode="hybrid")
        for name, extra, mask in cases:
            for mode in MODES:
                def call(i: int, mode: str = mode, extra: dict[str, Any] = extra) -> Any:
                    return mem.find(k=K, **query_args(mode, pool[i], texts[i]), **extra)

                stats, results = timed(call, calls, warmup)
                row: dict[str, Any] = {
                    "case": name, "mode": mode, "matching": int(mask.sum()),
                    "share": float(mask.mean()), **stats,
                    "hits_mean": float(np.mean([len(r) for r in results])),
                    "wrong": sum(hit_errors(r, mask, row_of) for r in results)}
                if mode == "vector":
                    found = [[row_of.get(h.id, -1) for h in r] for r in results]
                    row["exact_same"] = sum(set(f) == set(t.tolist())
                                            for f, t in zip(found, exact[name], strict=True))
                    row["recall"] = recall_at_k(found, exact[name])
                out["rows"].append(row)
                progress(f"find n={truth.n:,} {mode} {name}: p50 {stats['p50_ms']:.2f} ms"
                         + (f", exact top-{K} {row['exact_same']}/{calls}"
                            if mode == "vector" else "")
                         + (f", {row['wrong']} WRONG" if row["wrong"] else ""))
    base = {r["mode"]: r["p50_ms"] for r in out["rows"] if r["case"] == "none"}
    for r in out["rows"]:
        r["vs_unfiltered"] = r["p50_ms"] / base[r["mode"]]
    return out


# ----------------------------------------------------------------------------- targets


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []

    def add(name: str, size: int | None, value: float, goal: str, ok: bool, unit: str) -> None:
        out.append({"target": name, "size": size, "value": value, "unit": unit, "goal": goal,
                    "met": ok})

    rows = res["listing"]
    ns = sorted({r["n"] for r in rows})
    top, low = ns[-1], ns[0]
    p50 = {(r["n"], r["query"]): r["p50_ms"] for r in rows}
    for q in ("select tag pick50", "select bucket b50", "count()", "count tag pick50",
              "count bucket b1pct", "select datetime string (50 frames)"):
        v = p50[(top, q)]
        add(f"{q} p50", top, v, f"<= {TARGET_MS}", v <= TARGET_MS, "ms")
    if top != low:
        for q in ("select tag pick50", "select bucket b50",
                  "select datetime string (50 frames)"):
            v = p50[(top, q)] / p50[(low, q)]
            add(f"{q} p50 at {top:,} / at {low:,}", None, v, f"<= {TARGET_FLAT}",
                v <= TARGET_FLAT, "x")
    find = res.get("find")
    if find:
        for r in find["rows"]:
            if r["case"] != "none":
                add(f"{r['mode']} find p50, {r['case']} / unfiltered", find["n"],
                    r["vs_unfiltered"], f"<= {TARGET_FILTERED}",
                    r["vs_unfiltered"] <= TARGET_FILTERED, "x")
    wrong = sum(r["wrong"] for r in rows) + sum(r["wrong"] for r in (find or {}).get("rows", []))
    add("wrong answers (listings, filtered hits)", None, wrong, "0", wrong == 0, "")
    return out


# ----------------------------------------------------------------------------- report


def _load(load: list[float] | None) -> str:
    return "n/a" if not load else f"{load[0]:.2f}"


def _size(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def markdown(res: dict[str, Any]) -> str:
    """The result as markdown tables."""
    p, cal = res["parameters"], res["calibration"]
    lines = [f"## Listing benchmark ({res['timestamp']})", "",
             f"Machine: {summary(res['machine'])}  ",
             f"Calibration: 1M-iteration Python loop {cal['py_loop_1m_ms']:.0f} ms, "
             f"fsync 4 KiB {cal['fsync_4k_ms']:.2f} ms; load average at start / end "
             f"{_load(res['machine'].get('loadavg'))} / {_load(res.get('loadavg_end'))} "
             f"({res['machine']['cores_usable']} cores)  ",
             f"Command: `{res['command']}`  ",
             f"Files: {', '.join(f'{n:,}' for n in p['sizes'])} frames engine only (no "
             f"vectors, no search indexes) for select/count; {p['find_size']:,} frames with "
             f"{DIM}-d vectors and the default index for find. Nine frames in ten in "
             f"`default`, every tenth in `{CHAT}`. Warm, in-process, readonly handle: first "
             f"call, then {p['calls']} calls after {p['warmup']} warm-up calls; "
             f"find queries distinct, k={K}.", "",
             "### Targets", "", "| target | frames | goal | measured | met |",
             "| --- | ---: | ---: | ---: | :---: |"]
    for t in res["targets"]:
        digits = 0 if t["unit"] == "" else 3 if t["unit"] == "ms" else 2
        lines.append(f"| {t['target']} | {_size(t['size'])} | {t['goal']} {t['unit']} | "
                     f"{t['value']:.{digits}f} {t['unit']} | {'yes' if t['met'] else '**no**'} |")
    lines += ["", ("### Build (put_many per 1,000 corpus rows, split by collection; "
                   "build_index() and close())"),
              "", "| frames | default / chat | index | put_many s | close s | frames/s | "
              "file MB |", "| ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for b in res["builds"]:
        lines.append(f"| {b['n']:,} | {b['default']:,} / {b['chat']:,} | {b['index']} | "
                     f"{b['put_s']:.1f} | {b['close_s']:.1f} | {b['frames_per_s']:,.0f} | "
                     f"{b['file_bytes'] / 1e6:.0f} |")
    lines += ["", "### select / count on the default collection (ms)", "",
              "| frames | query | answer | first | p50 | p95 | mean | max | wrong |",
              "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["listing"]:
        answer = f"{r['expected']:,}" + (" frames" if r["kind"] == "select" else "")
        lines.append(f"| {r['n']:,} | `{r['query']}` | {answer} | {r['first_ms']:.3f} | "
                     f"{r['p50_ms']:.3f} | {r['p95_ms']:.3f} | {r['mean_ms']:.3f} | "
                     f"{r['max_ms']:.3f} | {r['wrong']} |")
    find = res.get("find")
    if find:
        lines += ["", f"### find at {find['n']:,} frames ({find['default']:,} in default; ms)",
                  "", f"First find after open (opens the graph and the BM25 index): "
                      f"{find['first_find_ms']:.1f} ms. `exact top-{K}`: queries whose "
                      f"vector hits are the exact numpy top-{K} of the matching default "
                      "frames; `wrong`: hits outside the filter / time_range / collection "
                      f"or fewer than {K} hits.", "",
                  "| filter | matching frames | mode | first | p50 | p95 | p50 / unfiltered "
                  f"| hits/query | wrong | exact top-{K} | recall@{K} |",
                  "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in find["rows"]:
            same = (f"{r['exact_same']}/{r['calls']}", f"{r['recall']:.3f}") \
                if "recall" in r else ("", "")
            lines.append(f"| {r['case']} | {r['matching']:,} ({r['share']:.2%}) | {r['mode']} | "
                         f"{r['first_ms']:.2f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | "
                         f"{r['vs_unfiltered']:.2f} | {r['hits_mean']:.1f} | {r['wrong']} | "
                         f"{same[0]} | {same[1]} |")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def run(*, full: bool = False, sizes: Iterable[int] | None = None, find_size: int = FIND_SIZE,
        workdir: str | None = None, calls: int = CALLS, warmup: int = WARMUP, seed: int = 0,
        keep: bool = False, out_dir: Path = RESULTS, command: str | None = None
        ) -> dict[str, Any]:
    """Run the listing benchmarks; returns the result dict (also written to ``out_dir``).

    Without ``sizes``, 1M frames are listed only with ``full`` (as in ``run_all.py``).
    ``find_size=0`` skips the find part.
    """
    sizes = tuple(sorted(sizes or (DEFAULT_SIZES if full else QUICK_SIZES)))
    if warmup < 1 or calls < 1:
        raise SystemExit("--calls and --warmup must be at least 1")
    base = Path(workdir or os.environ.get("MEMVID_BENCH_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    need = int((max(sizes) * 1_200 + find_size * (DIM * 4 * 2 + 1_500)) * 1.3)
    if shutil.disk_usage(base).free < need:
        raise SystemExit(f"need about {need / 1e9:.1f} GB free in {base}")
    work = Path(tempfile.mkdtemp(prefix="memvid-listing-bench-", dir=base))
    cache = work / "cache"
    res: dict[str, Any] = {
        "bench": "listing",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command or "python bench/run_all.py" + (" --full" if full else ""),
        "parameters": {"sizes": list(sizes), "find_size": find_size, "batch": BATCH, "dim": DIM,
                       "k": K, "calls": calls, "warmup": warmup, "global_warmup": GLOBAL_WARMUP,
                       "seed": seed, "chat_every": CHAT_EVERY, "picks": PICKS,
                       "listing_index": ENGINE_ONLY, "step_us": STEP_US},
        "machine": machine_info(work),
        "builds": [], "listing": [],
    }
    try:
        progress(f"workdir {work}")
        res["calibration"] = calibrate(work)
        for n in sizes:
            path = work / f"listing-{n}.mv2"
            row, truth = build(path, n, vectors=False, cache=cache, seed=seed)
            res["builds"].append(row)
            progress(f"build n={n:,} engine only: {row['put_s'] + row['close_s']:.1f} s")
            res["listing"] += listing_suite(path, truth, cache, calls, warmup)
            if not keep:
                path.unlink()
        if find_size:
            path = work / f"find-{find_size}.mv2"
            row, truth = build(path, find_size, vectors=True, cache=cache, seed=seed)
            res["builds"].append(row)
            progress(f"build n={find_size:,} with vectors: put {row['put_s']:.1f} s, "
                     f"close {row['close_s']:.1f} s")
            res["find"] = find_suite(path, truth, cache, calls, warmup, seed)
    finally:
        drop_workdir(work, keep)
    return finish(res, out_dir, "listing", targets, markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        default=list(DEFAULT_SIZES),
                        help="comma-separated frame counts of the listing files "
                             "(default 10000,100000,1000000)")
    parser.add_argument("--quick", action="store_true", help="listing files of 10k and 100k")
    parser.add_argument("--find-size", type=int, default=FIND_SIZE,
                        help="frames of the file with vectors for find (0: skip find)")
    parser.add_argument("--calls", type=int, default=CALLS, help="timed calls per figure")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="calls before timing")
    parser.add_argument("--workdir", help="where the .mv2 files go (default: $MEMVID_BENCH_DIR "
                                          "or the temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the .mv2 files")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    command = "python bench/listing_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    res = run(sizes=QUICK_SIZES if args.quick else args.sizes, find_size=args.find_size,
              workdir=args.workdir, calls=args.calls, warmup=args.warmup, seed=args.seed,
              keep=args.keep, out_dir=args.out, command=command.strip())
    return report_exit(res, markdown(res), args.strict)


if __name__ == "__main__":
    sys.exit(main())
