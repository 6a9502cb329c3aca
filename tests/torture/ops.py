"""Random writes for the kill -9 and soak writers: every write operation of the API
(put, put_many, put_many with ``delete=``, update, delete, delete_many, clear, seal,
compact) over several collections, with posted metadata (equality terms and numbers).

Builds on ``tests.crash.writer_proc.CollectionOps`` (which writes large records too, so
the 1 MiB WAL wraps); each step is logged to an ack log before and after it runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from memvid_store import Memory

from ..crash.writer_proc import AckLog, CollectionOps, execute_in_collection

WAL_SIZE = 1 << 20
DIM = 4
FILTERS = ({"w": "agent"}, {"n": {"$lt": 300_000}}, {"w": {"$in": ["cache", "seal"]}},
           {"w": {"$gte": "b", "$lt": "d"}})


class TortureOps(CollectionOps):
    """``CollectionOps`` plus replaces (``put_many(delete=)``) and compactions."""

    def next_step(self) -> dict[str, Any]:
        r = self.rng.random()
        coll = self.rng.choice(list(self.lives))
        live_ids = sorted(self.lives[coll])
        if r < 0.08 and len(live_ids) > 2:
            gone = self.rng.sample(live_ids, 2)
            fresh = [self.item(f"y{self.rng.randint(0, 10**6)}") for _ in range(2)]
            return {"op": "replace", "coll": coll, "items": fresh, "ids": gone}
        if r < 0.09:
            return {"op": "compact", "coll": coll}
        return super().next_step()

    def apply(self, step: dict[str, Any]) -> None:
        if step["op"] == "replace":
            live = self.lives[step["coll"]]
            for fid in step["ids"]:
                live.pop(fid, None)
            for item in step["items"]:
                live[item["id"]] = item
        elif step["op"] != "compact":
            super().apply(step)


def execute(mem: Memory, step: dict[str, Any]) -> dict[str, Any]:
    if step["op"] == "compact":
        return {"gen": mem.compact()}
    if step["op"] == "replace":
        target = mem if step["coll"] == "default" else mem.collection(step["coll"])
        target.put_many([{k: it[k] or None for k in ("id", "text", "metadata", "tags",
                                                     "embedding")} for it in step["items"]],
                        delete=step["ids"])
        return {}
    return execute_in_collection(mem, step)


def open_writer(path: str) -> Memory:
    import os

    if os.path.exists(path):
        return Memory.open(path, sync=True, lock_timeout=10.0)
    return Memory.create(path, dim=DIM, wal_size=WAL_SIZE, sync=True)


def state_digest(lives: dict[str, dict[str, Any]]) -> str:
    """Digest of every collection's live frames (id, text, metadata, tags)."""
    canon = {c: sorted([fid, it["text"], it["metadata"] or {}, sorted(it["tags"] or [])]
                       for fid, it in live.items()) for c, live in lives.items()}
    raw = json.dumps(canon, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def run_writer(path: str, ack_path: str, model: dict[str, Any], seed: int,
               seconds: float, digests: bool = False) -> None:
    """Write random steps for ``seconds`` (or until killed), logging each."""
    ops = TortureOps(seed, model)
    log = AckLog(ack_path)
    mem = open_writer(path)
    log.write({"ev": "ready", **({"digest": state_digest(ops.lives)} if digests else {})})
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        step = ops.next_step()
        log.write({"ev": "begin", "n": n, **step})
        extra = execute(mem, step)
        ops.apply(step)
        more = {"digest": state_digest(ops.lives)} if digests else {}
        log.write({"ev": "ack", "n": n, "gen": mem.generation, **step, **extra, **more})
        n += 1
    mem.close()
    log.write({"ev": "closed"})
