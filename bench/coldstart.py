"""Cold start against peers: a fresh process per figure, from spawn to the first answer.

Every engine answers the same queries on the same corpus (``bench.corpus``): memvid-py
(vector, lexical, hybrid), chromadb, lancedb (vector, full-text, hybrid), faiss, usearch
and hnswlib (index file + pickled texts), numpy brute force (``.npy`` + pickled texts) and
memvid-sdk (at 1k only: its ingest runs at a few documents per second). Each child process
reports when its script began (interpreter start), the import, the open, the first query
and its RSS after the answer; the driver adds the spawn time. Medians of ``--repeats`` runs,
rounds interleaved across engines; one discarded warm-up run per figure fills the page
cache and the bytecode cache (``PYTHONPYCACHEPREFIX``), so this measures work done per
process, not disk latency. memvid-py children get an empty ``MEMVID_CACHE_DIR`` each, as a
new serverless instance has an empty /tmp.

Targets are computed as the issue states them; the 3x one compares the first vector answer
at 100k with the fastest peer *index* (chromadb, lancedb, faiss, usearch, hnswlib), and
numpy brute force is reported beside it as a floor.

Corpora are built once and cached under ``bench/.cache/coldstart/`` keyed by size, dim,
seed and library version (``--rebuild NAME`` rebuilds one engine's files).

``python bench/coldstart.py`` (1k, 10k, 100k), ``--full`` (adds 1M frames at
``--dim-1m``, default 128, and memvid-py at 100k with that dim for the 1M ratio),
``--quick`` (10k only, 3 runs). Results: ``bench/results/coldstart-<stamp>.json/.md`` and
the cold-start section of ``bench/results/latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
    child_env,
    full_requested,
    median,
    progress,
)
from bench.machine import machine_info, summary, version_of  # noqa: E402
from bench.report import update_latest, write_results  # noqa: E402

CACHE = HERE / ".cache" / "coldstart"
DIM = 384
DIM_1M = 128
K = 10
BATCH = 1000
SDK_SIZE = 1000
CHROMA_MAX = 100_000  # chromadb ingests ~2-3k vectors/s: larger sizes only on request
MODES = ("vector", "lexical", "hybrid")
HNSW = {"m": 16, "ef_construction": 200, "ef_search": 96}  # the engine's defaults
DEFAULT_SIZES = (1_000, 10_000, 100_000)
FULL_SIZE = 1_000_000
TARGET_SIZE = 100_000
TARGET_PEER_RATIO = 3.0  # fastest peer / memvid-py, first vector answer at 100k
TARGET_HYBRID_RATIO = 2.0  # hybrid / vector
TARGET_1M_RATIO = 2.0  # 1M / 100k, first vector answer
TARGET_RSS_SHARE = 0.25  # RSS after the first answer / file size at 1M
OFFLINE_ENV = {"MEMVID_TELEMETRY": "0", "ANONYMIZED_TELEMETRY": "False",
               "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
               "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
               "NO_PROXY": "", "no_proxy": ""}  # any network call fails at once

# ----------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class Engine:
    """How one engine is built and how its child process imports, opens and queries.

    ``open``/``queries`` are code run in the child with ``path`` (its directory), ``dim``,
    ``qvec`` (an ``array('f')``) and ``qtext`` defined; a query sets ``found`` to the ids
    of the hits, best first.
    """

    name: str
    dist: str  # distribution whose version keys the cache
    modes: tuple[str, ...]
    imports: str
    open: str
    queries: dict[str, str]
    env: dict[str, str]
    build: Callable[[Path, Corpus], None]
    max_n: int | None = None
    min_n: int | None = None
    note: str = ""


@dataclass
class Corpus:
    """One size of the shared corpus: ids, texts, unit vectors (rows in insertion order)."""

    n: int
    dim: int
    seed: int
    ids: list[str]
    texts: list[str]
    vectors: np.ndarray
    records: Callable[[], Iterable[list[dict[str, Any]]]]


def load_corpus(n: int, dim: int, seed: int) -> Corpus:
    ids: list[str] = []
    texts: list[str] = []
    vectors = np.empty((n, dim), np.float32)
    for records in corpus.iter_batches(n, BATCH, dim=dim, seed=seed):
        for rec in records:
            vectors[len(ids)] = rec["embedding"]
            ids.append(rec["id"])
            texts.append(rec["text"])
    return Corpus(n, dim, seed, ids, texts, vectors,
                  lambda: corpus.iter_batches(n, BATCH, dim=dim, seed=seed))


def save_texts(path: Path, data: Corpus) -> None:
    with open(path / "texts.pkl", "wb") as fh:
        pickle.dump((data.ids, data.texts), fh, protocol=pickle.HIGHEST_PROTOCOL)


def build_memvid(path: Path, data: Corpus) -> None:
    from memvid_store import Memory

    mem = Memory.create(path / "memory.mv2", dim=data.dim, cache_dir=str(path / "unpack"))
    for records in data.records():
        mem.put_many(records)
    mem.build_index()
    mem.close()
    shutil.rmtree(path / "unpack", ignore_errors=True)


SDK_BUILD = """
import pickle, sys
import numpy as np, memvid_sdk
path = sys.argv[1]
with open(path + "/input.pkl", "rb") as fh:
    ids, texts = pickle.load(fh)
