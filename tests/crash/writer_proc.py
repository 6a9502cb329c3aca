"""Writer subprocess for the crash tests.

Usage::

    writer_proc.py random PATH ACKLOG MODEL_JSON SEED [MAX_SECONDS]
    writer_proc.py script PATH ACKLOG STEPS_JSON

``random`` opens (or creates) the memory and runs random put / put_many / update /
delete / seal operations from a seeded RNG until it is killed (or MAX_SECONDS pass).
``MODEL_JSON`` holds the state the file is known to contain (``{"live": {id: item},
"deleted": [ids]}``) so updates and deletes target existing frames.

``script`` runs a fixed list of steps (JSON) and is used with ``MEMVID_FAULT``.

``colls`` is ``random`` over several collections with colliding ids (arguments as
``random``; ``MODEL_JSON`` is ``{collection: {"live": ..., "deleted": [...]}}``): steps
carry a ``coll`` field, and add ``delete_many`` (``ids`` deleted, ``missing`` ids also
passed with ``missing_ok``) and ``clear`` (``ids`` it deletes).

Every operation is logged to ACKLOG, one JSON line each, flushed at once:

* ``{"ev": "ready"}`` once the file is open;
* ``{"ev": "begin", "n": k, "op": ..., "items" | "ids": ...}`` before the call;
* ``{"ev": "ack", ...same fields...}`` after the call returned.

``items`` are the full expected states after the op: ``{"id", "text", "metadata",
"tags", "embedding"}``; a delete lists its ``ids``.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from memvid_store import Memory

WAL_SIZE = 1 << 20
DIM = 4
WORDS = (
    "agent memory frame budget meeting friday notes project alpha beta gamma delta "
    "release deploy rollback server client request response latency cache index vector "
    "embedding search query answer question context window token model prompt user "
    "assistant tool call result error retry timeout queue worker batch commit seal "
    "header segment payload block dictionary checksum crash recover replay durable"
).split()

Item = dict[str, Any]


class AckLog:
    """Line-buffered JSON log; every line is flushed and written by one syscall."""

    def __init__(self, path: str) -> None:
        self.fh: TextIO = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115

    def write(self, obj: dict[str, Any]) -> None:
        self.fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self.fh.flush()


def full_item(fid: str, text: str, metadata: dict | None = None, tags: list | None = None,
              embedding: list | None = None) -> Item:
    return {"id": fid, "text": text, "metadata": metadata or {}, "tags": tags or [],
            "embedding": embedding}


def execute(mem: Memory, step: dict[str, Any]) -> dict[str, Any]:
    """Run one step; returns extra fields for the ack line."""
    op = step["op"]
    if op == "put":
        item = step["items"][0]
        mem.put(item["text"], id=item["id"], metadata=item["metadata"] or None,
                tags=item["tags"] or None, embedding=item["embedding"])
    elif op == "put_many":
        mem.put_many([
            {"id": it["id"], "text": it["text"], "metadata": it["metadata"] or None,
             "tags": it["tags"] or None, "embedding": it["embedding"]}
            for it in step["items"]
        ])
    elif op == "update":
        mem.update(step["id"], **step["set"])
    elif op == "delete":
        for fid in step["ids"]:
            mem.delete(fid)
    elif op == "seal":
        return {"gen": mem.seal()}
    elif op == "compact":
        retain = datetime.now(UTC) if step.get("retain") == "now" else None
        return {"gen": mem.compact(retain_after=retain)}
    else:
        raise ValueError(f"unknown step {op!r}")
    return {}


def run_step(mem: Memory, log: AckLog, n: int, step: dict[str, Any]) -> None:
    log.write({"ev": "begin", "n": n, **step})
    extra = execute(mem, step)
    log.write({"ev": "ack", "n": n, "gen": mem.generation, **step, **extra})


def open_memory(path: str) -> Memory:
    if os.path.exists(path):
        return Memory.open(path, sync=True, lock_timeout=10.0)
    return Memory.create(path, dim=DIM, wal_size=WAL_SIZE, sync=True)


# ------------------------------------------------------------------------ random mode


class RandomOps:
    """Generates random steps and keeps the expected state they lead to."""

    def __init__(self, seed: int, live: dict[str, Item], deleted: list[str]) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.live = dict(live)
        self.deleted = list(deleted)
        self.counter = 0

    def new_id(self) -> str:
        self.counter += 1
        return f"s{self.seed}-{self.counter}"

    def text(self, words: int | None = None) -> str:
        rng = self.rng
        if words is None:
            r = rng.random()
            if r < 0.4:
                words = rng.randint(1, 12)
            elif r < 0.8:
                words = rng.randint(20, 400)
            else:  # large records fill the 1 MiB WAL within a few dozen ops
                words = rng.randint(4000, 16000)
        return " ".join(rng.choice(WORDS) for _ in range(words)) + f" #{rng.randint(0, 10**9)}"

    def item(self, fid: str, words: int | None = None) -> Item:
        rng = self.rng
        meta = {"n": rng.randint(0, 10**6), "w": rng.choice(WORDS)} if rng.random() < 0.6 else {}
        tags = rng.sample(WORDS, rng.randint(1, 3)) if rng.random() < 0.3 else []
        emb = [rng.randint(-8, 8) / 4 for _ in range(DIM)] if rng.random() < 0.3 else None
        return full_item(fid, self.text(words), meta, tags, emb)

    def next_step(self) -> dict[str, Any]:
        rng = self.rng
        r = rng.random()
        live_ids = sorted(self.live)
        if not live_ids or r < 0.35:
            step = {"op": "put", "items": [self.item(self.new_id())]}
        elif r < 0.40:
            pool = live_ids + self.deleted
            step = {"op": "put", "items": [self.item(rng.choice(pool))]}
        elif r < 0.58:
            items = [self.item(self.new_id()) for _ in range(rng.randint(2, 8))]
            if rng.random() < 0.15:
                items.append(self.item(rng.choice(live_ids)))
            if rng.random() < 0.1:
                items.append(self.item(items[0]["id"]))  # two versions in one batch
            step = {"op": "put_many", "items": items}
        elif r < 0.585:
            # larger than wal_size / 4: committed directly, bypassing the WAL
            items = [self.item(self.new_id(), words=1200) for _ in range(40)]
            step = {"op": "put_many", "items": items}
        elif r < 0.79:
            fid = rng.choice(live_ids)
            old = self.live[fid]
            changes: dict[str, Any] = {}
            kind = rng.randint(0, 2)
            if kind in (0, 2):
                changes["text"] = self.text()
            if kind in (1, 2):
                changes["metadata"] = {"u": rng.randint(0, 10**6)}
            new = {**old, **changes}
            step = {"op": "update", "id": fid, "set": changes, "items": [new]}
        elif r < 0.99:
            step = {"op": "delete", "ids": [rng.choice(live_ids)]}
        else:
            step = {"op": "seal"}
        return step

    def apply(self, step: dict[str, Any]) -> None:
        for item in step.get("items", ()):
            self.live[item["id"]] = item
            if item["id"] in self.deleted:
                self.deleted.remove(item["id"])
        if step["op"] == "delete":
            for fid in step["ids"]:
                del self.live[fid]
                self.deleted.append(fid)


def random_mode(path: str, ack_path: str, model_path: str, seed: int,
                max_seconds: float) -> None:
    import numpy  # noqa: F401  (imported by the first seal: load it before the kill window)

    with open(model_path, encoding="utf-8") as fh:
        model = json.load(fh)
    ops = RandomOps(seed, model["live"], model["deleted"])
    log = AckLog(ack_path)
    mem = open_memory(path)
    log.write({"ev": "ready"})
    deadline = time.monotonic() + max_seconds
    n = 0
    while time.monotonic() < deadline:
        step = ops.next_step()
        run_step(mem, log, n, step)
        ops.apply(step)
        n += 1
    mem.close()
    log.write({"ev": "closed"})


# ------------------------------------------------------------------------ script mode


def script_mode(path: str, ack_path: str, steps_path: str) -> None:
    with open(steps_path, encoding="utf-8") as fh:
        steps = json.load(fh)
    log = AckLog(ack_path)
    mem = open_memory(path)
    log.write({"ev": "ready"})
    for n, step in enumerate(steps):
        if step["op"] == "exit":  # leave without sealing: WAL records stay in the WAL
            log.write({"ev": "exit"})
            os._exit(0)
        run_step(mem, log, n, step)
    mem.close()
    log.write({"ev": "closed"})


# ------------------------------------------------------------------- collections mode

COLLECTIONS = ["default", "chat", "notes", "ünï 🙂"]


class CollectionOps(RandomOps):
    """Random steps into several collections; ids are drawn from one small pool, so the
    same id lives in several collections at once."""

    def __init__(self, seed: int, model: dict[str, dict[str, Any]]) -> None:
        super().__init__(seed, {}, [])
        self.lives = {c: dict(model.get(c, {}).get("live", {})) for c in COLLECTIONS}

    def pool_id(self) -> str:
        return f"x{self.rng.randint(0, 24)}"

    def next_step(self) -> dict[str, Any]:
        rng = self.rng
        coll = rng.choice(COLLECTIONS)
        live_ids = sorted(self.lives[coll])
        r = rng.random()
        if not live_ids or r < 0.30:
            step: dict[str, Any] = {"op": "put", "items": [self.item(self.pool_id())]}
        elif r < 0.50:
            items = [self.item(self.pool_id()) for _ in range(rng.randint(2, 6))]
            step = {"op": "put_many", "items": items}
        elif r < 0.505:
            # larger than wal_size / 4: committed directly, bypassing the WAL
            items = [self.item(f"big{rng.randint(0, 99)}", words=1200) for _ in range(40)]
            step = {"op": "put_many", "items": items}
        elif r < 0.68:
            fid = rng.choice(live_ids)
            changes: dict[str, Any] = {"text": self.text()}
            if rng.random() < 0.5:
                changes["metadata"] = {"u": rng.randint(0, 10**6)}
            step = {"op": "update", "id": fid, "set": changes,
                    "items": [{**self.lives[coll][fid], **changes}]}
        elif r < 0.80:
            step = {"op": "delete", "ids": [rng.choice(live_ids)]}
        elif r < 0.95:
            picked = rng.sample(live_ids, min(len(live_ids), rng.randint(1, 3)))
            missing = [f for f in (self.pool_id(), "never") if f not in self.lives[coll]]
            step = {"op": "delete_many", "ids": picked, "missing": missing[:1]}
        elif r < 0.98:
            step = {"op": "clear", "ids": live_ids}
        else:
            step = {"op": "seal"}
        step["coll"] = coll
        return step

    def apply(self, step: dict[str, Any]) -> None:
        live = self.lives[step["coll"]]
        for item in step.get("items", ()):
            live[item["id"]] = item
        if step["op"] in ("delete", "delete_many", "clear"):
            for fid in step["ids"]:
                del live[fid]


def execute_in_collection(mem: Memory, step: dict[str, Any]) -> dict[str, Any]:
    """Run one step of ``CollectionOps`` in its collection; returns extra ack fields."""
    target = mem if step["coll"] == "default" else mem.collection(step["coll"])
    op = step["op"]
    if op == "delete_many":
        deleted = target.delete_many([*step["ids"], *step["missing"]], missing_ok=True)
        assert deleted == len(step["ids"]), (deleted, step["ids"])
    elif op == "clear":
        assert target.clear() == len(step["ids"])
    elif op in ("put", "put_many", "update", "delete"):
        return execute(target, step)  # type: ignore[arg-type]
    elif op == "seal":
        return {"gen": mem.seal()}
    else:
        raise ValueError(f"unknown step {op!r}")
    return {}


def collections_mode(path: str, ack_path: str, model_path: str, seed: int,
                     max_seconds: float) -> None:
    import numpy  # noqa: F401  (imported by the first seal: load it before the kill window)

    with open(model_path, encoding="utf-8") as fh:
        model = json.load(fh)
    ops = CollectionOps(seed, model)
    log = AckLog(ack_path)
    mem = open_memory(path)
    log.write({"ev": "ready"})
    deadline = time.monotonic() + max_seconds
    n = 0
    while time.monotonic() < deadline:
        step = ops.next_step()
        log.write({"ev": "begin", "n": n, **step})
        extra = execute_in_collection(mem, step)
        log.write({"ev": "ack", "n": n, "gen": mem.generation, **step, **extra})
        ops.apply(step)
        n += 1
    mem.close()
    log.write({"ev": "closed"})


def main(argv: list[str]) -> None:
    mode = argv[1]
    if mode == "random":
        max_seconds = float(argv[6]) if len(argv) > 6 else 60.0
        random_mode(argv[2], argv[3], argv[4], int(argv[5]), max_seconds)
    elif mode == "script":
        script_mode(argv[2], argv[3], argv[4])
    elif mode == "colls":
        max_seconds = float(argv[6]) if len(argv) > 6 else 60.0
        collections_mode(argv[2], argv[3], argv[4], int(argv[5]), max_seconds)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv)
