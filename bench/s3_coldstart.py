"""Cold start of a memory opened straight from S3 (a moto server on this machine).

For each size and query mode, in fresh processes (median of ``--repeat``): process spawn
to the first answer and the bytes and requests fetched, for

* ``s3 cold``: ``Memory.open("s3://...")`` with an empty chunk cache;
* ``s3 warm``: the same with the cache the cold run left (a warm instance);
* ``copy to /tmp``: the old advice, download the whole object, then open the copy.

Run: ``python bench/s3_coldstart.py [--sizes 10000,100000] [--repeat 3]``; needs
moto[server] and obstore. The moto server runs in its own process; it answers a request
in about 5 ms here (``bench/s3_clients.py``), slower than S3 within a region for small
ranges and faster for large ones, so read the bytes column as well as the times.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.moto_server import moto_server  # noqa: E402

PROBE = """
import json, os, sys, time
MODE, URL, CACHE, QUERY, VECTOR = sys.argv[1:6]
stats = {"requests": 0, "bytes": 0}
class Counting:
    def __init__(self, client):
        self.client, self.url = client, client.url
    def get(self, start, end, **kw):
        stats["requests"] += 1
        got = self.client.get(start, end, **kw)
        stats["bytes"] += 0 if got is None else len(got.data)
        return got
from memvid_store import Memory
vector = json.loads(VECTOR)
if MODE.startswith("copy"):
    import obstore
    from obstore.store import S3Store
    bucket, key = URL[5:].split("/", 1)
    store = S3Store(bucket, client_options={"allow_http": True})
    data = obstore.get(store, key).bytes()
    path = os.path.join(CACHE, "copy.mv2")
    with open(path, "wb") as f:
        f.write(data)
    stats = {"requests": 1, "bytes": len(data)}
    mem = Memory.open(path, readonly=True, cache_dir=CACHE)
else:
    mem = Memory.open(URL, readonly=True, cache_dir=CACHE,
                      remote={"wrap_client": Counting})
kind = MODE.split(":")[1]
hits = mem.find(QUERY if kind != "vector" else None, vector=vector if kind != "lexical" else None,
                k=10, mode=kind)
stats["answered"] = time.time()
stats["ids"] = [h.id for h in hits]
print(json.dumps(stats))
"""


def build(path: str, n: int) -> None:
    from bench.corpus import iter_batches
    from memvid_store import Memory

    with Memory.create(path, dim=384) as mem:
        for batch in iter_batches(n):
            mem.put_many(batch)


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
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    pythonpath = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    work = tempfile.mkdtemp(prefix="s3-coldstart-")
    try:
        with moto_server(PYTHONPATH=pythonpath) as env:
            measure(args, env, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(args: argparse.Namespace, env: dict[str, str], work: str) -> None:
    """Build each file, upload it, print its row of figures."""
    endpoint = env["AWS_ENDPOINT_URL"]
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/bench", method="PUT"))
    import obstore
    from obstore.store import S3Store

    from bench.corpus import query_texts, query_vectors

    store = S3Store("bench", endpoint=endpoint, client_options={"allow_http": True},
                    access_key_id="bench", secret_access_key="bench", region="us-east-1")
    query = query_texts(1)[0][0]
    vector = json.dumps([float(x) for x in query_vectors(1)[0][0]])
    print("| frames | file | query | s3 cold | s3 warm | copy to /tmp |\n"
          "| ---: | ---: | --- | ---: | ---: | ---: |")
    for n in map(int, args.sizes.split(",")):
        path = os.path.join(work, f"m{n}.mv2")
        build(path, n)
        with open(path, "rb") as f:
            obstore.put(store, f"m{n}.mv2", f.read())
        size = os.path.getsize(path)
        url = f"s3://bench/m{n}.mv2"
        for kind in ("lexical", "vector", "hybrid"):
            figures: dict[str, list[dict]] = {"cold": [], "warm": [], "copy": []}
            for i in range(args.repeat):
                cache = os.path.join(work, f"cache-{n}-{kind}-{i}")
                os.makedirs(cache)
                figures["cold"].append(run(f"s3:{kind}", url, cache, query, vector, env))
                figures["warm"].append(run(f"s3:{kind}", url, cache, query, vector, env))
                copy = os.path.join(work, f"copy-{n}-{kind}-{i}")
                os.makedirs(copy)
                figures["copy"].append(run(f"copy:{kind}", url, copy, query, vector, env))
            ids = {json.dumps(r["ids"]) for runs in figures.values() for r in runs}
            assert len(ids) == 1, "the answers differ"

            def cell(runs: list[dict]) -> str:
                ms = statistics.median(r["ms"] for r in runs)
                got = statistics.median(r["bytes"] for r in runs)
                req = statistics.median(r["requests"] for r in runs)
                return f"{ms:.0f} ms, {got / 2**20:.2f} MiB in {req:.0f} req"

            print(f"| {n:,} | {size / 2**20:.1f} MiB | {kind} | {cell(figures['cold'])} "
                  f"| {cell(figures['warm'])} | {cell(figures['copy'])} |", flush=True)


if __name__ == "__main__":
    main()