vectors = np.load(path + "/input.npy")
mem = memvid_sdk.create(path + "/sdk.mv2", enable_vec=True, enable_lex=True)
mem.put_many([{"title": i, "label": "doc", "text": t, "metadata": {"id": i}}
              for i, t in zip(ids, texts)], embeddings=vectors.tolist())
mem.close()
"""
SDK_BUILD_TIMEOUT = 1200.0


def build_sdk(path: Path, data: Corpus) -> None:
    """In a child process, offline, with a time limit: a hang must not stop the benchmark.

    (memvid-sdk 2.0.160 was seen to hang in ``put_many`` on records without metadata.)
    """
    with open(path / "input.pkl", "wb") as fh:
        pickle.dump((data.ids, data.texts), fh)
    np.save(path / "input.npy", data.vectors)
    try:
        out = subprocess.run([sys.executable, "-c", SDK_BUILD, str(path)], capture_output=True,
                             text=True, timeout=SDK_BUILD_TIMEOUT,
                             env={**child_env(), **OFFLINE_ENV})
    finally:
        (path / "input.pkl").unlink()
        (path / "input.npy").unlink()
    if out.returncode != 0:
        raise RuntimeError((out.stderr.strip().splitlines() or ["no output"])[-1])


def build_chroma(path: Path, data: Corpus) -> None:
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    import chromadb

    client = chromadb.PersistentClient(path=str(path / "chroma"))
    col = client.create_collection("bench", configuration={"hnsw": {
        "space": "cosine", "max_neighbors": HNSW["m"],
        "ef_construction": HNSW["ef_construction"], "ef_search": HNSW["ef_search"]}})
    step = min(5000, client.get_max_batch_size())
    for start in range(0, data.n, step):
        col.add(ids=data.ids[start:start + step], embeddings=data.vectors[start:start + step],
                documents=data.texts[start:start + step])
    del col, client


def build_lancedb(path: Path, data: Corpus) -> None:
    import lancedb
    import pyarrow as pa

    flat = pa.array(data.vectors.ravel(), pa.float32())
    table = pa.table({"id": data.ids, "text": data.texts,
                      "vector": pa.FixedSizeListArray.from_arrays(flat, data.dim)})
    db = lancedb.connect(str(path / "lance"))
    tbl = db.create_table("bench", data=table)
    from lancedb.index import FTS

    tbl.create_index("text", config=FTS())


def build_faiss(path: Path, data: Corpus) -> None:
    import faiss

    index = faiss.IndexHNSWFlat(data.dim, HNSW["m"], faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW["ef_construction"]
    index.add(data.vectors)
    faiss.write_index(index, str(path / "index.faiss"))
    save_texts(path, data)


def build_usearch(path: Path, data: Corpus) -> None:
    from usearch.index import Index

    index = Index(ndim=data.dim, metric="cos", connectivity=HNSW["m"],
                  expansion_add=HNSW["ef_construction"], expansion_search=HNSW["ef_search"])
    index.add(np.arange(data.n, dtype=np.uint64), data.vectors)
    index.save(str(path / "index.usearch"))
    save_texts(path, data)


def build_hnswlib(path: Path, data: Corpus) -> None:
    import hnswlib

    index = hnswlib.Index(space="ip", dim=data.dim)
    index.init_index(max_elements=data.n, ef_construction=HNSW["ef_construction"],
                     M=HNSW["m"])
    index.add_items(data.vectors, np.arange(data.n))
    index.save_index(str(path / "index.bin"))
    save_texts(path, data)


def build_numpy(path: Path, data: Corpus) -> None:
    np.save(path / "vectors.npy", data.vectors)
    save_texts(path, data)


PICKLED = """
import pickle
with open(path + "/texts.pkl", "rb") as fh:
    ids, texts = pickle.load(fh)
