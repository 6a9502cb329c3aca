"""Sharding and Ray, measured: ingestion 1 -> 2 workers, fan-out against shard count, and
shards served by Ray actors against the same shards in-process.

``python bench/cluster_bench.py`` (a few minutes on 2 cores):

1. **Ingestion on Ray.** ``ingest_on_ray`` of the same generated documents (Markdown files
   of bench corpus text, chunked at 1,200 characters) with the bundled embedder
   (all-MiniLM-L6-v2) on 1 and then 2 workers, each into a fresh 4-shard memory: chunks
   embedded and written per second (Ray started once, before the clock).
2. **Fan-out against shard count.** One corpus (``--frames``, 128-d, BM25 on) as 1, 2, 4
   and 8 shards, warm, in one process: p50 of vector, lexical and hybrid ``find``.
3. **Served by Ray.** The 4-shard memory searched through ``RayShardedMemory`` (an actor
   per shard) against in-process, p50 per mode.

Writes ``bench/results/cluster-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import shutil
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
from bench.engine_bench import progress  # noqa: E402
from bench.machine import machine_info, summary  # noqa: E402
from bench.report import write_results  # noqa: E402
from bench.sharded import requests  # noqa: E402

DIM = 128
QUERIES = 100
WARMUP = 10
SHARD_COUNTS = (1, 2, 4, 8)
INGEST_TARGET = 1.6  # 2 workers / 1 worker throughput


def write_documents(folder: Path, docs: int) -> None:
    """``docs`` Markdown files of about 3 chunks each."""
    folder.mkdir(parents=True)
    records = [r for batch in corpus.iter_batches(docs * 12, 1000, dim=DIM, seed=5,
                                                  embeddings=False) for r in batch]
    for i in range(docs):
        body = "\n\n".join(r["text"] for r in records[i * 12:(i + 1) * 12])
        (folder / f"doc{i:05d}.md").write_text(f"# Document {i}\n\n{body}\n")


def ingestion(work: Path, docs: int) -> dict[str, Any]:
    import ray

    from memvid_store.cluster.ray_ingest import ingest_on_ray

    folder = work / "docs"
    write_documents(folder, docs)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out: dict[str, Any] = {"documents": docs}
    try:
        for workers in (1, 2):
            progress(f"cluster: ingest on {workers} Ray worker(s)")
            t0 = time.perf_counter()
            report = ingest_on_ray(work / f"ingest-{workers}.mv2s", [str(folder)],
                                   workers=workers, shards=4)
            seconds = time.perf_counter() - t0
            out[f"workers_{workers}"] = {"chunks": report.added, "seconds": seconds,
                                         "chunks_per_s": report.added / seconds}
    finally:
        ray.shutdown()
    out["speedup"] = out["workers_2"]["chunks_per_s"] / out["workers_1"]["chunks_per_s"]
    return out


def plain_requests() -> dict[str, list[dict[str, Any]]]:
    """bench/sharded.py's vector, lexical and hybrid requests (no filter)."""
    reqs = requests(QUERIES + WARMUP)
    return {mode: reqs[mode] for mode in ("vector", "lexical", "hybrid")}


def p50(find: Any, reqs: list[dict[str, Any]]) -> float:
    for r in reqs[:WARMUP]:
        find(**r)
    times = []
    for r in reqs[WARMUP:]:
        t0 = time.perf_counter()
        find(**r)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def fan_out(work: Path, frames: int) -> dict[str, Any]:
    from memvid_store import ShardedMemory

    reqs = plain_requests()
    out: dict[str, Any] = {"frames": frames, "shards": {}}
    for count in SHARD_COUNTS:
        progress(f"cluster: {frames:,} frames as {count} shard(s)")
        path = work / f"fan-{count}.mv2s"
        with ShardedMemory.create(path, count, dim=DIM) as mem:
            for batch in corpus.iter_batches(frames, 5000, dim=DIM, seed=0):
                mem.put_many(batch)
            mem.build_index()
        with ShardedMemory.open(path, readonly=True) as mem:
            for shard in mem.shards:
                shard.warmup("aggressive")
            out["shards"][count] = {mode: p50(mem.find, r) for mode, r in reqs.items()}
    return out


