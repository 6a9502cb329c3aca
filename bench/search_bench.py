"""Search benchmarks: index build, recall@10, latency per mode, batch throughput, raw libraries.

Run ``python bench/search_bench.py`` (10k and 100k frames, ~5 minutes on 2 cores) or with
``--full`` / ``MEMVID_BENCH_FULL=1`` (adds 1M frames, about an hour). Each size builds three
files from the same corpus (exact scan, usearch HNSW, hnswlib HNSW, all with the BM25
index), then measures them and raw hnswlib / usearch / faiss on the same vectors. Results
go to ``bench/results/`` as JSON and markdown; see bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.engine_bench import (  # noqa: E402
    PYCACHE,
    RESULTS,
    calibrate,
    full_requested,
    median,
    progress,
    read_through,
    run_child,
)
from bench.machine import machine_info, summary, version_of  # noqa: E402
from bench.report import drop_workdir, finish, report_exit  # noqa: E402
from memvid_store.index.vector.hnsw_format import DEFAULT_EF_SEARCH  # noqa: E402

DEFAULT_SIZES = (10_000, 100_000)
FULL_SIZES = (10_000, 100_000, 1_000_000)
BATCH = 1000
DIM = 384
K = 10
QUERIES = 200
WARMUP_QUERIES = 200  # distinct vector queries run after open, before latencies are timed
THROUGHPUT_BATCH = 64
THROUGHPUT_ROUNDS = 3
EF_SWEEP = (64, 96, 128, 200, 256)
CHUNK = 100_000  # corpus rows per matrix product of the exact ground truth

# file name -> index config (every file keeps the default BM25 index)
FILES: dict[str, dict[str, Any]] = {
    "exact": {"ann_backend": "none"},
    "usearch": {"ann_backend": "usearch"},  # int8 graph, candidates rescored in float32
    "usearch-f32": {"ann_backend": "usearch", "ann_dtype": "f32"},
    "hnswlib": {"ann_backend": "hnswlib"},
}
BACKENDS = ("usearch", "hnswlib")
MODES = ("vector", "lexical", "hybrid")
# metadata equality filters, uncorrelated with the query topics (selectivity is measured)
FILTERS: dict[str, dict[str, Any] | None] = {
    "none": None,
    "~10%": {"source": "email"},
    "~1%": {"source": "email", "tags": "todo"},
}

TARGET_SIZE = 100_000
TARGET_RECALL = 0.95
TARGET_P50_MS = {"vector": 1.0, "lexical": 2.0, "hybrid": 4.0}

# Child process for one cold open: imports happen before the clock starts.
OPEN_SCRIPT = """
import json, sys, time
import numpy as np
from memvid_store import Memory
path, qfile, cache, preload = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
queries = np.fromfile(qfile, dtype="<f4").reshape(2, -1)
if preload:
    import memvid_store.index.searcher, memvid_store.index.vector.exact
    import memvid_store.index.vector.hnsw, memvid_store.index.vector.hnsw_search
    for name in ("usearch.index", "hnswlib"):
        try:
            __import__(name)
        except ImportError:
            pass
before = set(sys.modules)
t0 = time.perf_counter()
mem = Memory.open(path, readonly=True, cache_dir=cache)
t1 = time.perf_counter()
first = mem.find(vector=queries[0], k=10, mode="vector")
t2 = time.perf_counter()
second = mem.find(vector=queries[1], k=10, mode="vector")
t3 = time.perf_counter()
assert len(first) == 10 and len(second) == 10
loaded = sorted({m.split(".")[0] for m in set(sys.modules) - before})
mem.close()
print(json.dumps({"open": t1 - t0, "first": t2 - t1, "second": t3 - t2, "loaded": loaded}))
"""


# ----------------------------------------------------------------------------- helpers


def index_defaults() -> dict[str, Any]:
    """The default IndexConfig (graph parameters the raw libraries are given too)."""
    from memvid_store.config import IndexConfig

    return IndexConfig().to_dict()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean / max in milliseconds."""
    ms = [s * 1e3 for s in seconds]
    return {"p50_ms": pct(ms, 50), "p90_ms": pct(ms, 90), "p99_ms": pct(ms, 99),
            "mean_ms": float(np.mean(ms)), "max_ms": max(ms), "queries": len(ms)}


def recall_at_k(found: list[list[int]], truth: np.ndarray) -> float:
    """Mean fraction of each query's exact top-k found."""
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t.tolist())) / k
                          for f, t in zip(found, truth, strict=True)]))


