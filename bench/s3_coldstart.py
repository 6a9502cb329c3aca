"""Cold start of a memory opened straight from S3 (a local S3-compatible server).

For each size and query mode (``--kinds``: lexical, vector and hybrid searches, and
``timeline``, the latest 100 frames), in fresh processes (median of ``--repeat``): process
spawn to the first answer, and the bytes, requests and rounds (requests made together, in
parallel, count as one round) fetched, for

* ``s3 cold``: ``Memory.open("s3://...")`` with an empty chunk cache;
* ``s3 warm``: the same with the cache the cold run left (a warm instance);
* ``copy to /tmp``: the old advice, download the whole object, then open the copy;
* ``lancedb``: LanceDB (if it installs) reading a dataset of the same records from the
  same server (an IVF_PQ vector index, its candidates refined exactly, and an FTS index,
  as its docs advise), cold (it keeps no cache between processes); its bytes, requests
  and rounds are counted by the server (``GET /__requests__``), the time its import
  takes is shown apart, and its answer is compared with memvid's (ids in common).

The server is ``bench/s3_file_server.py`` (default): it serves the built files with a
modelled time to first byte (``--latency``, 20 ms) and optionally a per-request rate
(``--rate`` bytes/s), and reads only the range asked. ``--server moto`` uses moto, which
reads the whole object for every range GET (its time grows with the object).

Run: ``python bench/s3_coldstart.py [--sizes 10000,100000] [--repeat 3] [--latency 0.02]
[--files DIR]`` (``--files``: keep the built files there and reuse them). Results go to
``bench/results/s3-<stamp>.json`` and ``.md``, with the growth of each cold first answer
from the smallest size to the largest.
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
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUCKET = "bench"
TIMELINE = 100  # frames of a timeline query
KINDS = ("lexical", "vector", "hybrid")

PROBE = """
import json, os, sys, time
MODE, URL, CACHE, QUERY, VECTOR = sys.argv[1:6]
from memvid_store import Memory
vector = json.loads(VECTOR)
if MODE.startswith("copy"):
    import obstore
    from obstore.store import S3Store
    bucket, key = URL[5:].split("/", 1)
    store = S3Store(bucket, client_options={"allow_http": True})
    path, got = os.path.join(CACHE, "copy.mv2"), 0
    with open(path, "wb") as f:
        for piece in obstore.get(store, key).stream(min_chunk_size=8 << 20):
            f.write(piece)
            got += len(piece)
    stats = {"requests": 1, "rounds": 1, "bytes": got}
    mem = Memory.open(path, readonly=True, cache_dir=CACHE)
else:
    mem = Memory.open(URL, readonly=True, cache_dir=CACHE)
kind = MODE.split(":")[1]
if kind == "timeline":  # the agent's latest frames
    hits = mem.timeline(limit=int(QUERY), reverse=True)
else:
    hits = mem.find(QUERY if kind != "vector" else None,
                    vector=vector if kind != "lexical" else None, k=10, mode=kind)
answered = time.time()
if not MODE.startswith("copy"):
    source = mem._reader.fd
    stats = {"requests": source.requests, "rounds": source.rounds, "bytes": source.fetched}