def served(work: Path) -> dict[str, Any]:
    import ray

    from memvid_store import ShardedMemory
    from memvid_store.cluster.serving import RayShardedMemory

    reqs = plain_requests()
    path = work / "fan-4.mv2s"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        progress("cluster: 4 shards served by Ray actors")
        with ShardedMemory.open(path, readonly=True) as local, \
                RayShardedMemory.open(path) as remote:
            for shard in local.shards:
                shard.warmup("aggressive")
            return {mode: {"in_process_ms": p50(local.find, r), "ray_ms": p50(remote.find, r)}
                    for mode, r in reqs.items()}
    finally:
        ray.shutdown()


def markdown(res: dict[str, Any]) -> str:
    ing, fan, srv = res["ingestion"], res["fan_out"], res["served"]
    lines = [f"## Sharding and Ray ({res['timestamp']})", "",
             f"Machine: {summary(res['machine'])}  ", f"Command: `{res['command']}`", "",
             f"Ingestion on Ray: {ing['documents']:,} Markdown documents, bundled embedder "
             "(all-MiniLM-L6-v2), into 4 shards.", "",
             "| workers | chunks | seconds | chunks/s |", "| ---: | ---: | ---: | ---: |"]
    for w in (1, 2):
        r = ing[f"workers_{w}"]
        lines.append(f"| {w} | {r['chunks']:,} | {r['seconds']:.1f} | {r['chunks_per_s']:.1f} |")
    lines += ["", f"2 workers / 1 worker: **{ing['speedup']:.2f}x**.", "",
              f"Fan-out: {fan['frames']:,} frames (128-d, BM25 on) as 1 to 8 shards, warm, "
              "in one process; p50 ms.", "",
              "| shards | vector | lexical | hybrid |", "| ---: | ---: | ---: | ---: |"]
    for count, m in fan["shards"].items():
        lines.append(f"| {count} | {m['vector']:.2f} | {m['lexical']:.2f} | "
                     f"{m['hybrid']:.2f} |")
    lines += ["", "Served by Ray actors (4 shards, an actor each) against in-process; p50 ms.",
              "", "| mode | in-process | Ray actors |", "| --- | ---: | ---: |"]
    for mode, m in srv.items():
        lines.append(f"| {mode} | {m['in_process_ms']:.2f} | {m['ray_ms']:.2f} |")
    if res.get("targets"):
        lines += ["", "Targets:", ""] + [
            f"- {'met' if t['met'] else 'MISSED'}: {t['target']} ({t['value']:.3g})"
            for t in res["targets"]]
    return "\n".join(lines) + "\n"


def run(full: bool = False, workdir: str | None = None, out_dir: Path = HERE / "results",
        docs: int = 400, frames: int = 40_000) -> dict[str, Any]:
    """``make bench``'s entry (``full``: 4x the documents and frames)."""
    if full:
        docs, frames = docs * 4, frames * 4
    work = Path(tempfile.mkdtemp(prefix="memvid-cluster-", dir=workdir))
    try:
        res: dict[str, Any] = {"ingestion": ingestion(work, docs),
                               "fan_out": fan_out(work, frames), "served": served(work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res.update(timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               command=f"python bench/cluster_bench.py --docs {docs} --frames {frames}",
               machine=machine_info())
    res["targets"] = [{"target": f"ingestion on 2 Ray workers >= {INGEST_TARGET:g}x 1 worker",
                       "value": res["ingestion"]["speedup"],
                       "met": res["ingestion"]["speedup"] >= INGEST_TARGET}]
    json_path, md_path = write_results(res, out_dir, "cluster", markdown)
    res["files"] = [str(json_path), str(md_path)]
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--frames", type=int, default=40_000)
    parser.add_argument("--workdir")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    print(markdown(run(workdir=args.workdir, out_dir=args.out, docs=args.docs,
                       frames=args.frames)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