def exact_topk(x: np.ndarray, q: np.ndarray, k: int, rows: np.ndarray | None = None
               ) -> np.ndarray:
    """Row indices (nq, k) of the exact top-k by inner product (unit vectors: cosine).

    ``rows`` (bool, len(x)) restricts the candidates; computed in chunks of CHUNK rows.
    """
    nq = q.shape[0]
    best_s = np.full((nq, 0), -np.inf, np.float32)
    best_i = np.zeros((nq, 0), np.int64)
    for start in range(0, x.shape[0], CHUNK):
        s = q @ x[start:start + CHUNK].T
        if rows is not None:
            s[:, ~rows[start:start + CHUNK]] = -np.inf
        part = np.argpartition(-s, min(k, s.shape[1]) - 1, axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, axis=1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        keep = np.argpartition(-best_s, min(k, best_s.shape[1]) - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(best_s, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, axis=1)


def unique_texts(n: int, seed: int) -> list[str]:
    """``n`` distinct keyword queries (repeats would be answered from the result cache)."""
    pool = [t for t, _ in corpus.query_texts(n * 4, seed=seed)]
    out = list(dict.fromkeys(pool))
    if len(out) < n:
        raise SystemExit(f"only {len(out)} distinct query texts for {n} queries")
    return out[:n]


def has_graph(path: Path, cache: Path) -> bool:
    """Whether the file holds an HNSW graph (it is built from ``ann_threshold`` vectors)."""
    from memvid_store import Memory

    with Memory.open(path, readonly=True, cache_dir=str(cache)) as mem:
        try:
            return mem._snap().toc.find("ann") is not None
        except AttributeError:
            n, cfg = len(mem), mem.index_config
            return cfg.ann_backend != "none" and n >= cfg.ann_threshold


def graph_width(path: Path, cache: Path) -> int | None:
    """The search width the file's graph was calibrated to (None: no graph)."""
    from memvid_store import Memory

    with Memory.open(path, readonly=True, cache_dir=str(cache)) as mem:
        ref = mem._snap().toc.find("ann")
        return None if ref is None else ref.meta.get("ef_search", DEFAULT_EF_SEARCH)


# ----------------------------------------------------------------------------- corpus


class Corpus:
    """The corpus vectors in insertion order and which rows each filter matches."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.vectors = np.empty((n, DIM), np.float32)
        self.matches = {name: np.zeros(n, bool) for name, spec in FILTERS.items() if spec}

    def add(self, start: int, records: list[dict[str, Any]]) -> None:
        from memvid_store.index.filters import compile_filter

        flts = {name: compile_filter(FILTERS[name]) for name in self.matches}
        for i, rec in enumerate(records):
            row = start + i
            self.vectors[row] = rec["embedding"]
            for name, flt in flts.items():
                self.matches[name][row] = flt(rec["metadata"], rec["tags"])

    def selectivity(self) -> dict[str, float]:
        return {name: float(m.mean()) for name, m in self.matches.items()}


# ----------------------------------------------------------------------------- build


def build_file(path: Path, n: int, index: dict[str, Any], cache: Path, seed: int,
               data: Corpus | None) -> tuple[dict[str, Any], dict[str, int]]:
    """put_many per BATCH frames, then build_index() and close(); only engine calls are
    timed.

    Returns the figures and the corpus row of each (engine-generated) frame id. With
    ``data``, records the vectors and filter matches of the corpus.
    """
    from memvid_store import Memory

    t0 = time.perf_counter()
    mem = Memory.create(path, dim=DIM, index=index, cache_dir=str(cache))
    put = time.perf_counter() - t0
    done = 0
    row_of: dict[str, int] = {}
    for records in corpus.iter_batches(n, BATCH, dim=DIM, seed=seed, ids=False):
        t0 = time.perf_counter()
        ids = mem.put_many(records)
        put += time.perf_counter() - t0
        row_of.update(zip(ids, range(done, done + len(ids)), strict=True))
        if data is not None:
            data.add(done, records)
        done += len(records)
    t0 = time.perf_counter()
    mem.build_index()  # what close() leaves to the background: the whole graph
    mem.close()
    close_s = time.perf_counter() - t0
    total = put + close_s
    return {"n": n, "file": path.stem.rsplit("-", 1)[0], "index": index,
            "put_s": put, "close_s": close_s, "close_s_per_100k": close_s * 100_000 / n,
            "total_s": total, "frames_per_s": n / total, "file_bytes": path.stat().st_size,
            "graph": has_graph(path, cache)}, row_of


# ----------------------------------------------------------------------------- queries


def query_args(mode: str, vector: np.ndarray, text: str) -> dict[str, Any]:
    if mode == "vector":
        return {"vector": vector, "mode": mode}
    if mode == "lexical":
        return {"text": text, "mode": mode}
    return {"vector": vector, "text": text, "mode": mode}


def measure_file(path: Path, cache: Path, row_of: dict[str, int], qv: np.ndarray,
                 texts: list[str],
                 truth: dict[str, np.ndarray], warm: tuple[np.ndarray, str],
                 throughput_q: np.ndarray) -> dict[str, Any]:
    """Latency per mode and filter, recall of vector queries, batch vs single throughput."""
    from memvid_store import Memory

    out: dict[str, Any] = {"latency": [], "recall": {}, "throughput": {}}
    read_through(path)  # page cache warm, as for every other figure
    with Memory.open(path, readonly=True, cache_dir=str(cache)) as mem:
        t0 = time.perf_counter()
        mem.find(vector=warm[0][0], text=warm[1], k=K)  # opens the graph and the BM25 index
        out["warmup_ms"] = (time.perf_counter() - t0) * 1e3
        for q in warm[0][1:]:  # distinct queries: a viewed graph maps its hot pages, as a
            mem.find(vector=q, k=K, mode="vector")  # copied one has them at open
        for fname, spec in FILTERS.items():
            for mode in MODES:
                times, found, counts = [], [], []
                gc.collect()
                for i in range(len(qv)):
                    args = query_args(mode, qv[i], texts[i])
                    t0 = time.perf_counter()
                    hits = mem.find(k=K, filter=spec, **args)
                    times.append(time.perf_counter() - t0)
                    counts.append(len(hits))
                    if mode == "vector":
                        found.append([row_of[h.id] for h in hits])
                row = {"mode": mode, "filter": fname, **latency_stats(times),
                       "hits_mean": float(np.mean(counts))}
                if mode == "vector":
                    row["recall"] = recall_at_k(found, truth[fname])
                    out["recall"][fname] = row["recall"]
                out["latency"].append(row)
        out["throughput"] = throughput(mem, throughput_q)
    return out


def throughput(mem: Any, queries: np.ndarray) -> dict[str, Any]:
    """Vector queries/s: find_batch of THROUGHPUT_BATCH vs as many single finds.

    Every round uses fresh queries (the result cache would answer repeats).
    """
    single, batch = [], []
    b = THROUGHPUT_BATCH
    for r in range(THROUGHPUT_ROUNDS):
        one = queries[2 * r * b:(2 * r + 1) * b]
        many = queries[(2 * r + 1) * b:(2 * r + 2) * b]
        gc.collect()
        t0 = time.perf_counter()
        for q in one:
            mem.find(vector=q, k=K, mode="vector")
        single.append(b / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        got = mem.find_batch([{"vector": q, "k": K, "mode": "vector"} for q in many])
        batch.append(b / (time.perf_counter() - t0))
        assert len(got) == b
    s, m = median(single), median(batch)
    return {"batch": b, "rounds": THROUGHPUT_ROUNDS, "single_qps": s, "batch_qps": m,
            "ratio": m / s, "single_qps_all": single, "batch_qps_all": batch}


# ----------------------------------------------------------------------------- raw libraries


def timed_queries(search: Callable[[np.ndarray], Iterable[int]], qv: np.ndarray
                  ) -> tuple[list[float], list[list[int]]]:
    times, found = [], []
    for q in qv:
        t0 = time.perf_counter()
        labels = search(q)
        times.append(time.perf_counter() - t0)
        found.append([int(x) for x in labels])
    return times, found


def raw_row(library: str, kind: str, build_s: float, times: list[float],
            found: list[list[int]], truth: np.ndarray, sweep: list[dict[str, Any]]
            ) -> dict[str, Any]:
    return {"library": library, "kind": kind, "build_s": build_s, **latency_stats(times),
            "recall": recall_at_k(found, truth), "ef_sweep": sweep}


def sweep(set_ef: Callable[[int], None], search: Callable[[np.ndarray], Iterable[int]],
          qv: np.ndarray, truth: np.ndarray, ef_default: int) -> list[dict[str, Any]]:
    """Recall and p50 at each ef of EF_SWEEP; leaves ef at ``ef_default``."""
    rows = []
    for ef in EF_SWEEP:
        set_ef(ef)
        times, found = timed_queries(search, qv)
        rows.append({"ef": ef, "recall": recall_at_k(found, truth),
                     "p50_ms": pct(times, 50) * 1e3})
    set_ef(ef_default)
    return rows


def raw_hnswlib(x: np.ndarray, qv: np.ndarray, truth: np.ndarray,
                p: dict[str, Any]) -> dict[str, Any]:
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=x.shape[1])
    index.init_index(max_elements=x.shape[0], M=p["ann_m"],
                     ef_construction=p["ann_ef_construction"], random_seed=100)
    t0 = time.perf_counter()
    index.add_items(x, np.arange(x.shape[0]), num_threads=os.cpu_count() or 1)
    build = time.perf_counter() - t0

    def search(q: np.ndarray) -> Iterable[int]:
        return index.knn_query(q[None, :], k=K, num_threads=1)[0][0]

    rows = sweep(index.set_ef, search, qv, truth, p["ann_ef_search"])
    times, found = timed_queries(search, qv)
    return raw_row("hnswlib", f"HNSW M={p['ann_m']}", build, times, found, truth, rows)


def raw_usearch(x: np.ndarray, qv: np.ndarray, truth: np.ndarray,
                p: dict[str, Any]) -> dict[str, Any]:
    from usearch.index import Index

    index = Index(ndim=x.shape[1], metric="cos", dtype="f32", connectivity=p["ann_m"],
                  expansion_add=p["ann_ef_construction"], expansion_search=p["ann_ef_search"])
    t0 = time.perf_counter()
    index.add(np.arange(x.shape[0], dtype=np.uint64), x, threads=os.cpu_count() or 1)
    build = time.perf_counter() - t0

    def search(q: np.ndarray) -> Iterable[int]:
        return index.search(q, K, threads=1).keys

    def set_ef(ef: int) -> None:
        index.expansion_search = ef

    rows = sweep(set_ef, search, qv, truth, p["ann_ef_search"])
    times, found = timed_queries(search, qv)
    return raw_row("usearch", f"HNSW M={p['ann_m']}", build, times, found, truth, rows)


def raw_faiss(x: np.ndarray, qv: np.ndarray, truth: np.ndarray,
              p: dict[str, Any]) -> list[dict[str, Any]]:
    import faiss

    threads = faiss.omp_get_max_threads()
    out = []
    index = faiss.IndexHNSWFlat(x.shape[1], p["ann_m"], faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = p["ann_ef_construction"]
    t0 = time.perf_counter()
    index.add(x)
    build = time.perf_counter() - t0
    faiss.omp_set_num_threads(1)  # single-query latency, like the other libraries
    try:
        def search(q: np.ndarray) -> Iterable[int]:
            return index.search(q[None, :], K)[1][0]

        def set_ef(ef: int) -> None:
            index.hnsw.efSearch = ef

        rows = sweep(set_ef, search, qv, truth, p["ann_ef_search"])
        times, found = timed_queries(search, qv)
        out.append(raw_row("faiss", f"IndexHNSWFlat M={p['ann_m']}", build, times, found,
                           truth, rows))
        index.reset()  # free the graph before the flat index
        flat = faiss.IndexFlatIP(x.shape[1])
        t0 = time.perf_counter()
        flat.add(x)
        build = time.perf_counter() - t0
        times, found = timed_queries(lambda q: flat.search(q[None, :], K)[1][0], qv)
        out.append(raw_row("faiss", "IndexFlatIP (exact)", build, times, found, truth, []))
    finally:
        faiss.omp_set_num_threads(threads)
    return out


def raw_numpy(x: np.ndarray, qv: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    def search(q: np.ndarray) -> Iterable[int]:
        s = x @ q
        top = np.argpartition(-s, K - 1)[:K]
        return top[np.argsort(-s[top])]

    times, found = timed_queries(search, qv)
    return raw_row("numpy", "x @ q + argpartition (exact)", 0.0, times, found, truth, [])


def raw_suite(x: np.ndarray, qv: np.ndarray, truth: np.ndarray, p: dict[str, Any]
              ) -> list[dict[str, Any]]:
    """Raw libraries on the same vectors, graph parameters and queries as the files."""
    rows: list[dict[str, Any]] = [raw_numpy(x, qv, truth)]
    for name, fn in (("hnswlib", raw_hnswlib), ("usearch", raw_usearch), ("faiss", raw_faiss)):
        gc.collect()
        try:
            got = fn(x, qv, truth, p)
        except ImportError:
            pkg = "faiss-cpu" if name == "faiss" else name
            rows.append({"library": name, "missing": f"not installed (pip install {pkg})"})
            progress(f"raw {name}: not installed")
            continue
        for row in got if isinstance(got, list) else [got]:
            rows.append(row)
            progress(f"raw {row['library']} {row['kind']}: build {row['build_s']:.1f} s, "
                     f"p50 {row['p50_ms']:.3f} ms, recall {row['recall']:.3f}")
    return rows


# ----------------------------------------------------------------------------- open


def open_suite(files: dict[tuple[int, str], Path], work: Path, cache: Path, qv: np.ndarray,
               repeats: int) -> list[dict[str, Any]]:
    """Fresh process: ``Memory.open`` + first vector query, median of ``repeats``.

    ``cold``: the index modules and the ANN library are imported by the first query;
    ``preloaded``: imported before the clock (the graph load and search remain).
    """
    qfile = work / "open-queries.f32"
    np.ascontiguousarray(qv[:2], "<f4").tofile(qfile)
    samples: dict[tuple[int, str, bool], list[dict[str, Any]]] = {}
    for key, path in files.items():  # warm the page and bytecode caches
        run_child(["-c", OPEN_SCRIPT, str(path), str(qfile), str(cache), "0"])
        for pre in (False, True):
            samples[(*key, pre)] = []
    for _ in range(repeats):
        for (n, name, pre), runs in samples.items():
            out = run_child(["-c", OPEN_SCRIPT, str(files[(n, name)]), str(qfile), str(cache),
                             "1" if pre else "0"])
            runs.append(json.loads(out.stdout))
    rows = []
    for (n, name, pre), runs in samples.items():
        rows.append({
            "n": n, "file": name, "libs": "preloaded" if pre else "cold", "repeats": len(runs),
            "open_ms": median(r["open"] for r in runs) * 1e3,
            "first_query_ms": median(r["first"] for r in runs) * 1e3,
            "open_first_ms": median(r["open"] + r["first"] for r in runs) * 1e3,
            "second_query_ms": median(r["second"] for r in runs) * 1e3,
            "loaded": runs[-1]["loaded"],
        })
        progress(f"open n={n} {name} ({rows[-1]['libs']}): open + first query "
                 f"{rows[-1]['open_first_ms']:.1f} ms")
    return rows


# ----------------------------------------------------------------------------- one size


def size_suite(work: Path, cache: Path, n: int, nq: int, seed: int) -> dict[str, Any]:
    """Build the three files of ``n`` frames and measure them and the raw libraries."""
    params = index_defaults()
    pool, _ = corpus.query_vectors(nq + WARMUP_QUERIES + 2 * THROUGHPUT_ROUNDS * THROUGHPUT_BATCH,
                                   dim=DIM, seed=seed)
    qv, warm_v = pool[:nq], pool[nq:nq + WARMUP_QUERIES]
    tq = pool[nq + WARMUP_QUERIES:]
    texts = unique_texts(nq + 1, seed)
    warm_t, texts = texts[-1], texts[:-1]

    data = Corpus(n)
    builds, paths, rows = [], {}, {}
    for name, index in FILES.items():
        path = work / f"{name}-{n}.mv2"
        row, rows[name] = build_file(path, n, index, cache, seed, data if not builds else None)
        builds.append(row)
        paths[name] = path
        progress(f"build n={n} {name}: {row['total_s']:.1f} s (close {row['close_s']:.1f} s), "
                 f"graph={row['graph']}")
    truth = {name: exact_topk(data.vectors, qv, K, rows=data.matches.get(name))
             for name in FILTERS}
    measured = {}
    for name, path in paths.items():
        measured[name] = measure_file(path, cache, rows.pop(name), qv, texts, truth,
                                      (warm_v, warm_t), tq)
        lat = {(r["mode"], r["filter"]): r["p50_ms"] for r in measured[name]["latency"]}
        progress(f"query n={n} {name}: p50 vector {lat[('vector', 'none')]:.2f} / lexical "
                 f"{lat[('lexical', 'none')]:.2f} / hybrid {lat[('hybrid', 'none')]:.2f} ms, "
                 f"recall {measured[name]['recall']['none']:.3f}")
    widths = {name: graph_width(path, cache) for name, path in paths.items()}
    # the raw libraries search with the width the usearch file calibrated for itself
    raw = raw_suite(data.vectors, qv, truth["none"],
                    {**params, "ann_ef_search": widths.get("usearch") or DEFAULT_EF_SEARCH})
    graph = {b["file"]: b["graph"] for b in builds}
    overhead = []
    for name in FILES:
        ours = next(r["p50_ms"] for r in measured[name]["latency"]
                    if r["mode"] == "vector" and r["filter"] == "none")
        if graph[name]:
            peer = next((r for r in raw if r.get("library") == name and "build_s" in r), None)
        else:
            peer = next((r for r in raw if "exact" in r.get("kind", "")
                         and r["library"] == "faiss"), None) or raw[0]
        if peer is not None:
            overhead.append({"file": name, "path": "hnsw" if graph[name] else "exact",
                             "ours_p50_ms": ours, "peer": f"{peer['library']} {peer['kind']}",
                             "peer_p50_ms": peer["p50_ms"], "ratio": ours / peer["p50_ms"]})
    return {"n": n, "queries": nq, "selectivity": data.selectivity(), "builds": builds,
            "files": measured, "raw": raw, "overhead": overhead, "paths": paths,
            "ef_search": widths}


# ----------------------------------------------------------------------------- verdict


def verdict(res: dict[str, Any]) -> dict[str, Any]:
    """Which backend should be the default, criterion by criterion, at the largest size
    where both files have a graph."""
    sizes = [s for s in res["sizes"] if all(b["graph"] for b in s["builds"]
                                            if b["file"] in BACKENDS)]
    if not sizes:
        return {"n": None, "criteria": [], "winner": None,
                "note": "no size reached ann_threshold: both backends searched exactly"}
    s = max(sizes, key=lambda x: x["n"])
    n = s["n"]

    def lat(name: str, mode: str = "vector", flt: str = "none") -> float:
        return next(r["p50_ms"] for r in s["files"][name]["latency"]
                    if r["mode"] == mode and r["filter"] == flt)

    build = {b["file"]: b["close_s"] for b in s["builds"]}
    raw = {r["library"]: r for r in s["raw"] if "build_s" in r and "HNSW" in r["kind"]}
    opens = {(o["file"], o["libs"]): o["open_first_ms"] for o in res["open"] if o["n"] == n}
    criteria = []

    def add(name: str, values: dict[str, float], higher: bool, unit: str) -> None:
        if not all(b in values for b in BACKENDS):
            return
        best = (max if higher else min)(BACKENDS, key=lambda b: values[b])
        criteria.append({"criterion": name, "unit": unit, "higher_is_better": higher,
                         **{b: values[b] for b in BACKENDS}, "winner": best})

    add("index build (close s)", {b: build[b] for b in BACKENDS}, False, "s")
    add("raw library build", {b: raw[b]["build_s"] for b in BACKENDS if b in raw}, False, "s")
    add("vector p50 (ours)", {b: lat(b) for b in BACKENDS}, False, "ms")
    add("hybrid p50 (ours)", {b: lat(b, "hybrid") for b in BACKENDS}, False, "ms")
    add("raw library p50", {b: raw[b]["p50_ms"] for b in BACKENDS if b in raw}, False, "ms")
    add("recall@10 (ours)", {b: s["files"][b]["recall"]["none"] for b in BACKENDS}, True, "")
    add("open + first query, cold", {b: opens[(b, "cold")] for b in BACKENDS
                                     if (b, "cold") in opens}, False, "ms")
    add("open + first query, libs preloaded",
        {b: opens[(b, "preloaded")] for b in BACKENDS if (b, "preloaded") in opens}, False,
        "ms")
    wins = {b: sum(c["winner"] == b for c in criteria) for b in BACKENDS}
    out: dict[str, Any] = {"n": n, "criteria": criteria, "wins": wins,
                           "by_count": max(BACKENDS, key=lambda b: (wins[b], b == "usearch"))}
    # Every process pays open + first query once, then the per-query difference: the
    # backend that opens faster wins until the other's faster queries pay back the gap.
    start = {b: opens.get((b, "preloaded")) for b in BACKENDS}
    if all(v is not None for v in start.values()):
        fast_open = min(BACKENDS, key=lambda b: start[b])
        other = next(b for b in BACKENDS if b != fast_open)
        gain = lat(fast_open) - lat(other)  # ms per query the other backend saves
        out["fast_open"] = fast_open
        out["break_even_queries"] = ((start[other] - start[fast_open]) / gain
                                     if gain > 0 else None)
        out["fast_query"] = other if gain > 0 else fast_open
    return out


# ----------------------------------------------------------------------------- targets


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []

    def add(name: str, value: float, goal: str, ok: bool, unit: str) -> None:
        out.append({"target": name, "value": value, "unit": unit, "goal": goal, "met": ok})

    ns = [s["n"] for s in res["sizes"]]
    at = TARGET_SIZE if TARGET_SIZE in ns else max(ns)
    s = next(x for x in res["sizes"] if x["n"] == at)
    for name in BACKENDS:
        path = "HNSW" if next(b["graph"] for b in s["builds"] if b["file"] == name) else "exact"
        rec = s["files"][name]["recall"]["none"]
        add(f"recall@10 {at:,} frames, {name} file ({path})", rec, f">= {TARGET_RECALL}",
            rec >= TARGET_RECALL, "")
        for mode, goal in TARGET_P50_MS.items():
            p50 = next(r["p50_ms"] for r in s["files"][name]["latency"]
                       if r["mode"] == mode and r["filter"] == "none")
            add(f"{mode} p50 {at:,} frames, {name} file", p50, f"<= {goal}", p50 <= goal, "ms")
    return out


# ----------------------------------------------------------------------------- report


def _load(load: list[float] | None) -> str:
    return "n/a" if not load else f"{load[0]:.2f}"


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}f}"


def markdown(res: dict[str, Any]) -> str:
    """The result as markdown tables."""
    p = res["parameters"]
    ix = p["index"]
    cal = res["calibration"]
    lines = [f"## Search benchmark ({res['timestamp']})", "",
             f"Machine: {summary(res['machine'])}  ",
             "Libraries: " + ", ".join(f"{k} {v}" for k, v in res["libraries"].items()) + "  ",
             f"Calibration: 1M-iteration Python loop {cal['py_loop_1m_ms']:.0f} ms, "
             f"fsync 4 KiB {cal['fsync_4k_ms']:.2f} ms; load average at start / end "
             f"{_load(res['machine'].get('loadavg'))} / {_load(res.get('loadavg_end'))} "
             f"({res['machine']['cores_usable']} cores)  ",
             f"Index: {ix['distance']}, HNSW M={ix['ann_m']}, ef_construction="
             f"{ix['ann_ef_construction']}, ef_search calibrated for recall@10 >= "
             f"{ix.get('recall_target', 0.95)} (" + ", ".join(
                 f"{s['n']:,}: {s.get('ef_search', {}).get('usearch')}"
                 for s in res["sizes"]) + "), graph from "
             f"{ix['ann_threshold']:,} vectors; {p['queries']} queries per figure, k={K}, "
             f"{p['dim']}-d; filters: "
             + "; ".join(f"{k} `{json.dumps(v)}`" for k, v in FILTERS.items() if v), "",
             "### Targets", "", "| target | measured | goal | met |",
             "| --- | ---: | ---: | :---: |"]
    for t in res["targets"]:
        lines.append(f"| {t['target']} | {_fmt(t['value'], 3)} {t['unit']} | {t['goal']} "
                     f"{t['unit']} | {'yes' if t['met'] else '**no**'} |")
    lines += ["", ("### Build (put_many per 1,000 frames, then build_index() and close(); "
                   "engine calls only)"), "",
              "| frames | file | HNSW graph | put_many s | close s (index build) | "
              "close s per 100k | total s | frames/s | file MB |",
              "| ---: | --- | :---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in res["sizes"]:
        for b in s["builds"]:
            lines.append(f"| {b['n']:,} | {b['file']} | {'yes' if b['graph'] else 'no'} | "
                         f"{b['put_s']:.2f} | {b['close_s']:.2f} | {b['close_s_per_100k']:.1f}"
                         f" | {b['total_s']:.2f} | {b['frames_per_s']:,.0f} | "
                         f"{b['file_bytes'] / 1e6:.0f} |")
    lines += ["", "### Recall@10 of vector queries (vs exact numpy top-10 of the same rows)", "",
              "| frames | file | path | " + " | ".join(f"filter {k}" for k in FILTERS) + " |",
              "| ---: | --- | --- |" + " ---: |" * len(FILTERS)]
    for s in res["sizes"]:
        graph = {b["file"]: b["graph"] for b in s["builds"]}
        for name, m in s["files"].items():
            lines.append(f"| {s['n']:,} | {name} | {'hnsw' if graph[name] else 'exact'} | "
                         + " | ".join(f"{m['recall'][k]:.3f}" for k in FILTERS) + " |")
    sel = "; ".join(f"{s['n']:,}: " + ", ".join(f"{k} matches {v:.2%}"
                                                   for k, v in s["selectivity"].items())
                    for s in res["sizes"])
    lines += ["", f"Filter selectivity: {sel}", "",
              "### Latency (in-process, warm, distinct queries; ms)", "",
              "| frames | file | mode | filter | p50 | p90 | p99 | mean | hits/query |",
              "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for s in res["sizes"]:
        for name, m in s["files"].items():
            for r in m["latency"]:
                lines.append(f"| {s['n']:,} | {name} | {r['mode']} | {r['filter']} | "
                             f"{r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | "
                             f"{r['mean_ms']:.2f} | {r['hits_mean']:.1f} |")
    lines += ["", f"### Batch throughput (vector, k={K}; find_batch of {THROUGHPUT_BATCH} vs "
                  f"{THROUGHPUT_BATCH} single find calls, median of {THROUGHPUT_ROUNDS})", "",
              "| frames | file | single queries/s | find_batch queries/s | batch / single |",
              "| ---: | --- | ---: | ---: | ---: |"]
    for s in res["sizes"]:
        for name, m in s["files"].items():
            t = m["throughput"]
            lines.append(f"| {s['n']:,} | {name} | {t['single_qps']:,.0f} | "
                         f"{t['batch_qps']:,.0f} | {t['ratio']:.2f} |")
    lines += ["", "### Raw libraries on the same vectors (single-query latency, 1 thread; "
                  "build on all cores)", "",
              "| frames | library | index | build s | p50 ms | p99 ms | recall@10 |",
              "| ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for s in res["sizes"]:
        for r in s["raw"]:
            if "missing" in r:
                lines.append(f"| {s['n']:,} | {r['library']} | {r['missing']} | | | | |")
                continue
            lines.append(f"| {s['n']:,} | {r['library']} | {r['kind']} | {r['build_s']:.2f} | "
                         f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['recall']:.3f} |")
    lines += ["", "Recall / p50 ms of the raw HNSW libraries by ef_search (the files use "
                  "their calibrated width; the raw libraries' own row uses the usearch "
                  "file's):", "",
              "| frames | library | " + " | ".join(f"ef={e}" for e in EF_SWEEP) + " |",
              "| ---: | --- |" + " ---: |" * len(EF_SWEEP)]
    for s in res["sizes"]:
        for r in s["raw"]:
            if r.get("ef_sweep"):
                lines.append(f"| {s['n']:,} | {r['library']} | " + " | ".join(
                    f"{e['recall']:.3f} / {e['p50_ms']:.2f}" for e in r["ef_sweep"]) + " |")
    lines += ["", "Our overhead (vector p50 of the file / p50 of the raw library doing the "
                  "same search):", "",
              "| frames | file | path | ours p50 ms | raw peer | peer p50 ms | ratio |",
              "| ---: | --- | --- | ---: | --- | ---: | ---: |"]
    for s in res["sizes"]:
        for o in s["overhead"]:
            lines.append(f"| {s['n']:,} | {o['file']} | {o['path']} | {o['ours_p50_ms']:.2f} | "
                         f"{o['peer']} | {o['peer_p50_ms']:.3f} | {o['ratio']:.1f}x |")
    lines += ["", f"### Cold open + first vector query (fresh process, median of "
                  f"{res['parameters']['open_repeats']}, page cache warm)", "",
              "| frames | file | ANN/index modules | open ms | first query ms | "
              "open + first ms | second query ms | imported by open + query |",
              "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for o in res["open"]:
        lines.append(f"| {o['n']:,} | {o['file']} | {o['libs']} | {o['open_ms']:.2f} | "
                     f"{o['first_query_ms']:.2f} | {o['open_first_ms']:.2f} | "
                     f"{o['second_query_ms']:.2f} | "
                     f"{', '.join(m for m in o['loaded'] if m != 'memvid_store') or '-'} |")
    v = res["verdict"]
    lines += ["", f"### Default backend (at {v['n']:,} frames)" if v["n"] else
              "### Default backend", ""]
    if v["criteria"]:
        lines += ["| criterion | usearch | hnswlib | better |", "| --- | ---: | ---: | --- |"]
        for c in v["criteria"]:
            digits = 3 if c["unit"] in ("", "ms") else 1
            lines.append(f"| {c['criterion']} | {_fmt(c['usearch'], digits)} {c['unit']} | "
                         f"{_fmt(c['hnswlib'], digits)} {c['unit']} | {c['winner']} |")
        lines += ["", f"Criteria won: usearch {v['wins']['usearch']}, hnswlib "
                      f"{v['wins']['hnswlib']} (by count: {v['by_count']})."]
        if "fast_open" in v:
            fast, be = v["fast_open"], v["break_even_queries"]
            if be is None:
                lines.append(f"{fast} opens faster and is not slower per query: it costs "
                             "less for any number of queries per process.")
            else:
                lines.append(
                    f"{fast} opens faster (open + first query, libraries loaded); "
                    f"{v['fast_query']}'s faster vector queries pay that back after "
                    f"~{be:,.0f} queries. A process answering fewer vector queries (a "
                    f"serverless cold start, a CLI call) spends less with **{fast}**, one "
                    f"answering more with **{v['fast_query']}**.")
    else:
        lines.append(v.get("note", ""))
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def run(*, full: bool = False, sizes: Iterable[int] | None = None, workdir: str | None = None,
        queries: int = QUERIES, open_repeats: int = 5, seed: int = 0, keep: bool = False,
        out_dir: Path = RESULTS) -> dict[str, Any]:
    """Run the search benchmarks; returns the result dict (also written to ``out_dir``)."""
    sizes = tuple(sorted(sizes or (FULL_SIZES if full else DEFAULT_SIZES)))
    base = Path(workdir or os.environ.get("MEMVID_BENCH_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    need = int(max(sizes) * 4_200 * len(FILES) * 1.2)
    if shutil.disk_usage(base).free < need:
        raise SystemExit(f"need about {need / 1e9:.1f} GB free in {base}")
    work = Path(tempfile.mkdtemp(prefix="memvid-search-bench-", dir=base))
    cache = work / "cache"
    PYCACHE["prefix"] = work / "pycache"
    res: dict[str, Any] = {
        "bench": "search",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": {"sizes": list(sizes), "batch": BATCH, "dim": DIM, "k": K,
                       "queries": queries, "seed": seed, "full": full,
                       "open_repeats": open_repeats, "index": index_defaults(),
                       "filters": FILTERS, "files": FILES,
                       "throughput": {"batch": THROUGHPUT_BATCH, "rounds": THROUGHPUT_ROUNDS},
                       "ef_sweep": list(EF_SWEEP)},
        "machine": machine_info(work),
        "libraries": {name: version_of(name) for name in
                      ("usearch", "hnswlib", "faiss-cpu", "tantivy", "numpy")},
    }
    try:
        progress(f"workdir {work}")
        res["calibration"] = calibrate(work)
        res["sizes"] = []
        files: dict[tuple[int, str], Path] = {}
        for n in sizes:
            s = size_suite(work, cache, n, queries, seed)
            files.update({(n, name): path for name, path in s.pop("paths").items()})
            res["sizes"].append(s)
        qv, _ = corpus.query_vectors(2, dim=DIM, seed=seed, draw=1)
        res["open"] = open_suite(files, work, cache, qv, open_repeats)
    finally:
        PYCACHE.pop("prefix", None)
        drop_workdir(work, keep)
    res["verdict"] = verdict(res)
    return finish(res, out_dir, "search", targets, markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", default=full_requested(),
                        help="also 1M frames (or MEMVID_BENCH_FULL=1)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        help="comma-separated frame counts (overrides --full)")
    parser.add_argument("--workdir", help="where the .mv2 files go (default: $MEMVID_BENCH_DIR "
                                          "or the temp dir)")
    parser.add_argument("--queries", type=int, default=QUERIES)
    parser.add_argument("--open-repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the .mv2 files")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    res = run(full=args.full, sizes=args.sizes, workdir=args.workdir, queries=args.queries,
              open_repeats=args.open_repeats, seed=args.seed, keep=args.keep, out_dir=args.out)
    return report_exit(res, markdown(res), args.strict)


if __name__ == "__main__":
    sys.exit(main())
