"""The damage corpus: a small file holding every region and segment kind, the states it
may rightly show, and the read plan the trials run.

Built in a forked child (``build``): several commits in two collections (a dictionary,
the BM25 index, an HNSW graph, indexed metadata), a compaction (the ``commits`` segment),
commits after it (dead segments), then six WAL records left unsealed. Snapshots of the
file after each commit and each WAL record are the states a damaged file may fall back
to; their observations (``probe.probe_file`` on the intact snapshot) are the expected
answers.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

WORDS = "note meeting budget friday alpha beta vector memory agent tool reply draft".split()
T0 = datetime(2024, 5, 1, tzinfo=UTC)
DIM = 8
WAL_SIZE = 1 << 20
COLLECTIONS = ("default", "notes")


class Builder:
    """Writes the corpus and keeps the snapshots and the ids it touched."""

    def __init__(self, path: Path, snapdir: Path) -> None:
        from memvid_store import IndexConfig, Memory

        self.path, self.snapdir = path, snapdir
        self.rng = random.Random(7)
        self.mem = Memory.create(path, dim=DIM, wal_size=WAL_SIZE,
                                 # a width that makes the graph's answers exact here, so
                                 # a graph bypassed for damage answers as the intact one
                                 index=IndexConfig(ann_threshold=100, ann_ef_search=160))
        self.n = 0
        self.snaps: list[dict[str, Any]] = []
        self.touched: dict[str, set[str]] = {c: set() for c in COLLECTIONS}

    def coll(self, name: str) -> Any:
        return self.mem if name == "default" else self.mem.collection(name)

    def record(self, fid: str) -> dict[str, Any]:
        self.n += 1
        rng, n = self.rng, self.n
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(15, 50)))
        return {"id": fid, "text": f"{words} tok{n:05d}",
                "metadata": {"n": n, "w": rng.choice(WORDS), "g": {"k": n % 7}, "f": n / 4},
                "tags": [rng.choice(WORDS)],
                "embedding": [rng.randint(-64, 64) / 64 or 0.5 for _ in range(DIM)],
                "created_at": T0 + timedelta(minutes=n)}

    def snapshot(self, name: str, kind: str) -> None:
        target = self.snapdir / f"{name}.mv2"
        target.write_bytes(self.path.read_bytes())
        self.snaps.append({"name": name, "kind": kind, "file": str(target),
                           "generation": self.mem.generation})

    def seal(self, name: str) -> None:
        self.mem.seal()
        self.snapshot(name, "commit")

    def put_many(self, coll: str, ids: list[str], delete: list[str] = ()) -> None:
        self.coll(coll).put_many([self.record(f) for f in ids], delete=list(delete))
        self.touched[coll].update(ids, delete)

    def update(self, coll: str, fid: str) -> None:
        self.coll(coll).update(fid, text=f"{fid} changed tok{self.n:05d}x",
                               metadata={"n": -self.n, "w": "changed"})
        self.n += 1
        self.touched[coll].add(fid)

    def delete(self, coll: str, ids: list[str]) -> None:
        self.coll(coll).delete_many(ids)
        self.touched[coll].update(ids)


def build(workdir: Path) -> dict[str, Any]:
    """Write the corpus under ``workdir``; returns its description (JSON)."""
    snapdir = workdir / "snaps"
    snapdir.mkdir(parents=True, exist_ok=True)
    b = Builder(workdir / "corpus.mv2", snapdir)
    b.put_many("default", [f"f{i:03d}" for i in range(300)])  # trains the dictionary
    big = b.record("big")  # a large payload: room for the crafted zstd bombs
    big["text"] = random.Random(5).randbytes(24000).hex() + " tokbig"
    b.mem.put_many([big])
    b.touched["default"].add("big")
    b.seal("c1")
    b.put_many("notes", [f"f{i:03d}" for i in range(40)])  # ids shared with default
    b.seal("c2")
    for fid in ("f001", "f002", "f050"):
        b.update("default", fid)
    b.delete("default", ["f003", "f004"])
    b.put_many("default", ["r1", "r2"], delete=["f005", "f006"])
    b.seal("c3")
    b.mem.compact()  # writes the commits segment
    b.snapshot("compacted", "commit")
    for round_ in range(3):  # small runs that the third commit merges: dead segments
        b.update("notes", f"f{round_:03d}")
        b.put_many("notes", [f"n{round_}-{i}" for i in range(4)])
        b.delete("default", [f"f{100 + round_:03d}"])
        b.seal(f"after{round_}")
    b.coll("default").put("one in the wal", id="w1", metadata={"n": 5000, "w": "wal"})
    b.touched["default"].add("w1")
    b.snapshot("wal1", "wal")
    b.put_many("notes", ["w2", "w3"])
    b.snapshot("wal2", "wal")
    b.update("default", "f010")
    b.snapshot("wal3", "wal")
    b.delete("notes", ["f020", "f021"])
    b.snapshot("wal4", "wal")
    b.put_many("default", ["w4"], delete=["f030"])
    b.snapshot("wal5", "wal")
    b.update("notes", "f001")
    b.snapshot("full", "full")
    reads = plan(b)
    b.mem.close()
    return {"file": b.snaps[-1]["file"], "snaps": b.snaps, "plan": reads}


def plan(b: Builder) -> dict[str, Any]:
    """The reads every trial runs: gets, histories, filters, lexical, vector and grouped
    queries."""
    rng = random.Random(11)
    out: dict[str, Any] = {"collections": {}, "as_of": []}
    for name in COLLECTIONS:
        coll = b.coll(name)
        ids = sorted(coll.ids())
        touched = sorted(b.touched[name])
        sample = sorted(set(touched) | set(rng.sample(ids, 12)))
        frames = [coll.get(f) for f in rng.sample(ids, 4)]
        out["collections"][name] = {
            "get": sample,
            "history": touched[:6],
            "filters": [{"w": "alpha"}, {"n": {"$gte": 150}}, {"g.k": 3},
                        {"f": {"$lt": 20.0}}, {"tags": "beta"},
                        {"$or": [{"w": "wal"}, {"n": {"$lt": 0}}]},
                        {"w": {"$gte": "b", "$lt": "d"}}, {"w": {"$gt": "s"}},
                        {"$or": [{"w": {"$ne": "alpha"}}, {"n": {"$lt": 0}}]},
                        {"$not": {"$or": [{"w": "alpha"}, {"w": "wal"}]}},
                        {"tags": {"$contains": "et"}}, {"w": {"$icontains": "LPH"}}],
            "tokens": [f.text.split()[-1] for f in frames],
            "vectors": [list(f.embedding) for f in frames[:3]],
        }
    gens = [s["generation"] for s in b.snaps if s["kind"] == "commit"]
    out["as_of"] = gens[-3:]
    return out


def load(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / "corpus.json").read_text())
