"""Where the exact neighbours of a query lie among the cluster lists: queries of the
corpus's topics against queries of topics the memory does not hold.

Run ``python bench/absent_topics.py [--n 100000] [--dim 384]`` (about a minute). Builds a
file as users build one (``put_many``, ``build_index()``: cosine vectors indexed by
cluster lists), then, for ``QUERIES`` queries of each kind (``corpus.query_vectors`` with
the corpus's seed, and with another seed, whose topic centroids the corpus lacks),
reports from the lists' membership alone (an upper bound of what the int8 ranking
finds):

* the number of nearest centroids a query must probe to reach every list holding its
  exact top 10 (p50 / p90), and its best centroid's score;
* the share of its top 10 in the calibrated ``nprobe`` lists;
* the same when every list within a score gap of the best is probed too (the median and
  90th percentile gap to the ``nprobe``-th centroid among queries of the corpus's topics);
* what a user gets: ``find(vector=q, k=10, mode="vector")`` of a memory opened read-only
  in this process, its recall@10 against the exact top 10 and its p50 / p99 (us, file in
  the page cache, after ``WARMUP`` other queries of the same kind).

``--file F`` reuses a file this bench built (with ``F.npy`` beside it, the unit vectors).

Results: ``bench/results/absent-<stamp>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench import corpus  # noqa: E402
from bench.engine_bench import RESULTS, progress  # noqa: E402
from bench.report import heading, new_result, save  # noqa: E402

QUERIES = 300
K = 10
WARMUP = 100
OTHER_SEED = 21  # topic centroids of another corpus


def build(path: Path, n: int, dim: int) -> np.ndarray:
    """The file, and its unit vectors in insertion order (gid order)."""
    from memvid_store import Memory

    rows = []
    with Memory.create(path, dim=dim) as mem:
        for batch in corpus.iter_batches(n, 1000, dim=dim):
            mem.put_many(batch)
            rows.extend(r["embedding"] for r in batch)
        mem.build_index()
    x = np.asarray(rows, "<f4")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def lists_of(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(unit centroids, the list of each gid, the calibrated nprobe)."""
    from memvid_store import Memory
    from memvid_store.index.vector.lists_format import lists_segment
    from memvid_store.index.vector.lists_search import ListsIndex

    with Memory.open(path, readonly=True) as mem:
        snap = mem._snap()
        ref = lists_segment(snap, mem.index_config)
        if ref is None:
            raise SystemExit("the file has no cluster lists (cosine or ip, >= 1,000 vectors)")
        index = ListsIndex(snap, ref, mem.index_config.distance, snap.dim)
        owner = np.full(index.count, -1, np.int64)
        for j in range(index.header.nlist):
            if index.sizes[j]:
                owner[index._rows(j)[0]] = j
        centroids = index.centroids / np.linalg.norm(index.centroids, axis=1, keepdims=True)
        return centroids, owner, index.nprobe


def study(x: np.ndarray, centroids: np.ndarray, owner: np.ndarray, queries: np.ndarray
          ) -> dict[str, Any]:
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = np.argsort(-(queries @ x.T), axis=1)[:, :K]
    near = queries @ centroids.T
    order = np.argsort(-near, axis=1)
    rank = np.argsort(order, axis=1)  # each list's rank among a query's centroids
    need = np.array([rank[i, owner[t]].max() + 1 for i, t in enumerate(truth)])
    best = np.take_along_axis(near, order, axis=1)
    return {"truth": truth, "order": order, "scores": best, "need": need}


def coverage(s: dict[str, Any], owner: np.ndarray, probes: np.ndarray) -> float:
    """Share of the queries' top 10 held by the lists they probe."""
    held = [np.isin(owner[t], s["order"][i, :p]).mean()
            for i, (t, p) in enumerate(zip(s["truth"], probes, strict=True))]
    return float(np.mean(held))


