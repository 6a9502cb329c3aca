"""A file of random writes beside a model of what each collection holds now, for the
filter model tests: collections, updates, deletes, sealed runs and a WAL tail."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np

from memvid_store import Memory
from tests.property.test_filters_model import ref_match

DIM = 8
COLLECTIONS = ("default", "chat")
Frames = dict[str, tuple[dict, list, np.ndarray]]  # id -> (metadata, tags, vector)


def build(path: str, frame: Callable[[random.Random], tuple[dict[str, Any], list[str]]], *,
          seed: int, steps: int, ids: int, seal_at: tuple[int, ...]
          ) -> tuple[Memory, dict[str, Frames]]:
    """A file written in ``steps`` batches (a tenth of them deletes) of frames with
    ``frame(rng)``'s metadata and tags, ids among ``ids`` (repeats are updates), sealed
    after the steps of ``seal_at``; and what each collection holds now."""
    rng = random.Random(seed)
    vecs = np.random.default_rng(seed)
    mem = Memory.create(path, dim=DIM, wal_size=1 << 20)
    state: dict[str, Frames] = {c: {} for c in COLLECTIONS}
    for step in range(steps):
        name = rng.choice(COLLECTIONS)
        target = mem if name == "default" else mem.collection(name)
        live = state[name]
        if live and rng.random() < 0.1:
            victims = rng.sample(sorted(live), min(3, len(live)))
            target.delete_many(victims)
            for fid in victims:
                del live[fid]
            continue
        records = []
        for _ in range(rng.randint(5, 15)):
            fid = f"f{rng.randint(0, ids - 1)}"
            meta, tags = frame(rng)
            records.append({"id": fid, "text": f"frame {fid}", "metadata": meta,
                            "tags": tags, "embedding": vecs.standard_normal(DIM).astype("<f4")})
        target.put_many(records)
        for rec in records:
            live[rec["id"]] = (rec["metadata"], rec["tags"], rec["embedding"])
        if step in seal_at:
            mem.seal()  # runs, then a WAL tail of the last steps
    return mem, state


def expected(frames: Frames, spec: dict[str, Any]) -> dict[str, np.ndarray]:
    """The vectors of the frames ``spec`` matches, by id (the reference interpreter)."""
    return {fid: vec for fid, (meta, tags, vec) in frames.items() if ref_match(spec, meta, tags)}
