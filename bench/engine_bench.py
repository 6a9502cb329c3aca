"""Engine benchmarks: ingest rate, bytes on disk, cold open, import cost.

Ingest is measured engine-only (no search indexes: the engine's own target) and with the
default search indexes (BM25 and, from 20,000 vectors, an HNSW graph built by
``build_index()`` before ``close()``).

Run ``python bench/engine_bench.py`` (10k and 100k frames, a few minutes) or with
``--full`` / ``MEMVID_BENCH_FULL=1`` (adds 1M frames). Results go to ``bench/results/`` as
JSON and a markdown table; see bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.machine import machine_info, summary  # noqa: E402
from bench.report import drop_workdir, finish, report_exit  # noqa: E402

RESULTS = HERE / "results"
DEFAULT_SIZES = (10_000, 100_000)
FULL_SIZES = (10_000, 100_000, 1_000_000)
BATCH = 1000
DIM = 384
HEAVY = ("numpy", "zstandard")

TARGET_INGEST_FPS = 20_000
TARGET_OPEN_MS = 5.0
TARGET_OPEN_FLATNESS = 1.5  # open time at the largest N / at the smallest N
TARGET_IMPORT_MS = 15.0

# index configurations of the ingest runs: label -> Memory.create(index=...)
INDEXES: dict[str, dict[str, Any] | None] = {
    "engine-only": {"ann_backend": "none", "lexical": False},
    "default": None,
}

# Child process for one open measurement: imports happen before the clock starts.
OPEN_SCRIPT = """
import json, sys, time
from memvid_store import Memory
path, fid, readonly = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
before = set(sys.modules)
t0 = time.perf_counter()
mem = Memory.open(path, readonly=readonly)
t1 = time.perf_counter()
frame = mem.get(fid)
t2 = time.perf_counter()
vector = frame.embedding
t3 = time.perf_counter()
assert frame.id == fid and len(vector) > 0
loaded = sorted(set(sys.modules) - before)
mem.close()
print(json.dumps({"open": t1 - t0, "get": t2 - t1, "embedding": t3 - t2,
                  "modules_loaded": loaded}))
"""

HEAVY_SCRIPT = """
import json, sys
import memvid_store
plain = [m for m in {heavy!r} if m in sys.modules]
memvid_store.Memory, memvid_store.StoreConfig, memvid_store.Frame
print(json.dumps({{"after_import": plain,
                   "after_names": [m for m in {heavy!r} if m in sys.modules],
                   "memvid_modules": sorted(m for m in sys.modules if m.startswith("memvid")),
                   "modules": len(sys.modules)}}))
"""


# ----------------------------------------------------------------------------- helpers


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


PYCACHE: dict[str, Path] = {}  # "prefix": bytecode cache of the child processes


def child_env() -> dict[str, str]:
    """Environment for child processes: no fault injection, bytecode cached like an install.

    Children write and read .pyc files under a private prefix (``PYTHONPYCACHEPREFIX``), so
    import times do not include compiling sources even where ``PYTHONDONTWRITEBYTECODE`` is
    set, and nothing is written into the source tree.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMVID_FAULT") and k != "PYTHONDONTWRITEBYTECODE"}
    if "prefix" in PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE["prefix"])
    return env


def run_child(args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True,
                          timeout=timeout, env=child_env())


def disk_bytes(path: Path) -> tuple[int, int]:
    """``(apparent size, allocated bytes)`` of a file."""
    st = path.stat()
    return st.st_size, getattr(st, "st_blocks", 0) * 512


def read_through(path: Path, chunk: int = 8 << 20) -> None:
    """Read a file once, front to back, so the figures that follow find it in the page
    cache: they measure the engine, not the disk (this VM's page cache drops files that
    were written a few minutes earlier)."""
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(chunk)
        while fh.readinto(buf):
            pass