"""
PEER_HITS = "found = [ids[int(i)] for i in rows if i >= 0]; answer = [texts[int(i)] for i in rows]"

ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine(
        "memvid-py", "memvid-py", MODES,
        imports="from memvid_store import Memory",
        open="mem = Memory.open(path + '/memory.mv2', readonly=True)",
        queries={
            "vector": "hits = mem.find(vector=list(qvec), k=K, mode='vector')",
            "lexical": "hits = mem.find(qtext, k=K, mode='lexical')",
            "hybrid": "hits = mem.find(qtext, vector=list(qvec), k=K, mode='hybrid')",
        },
        env={}, build=build_memvid),
    Engine(
        "memvid-sdk", "memvid-sdk", MODES,
        imports="import memvid_sdk",
        open="mem = memvid_sdk.use('basic', path + '/sdk.mv2', read_only=True)",
        queries={
            "vector": "r = mem.find(qtext, k=K, mode='sem', query_embedding=list(qvec))",
            "lexical": "r = mem.find(qtext, k=K, mode='lex')",
            "hybrid": "r = mem.find(qtext, k=K, mode='auto', query_embedding=list(qvec))",
        },
        env=OFFLINE_ENV, build=build_sdk, max_n=SDK_SIZE, min_n=SDK_SIZE,
        note="free tier (50 MB files); `sem` with a supplied vector runs its hybrid engine; "
             "`auto` with a vector picks `sem`"),
    Engine(
        "chromadb", "chromadb", ("vector",),
        imports="import chromadb",
        open="col = chromadb.PersistentClient(path=path + '/chroma').get_collection('bench')",
        queries={"vector": "r = col.query(query_embeddings=[list(qvec)], n_results=K, "
                           "include=['documents'])"},
        env=OFFLINE_ENV, build=build_chroma, max_n=CHROMA_MAX, note="HNSW (its own)"),
    Engine(
        "lancedb", "lancedb", MODES,
        imports="import lancedb",
        open="tbl = lancedb.connect(path + '/lance').open_table('bench')",
        queries={
            "vector": "r = tbl.search(list(qvec)).metric('cosine').limit(K).to_list()",
            "lexical": "r = tbl.search(qtext, query_type='fts').limit(K).to_list()",
            "hybrid": "r = tbl.search(query_type='hybrid').vector(list(qvec)).text(qtext)"
                      ".limit(K).to_list()",
        },
        env=OFFLINE_ENV, build=build_lancedb, note="flat vector scan (no ANN index), FTS index"),
    Engine(
        "faiss", "faiss-cpu", ("vector",),
        imports="import numpy as np, faiss",
        open="index = faiss.read_index(path + '/index.faiss')" + PICKLED,
        queries={"vector": "index.hnsw.efSearch = 96\n"
                           "rows = index.search(np.asarray(qvec, np.float32)[None], K)[1][0]\n"
                           + PEER_HITS},
        env={}, build=build_faiss, note="IndexHNSWFlat, inner product"),
    Engine(
        "usearch", "usearch", ("vector",),
        imports="import numpy as np\nfrom usearch.index import Index",
        open="index = Index.restore(path + '/index.usearch')" + PICKLED,
        queries={"vector": "rows = index.search(np.asarray(qvec, np.float32), K).keys\n"
                           + PEER_HITS},
        env={}, build=build_usearch, note="HNSW, loaded (not viewed)"),
    Engine(
        "hnswlib", "hnswlib", ("vector",),
        imports="import numpy as np, hnswlib",
        open="index = hnswlib.Index(space='ip', dim=dim)\n"
             "index.load_index(path + '/index.bin')\nindex.set_ef(96)" + PICKLED,
        queries={"vector": "rows = index.knn_query(np.asarray(qvec, np.float32), k=K)[0][0]\n"
                           + PEER_HITS},
        env={}, build=build_hnswlib),
    Engine(
        "numpy", "numpy", ("vector",),
        imports="import numpy as np",
        open="x = np.load(path + '/vectors.npy')" + PICKLED,
        queries={"vector": "s = x @ np.asarray(qvec, np.float32)\n"
                           "rows = np.argpartition(-s, K)[:K]\nrows = rows[np.argsort(-s[rows])]\n"
                           + PEER_HITS},
        env={}, build=build_numpy, note="exact: one matrix-vector product"),
)}
PEERS = tuple(name for name in ENGINES if name not in ("memvid-py", "memvid-sdk"))
# the 3x target's peers: indexes. numpy is a brute-force scan of a .npy file, measured as a
# floor (how fast a process can load 100k vectors and answer), reported beside the target
PEER_INDEXES = tuple(name for name in PEERS if name != "numpy")

# ids of the hits, per engine (memvid-py hits carry the corpus ids; memvid-sdk titles)
FOUND = {
    "memvid-py": "found = [h.id for h in hits]; answer = [h.text for h in hits]",
    "memvid-sdk": "found = [h.get('title') for h in r['hits']]; "
                  "answer = [h.get('text') for h in r['hits']]",
    "chromadb": "found = r['ids'][0]; answer = r['documents'][0]",
    "lancedb": "found = [h['id'] for h in r]; answer = [h['text'] for h in r]",
}

CHILD = """
import time
BEGAN = time.time()
import json, sys
from array import array
path, dim, qfile, qtext, K = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], 10
qvec = array("f")
with open(qfile, "rb") as fh:
    qvec.frombytes(fh.read())
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
{open}
t2 = time.perf_counter()
{query}
{found}
t3 = time.perf_counter()
ANSWERED = time.time()
with open("/proc/self/statm") as fh:
    rss = int(fh.read().split()[1]) * __import__("os").sysconf("SC_PAGE_SIZE")
