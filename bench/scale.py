"""Millions of frames on one machine: ingest, open, first answer, warm queries, compaction.

``python bench/scale.py --sizes 1000000,3000000`` (``bench/run_all.py --full --only scale``;
100k without ``--full``) builds, per size, a file of 128-d ``bench/corpus.py`` records with
their texts, metadata and a BM25 index, each step in a fresh process:

* **ingest**: ``put_many`` of 10k records, ``close()``, then ``build_index()`` (the graph);
  the rate counts both, so it includes graph maintenance, and not the time the corpus
  generator takes to make the records (reported apart: about 20 s at 1M);
* **first answer**: a process that imports memvid_store, opens the file read-only and
  answers one vector query: its time, and its resident memory after the answer;
* **warm queries** in that process: p50/p99 of vector, hybrid (a topic word and the
  vector) and filtered (vector, ``priority == 0``: a fifth of the frames) queries, and
  recall@10 of the vector and filtered ones against numpy's exact top 10;
* **compaction** of a copy: its time and peak resident memory (the process's own
  ``VmHWM``: ``machine.own_peak_rss_mb``).

Writes ``bench/results/scale-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.memory_phases import run_code  # noqa: E402
from bench.recall_probe import streamed_top  # noqa: E402
from bench.report import heading, write_results  # noqa: E402

DIM = 128
BATCH = 10_000
QUERIES = 200
FILTER = {"priority": 0}

LOAD = """
import json, time
from bench import corpus
from memvid_store import Memory
start = time.perf_counter()
mem = Memory.create(PATH, dim=DIM)
batches = corpus.iter_batches(N, BATCH, dim=DIM, seed=0, embeddings=True)
generated = 0.0  # making the corpus is not ingest
while True:
    made = time.perf_counter()
    batch = next(batches, None)
    generated += time.perf_counter() - made
    if batch is None:
        break
    mem.put_many(batch)
mem.close()
loaded = time.perf_counter() - start - generated
mem = Memory.open(PATH)
start = time.perf_counter()
mem.build_index()
mem.close()
print(json.dumps({"load_s": loaded, "generate_s": generated,
                  "build_index_s": time.perf_counter() - start}))
"""

QUERY = """
import time
started = time.perf_counter()
import json
import numpy as np
from bench.machine import own_peak_rss_mb, status_mb as rss
from memvid_store import Memory
queries = np.load(QFILE)
words = json.loads(WORDS)
opened_at = time.perf_counter()
mem = Memory.open(PATH, readonly=True)
opened = time.perf_counter()
first = [h.id for h in mem.find(vector=queries[0], k=10, mode="vector")]
answered = time.perf_counter()
out = {"import_s": opened_at - started, "open_s": opened - opened_at,
       "first_answer_s": answered - started, "rss_after_first_mb": rss("VmRSS"),
       "anon_after_first_mb": rss("RssAnon"), "hits": {}}
def timed(name, call):
    for q in queries[:20]:
        call(q, words[0])  # warm
    times, hits = [], []
    for q, word in zip(queries, words):
        t0 = time.perf_counter()
        found = call(q, word)
        times.append(time.perf_counter() - t0)
        hits.append([h.id for h in found])
    out[name] = {"p50_ms": float(np.median(times) * 1e3),
                 "p99_ms": float(np.percentile(times, 99) * 1e3)}
    out["hits"][name] = hits
timed("vector", lambda q, w: mem.find(vector=q, k=10, mode="vector"))
timed("hybrid", lambda q, w: mem.find(w, vector=q, k=10))
timed("filtered", lambda q, w: mem.find(vector=q, k=10, mode="vector", filter=FILTER))
out["rss_after_queries_mb"] = rss("VmRSS")
out["anon_after_queries_mb"] = rss("RssAnon")  # the rest: mapped pages of the file
out["peak_rss_mb"] = own_peak_rss_mb()
print(json.dumps(out))
"""

COMPACT = """
import json, time
from bench.machine import own_peak_rss_mb
from memvid_store import Memory
mem = Memory.open(PATH)
start = time.perf_counter()
mem.compact()
seconds = time.perf_counter() - start
mem.close()
print(json.dumps({"compact_s": seconds,
                  "peak_rss_mb": own_peak_rss_mb()}))
"""


def run_json(code: str, **values: Any) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with ``values`` bound; its last line, as JSON."""
    return json.loads(run_code(code, **values).strip().splitlines()[-1])


