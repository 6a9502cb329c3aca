"""Memories for the tests of object URLs: one with history, two collections, sealed
parts and WAL records (``build``), opened from a URL with a small chunk cache
(``open_url``), and the reads that must equal the local file's (``reads``)."""

from __future__ import annotations

import os
import random
import shutil
import time
from datetime import UTC, datetime

import pytest

from memvid_store import Memory
from memvid_store.errors import FrameNotFoundError

DIM, CHUNK = 32, 64 << 10


def vec(rng: random.Random) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def build(path: str, seed: int) -> dict:
    """A file with history, two collections, a sealed part and WAL records on top; the
    bytes are taken while the writer is open, so the WAL records are part of them."""
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    mem = Memory.create(path + ".src", dim=DIM, wal_size=1 << 20)
    notes = mem.collection("notes")
    mem.put_many([{"id": f"f{i}", "text": " ".join(rng.choices(words, k=30)) + f" n{i}",
                   "metadata": {"n": i, "kind": words[i % 3]}, "tags": [words[i % 4]],
                   "embedding": vec(rng)} for i in range(700)])
    notes.put_many([{"id": f"note{i}", "text": f"note {words[i % 8]} {i}",
                     "embedding": vec(rng)} for i in range(60)])
    mem.seal()
    marks = {"generation": mem.generation}
    time.sleep(0.01)
    marks["time"] = datetime.now(UTC)
    time.sleep(0.01)
    for i in range(0, 40, 4):
        mem.update(f"f{i}", text=f"updated {words[i % 8]} text {i}", metadata={"n": -i})
    mem.delete_many([f"f{i}" for i in range(1, 30, 7)])
    mem.seal()
    for i in range(5):  # left in the WAL
        mem.put(f"late frame {words[i]} golf", id=f"late{i}", embedding=vec(rng))
    shutil.copyfile(path + ".src", path)
    mem.close()
    os.unlink(path + ".src")
    return marks


def uploaded(upload, key: str, url: str, factory) -> tuple[str, str, dict]:
    """(url, local path, marks) of the memory ``build`` makes, put at ``key`` with
    ``upload(path, key)`` (``factory``: pytest's ``tmp_path_factory``)."""
    path = str(factory.mktemp("pub") / key)
    marks = build(path, 1)
    upload(path, key)
    return url, path, marks


def open_url(url: str, cache: str, **remote) -> Memory:
    return Memory.open(url, readonly=True, warmup="none",
                       remote={"cache_dir": cache, "chunk_bytes": CHUNK, "backoff": 0.001,
                               **remote})


def reads(mem: Memory, marks: dict) -> list:
    rng = random.Random(7)
    q = vec(rng)
    notes = mem.collection("notes")
    out: list = [mem.count(), mem.count({"kind": "alpha"}), mem.count({"n": {"$gte": 500}}),
                 mem.collections(), mem.get("f3"), mem.get("f4"), mem.get("late2"),
                 mem.history("f4"), mem.timeline(limit=50),
                 mem.select({"tags": "bravo"}, limit=20, offset=5),
                 mem.select({"n": {"$lt": 100}}, order_by="valid_from", reverse=True),
                 mem.find("golf hotel", k=10, mode="lexical"),
                 mem.find(vector=q, k=10, mode="vector"),
                 mem.find("delta echo", vector=q, k=10, mode="hybrid"),
                 mem.find("alpha", vector=q, k=5, mode="hybrid", filter={"kind": "charlie"}),
                 mem.find(vector=q, k=5, mode="vector", filter={"n": {"$gt": 300}}),
                 notes.count(), notes.find("note golf", k=5, mode="lexical"),
                 notes.find(vector=q, k=5, mode="vector"), notes.get("note3")]
    for then in (mem.as_of(marks["generation"]), mem.as_of(marks["time"])):
        out += [then.count(), then.get("f1"), then.find("updated", k=5, mode="lexical"),
                then.find(vector=q, k=5, mode="vector"), then.select(limit=10)]
    with pytest.raises(FrameNotFoundError):
        mem.get("f1")  # deleted
    out.append([f.embedding for f in mem.select(limit=3)])
    return out
