"""Compare S3 clients for range reads against a local moto server.

For each candidate, in a fresh process: the import time of the client, the time to make
a client, the first range GET (64 KiB, includes the connection) and the mean of 50 more
range GETs (64 KiB each). Run with ``python bench/s3_clients.py [--size-mib 16]
[--clients boto3,obstore,s3fs]``; needs moto[server] and the clients installed. moto reads
the whole object for each range request, so its per-request time grows with
``--size-mib`` where S3's does not.
"""


from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.moto_server import moto_server

BUCKET, KEY, RANGE, N = "bench", "memory.mv2", 64 << 10, 50

CLIENTS = {
    "boto3": """
t0 = time.perf_counter(); import boto3; t1 = time.perf_counter()
c = boto3.client("s3"); t2 = time.perf_counter()
def get(off):
    return c.get_object(Bucket=B, Key=K, Range=f"bytes={off}-{off + R - 1}")["Body"].read()
""",
    "obstore": """
t0 = time.perf_counter(); import obstore; from obstore.store import S3Store
t1 = time.perf_counter()
c = S3Store(B, client_options={"allow_http": True}); t2 = time.perf_counter()
def get(off): return bytes(obstore.get_range(c, K, start=off, end=off + R))
""",
    "s3fs": """
t0 = time.perf_counter(); import s3fs; t1 = time.perf_counter()
c = s3fs.S3FileSystem(); t2 = time.perf_counter()
def get(off): return c.cat_file(f"{B}/{K}", start=off, end=off + R)
""",
}

PROBE = """
import json, sys, time
B, K, R, N = {bucket!r}, {key!r}, {range}, {n}
{client}
t3 = time.perf_counter(); assert len(get(0)) == R; t4 = time.perf_counter()
times = []
for i in range(1, N + 1):
    s = time.perf_counter(); get(i * R); times.append(time.perf_counter() - s)
print(json.dumps({{"import": t1 - t0, "client": t2 - t1, "first": t4 - t3, "times": times}}))
"""


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=16)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    args = parser.parse_args()
    with moto_server() as env:
        import boto3

        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=os.urandom(args.size_mib << 20))
        print(f"{args.size_mib} MiB object\n\n| client | version | import | make client | first "
              f"range GET | per GET (mean of {N}, 64 KiB) |\n"
              "| --- | --- | ---: | ---: | ---: | ---: |")
        for name in args.clients.split(","):
            client = CLIENTS[name]
            runs = []
            for _ in range(3):
                out = subprocess.run([sys.executable, "-c", PROBE.format(
                    bucket=BUCKET, key=KEY, range=RANGE, n=N, client=client)],
                    capture_output=True, text=True, env=env)
                if out.returncode:
                    print(f"| {name} | failed: {out.stderr.strip().splitlines()[-1]} |")
                    break
                runs.append(json.loads(out.stdout))
            if not runs:
                continue
            from importlib.metadata import version

            med = {k: statistics.median(r[k] for r in runs) * 1e3
                   for k in ("import", "client", "first")}
            per = statistics.median(statistics.mean(r["times"]) for r in runs) * 1e3
            print(f"| {name} | {version(name)} | {med['import']:.0f} ms | {med['client']:.1f} ms "
                  f"| {med['first']:.1f} ms | {per:.2f} ms |")


if __name__ == "__main__":
    main()