def progress(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- calibration


def calibrate(workdir: Path) -> dict[str, float]:
    """Machine speed references: fsync latency, a CPU loop, interpreter start."""
    probe = workdir / "fsync.probe"
    fd = os.open(probe, os.O_RDWR | os.O_CREAT, 0o644)
    times = []
    try:
        block = os.urandom(4096)
        for i in range(20):
            t0 = time.perf_counter()
            os.pwrite(fd, block, i * 4096)
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        probe.unlink()
    cpu = []
    for _ in range(5):
        t0 = time.perf_counter()
        acc = 0
        for i in range(1_000_000):
            acc += i & 7
        cpu.append(time.perf_counter() - t0)
    start = []
    for _ in range(5):
        t0 = time.perf_counter()
        run_child(["-c", "pass"])
        start.append(time.perf_counter() - t0)
    return {"fsync_4k_ms": median(times) * 1e3, "py_loop_1m_ms": median(cpu) * 1e3,
            "interpreter_start_ms": median(start) * 1e3}


# ----------------------------------------------------------------------------- ingest


def ingest(path: Path, n: int, *, sync: bool, ids: bool = False, index: str = "engine-only",
           seed: int = 0, dim: int = DIM, batch: int = BATCH) -> dict[str, Any]:
    """Create a file and put ``n`` corpus frames, one put_many per ``batch``.

    Only engine calls are timed (create, every put_many, close); corpus generation is not.
    ``ids=False`` lets the engine generate ids; ``ids=True`` passes the corpus ids, so every
    record is also looked up as a possible new version of an existing frame. ``index`` names
    an entry of INDEXES: ``"default"`` builds the search indexes (build_index() builds the
    HNSW graph and finishes the BM25 index before close).
    """
    from memvid_store import Memory

    text_bytes = vector_bytes = 0
    batch_times: list[float] = []
    probe = ""
    t0 = time.perf_counter()
    mem = Memory.create(path, dim=dim, sync=sync, index=INDEXES[index],
                        cache_dir=str(path.parent / "cache"))  # BM25 work files
    engine = time.perf_counter() - t0
    for i, records in enumerate(corpus.iter_batches(n, batch, dim=dim, seed=seed, ids=ids)):
        t, v = corpus.raw_sizes(records)
        text_bytes += t
        vector_bytes += v
        t0 = time.perf_counter()
        got = mem.put_many(records)
        dt = time.perf_counter() - t0
        batch_times.append(dt)
        engine += dt
        if i * batch <= n // 2 < i * batch + len(got):
            probe = got[n // 2 - i * batch]
    stats = mem.stats()
    t0 = time.perf_counter()
    mem.build_index()
    mem.close()
    close_s = time.perf_counter() - t0
    engine += close_s
    batch_times.sort()
    size, allocated = disk_bytes(path)
    return {
        "n": n, "sync": sync, "ids": "given" if ids else "engine", "index": index,
        "batch": batch, "seconds": engine, "frames_per_s": n / engine, "close_s": close_s,
        "put_s": engine - close_s,
        "put_many_p50_ms": batch_times[len(batch_times) // 2] * 1e3,
        "put_many_p99_ms": batch_times[min(len(batch_times) - 1,
                                           int(len(batch_times) * 0.99))] * 1e3,
        "put_many_max_ms": batch_times[-1] * 1e3,
        "text_bytes": text_bytes, "vector_bytes": vector_bytes,
        "file_bytes": size, "allocated_bytes": allocated,
        "runs": stats.runs, "generation": stats.generation,
        "stored_bytes": stats.stored_bytes, "payload_bytes": stats.payload_bytes,
        "probe_id": probe,
    }


INGEST_MODES = (  # (sync, ids given, index); the first keeps its file for bytes and open
    (True, False, "engine-only"), (False, False, "engine-only"), (True, True, "engine-only"),
    (True, False, "default"),
)


def index_repeats(n: int, index: str, repeats: Callable[[int], int]) -> int:
    """Runs per size: fewer with the default indexes (building the HNSW graph takes ~30-60 s
    per 100k vectors on 2 cores)."""
    return repeats(n) if index == "engine-only" else max(1, min(repeats(n), 30_000 // n))


def ingest_suite(workdir: Path, sizes: Iterable[int], repeats: Callable[[int], int],
                 seed: int) -> tuple[list[dict[str, Any]], dict[int, tuple[Path, str]]]:
    """Ingest every size in every mode; keeps the first mode's file per size (and a probe id)."""
    rows: list[dict[str, Any]] = []
    kept: dict[int, tuple[Path, str]] = {}
    for n in sizes:
        for sync, ids, index in INGEST_MODES:
            runs = []
            for r in range(index_repeats(n, index, repeats)):
                path = workdir / f"ingest-{n}-{int(sync)}{int(ids)}-{index}-{r}.mv2"
                runs.append(ingest(path, n, sync=sync, ids=ids, index=index, seed=seed))
                progress(f"ingest n={n} sync={sync} ids={runs[-1]['ids']} index={index}: "
                         f"{runs[-1]['frames_per_s']:,.0f} frames/s "
                         f"(close {runs[-1]['close_s']:.2f} s)")
                if (sync, ids, index) == INGEST_MODES[0] and n not in kept:
                    kept[n] = (path, runs[-1]["probe_id"])
                else:
                    path.unlink()
            mid = sorted(runs, key=lambda x: x["frames_per_s"])[len(runs) // 2]
            rows.append({**mid, "repeats": len(runs),
                         "frames_per_s_all": [x["frames_per_s"] for x in runs]})
    return rows, kept


# ----------------------------------------------------------------------------- bytes on disk


def bytes_row(path: Path, ingest_row: dict[str, Any]) -> dict[str, Any]:
    """Bytes on disk vs raw text (and text + vectors), before and after compact()."""
    from memvid_store import Memory

    text, vec = ingest_row["text_bytes"], ingest_row["vector_bytes"]
    size, allocated = disk_bytes(path)
    copy = path.with_name(path.stem + "-compact.mv2")
    shutil.copyfile(path, copy)
    t0 = time.perf_counter()
    with Memory.open(copy) as mem:
        mem.compact()
    compact_s = time.perf_counter() - t0
    csize, callocated = disk_bytes(copy)
    copy.unlink()
    return {
        "n": ingest_row["n"], "text_bytes": text, "vector_bytes": vec,
        "file_bytes": size, "allocated_bytes": allocated,
        "file_per_text": size / text, "file_per_text_and_vectors": size / (text + vec),
        "compacted_bytes": csize, "compacted_allocated_bytes": callocated,
        "compacted_per_text_and_vectors": csize / (text + vec),
        "compact_s": compact_s,
        "stored_bytes": ingest_row["stored_bytes"], "payload_bytes": ingest_row["payload_bytes"],
        "payload_compression": ingest_row["payload_bytes"] / max(1, ingest_row["stored_bytes"]),
    }


# ----------------------------------------------------------------------------- open


def open_suite(files: dict[int, tuple[Path, str]], repeats: int) -> list[dict[str, Any]]:
    """Median open / first get times in fresh processes, rounds interleaved across sizes."""
    samples: dict[tuple[int, bool], list[dict[str, Any]]] = {
        (n, ro): [] for n in files for ro in (True, False)}
    for _ in range(repeats):
        for n, (path, fid) in files.items():
            for ro in (True, False):
                out = run_child(["-c", OPEN_SCRIPT, str(path), fid, "1" if ro else "0"])
                samples[(n, ro)].append(json.loads(out.stdout))
    rows = []
    for (n, ro), runs in samples.items():
        rows.append({
            "n": n, "readonly": ro, "repeats": len(runs),
            "open_ms": median(r["open"] for r in runs) * 1e3,
            "open_ms_min": min(r["open"] for r in runs) * 1e3,
            "open_ms_max": max(r["open"] for r in runs) * 1e3,
            "first_get_ms": median(r["get"] for r in runs) * 1e3,
            "open_get_ms": median(r["open"] + r["get"] for r in runs) * 1e3,
            "embedding_ms": median(r["embedding"] for r in runs) * 1e3,
            "modules_loaded": runs[-1]["modules_loaded"],
        })
        progress(f"open n={n} readonly={ro}: {rows[-1]['open_ms']:.2f} ms, "
                 f"+get {rows[-1]['first_get_ms']:.2f} ms")
    return rows


# ----------------------------------------------------------------------------- import


def parse_importtime(stderr: str) -> list[tuple[int, int, int, str]]:
    """``(self_us, cumulative_us, depth, module)`` per line of ``-X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3:
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((int(parts[0]), int(parts[1]), depth, name.strip()))
    return rows


def package_import_us(rows: list[tuple[int, int, int, str]],
                      package: str = "memvid_store") -> tuple[int, list[tuple[str, int]]]:
    """Cumulative µs of top-level imports of ``package`` and the self time of each module."""
    total = 0
    block: list[tuple[int, int, int, str]] = []
    modules: dict[str, int] = {}
    for row in rows:
        block.append(row)
        if row[2] == 0:
            if row[3] == package or row[3].startswith(package + "."):
                total += row[1]
                for self_us, _, _, name in block:
                    modules[name] = modules.get(name, 0) + self_us
            block = []
    return total, sorted(modules.items(), key=lambda kv: -kv[1])


def import_suite(repeats: int) -> dict[str, Any]:
    """Import cost: ``-X importtime`` breakdown and fresh-process wall time vs ``pass``."""
    statements = {"pass": "pass", "import": "import memvid_store",
                  "import_names": "import memvid_store; memvid_store.Memory"}
    wall: dict[str, list[float]] = {k: [] for k in statements}
    for code in statements.values():  # warm the page cache and the bytecode cache
        run_child(["-c", code])
    for _ in range(repeats):
        for key, code in statements.items():  # interleaved: drift hits all equally
            t0 = time.perf_counter()
            run_child(["-c", code])
            wall[key].append(time.perf_counter() - t0)
    med = {k: median(v) * 1e3 for k, v in wall.items()}
    importtime: dict[str, Any] = {}
    for key in ("import", "import_names"):
        totals, breakdown = [], []
        for _ in range(max(3, repeats // 2)):
            out = run_child(["-X", "importtime", "-c", statements[key]])
            total, breakdown = package_import_us(parse_importtime(out.stderr))
            totals.append(total)
        importtime[key] = {"cumulative_ms": median(totals) / 1e3,
                           "top_self_us": breakdown[:12], "modules": len(breakdown)}
    heavy = json.loads(run_child(["-c", HEAVY_SCRIPT.format(heavy=HEAVY)]).stdout)
    result = {
        "repeats": repeats,
        "wall_pass_ms": med["pass"], "wall_import_ms": med["import"],
        "wall_import_names_ms": med["import_names"],
        "overhead_ms": med["import"] - med["pass"],
        "overhead_names_ms": med["import_names"] - med["pass"],
        "ratio": med["import"] / med["pass"],
        "ratio_names": med["import_names"] / med["pass"],
        "importtime": importtime,
        "heavy_after_import": heavy["after_import"],
        "heavy_after_names": heavy["after_names"],
        "memvid_modules_after_names": heavy["memvid_modules"],
    }
    progress(f"import overhead {result['overhead_ms']:.1f} ms "
             f"(+names {result['overhead_names_ms']:.1f} ms), heavy: {heavy['after_names']}")
    return result


# ----------------------------------------------------------------------------- targets


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met."""
    out = []

    def add(name: str, value: float, target: str, ok: bool, unit: str) -> None:
        out.append({"target": name, "value": value, "unit": unit, "goal": target, "met": ok})

    for row in res["ingest"]:
        if row["sync"] and row["ids"] == "engine" and row.get("index") == "engine-only":
            fps = row["frames_per_s"]
            add(f"ingest {row['n']:,} frames (sync=True, engine only)", fps,
                f">= {TARGET_INGEST_FPS:,}",
                fps >= TARGET_INGEST_FPS, "frames/s")
    for readonly in (True, False):
        mode = "readonly" if readonly else "writer"
        opens = [r for r in res["open"] if r["readonly"] == readonly]
        for row in opens:
            add(f"open {row['n']:,} frames ({mode})", row["open_ms"], f"<= {TARGET_OPEN_MS}",
                row["open_ms"] <= TARGET_OPEN_MS, "ms")
        if len(opens) > 1:
            lo, hi = min(opens, key=lambda r: r["n"]), max(opens, key=lambda r: r["n"])
            flat = hi["open_ms"] / lo["open_ms"]
            add(f"open flat in N, {mode} ({hi['n']:,} / {lo['n']:,})", flat,
                f"<= {TARGET_OPEN_FLATNESS}", flat <= TARGET_OPEN_FLATNESS, "x")
    imp = res["import"]
    add("import memvid_store overhead vs python -c pass", imp["overhead_ms"],
        f"<= {TARGET_IMPORT_MS}", imp["overhead_ms"] <= TARGET_IMPORT_MS, "ms")
    add("numpy/zstandard loaded by import + names", len(imp["heavy_after_names"]), "0",
        not imp["heavy_after_names"], "modules")
    return out


# ----------------------------------------------------------------------------- report


def top_level(modules: Iterable[str]) -> list[str]:
    """Top-level package names of ``modules`` (without memvid_store itself)."""
    return sorted({m.split(".")[0] for m in modules} - {"memvid_store"})


def _load(load: list[float] | None) -> str:
    return "n/a" if not load else f"{load[0]:.2f}"


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}f}"


def markdown(res: dict[str, Any]) -> str:
    """The result as markdown tables."""
    lines = [f"## Engine benchmark ({res['timestamp']})", "",
             f"Machine: {summary(res['machine'])}  ",
             f"Calibration: fsync 4 KiB {res['calibration']['fsync_4k_ms']:.2f} ms, "
             f"1M-iteration Python loop {res['calibration']['py_loop_1m_ms']:.0f} ms, "
             f"`python -c pass` {res['calibration']['interpreter_start_ms']:.1f} ms; "
             f"load average at start / end {_load(res['machine'].get('loadavg'))} / "
             f"{_load(res.get('loadavg_end'))} ({res['machine']['cores_usable']} cores)", "",
             "### Targets", "", "| target | measured | goal | met |",
             "| --- | ---: | ---: | :---: |"]
    for t in res["targets"]:
        lines.append(f"| {t['target']} | {_fmt(t['value'])} {t['unit']} | {t['goal']} "
                     f"{t['unit']} | {'yes' if t['met'] else '**no**'} |")
    lines += ["", "### Ingest (put_many per 1,000 frames, 384-d embeddings, incl. close)", "",
              "Index `engine-only`: `index={\"ann_backend\": \"none\", \"lexical\": false}` "
              "(the ingest target); `default`: BM25 + HNSW (from 20,000 vectors), whose "
              "build_index() builds the graph and finishes the BM25 index before close().", "",
              "| frames | sync | ids | index | frames/s (median) | seconds | close s | "
              "put_many p50 / p99 / max ms | run segments | file MB | repeats |",
              "| ---: | :---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["ingest"]:
        lines.append(f"| {r['n']:,} | {r['sync']} | {r['ids']} | {r.get('index', '-')} | "
                     f"{r['frames_per_s']:,.0f} | {r['seconds']:.2f} | {r['close_s']:.2f} | "
                     f"{r['put_many_p50_ms']:.1f} / {r['put_many_p99_ms']:.1f} / "
                     f"{r['put_many_max_ms']:.1f} | {r['runs']} | {r['file_bytes'] / 1e6:.0f} | "
                     f"{r['repeats']} |")
    fps = {(r["n"], r["sync"], r["ids"], r.get("index", "engine-only")): r["frames_per_s"]
           for r in res["ingest"]}
    sizes = sorted({key[0] for key in fps})
    for label, a, b in (("sync=False / sync=True", (False, "engine", "engine-only"),
                         (True, "engine", "engine-only")),
                        ("ids given / engine ids", (True, "given", "engine-only"),
                         (True, "engine", "engine-only")),
                        ("default index / engine-only", (True, "engine", "default"),
                         (True, "engine", "engine-only"))):
        ratios = [f"{n:,}: {fps[(n, *a)] / fps[(n, *b)]:.2f}x" for n in sizes
                  if (n, *a) in fps and (n, *b) in fps]
        if ratios:
            lines += ["", f"{label}: {', '.join(ratios)}"]
    lines += ["", "### Bytes on disk", "",
              "| frames | text MB | text+vectors MB | file MB | file / text | "
              "file / (text+vectors) | after compact / (text+vectors) | compact s |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in res["bytes"]:
        tv = r["text_bytes"] + r["vector_bytes"]
        lines.append(f"| {r['n']:,} | {r['text_bytes'] / 1e6:.1f} | {tv / 1e6:.1f} | "
                     f"{r['file_bytes'] / 1e6:.1f} | {r['file_per_text']:.2f} | "
                     f"{r['file_per_text_and_vectors']:.3f} | "
                     f"{r['compacted_per_text_and_vectors']:.3f} | {r['compact_s']:.2f} |")
    lines += ["", "### Cold open (fresh process per run, median)", "",
              "| frames | mode | open ms (min–max) | first get ms | open + get ms | "
              "embedding ms | modules loaded by open+get |",
              "| ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in res["open"]:
        mode = "readonly" if r["readonly"] else "writer"
        lines.append(f"| {r['n']:,} | {mode} | {r['open_ms']:.2f} ({r['open_ms_min']:.2f}–"
                     f"{r['open_ms_max']:.2f}) | {r['first_get_ms']:.2f} | "
                     f"{r['open_get_ms']:.2f} | {r['embedding_ms']:.2f} | "
                     f"{', '.join(top_level(r['modules_loaded'])) or '-'} |")
    imp = res["import"]
    top = ", ".join(f"{name} {us / 1e3:.1f}"
                    for name, us in imp["importtime"]["import_names"]["top_self_us"][:6])
    lines += ["", f"### Import (fresh processes, median of {imp['repeats']})", "",
              "| statement | wall ms | over `pass` ms | ratio to `pass` | -X importtime ms |",
              "| --- | ---: | ---: | ---: | ---: |",
              f"| `python -c pass` | {imp['wall_pass_ms']:.1f} | - | 1.00 | - |",
              f"| `import memvid_store` | {imp['wall_import_ms']:.1f} | "
              f"{imp['overhead_ms']:.1f} | {imp['ratio']:.2f} | "
              f"{imp['importtime']['import']['cumulative_ms']:.1f} |",
              f"| `import memvid_store; memvid_store.Memory` | {imp['wall_import_names_ms']:.1f}"
              f" | {imp['overhead_names_ms']:.1f} | {imp['ratio_names']:.2f} | "
              f"{imp['importtime']['import_names']['cumulative_ms']:.1f} |",
              "", f"Slowest modules (self ms, import + names): {top}  ",
              f"Heavy modules after import: {imp['heavy_after_import'] or 'none'}; "
              f"after resolving Memory/StoreConfig/Frame: {imp['heavy_after_names'] or 'none'}",
              ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def full_requested() -> bool:
    return os.environ.get("MEMVID_BENCH_FULL", "").strip().lower() in {"1", "true", "yes", "on"}


def run(*, full: bool = False, sizes: Iterable[int] | None = None, workdir: str | None = None,
        open_repeats: int = 7, import_repeats: int = 15, ingest_repeats: int | None = None,
        seed: int = 0, keep: bool = False, out_dir: Path = RESULTS) -> dict[str, Any]:
    """Run every engine benchmark; returns the result dict (also written to ``out_dir``)."""
    sizes = tuple(sorted(sizes or (FULL_SIZES if full else DEFAULT_SIZES)))
    base = Path(workdir or os.environ.get("MEMVID_BENCH_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    need = int(max(sizes) * (DIM * 4 + 700) * 2.5)
    if shutil.disk_usage(base).free < need:
        raise SystemExit(f"need about {need / 1e9:.1f} GB free in {base}")
    work = Path(tempfile.mkdtemp(prefix="memvid-bench-", dir=base))
    PYCACHE["prefix"] = work / "pycache"

    def repeats(n: int) -> int:
        return ingest_repeats or max(1, min(3, 300_000 // n))

    res: dict[str, Any] = {
        "bench": "engine",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "parameters": {"sizes": list(sizes), "batch": BATCH, "dim": DIM, "seed": seed,
                       "full": full, "open_repeats": open_repeats,
                       "import_repeats": import_repeats, "bytecode_cache": "warm (private prefix)",
                       "ingest_repeats": {str(n): {idx: index_repeats(n, idx, repeats)
                                                   for idx in INDEXES} for n in sizes},
                       "indexes": INDEXES,
                       "corpus": {"topics": corpus.DEFAULT_TOPICS,
                                  "text_mean_bytes": corpus.TEXT_MEAN}},
        "machine": machine_info(work),
    }
    try:
        progress(f"workdir {work}")
        run_child(["-c", OPEN_SCRIPT.split("path, fid")[0]])  # fill the bytecode cache
        res["calibration"] = calibrate(work)
        res["import"] = import_suite(import_repeats)
        res["ingest"], files = ingest_suite(work, sizes, repeats, seed)
        res["open"] = open_suite(files, open_repeats)
        first = {r["n"]: r for r in res["ingest"]
                 if (r["sync"], r["ids"] == "given", r["index"]) == INGEST_MODES[0]}
        res["bytes"] = [bytes_row(path, first[n]) for n, (path, _) in files.items()]
    finally:
        PYCACHE.pop("prefix", None)
        drop_workdir(work, keep)
    return finish(res, out_dir, "engine", targets, markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", default=full_requested(),
                        help="also 1M frames (or MEMVID_BENCH_FULL=1)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                        help="comma-separated frame counts (overrides --full)")
    parser.add_argument("--workdir", help="where the .mv2 files go (default: $MEMVID_BENCH_DIR "
                                          "or the temp dir)")
    parser.add_argument("--open-repeats", type=int, default=7)
    parser.add_argument("--import-repeats", type=int, default=15)
    parser.add_argument("--ingest-repeats", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the .mv2 files")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    res = run(full=args.full, sizes=args.sizes, workdir=args.workdir,
              open_repeats=args.open_repeats, import_repeats=args.import_repeats,
              ingest_repeats=args.ingest_repeats, seed=args.seed, keep=args.keep,
              out_dir=args.out)
    return report_exit(res, markdown(res), args.strict)


if __name__ == "__main__":
    sys.exit(main())