stats["answered"] = answered
stats["ids"] = [h.id for h in hits]
print(json.dumps(stats))
"""


LANCE_PROBE = """
import json, os, sys, time
URL, QUERY, VECTOR, KIND = sys.argv[1:5]
import lancedb
imported = time.time()
env = os.environ
db = lancedb.connect(URL, storage_options={
    "aws_endpoint": env["AWS_ENDPOINT_URL"], "allow_http": "true", "aws_region": "us-east-1",
    "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]})
table = db.open_table("bench")
vector = json.loads(VECTOR)
if KIND == "vector":  # PQ codes rescored exactly for the 10 x 10 best, as LanceDB advises
    query = table.search(vector).refine_factor(10)
elif KIND == "lexical":
    query = table.search(QUERY, query_type="fts")
else:
    query = table.search(query_type="hybrid").vector(vector).text(QUERY)
ids = [row["id"] for row in query.limit(10).to_list()]
print(json.dumps({"answered": time.time(), "imported": imported, "ids": ids}))
"""


def build_lance(path: str, n: int, dim: int) -> None:
    """A LanceDB dataset of the records ``build`` stores, with a vector and an FTS index."""
    import lancedb
    import pyarrow as pa
    from lancedb.index import FTS, IvfPq

    from bench.corpus import iter_batches

    ids, texts, vectors = [], [], []
    for batch in iter_batches(n, dim=dim):
        for r in batch:
            ids.append(r["id"])
            texts.append(r["text"])
            vectors.append(r["embedding"])
    flat = pa.array(np.asarray(vectors, "<f4").ravel(), pa.float32())
    table = lancedb.connect(path + ".tmp").create_table("bench", data=pa.table({
        "id": ids, "text": texts, "vector": pa.FixedSizeListArray.from_arrays(flat, dim)}))
    table.create_index("vector", config=IvfPq(distance_type="cosine"))
    table.create_index("text", config=FTS())
    os.replace(path + ".tmp", path)


def lance_installed() -> bool:
    try:
        import lancedb  # noqa: F401
    except ImportError:
        return False
    return True


def run_lance(url: str, query: str, vector: str, kind: str, env: dict) -> dict:
    from bench.s3_file_server import summary

    endpoint = env["AWS_ENDPOINT_URL"]
    urllib.request.urlopen(f"{endpoint}/__requests__").read()  # forget earlier requests
    start = time.time()
    out = subprocess.run([sys.executable, "-c", LANCE_PROBE, url, query, vector, kind],
                         capture_output=True, text=True, env=env, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    got.update(summary(json.loads(urllib.request.urlopen(f"{endpoint}/__requests__").read())))
    got["ms"] = (got["answered"] - start) * 1e3
    got["import_ms"] = (got["imported"] - start) * 1e3
    return got


def build(path: str, n: int, dim: int = 384) -> None:
    from bench.corpus import iter_batches
    from memvid_store import Memory

    with Memory.create(path + ".tmp", dim=dim) as mem:
        for batch in iter_batches(n, dim=dim):
            mem.put_many(batch)
        mem.build_index()
    os.replace(path + ".tmp", path)


def run(mode: str, url: str, cache: str, query: str, vector: str, env: dict) -> dict:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", PROBE, mode, url, cache, query, vector],
                         capture_output=True, text=True, env=env, check=True)
    got = json.loads(out.stdout)
    got["ms"] = (got["answered"] - start) * 1e3
    return got


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server", choices=("file", "moto"), default="file")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--files", default=None)
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"queries, of {', '.join(KINDS)} and timeline (the latest "
                             f"{TIMELINE} frames)")
    parser.add_argument("--no-copy", action="store_true",
                        help="skip 'copy to /tmp' (the download of the whole object)")
    args = parser.parse_args()
    pythonpath = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    work = tempfile.mkdtemp(prefix="s3-coldstart-")
    # children read bytecode compiled once (by an unmeasured run), as from an install
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
    files = args.files or os.path.join(work, "files")
    os.makedirs(os.path.join(files, BUCKET), exist_ok=True)
    from bench.machine import machine_info

    results: dict = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "command": "python bench/s3_coldstart.py " + " ".join(sys.argv[1:]),
                     "machine": machine_info(), "rows": []}
    try:
        if args.server == "file":
            from bench.s3_file_server import file_server

            results["server"] = (
                f"Server: `bench/s3_file_server.py` on 127.0.0.1, {args.latency * 1e3:.0f} ms "
                "to first byte" + (f", {args.rate / 2**20:.0f} MiB/s per request"
                                   if args.rate else ", no rate cap")
                + f"; fresh processes, spawn to first answer, median of {args.repeat}, k=10. "
                "Cells: time, bytes downloaded, requests / rounds.")
            print(results["server"])
            with file_server(files, args.latency, args.rate, PYTHONPATH=pythonpath) as env:
                measure(args, env, work, files, results)
        else:
            from bench.moto_server import moto_server

            results["server"] = "Server: moto on 127.0.0.1 (reads the whole object per GET)."
            with moto_server(PYTHONPATH=pythonpath) as env:
                measure(args, env, work, files, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if results["rows"]:
        from bench.report import save

        save(results, ROOT / "bench" / "results", "s3", markdown)


def measure(args: argparse.Namespace, env: dict[str, str], work: str, files: str,
            results: dict) -> None:
    """Build (or reuse) each file, put it where the server reads it, print its rows (and
    add them to ``results``)."""
    from bench.corpus import query_texts, query_vectors

    endpoint = env["AWS_ENDPOINT_URL"]
    store = None
    if args.server == "moto":
        from obstore.store import S3Store

        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"))
        store = S3Store(BUCKET, endpoint=endpoint, client_options={"allow_http": True},
                        access_key_id="bench", secret_access_key="bench", region="us-east-1")
    query = query_texts(1)[0][0]
    vector = json.dumps([float(x) for x in query_vectors(1, dim=args.dim)[0][0]])
    lance = args.server == "file" and lance_installed()
    header = ("| frames | file | query | s3 cold | s3 warm | copy to /tmp |"
              + (" lancedb (same ids as memvid) |" if lance else "") + "\n"
              "| ---: | ---: | --- | ---: | ---: | ---: |" + (" ---: |" if lance else ""))
    print(header)
    results["header"] = header
    for n in map(int, args.sizes.split(",")):
        name = f"m{n}.mv2" if args.dim == 384 else f"m{n}d{args.dim}.mv2"
        path = os.path.join(files, BUCKET, name)
        if not os.path.exists(path):
            build(path, n, args.dim)
        if store is not None:
            import obstore

            with open(path, "rb") as f:
                obstore.put(store, name, f.read())
        size = os.path.getsize(path)
        url = f"s3://{BUCKET}/{name}"
        lance_path = os.path.join(files, BUCKET, name.replace(".mv2", ".lance"))
        if lance and not os.path.exists(lance_path):
            build_lance(lance_path, n, args.dim)
        lance_url = f"s3://{BUCKET}/{os.path.basename(lance_path)}"
        for kind in args.kinds.split(","):
            asked = str(TIMELINE) if kind == "timeline" else query
            unmeasured = os.path.join(work, f"compile-{n}-{kind}")
            os.makedirs(unmeasured)
            run(f"s3:{kind}", url, unmeasured, asked, vector, env)  # fills the bytecode cache
            figures: dict[str, list[dict]] = {"cold": [], "warm": [], "copy": []}
            for i in range(args.repeat):
                cache = os.path.join(work, f"cache-{n}-{kind}-{i}")
                os.makedirs(cache)
                figures["cold"].append(run(f"s3:{kind}", url, cache, asked, vector, env))
                figures["warm"].append(run(f"s3:{kind}", url, cache, asked, vector, env))
                if args.no_copy:
                    continue
                copy = os.path.join(work, f"copy-{n}-{kind}-{i}")
                os.makedirs(copy)
                figures["copy"].append(run(f"copy:{kind}", url, copy, asked, vector, env))
                shutil.rmtree(copy, ignore_errors=True)
            ids = {json.dumps(r["ids"]) for runs in figures.values() for r in runs}
            assert len(ids) == 1, "the answers differ"
            lance_cell = ""
            if lance and kind in KINDS:
                run_lance(lance_url, query, vector, kind, env)  # bytecode, as for memvid
                runs = [run_lance(lance_url, query, vector, kind, env)
                        for _ in range(args.repeat)]
                same = len(set(runs[0]["ids"]) & set(json.loads(ids.pop())))
                imported = statistics.median(r["import_ms"] for r in runs)
                lance_cell = f" {cell(runs)}; {imported:.0f} ms to import ({same}/10) |"

            row = (f"| {n:,} | {size / 2**20:.1f} MiB | {kind} | {cell(figures['cold'])} "
                   f"| {cell(figures['warm'])} "
                   f"| {cell(figures['copy']) if figures['copy'] else '-'} |{lance_cell}")
            print(row, flush=True)
            results["rows"].append({
                "frames": n, "bytes": size, "query": kind, "markdown": row,
                **{name: summarized(runs) for name, runs in figures.items() if runs}})


def summarized(runs: list[dict]) -> dict[str, float]:
    """Median ms, bytes, requests and rounds of ``runs`` (for the results file)."""
    return {key: statistics.median(r[key] for r in runs)
            for key in ("ms", "bytes", "requests", "rounds")}


def markdown(res: dict) -> str:
    """The table of a run, and the growth of each cold first answer between its sizes."""
    from bench.report import heading

    lines = heading("Memories read straight from S3", res)
    lines += [res["server"], "", res["header"]] + [r["markdown"] for r in res["rows"]]
    sizes = sorted({r["frames"] for r in res["rows"]})
    if len(sizes) > 1:
        lines += ["", f"Growth of the cold first answer from {sizes[0]:,} to {sizes[-1]:,} "
                      "frames (time, bytes, requests):", ""]
        for kind in KINDS:
            got = {r["frames"]: r["cold"] for r in res["rows"] if r["query"] == kind}
            if sizes[0] in got and sizes[-1] in got:
                lo, hi = got[sizes[0]], got[sizes[-1]]
                lines.append(f"- {kind}: {hi['ms'] / lo['ms']:.2f}x time, "
                             f"{hi['bytes'] / max(lo['bytes'], 1):.1f}x bytes, "
                             f"{hi['requests'] / max(lo['requests'], 1):.1f}x requests")
    return "\n".join(lines) + "\n"


def cell(runs: list[dict]) -> str:
    """Median time, bytes, requests and rounds of ``runs``."""
    ms = statistics.median(r["ms"] for r in runs)
    got = statistics.median(r["bytes"] for r in runs)
    req = statistics.median(r["requests"] for r in runs)
    rounds = statistics.median(r["rounds"] for r in runs)
    return f"{ms:.0f} ms, {got / 2**20:.2f} MiB in {req:.0f} req / {rounds:.0f} rounds"


if __name__ == "__main__":
    main()
