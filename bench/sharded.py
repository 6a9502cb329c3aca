"""Fan-out search over shards against one file of the same frames, in one process.

``python bench/sharded.py --n 100000 --shards 4`` builds one file and a ``ShardedMemory``
of ``--shards`` files (routed by id) from the same ``bench/corpus.py`` records (128-d,
BM25 index on), builds every graph, then opens both read-only in this process, warms
them, and times ``find`` for distinct queries, the two taking turns in blocks:

* vector (k=10), lexical (3 topic words + 1 general word, k=10), hybrid (both, k=10),
  and hybrid filtered on a metadata field (``{"topic": t}``, about 1/50 of the frames);
* recall@10 of the vector answers of each against the exact top 10 (numpy);
* how many lexical answers are the same ids in the same order as the one file's (BM25
  with the statistics of every shard: they should all be).

Writes ``bench/results/sharded-<stamp>.json`` and ``.md``.
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
from bench.engine_bench import progress  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.report import heading, write_results  # noqa: E402

DIM = 128
BATCH = 5_000
QUERIES = 200
WARMUP = 200  # distinct queries before the timed ones: a warm reader's steady state
ROUNDS = 10
TARGET_RATIO = 2.0  # fan-out p50 / one file p50
MODES = ("vector", "lexical", "hybrid", "filtered")


def build(work: Path, n: int, shards: int) -> tuple[np.ndarray, dict[str, float]]:
    """One file and a sharded memory of the same ``n`` records; their vectors by row."""
    from memvid_store import Memory, ShardedMemory

    rows, seconds = [], {}
    one = Memory.create(work / "one.mv2", dim=DIM)
    many = ShardedMemory.create(work / "many.mv2s", shards, dim=DIM)
    load = {"one": 0.0, "sharded": 0.0}
    for batch in corpus.iter_batches(n, BATCH, dim=DIM, seed=0):
        rows.extend(r["embedding"] for r in batch)
        for name, mem in (("one", one), ("sharded", many)):
            t0 = time.perf_counter()
            mem.put_many(batch)
            load[name] += time.perf_counter() - t0
    for name, mem in (("one", one), ("sharded", many)):
        t0 = time.perf_counter()
        mem.build_index()
        mem.close()
        seconds[f"{name}_load_s"] = load[name]
        seconds[f"{name}_index_s"] = time.perf_counter() - t0
    return np.asarray(rows, "<f4"), seconds


def requests(count: int) -> dict[str, list[dict[str, Any]]]:
    qv, topics = corpus.query_vectors(count, dim=DIM, seed=0)  # the corpus's topics
    texts = corpus.query_texts(count, seed=0)
    return {
        "vector": [{"vector": q, "k": 10, "mode": "vector"} for q in qv],
        "lexical": [{"text": t, "k": 10, "mode": "lexical"} for t, _ in texts],
        "hybrid": [{"text": t, "vector": q, "k": 10} for (t, _), q in zip(texts, qv,
                                                                            strict=True)],
        "filtered": [{"text": t, "vector": q, "k": 10, "filter": {"topic": int(topic)}}
                     for (t, _), q, topic in zip(texts, qv, topics, strict=True)],
    }


def measure(one: Any, many: Any, reqs: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p99 ms of each, taking turns in blocks, and every answer of each."""
    for r in reqs[:WARMUP]:
        one.find(**r)
        many.find(**r)
    timed = reqs[WARMUP:]
    block = -(-len(timed) // ROUNDS)
    times: dict[str, list[float]] = {"one": [], "sharded": []}
    answers: dict[str, list[list[Any]]] = {"one": [None] * len(timed),
                                           "sharded": [None] * len(timed)}
    for r in range(ROUNDS):
        order = (("one", one), ("sharded", many)) if r % 2 == 0 else (("sharded", many),
                                                                       ("one", one))
        for name, mem in order:
            for i in range(r * block, min((r + 1) * block, len(timed))):
                t0 = time.perf_counter()
                hits = mem.find(**timed[i])
                times[name].append(time.perf_counter() - t0)
                answers[name][i] = hits
    out: dict[str, Any] = {}
    for name, ts in times.items():
        out[name] = {"p50_ms": float(np.median(ts) * 1e3),
                     "p99_ms": float(np.percentile(ts, 99) * 1e3)}
    out["ratio_p50"] = out["sharded"]["p50_ms"] / out["one"]["p50_ms"]
    out["answers"] = answers
    return out


def recall(x: np.ndarray, reqs: list[dict[str, Any]], answers: list[list[Any]]) -> float:
    got = 0
    for r, hits in zip(reqs[WARMUP:], answers, strict=True):
        exact = set(np.argsort(-(x @ np.asarray(r["vector"], "<f4")), kind="stable")[:10])
        got += len(exact & {int(h.id.split("-")[1]) for h in hits})
    return got / (10 * len(answers))


def run_sizes(n: int, shards: int, workdir: str | None) -> dict[str, Any]:
    from memvid_store import Memory, ShardedMemory

    with tempfile.TemporaryDirectory(prefix="memvid-sharded-", dir=workdir) as tmp:
        work = Path(tmp)
        progress(f"sharded: building {n:,} frames, one file and {shards} shards")
        x, seconds = build(work, n, shards)
        res: dict[str, Any] = {"n": n, "shards": shards, "build": seconds, "modes": {}}
        all_reqs = requests(QUERIES + WARMUP)
        with Memory.open(work / "one.mv2", readonly=True) as one, \
                ShardedMemory.open(work / "many.mv2s", readonly=True) as many:
            for mem in [one, *many.shards]:
                mem.warmup("aggressive")
            for mode in MODES:
                progress(f"sharded: {mode} queries")
                m = measure(one, many, all_reqs[mode])
                answers = m.pop("answers")
                same = sum([h.id for h in a] == [h.id for h in b]
                           for a, b in zip(answers["one"], answers["sharded"], strict=True))
                m["same_ids_as_one_file"] = same
                m["queries"] = len(answers["one"])
                if mode == "vector":
                    m["recall_one"] = recall(x, all_reqs[mode], answers["one"])
                    m["recall_sharded"] = recall(x, all_reqs[mode], answers["sharded"])
                res["modes"][mode] = m
    return res


def markdown(res: dict[str, Any]) -> str:
    lines = [*heading("Sharded fan-out", res),
             f"{res['n']:,} frames of {DIM}-d bench corpus records (BM25 index on), one file "
             f"against {res['shards']} shards routed by id; both read-only in one process, "
             f"warm ({WARMUP} distinct queries per mode first); {QUERIES} distinct queries "
             "per mode, taking turns in blocks.", "",
             "| mode | one file p50 / p99 ms | sharded p50 / p99 ms | sharded / one (p50) "
             "| same ids as one file |", "| --- | ---: | ---: | ---: | ---: |"]
    for mode, m in res["modes"].items():
        lines.append(f"| {mode} | {m['one']['p50_ms']:.2f} / {m['one']['p99_ms']:.2f} | "
                     f"{m['sharded']['p50_ms']:.2f} / {m['sharded']['p99_ms']:.2f} | "
                     f"{m['ratio_p50']:.2f} | {m['same_ids_as_one_file']}/{m['queries']} |")
    v = res["modes"].get("vector")
    if v:
        lines += ["", f"Vector recall@10 against the exact answer: one file "
                      f"{v['recall_one']:.3f}, sharded {v['recall_sharded']:.3f} (each shard "
                      "searches its own graph)."]
    b = res["build"]
    lines += ["", f"Build: one file load {b['one_load_s']:.1f} s + build_index "
                  f"{b['one_index_s']:.1f} s; sharded load {b['sharded_load_s']:.1f} s + "
                  f"build_index {b['sharded_index_s']:.1f} s."]
    if res.get("targets"):
        lines += ["", "Targets:", ""] + [
            f"- {'met' if t['met'] else 'MISSED'}: {t['target']} ({t['value']:.3g})"
            for t in res["targets"]]
    return "\n".join(lines) + "\n"


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"target": f"{mode} fan-out p50 over {res['shards']} warm shards <= "
                       f"{TARGET_RATIO:g}x one file", "value": m["ratio_p50"],
             "met": m["ratio_p50"] <= TARGET_RATIO} for mode, m in res["modes"].items()]


def run(full: bool = False, workdir: str | None = None, out_dir: Path = HERE / "results",
        n: int | None = None, shards: int = 4) -> dict[str, Any]:
    """``make bench``'s entry: 100k frames over 4 shards (``full``: 1M)."""
    n = n or (1_000_000 if full else 100_000)
    res = run_sizes(n, shards, workdir)
    res.update(timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               command=f"python bench/sharded.py --n {n} --shards {shards}",
               machine=machine_info())
    res["targets"] = targets(res)
    json_path, md_path = write_results(res, out_dir, "sharded", markdown)
    res["files"] = [str(json_path), str(md_path)]
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workdir")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    res = run(workdir=args.workdir, out_dir=args.out, n=args.n, shards=args.shards)
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