def corpus_blocks(n: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The corpus again, a batch at a time: (vectors, record numbers, filter matches)."""
    start = 0
    for batch in corpus.iter_batches(n, 100_000, dim=DIM, seed=0, ids=False,
                                     embeddings=True):
        vectors = np.stack([r["embedding"] for r in batch]).astype("<f4")
        numbers = np.arange(start, start + len(batch))
        match = np.array([r["metadata"]["priority"] == FILTER["priority"] for r in batch])
        yield vectors, numbers, match
        start += len(batch)


def exact_answers(n: int, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's exact top 10 record numbers: over every record, and over the filter's."""
    everything, filtered = [], []
    for vectors, numbers, match in corpus_blocks(n):
        everything.append((vectors, numbers))
        filtered.append((vectors[match], numbers[match]))
    return streamed_top(everything, queries), streamed_top(filtered, queries)


def recall(hits: list[list[str]], truth: np.ndarray) -> float:
    found = sum(len({int(h.split("-")[1]) for h in got} & set(want.tolist()))
                for got, want in zip(hits, truth, strict=True))
    return found / truth.size


def measure(n: int, work: Path) -> dict[str, Any]:
    path = work / "scale.mv2"
    row: dict[str, Any] = {"n": n, **run_json(LOAD, PATH=str(path), N=n, DIM=DIM,
                                              BATCH=BATCH)}
    row["ingest_per_s"] = n / (row["load_s"] + row["build_index_s"])
    row["file_mb"] = path.stat().st_size / 2**20
    qv, topics = corpus.query_vectors(QUERIES, dim=DIM, seed=0)
    vocabulary = corpus.topic_vocabulary()
    words = [vocabulary[int(t) % len(vocabulary)][0] for t in topics]
    qfile = work / "queries.npy"
    np.save(qfile, np.asarray(qv, "<f4"))
    got = run_json(QUERY, PATH=str(path), QFILE=str(qfile), WORDS=json.dumps(words),
                   FILTER=FILTER)
    truth, truth_filtered = exact_answers(n, np.asarray(qv, "<f4"))
    hits = got.pop("hits")
    got["vector"]["recall"] = recall(hits["vector"], truth)
    got["filtered"]["recall"] = recall(hits["filtered"], truth_filtered)
    row.update(got)
    copy = work / "compact.mv2"
    shutil.copy(path, copy)
    row["compact"] = run_json(COMPACT, PATH=str(copy))
    row["compact"]["file_mb"] = copy.stat().st_size / 2**20  # without replaced versions
    return row


def markdown(res: dict[str, Any]) -> str:
    lines = heading("Scale", res)
    lines += ["128-d bench corpus records with texts, metadata and a BM25 index; each step "
              "a fresh process.", "",
              "| frames | ingest/s (incl. graph) | load s | build_index s | file MB | "
              "first answer ms (open) | RSS (anonymous) after it MB | vector p50/p99 ms, recall | "
              "hybrid p50/p99 ms | filtered p50/p99 ms, recall | compact s, peak MB | "
              "compacted file MB |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- | ---: |"]
    for r in res["rows"]:
        v, h, f, c = r["vector"], r["hybrid"], r["filtered"], r["compact"]
        anon = f" ({r['anon_after_first_mb']:.0f})" if "anon_after_first_mb" in r else ""
        compacted = f"{c['file_mb']:,.0f}" if "file_mb" in c else ""
        lines.append(
            f"| {r['n']:,} | {r['ingest_per_s']:,.0f} | {r['load_s']:.0f} | "
            f"{r['build_index_s']:.0f} | {r['file_mb']:,.0f} | "
            f"{r['first_answer_s'] * 1e3:.0f} ({r['open_s'] * 1e3:.0f}) | "
            f"{r['rss_after_first_mb']:.0f}{anon} | "
            f"{v['p50_ms']:.2f} / {v['p99_ms']:.2f}, "
            f"{v['recall']:.3f} | {h['p50_ms']:.2f} / {h['p99_ms']:.2f} | "
            f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f}, {f['recall']:.3f} | "
            f"{c['compact_s']:.0f}, {c['peak_rss_mb']:.0f} | {compacted} |")
    return "\n".join(lines) + "\n"


def measure_sizes(sizes: list[int], command: str, out_dir: Path,
                  workdir: str | None = None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    res = {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": command,
           "machine": machine_info(), "rows": rows}
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="memvid-scale-", dir=workdir) as work:
            rows.append(measure(n, Path(work)))
        print(json.dumps(rows[-1]), flush=True)
        # written after every size: a run stopped during a long one keeps the rows done
        json_path, md_path = write_results(res, out_dir, "scale", markdown)
    res["files"] = [str(json_path), str(md_path)]
    return res


def run(full: bool = False, workdir: str | None = None, out_dir: Path = HERE / "results"
        ) -> dict[str, Any]:
    """``make bench``'s entry: 100k frames; ``full``: 1M and 3M."""
    sizes = [1_000_000, 3_000_000] if full else [100_000]
    command = "python bench/scale.py --sizes " + ",".join(map(str, sizes))
    return measure_sizes(sizes, command, out_dir, workdir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000000,3000000", help="comma-separated frame counts")
    args = ap.parse_args(argv)
    command = "python bench/scale.py " + " ".join(argv or sys.argv[1:])
    res = measure_sizes([int(s) for s in args.sizes.split(",")], command, HERE / "results")
    print(f"results: {', '.join(res['files'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