def found(path: Path, queries: np.ndarray, truth: np.ndarray, warm: np.ndarray
          ) -> dict[str, float]:
    """recall@K and p50 / p99 (us) of ``find`` over ``queries`` (``truth``: the exact top
    K, row numbers), after ``warm`` queries."""
    import time

    from memvid_store import Memory

    with Memory.open(path, readonly=True) as mem:
        for q in warm:
            mem.find(vector=q, k=K, mode="vector")
        took, held = [], 0
        for q, best in zip(queries, truth, strict=True):
            began = time.perf_counter()
            hits = mem.find(vector=q, k=K, mode="vector")
            took.append(time.perf_counter() - began)
            held += len({h.id for h in hits} & {corpus.record_id(i) for i in best.tolist()})
    return {"recall": held / (K * len(queries)),
            "p50_us": float(np.percentile(took, 50)) * 1e6,
            "p99_us": float(np.percentile(took, 99)) * 1e6}


def vectors_of(path: Path, n: int, dim: int) -> np.ndarray:
    """The file's unit vectors: built here, or read from ``path``.npy beside a file given."""
    saved = Path(f"{path}.npy")
    if path.exists() and saved.exists():
        return np.load(saved)
    progress(f"absent topics: building {n:,} x {dim}")
    x = build(path, n, dim)
    np.save(saved, x)
    return x


def measure(n: int, dim: int, path: Path) -> dict[str, Any]:
    x = vectors_of(path, n, dim)
    n, dim = x.shape
    centroids, owner, nprobe = lists_of(path)
    drawn = {"corpus topics": corpus.query_vectors(WARMUP + QUERIES, dim=dim)[0],
             "absent topics": corpus.query_vectors(WARMUP + QUERIES, dim=dim,
                                                   seed=OTHER_SEED)[0]}
    warm = {kind: q[:WARMUP] for kind, q in drawn.items()}
    kinds = {kind: q[WARMUP:] for kind, q in drawn.items()}
    studies = {kind: study(x, centroids, owner, q) for kind, q in kinds.items()}
    own = studies["corpus topics"]["scores"]
    gaps = own[:, 0] - own[:, nprobe - 1]
    out: dict[str, Any] = {"n": n, "dim": dim, "nlist": len(centroids), "nprobe": nprobe,
                           "kinds": {}}
    for kind, s in studies.items():
        row = {"need_p50": float(np.percentile(s["need"], 50)),
               "need_p90": float(np.percentile(s["need"], 90)),
               "best_centroid_p50": float(np.median(s["scores"][:, 0])),
               "held_at_nprobe": coverage(s, owner, np.full(QUERIES, nprobe)), "gaps": [],
               "find": found(path, kinds[kind], s["truth"], warm[kind])}
        for label, gap in (("median", float(np.median(gaps))),
                           ("p90", float(np.percentile(gaps, 90)))):
            probes = np.maximum(nprobe, (s["scores"] >= s["scores"][:, :1] - gap).sum(axis=1))
            row["gaps"].append({"gap": label, "value": gap, "probes_mean": float(probes.mean()),
                                "held": coverage(s, owner, probes)})
        out["kinds"][kind] = row
    return out


def markdown(res: dict[str, Any]) -> str:
    r = res["result"]
    lines = heading("Exact neighbours among the cluster lists, by kind of query", res)
    lines += [f"{r['n']:,} x {r['dim']} vectors, {r['nlist']} lists, nprobe {r['nprobe']}; "
              f"{QUERIES} queries of each kind; *held*: share of the exact top {K} in the "
              "lists probed (an upper bound of recall).", "",
              "| queries | lists to hold all, p50 / p90 | best centroid score | held at nprobe "
              "| gap (median): lists, held | gap (p90): lists, held | find: recall@10 "
              "| find: p50 / p99 us |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind, row in r["kinds"].items():
        gaps = [f"{g['probes_mean']:.1f}, {g['held']:.3f}" for g in row["gaps"]]
        lines.append(f"| {kind} | {row['need_p50']:.0f} / {row['need_p90']:.0f} | "
                     f"{row['best_centroid_p50']:.3f} | {row['held_at_nprobe']:.3f} | "
                     f"{gaps[0]} | {gaps[1]} | {row['find']['recall']:.3f} | "
                     f"{row['find']['p50_us']:.0f} / {row['find']['p99_us']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--file", type=Path, default=None,
                        help="a file this bench built (kept, with FILE.npy), else a temporary one")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memvid-absent-") as work:
        path = args.file or Path(work) / "absent.mv2"
        res = new_result("absent_topics.py", result=measure(args.n, args.dim, path))
    save(res, args.out, "absent", markdown, show=True)


if __name__ == "__main__":
    main()
