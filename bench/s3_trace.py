"""Where the requests and bytes of a first answer from object storage go.

Opens a local ``.mv2`` file as if it were an object (``s3://trace/<name>``, served by a
client that reads the file: no server, no latency), runs one query in a fresh process,
and prints every download (``RemoteObject.log``) with its round, the region that asked
for it and what part of the file it covers (run parts, vector and payload blocks,
tantivy files, the graph).

Run: ``python bench/s3_trace.py FILE.mv2 [--mode lexical|vector|hybrid|timeline] [--k 10]``
(``timeline``: the latest ``k`` frames).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, os, sys
sys.path.insert(0, {root!r})
from bench.s3_trace import LocalObject
from memvid_store import Memory
path, mode, k, query = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
vector = json.loads(sys.argv[5])
mem = Memory.open("s3://trace/" + os.path.basename(path), readonly=True, cache_dir=sys.argv[6],
                  remote={{"wrap_client": lambda c: LocalObject(path, c.url)}})
if mode == "timeline":  # the latest k frames
    hits = mem.timeline(limit=k, reverse=True)
else:
    hits = mem.find(query if mode != "vector" else None,
                    vector=vector if mode != "lexical" else None, k=k, mode=mode)
obj = mem._reader.fd
print(json.dumps({{"log": [[r.offset, r.length, r.region, r.round] for r in obj.log],
                  "ids": [h.id for h in hits]}}))
"""


class LocalObject:
    """An ``ObjectClient`` over a local file (one version, ETag ``"local"``)."""

    def __init__(self, path: str, url: str) -> None:
        self.url, self.fd, self.size = url, os.open(path, os.O_RDONLY), os.path.getsize(path)

    def get(self, start: int, end: int, *, if_match: str | None = None,
            if_none_match: str | None = None) -> object:
        from memvid_store.remote.client import Fetched

        if if_none_match == '"local"':
            return None
        return Fetched(os.pread(self.fd, max(0, min(end, self.size) - start), start),
                       '"local"', self.size)

    def tail(self, size: int) -> object:
        return self.get(max(0, self.size - size), self.size)


def layout(path: str) -> list[tuple[int, int, str]]:
    """(offset, length, name) of every piece of the file: header, TOC, segments, the
    parts of each run, its payload and vector blocks, the tantivy files."""
    from memvid_store.engine.store import read_state

    fd = os.open(path, os.O_RDONLY)
    try:
        st = read_state(fd)
        out = [(0, 8192, "header"), (st.header.toc_offset, st.header.toc_len + 40, "toc")]
        for seg in st.toc.segments:
            if seg.kind == "run":
                _, hlen, _ = struct.unpack("<4sII", os.pread(fd, 12, seg.offset))
                head = json.loads(os.pread(fd, hlen, seg.offset + 12))
                name, at = f"run@{seg.offset // 2**20}M", seg.offset + seg.meta["head"]
                out.append((seg.offset, seg.meta["head"], f"{name}:header"))
                out += [(at + rel, n, f"{name}:{part}")
                        for part, (rel, n, _) in head["parts"].items()]
                out += [(o, n, "payloads") for o, n, _ in head["blocks"]]
                out += [(o, rows * head["dim"] * 4, "vectors") for o, rows, _ in head["vblocks"]]
            elif seg.kind == "lex":
                out.append((seg.offset, seg.length, "lex:manifest"))
                files = json.loads(os.pread(fd, seg.length, seg.offset))["files"]
                out += [(o, n, f"lex:{name.rsplit('.', 1)[-1]}") for name, (o, n, _) in
                        files.items()]
            else:
                out.append((seg.offset, seg.length, seg.kind))
        return sorted(out)
    finally:
        os.close(fd)


def covers(pieces: list[tuple[int, int, str]], offset: int, length: int) -> str:
    names: list[str] = []
    for o, n, name in pieces:
        if o < offset + length and offset < o + n and name not in names:
            names.append(name)
    return ",".join(names[:8]) + (f",+{len(names) - 8}" if len(names) > 8 else "")


def trace(path: str, mode: str, k: int, query: str, vector: list[float],
          cache: str) -> dict:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="trace", AWS_SECRET_ACCESS_KEY="trace",
               AWS_REGION="us-east-1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT)), path, mode,
                          str(k), query, json.dumps(vector), cache],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout)


def main() -> None:
    import tempfile

    from bench.corpus import query_texts, query_vectors

    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--mode", default="vector",
                        choices=("lexical", "vector", "hybrid", "timeline"))
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    query = query_texts(1)[0][0]
    vector = [float(x) for x in query_vectors(1)[0][0]]
    with tempfile.TemporaryDirectory() as cache:
        got = trace(args.file, args.mode, args.k, query, vector, cache)
    pieces = layout(args.file)
    total = 0
    print("| round | offset | bytes | asked by | covers |\n| ---: | ---: | ---: | --- | --- |")
    for offset, length, region, rnd in got["log"]:
        total += length
        print(f"| {rnd} | {offset} | {length:,} | {region} | {covers(pieces, offset, length)} |")
    rounds = len({r[3] for r in got["log"]})
    print(f"\n{len(got['log'])} requests in {rounds} rounds, {total / 2**20:.2f} MiB of "
          f"{os.path.getsize(args.file) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
