"""Building cluster lists: anew, and for an extended graph keeping the lists it had.

``python bench/lists_build.py --n 300000 --add 30000 --dim 128`` draws ``n + add`` bench
corpus vectors (``bench/corpus.py``), builds the lists of the first ``n`` as a graph
build does (``lists_build.build_lists``), then the lists of all ``n + add`` twice: anew
(k-means, every row assigned), and keeping the first lists (their centroids and rows,
only the ``add`` new rows assigned), as an extension of the graph does. Reports each
build's seconds and the calibrated number of lists a query reads with its sample recall.
Writes ``bench/results/listsbuild-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.report import heading, save  # noqa: E402

CHUNK = 10_000  # rows per vector block, as a bulk load writes them


class _Bytes:
    """A view of a built segment, read as the file would be."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)

    def read(self, offset: int, size: int, region: str = "") -> memoryview:
        return self.data[offset : offset + size]


def _kept(blob: Any, dim: int) -> Any:
    from memvid_store.engine.format import SegmentRef
    from memvid_store.index.vector.lists_build import KeptLists, list_arrays
    from memvid_store.index.vector.lists_format import KIND, read_head

    view = _Bytes(b"".join(bytes(part) for part in blob.parts))
    head = read_head(view, SegmentRef(KIND, 0, blob.length, blob.crc, blob.meta), "cosine",
                     dim)

    def columns(j: int) -> Any:
        offset, size = head.span(j)
        return list_arrays(view.read(offset, size), head.directory[j][1], dim)

    return KeptLists(head, columns, lambda j: None)


def _timed(chunks: list, covered: int, dim: int, scratch: str, kept: Any = None
           ) -> tuple[float, Any]:
    from memvid_store.index.vector.lists_build import build_lists

    started = time.perf_counter()
    blob = build_lists(chunks, metric="cosine", dim=dim, covered=covered, target=0.95,
                       scratch_dir=scratch, kept=kept)
    return time.perf_counter() - started, blob


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300_000)
    parser.add_argument("--add", type=int, default=30_000)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    n, add, dim = args.n, args.add, args.dim
    vectors = np.empty((n + add, dim), np.float32)
    for i, record in enumerate(corpus.generate(n + add, dim=dim)):
        vectors[i] = record["embedding"]
    gids = np.arange(n + add, dtype=np.int64)
    first = [(vectors[i : min(i + CHUNK, n)], gids[i : min(i + CHUNK, n)])
             for i in range(0, n, CHUNK)]
    every = [*first, (vectors[n:], gids[n:])]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        seconds, old = _timed(first, n, dim, scratch)
        rows.append(("first lists", n, seconds, old.meta))
        seconds, fresh = _timed(every, n + add, dim, scratch)
        rows.append(("extended, built anew", n + add, seconds, fresh.meta))
        seconds, kept = _timed(every, n + add, dim, scratch, _kept(old, dim))
        rows.append(("extended, first lists kept", n + add, seconds, kept.meta))
    results = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "command": "python bench/lists_build.py " + " ".join(sys.argv[1:]),
               "machine": machine_info(), "dim": dim,
               "rows": [{"build": name, "vectors": count, "seconds": round(s, 2), **meta}
                        for name, count, s, meta in rows]}
    save(results, HERE / "results", "listsbuild", markdown, show=True)


def markdown(res: dict[str, Any]) -> str:
    lines = [*heading("Cluster lists build", res),
             f"{res['dim']}-d bench corpus vectors; one process, one run of each build.", "",
             "| build | vectors | seconds | lists | read per query | sample recall@10 |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in res["rows"]:
        lines.append(f"| {row['build']} | {row['vectors']:,} | {row['seconds']:.1f} | "
                     f"{row['nlist']} | {row['nprobe']} | {row['recall']:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