print("RESULT " + json.dumps({{
    "began": BEGAN, "answered": ANSWERED, "import": t1 - t0, "open": t2 - t1,
    "query": t3 - t2, "rss": rss, "found": [str(f) for f in found],
    "answered_text": sum(1 for a in answer if a), "numpy": "numpy" in sys.modules}}))
"""


def child_script(engine: Engine, mode: str) -> str:
    return CHILD.format(imports=engine.imports, open=engine.open,
                        query=engine.queries[mode], found=FOUND.get(engine.name, ""))


# ----------------------------------------------------------------------------- cache


def engine_dir(cache: Path, engine: Engine, n: int, dim: int, seed: int) -> Path:
    version = version_of(engine.dist) or "unknown"
    if engine.name == "memvid-py":
        from memvid_store.engine.format import FORMAT_VERSION

        version += f"-fmt{FORMAT_VERSION}"
    return cache / f"n{n}-d{dim}-s{seed}" / f"{engine.name}-{version}"


def ensure_built(cache: Path, engine: Engine, n: int, dim: int, seed: int,
                 data: Callable[[], Corpus], rebuild: bool) -> tuple[Path, float | None]:
    """The engine's files for this corpus (built unless cached); ``(dir, build seconds)``."""
    path = engine_dir(cache, engine, n, dim, seed)
    done = path / "BUILT"
    if done.exists() and not rebuild:
        return path, None
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    progress(f"build {engine.name} n={n:,} dim={dim}...")
    started = time.perf_counter()
    engine.build(path, data())
    seconds = time.perf_counter() - started
    done.write_text(json.dumps({"seconds": seconds, "built": datetime.now(UTC).isoformat()}))
    progress(f"build {engine.name} n={n:,}: {seconds:.1f} s")
    return path, seconds


def dir_bytes(path: Path) -> int:
    """Bytes of the files an engine reads to answer (index files and pickled texts)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != "BUILT")


# ----------------------------------------------------------------------------- measuring


@dataclass
class Figure:
    """One (engine, size, dim, mode) measured in fresh processes."""

    engine: Engine
    n: int
    dim: int
    mode: str
    path: Path
    qfile: Path
    qtext: str
    runs: list[dict[str, Any]]
    error: str | None = None


def run_child(fig: Figure, work: Path) -> dict[str, Any]:
    env = child_env()
    env.update(fig.engine.env)
    scratch = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
    env["MEMVID_CACHE_DIR"] = str(scratch)  # a new instance: nothing unpacked yet
    try:
        spawned = time.time()
        out = subprocess.run([sys.executable, "-c", child_script(fig.engine, fig.mode),
                              str(fig.path), str(fig.dim), str(fig.qfile), fig.qtext],
                             capture_output=True, text=True, timeout=600, env=env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise RuntimeError(" | ".join(tail) or f"exit status {out.returncode}")
    res = json.loads(line[len("RESULT "):])
    res["interpreter"] = res["began"] - spawned
    res["total"] = res["answered"] - spawned
    return res


def summarize(fig: Figure, truth: list[str] | None, size_bytes: int) -> dict[str, Any]:
    row: dict[str, Any] = {"engine": fig.engine.name, "n": fig.n, "dim": fig.dim,
                           "mode": fig.mode, "repeats": len(fig.runs), "error": fig.error,
                           "file_bytes": size_bytes}
    if not fig.runs:
        return row
    for key in ("interpreter", "import", "open", "query", "total"):
        row[f"{key}_ms"] = median(r[key] for r in fig.runs) * 1e3
    row["total_ms_min"] = min(r["total"] for r in fig.runs) * 1e3
    row["total_ms_max"] = max(r["total"] for r in fig.runs) * 1e3
    row["rss_mb"] = median(r["rss"] for r in fig.runs) / 2**20
    last = fig.runs[-1]
    row["hits"] = len(last["found"])
    row["hits_with_text"] = last["answered_text"]
    row["numpy_loaded"] = any(r["numpy"] for r in fig.runs)
    if truth is not None and fig.mode == "vector" and last["found"]:
        row["exact_overlap"] = len(set(last["found"]) & set(truth)) / len(truth)
    return row


# ----------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Size:
    n: int
    dim: int
    engines: tuple[str, ...]


def plan(sizes: Iterable[int], full: bool, dim_1m: int, engines: Iterable[str],
         chroma_max: int) -> list[Size]:
    wanted = [e for e in ENGINES if e in set(engines)]
    specs = []
    for n in sorted(set(sizes) | ({FULL_SIZE} if full else set())):
        dim = dim_1m if n >= FULL_SIZE else DIM
        chosen = []
        for name in wanted:
            e = ENGINES[name]
            cap = chroma_max if name == "chromadb" else e.max_n
            if (cap is None or n <= cap) and (e.min_n is None or n >= e.min_n):
                chosen.append(name)
        specs.append(Size(n, dim, tuple(chosen)))
    if full and dim_1m != DIM and "memvid-py" in wanted:  # like-for-like 1M / 100k ratio
        specs.append(Size(TARGET_SIZE, dim_1m, ("memvid-py", "numpy")))
    return specs


def queries(n: int, dim: int, seed: int, work: Path) -> tuple[Path, str]:
    """One query vector (a file of float32) and one keyword, the same for every engine."""
    qv, _ = corpus.query_vectors(1, dim=dim, seed=seed, draw=7)
    qfile = work / f"query-{n}-{dim}.f32"
    np.ascontiguousarray(qv[0], "<f4").tofile(qfile)
    text, _ = corpus.query_texts(1, seed=seed + 7, words=1)[0]
    return qfile, text.split()[0]  # one topic word: engines that AND terms find hits too


def exact_ids(path: Path, qfile: Path) -> list[str]:
    """The exact top-k ids by cosine (the numpy engine's files)."""
    x = np.load(path / "vectors.npy", mmap_mode="r")
    q = np.fromfile(qfile, "<f4")
    s = np.asarray(x @ q)
    rows = np.argsort(-s, kind="stable")[:K]
    with open(path / "texts.pkl", "rb") as fh:
        ids, _ = pickle.load(fh)
    return [ids[int(i)] for i in rows]


# ----------------------------------------------------------------------------- targets


def _row(rows: list[dict[str, Any]], engine: str, n: int, mode: str,
         dim: int | None = None) -> dict[str, Any] | None:
    for r in rows:
        if (r["engine"], r["n"], r["mode"]) == (engine, n, mode) and "total_ms" in r \
                and (dim is None or r["dim"] == dim):
            return r
    return None


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, measured (``met`` None when the run did not measure it)."""
    rows = res["rows"]
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, goal: str, met: bool | None, unit: str,
            detail: str = "") -> None:
        out.append({"target": name, "value": value, "unit": unit, "goal": goal, "met": met,
                    "detail": detail})

    sizes = sorted({r["n"] for r in rows})
    ref = TARGET_SIZE if TARGET_SIZE in sizes else max(sizes)
    ours = _row(rows, "memvid-py", ref, "vector", DIM)
    for names, label, goal in ((PEER_INDEXES, "fastest peer index", TARGET_PEER_RATIO),
                               (("numpy",), "numpy brute force (a floor, not a target)", None)):
        peers = [r for r in rows if r["engine"] in names and r["n"] == ref
                 and r["mode"] == "vector" and "total_ms" in r and r["dim"] == DIM]
        if ours and peers:
            best = min(peers, key=lambda r: r["total_ms"])
            ratio = best["total_ms"] / ours["total_ms"]
            add(f"first vector answer at {ref:,}: {label} / memvid-py", ratio,
                f">= {goal}" if goal else "-", ratio >= goal if goal else None, "x",
                f"memvid-py {ours['total_ms']:.0f} ms vs {best['engine']} "
                f"{best['total_ms']:.0f} ms")
    sdk = {m: _row(rows, "memvid-sdk", SDK_SIZE, m) for m in MODES}
    for n in (SDK_SIZE, 10_000):
        for mode in ("vector", "lexical"):
            mine, theirs = _row(rows, "memvid-py", n, mode, DIM), sdk[mode]
            if mine and theirs:
                ratio = mine["total_ms"] / theirs["total_ms"]
                add(f"first {mode} answer at {n:,} vs memvid-sdk at {SDK_SIZE:,}", ratio,
                    "<= 1", ratio <= 1.0, "x",
                    f"memvid-py {mine['total_ms']:.0f} ms vs memvid-sdk "
                    f"{theirs['total_ms']:.0f} ms")
    if not any(r["engine"] == "memvid-sdk" and "total_ms" in r for r in rows):
        err = next((r["error"] for r in rows if r["engine"] == "memvid-sdk" and r["error"]),
                   "not measured in this run")
        add(f"first vector answer at {SDK_SIZE:,}-10,000 vs memvid-sdk", None, "<= 1", None,
            "x", err)
    lexical = [r for r in rows if r["engine"] == "memvid-py" and r["mode"] == "lexical"
               and "total_ms" in r]
    if lexical:
        loaded = [f"{r['n']:,}" for r in lexical if r["numpy_loaded"]]
        add("first lexical answer imports no numpy (every size)", len(loaded), "0",
            not loaded, "sizes with numpy", ", ".join(loaded) or "none")
    for n in sizes:
        vec, hyb = _row(rows, "memvid-py", n, "vector"), _row(rows, "memvid-py", n, "hybrid")
        if vec and hyb and vec["dim"] == hyb["dim"]:
            ratio = hyb["total_ms"] / vec["total_ms"]
            add(f"first hybrid / first vector answer at {n:,}", ratio,
                f"<= {TARGET_HYBRID_RATIO}", ratio <= TARGET_HYBRID_RATIO, "x",
                f"{hyb['total_ms']:.0f} / {vec['total_ms']:.0f} ms")
    big = _row(rows, "memvid-py", FULL_SIZE, "vector")
    if big:
        base = _row(rows, "memvid-py", TARGET_SIZE, "vector", big["dim"])
        if base:
            ratio = big["total_ms"] / base["total_ms"]
            add(f"first vector answer at 1M / at 100k ({big['dim']}-d)", ratio,
                f"<= {TARGET_1M_RATIO}", ratio <= TARGET_1M_RATIO, "x",
                f"{big['total_ms']:.0f} / {base['total_ms']:.0f} ms")
        worst = max((r for r in rows if r["engine"] == "memvid-py" and r["n"] == FULL_SIZE
                     and "rss_mb" in r), key=lambda r: r["rss_mb"])
        share = worst["rss_mb"] * 2**20 / worst["file_bytes"]
        add("RSS after the first answer / file size at 1M (worst mode)", share,
            f"<= {TARGET_RSS_SHARE}", share <= TARGET_RSS_SHARE, "",
            f"{worst['mode']}: {worst['rss_mb']:.0f} MB of {worst['file_bytes'] / 2**20:.0f} MB")
    else:
        add("first vector answer at 1M / at 100k; RSS / file size at 1M", None,
            f"<= {TARGET_1M_RATIO}; <= {TARGET_RSS_SHARE}", None, "", "run with --full")
    return out


# ----------------------------------------------------------------------------- report


def _ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.1f}")


def _load(load: list[float] | None) -> str:
    return "n/a" if not load else f"{load[0]:.2f}"


def markdown(res: dict[str, Any]) -> str:
    """The result as markdown tables."""
    p = res["parameters"]
    cal = res.get("calibration", {})
    lines = [f"## Cold start vs peers ({res['timestamp']})", "",
             f"Machine: {summary(res['machine'])}  ",
             "Libraries: " + ", ".join(f"{k} {v or 'not installed'}"
                                       for k, v in res["libraries"].items()) + "  ",
             f"`python -c pass` {cal.get('interpreter_start_ms', 0):.1f} ms; load average at "
             f"start / end {_load(res['machine'].get('loadavg'))} / "
             f"{_load(res.get('loadavg_end'))} ({res['machine']['cores_usable']} cores)  ",
             f"Fresh process per figure, median of {p['repeats']} (rounds interleaved, one "
             f"warm-up run discarded), page cache warm, k={K}. Total = spawn to first answer. "
             f"Reproduce: `{p['command']}`", "",
             "### Targets", "", "| target | measured | goal | met | detail |",
             "| --- | ---: | ---: | :---: | --- |"]
    for t in res["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.2f} {t['unit']}".strip()
        met = {True: "yes", False: "**no**", None: "-" if t["goal"] == "-" else
               "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {value} | {t['goal']} | {met} | {t['detail']} |")
    for n, dim in sorted({(r["n"], r["dim"]) for r in res["rows"]}):
        lines += ["", f"### {n:,} frames, {dim}-d", "",
                  "| engine | mode | interpreter ms | import ms | open ms | first query ms | "
                  "**total ms** (min-max) | RSS MB | files MB | ∩ exact | numpy | hits |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: "
                  "| ---: |"]
        for r in (r for r in res["rows"] if (r["n"], r["dim"]) == (n, dim)):
            if "total_ms" not in r:
                lines.append(f"| {r['engine']} | {r['mode']} | {r['error'] or 'not run'} "
                             "| | | | | | | | | |")
                continue
            recall = f"{r['exact_overlap']:.1f}" if "exact_overlap" in r else "-"
            lines.append(
                f"| {r['engine']} | {r['mode']} | {_ms(r['interpreter_ms'])} | "
                f"{_ms(r['import_ms'])} | {_ms(r['open_ms'])} | {_ms(r['query_ms'])} | "
                f"**{_ms(r['total_ms'])}** ({_ms(r['total_ms_min'])}-{_ms(r['total_ms_max'])})"
                f" | {r['rss_mb']:.0f} | {r['file_bytes'] / 2**20:.1f} | {recall} | "
                f"{'yes' if r['numpy_loaded'] else 'no'} | {r['hits']} |")
    notes = [f"{name}: {e.note}" for name, e in ENGINES.items() if e.note]
    lines += ["", "Engines: " + "; ".join(notes) + ". faiss, usearch, hnswlib and numpy read "
              "their index file plus the pickled ids and texts, so their answer carries text "
              "as the others' does. memvid-py children start with an empty MEMVID_CACHE_DIR "
              "(the BM25 index is unpacked on first lexical need, as on a new instance). "
              "∩ exact: share of the exact top-10 among the vector hits of this one query, a "
              "sanity check of the answer (recall over many queries: bench/search_bench.py)."]
    if p.get("skipped"):
        lines += ["", "Not measured: " + "; ".join(p["skipped"])]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def run(*, full: bool = False, quick: bool = False, sizes: Iterable[int] | None = None,
        repeats: int | None = None, dim_1m: int = DIM_1M, engines: Iterable[str] | None = None,
        chroma_max: int = CHROMA_MAX, rebuild: Iterable[str] = (), seed: int = 0,
        cache: Path = CACHE, workdir: str | None = None, out_dir: Path = RESULTS,
        command: str = "python bench/coldstart.py") -> dict[str, Any]:
    """Build (or reuse) every corpus, measure every figure; returns the result dict."""
    sizes = tuple(sizes or ((10_000,) if quick else DEFAULT_SIZES))
    repeats = repeats or (3 if quick else 5)
    chosen = tuple(engines or ENGINES)
    unknown = set(chosen) - set(ENGINES)
    if unknown:
        raise SystemExit(f"unknown engine(s) {sorted(unknown)}; engines: {list(ENGINES)}")
    specs = plan(sizes, full, dim_1m, chosen, chroma_max)
    base = Path(workdir or os.environ.get("MEMVID_BENCH_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="memvid-coldstart-", dir=base))
    PYCACHE["prefix"] = work / "pycache"
    res: dict[str, Any] = {
        "bench": "coldstart",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": {"sizes": [[s.n, s.dim, list(s.engines)] for s in specs],
                       "repeats": repeats, "seed": seed, "k": K, "hnsw": HNSW,
                       "quick": quick, "full": full, "command": command, "skipped": []},
        "machine": machine_info(work),
        "libraries": {e.dist: version_of(e.dist) for e in ENGINES.values()},
    }
    figures: list[Figure] = []
    builds: list[dict[str, Any]] = []
    truths: dict[tuple[int, int], list[str]] = {}
    sizes_of: dict[tuple[str, int, int], int] = {}
    try:
        progress(f"workdir {work}, cache {cache}")
        res["calibration"] = calibrate(work)
        for spec in specs:
            loaded: list[Corpus] = []

            def data(spec: Size = spec, loaded: list[Corpus] = loaded) -> Corpus:
                if not loaded:
                    progress(f"corpus n={spec.n:,} dim={spec.dim}...")
                    loaded.append(load_corpus(spec.n, spec.dim, seed))
                return loaded[0]

            qfile, qtext = queries(spec.n, spec.dim, seed, work)
            for name in ("numpy", *[e for e in spec.engines if e != "numpy"]):
                engine = ENGINES[name]
                if not version_of(engine.dist):
                    res["parameters"]["skipped"].append(f"{name}: not installed")
                    continue
                try:
                    path, seconds = ensure_built(cache, engine, spec.n, spec.dim, seed, data,
                                                 name in set(rebuild))
                except Exception as exc:  # a peer that cannot build is reported, not fatal
                    msg = f"build failed: {type(exc).__name__}: {exc}"[:200]
                    progress(f"{name} n={spec.n:,}: {msg}")
                    figures += [Figure(engine, spec.n, spec.dim, m, Path(), qfile, qtext, [],
                                       msg) for m in engine.modes]
                    continue
                if name == "numpy":
                    truths[(spec.n, spec.dim)] = exact_ids(path, qfile)
                    if "numpy" not in spec.engines:
                        continue
                sizes_of[(name, spec.n, spec.dim)] = dir_bytes(path)
                builds.append({"engine": name, "n": spec.n, "dim": spec.dim,
                               "seconds": seconds, "cached": seconds is None,
                               "file_bytes": sizes_of[(name, spec.n, spec.dim)]})
                figures += [Figure(engine, spec.n, spec.dim, m, path, qfile, qtext, [])
                            for m in engine.modes]
            loaded.clear()
        for fig in figures:  # warm-up: page cache, bytecode cache; not counted
            if fig.error is None:
                try:
                    run_child(fig, work)
                except Exception as exc:
                    fig.error = f"{type(exc).__name__}: {exc}"[:300]
                    progress(f"{fig.engine.name} n={fig.n:,} {fig.mode}: {fig.error}")
        for r in range(repeats):
            for fig in figures:
                if fig.error is None:
                    try:
                        fig.runs.append(run_child(fig, work))
                    except Exception as exc:
                        fig.error = f"{type(exc).__name__}: {exc}"[:300]
            progress(f"round {r + 1}/{repeats} done")
    finally:
        PYCACHE.pop("prefix", None)
        shutil.rmtree(work, ignore_errors=True)
    res["builds"] = builds
    res["rows"] = [summarize(f, truths.get((f.n, f.dim)),
                             sizes_of.get((f.engine.name, f.n, f.dim), 0)) for f in figures]
    for row in res["rows"]:
        if "total_ms" in row:
            progress(f"{row['engine']:>10} n={row['n']:>9,} {row['mode']:<7} total "
                     f"{row['total_ms']:8.1f} ms (open {row['open_ms']:.1f}, first query "
                     f"{row['query_ms']:.1f}), RSS {row['rss_mb']:.0f} MB")
    res["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    res["targets"] = targets(res)
    res["files"] = [str(p) for p in write_results(res, out_dir, "coldstart", markdown)]
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", default=full_requested(),
                        help="also 1M frames (or MEMVID_BENCH_FULL=1)")
    parser.add_argument("--quick", action="store_true", help="10k only, 3 runs")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        help="comma-separated frame counts (default 1000,10000,100000)")
    parser.add_argument("--repeats", type=int, help="runs per figure (default 5; quick 3)")
    parser.add_argument("--dim-1m", type=int, default=DIM_1M,
                        help=f"embedding dim at 1M frames (default {DIM_1M})")
    parser.add_argument("--engines", type=lambda s: s.split(","),
                        help="comma-separated subset of " + ",".join(ENGINES))
    parser.add_argument("--chroma-max", type=int, default=CHROMA_MAX,
                        help=f"largest size chromadb is built for (default {CHROMA_MAX:,})")
    parser.add_argument("--rebuild", type=lambda s: s.split(","), default=(),
                        help="comma-separated engines whose cached files are rebuilt")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--workdir", help="scratch directory (default: temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    command = "python bench/coldstart.py " + " ".join(argv if argv is not None else sys.argv[1:])
    res = run(full=args.full, quick=args.quick, sizes=args.sizes, repeats=args.repeats,
              dim_1m=args.dim_1m, engines=args.engines, chroma_max=args.chroma_max,
              rebuild=args.rebuild, seed=args.seed, cache=args.cache, workdir=args.workdir,
              out_dir=args.out, command=command.strip())
    text = markdown(res)
    latest = update_latest(args.out, text)
    print(text)
    print("results: " + ", ".join([*res["files"], str(latest)]))
    missed = [t["target"] for t in res["targets"] if t["met"] is False]
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
