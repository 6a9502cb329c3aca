"""Readers that follow a writer in another process (``follow=True``, engine/follow.py)."""

from __future__ import annotations

import threading

import pytest

from memvid_store import FrameNotFoundError, Memory
from memvid_store.engine import follow

from .test_concurrency import Child

DIM = 3


def write(child: Child, method: str, *args, **kwargs):
    got = child.call("write", method=method, args=list(args), kwargs=kwargs)
    assert "error" not in got, got
    return got["result"]


def ids(mem: Memory) -> list[str]:
    return [f.id for f in mem.timeline()]


def test_a_following_reader_sees_every_acknowledged_write(mem_path, opened, child):
    Memory.create(mem_path, dim=DIM, wal_size=1 << 20).close()
    assert "error" not in child.call("open", path=mem_path, readonly=False)
    fol = Memory.open(mem_path, readonly=True, follow=True)
    still = Memory.open(mem_path, readonly=True)
    opened += [fol, still]
    assert ids(fol) == []

    write(child, "put", "alpha budget meeting", id="a", embedding=[1, 0, 0])  # WAL only
    assert fol.get("a").text == "alpha budget meeting"
    write(child, "put", "beta release notes", id="b", embedding=[0, 1, 0])
    assert [h.id for h in fol.find("release", k=1, mode="lexical")] == ["b"]
    write(child, "put_many", [{"text": "gamma", "id": "c", "embedding": [0, 0, 1]}])
    assert [h.id for h in fol.find(vector=[0, 0, 1], k=1, mode="vector")] == ["c"]
    assert ids(fol) == ["a", "b", "c"]

    write(child, "update", "a", text="alpha moved")
    assert fol.get("a").text == "alpha moved" and fol.get("a").version == 2
    write(child, "delete", "b")
    with pytest.raises(FrameNotFoundError):
        fol.get("b")
    gen = write(child, "seal")  # a commit
    assert fol.generation == gen and ids(fol) == ["a", "c"]
    assert fol.stats().wal_records == 0

    write(child, "put", "delta after the seal", id="d", embedding=[1, 1, 0])
    write(child, "compact")  # a new file at the path
    assert ids(fol) == ["a", "c", "d"]
    write(child, "put", "epsilon in the compacted file's WAL", id="e")
    assert [h.id for h in fol.find("epsilon", k=1)] == ["e"]
    assert fol.history("a")[-1].text == "alpha moved"

    assert ids(still) == [] and still.generation == 1  # without follow: its snapshot
    still.refresh()
    assert ids(still) == ids(fol) == ["a", "c", "d", "e"]
    child.call("close")
    assert ids(fol) == ["a", "c", "d", "e"]  # the last close sealed: a commit to follow


def test_nothing_changed_means_no_reload(mem_path, opened, child, monkeypatch):
    w = Memory.create(mem_path, dim=DIM, wal_size=1 << 20)
    w.put("sealed", id="s")
    w.close()
    fol = Memory.open(mem_path, readonly=True, follow=True)
    opened.append(fol)
    loads: list[int] = []
    real = follow.read_state_for_reader
    monkeypatch.setattr(follow, "read_state_for_reader", lambda fd: loads.append(fd) or real(fd))
    for _ in range(200):
        assert fol.get("s").text == "sealed"
    assert fol.find("sealed", k=1)[0].id == "s" and loads == []

    child.call("open", path=mem_path, readonly=False)
    write(child, "put", "appended", id="x")
    assert fol.get("x").text == "appended" and loads == []  # WAL records: replayed only
    runs = fol._snapshot.runs
    write(child, "seal")
    assert ids(fol) == ["s", "x"] and len(loads) == 1  # a commit: one reload
    assert all(any(r is old for old in runs) for r in fol._snapshot.runs[:1])
    for _ in range(50):
        fol.get("x")
    assert len(loads) == 1


def test_a_following_reader_used_from_several_threads(mem_path, opened, child):
    Memory.create(mem_path, dim=DIM, wal_size=1 << 20).close()
    child.call("open", path=mem_path, readonly=False)
    fol = Memory.open(mem_path, readonly=True, follow=True)
    opened.append(fol)
    done = threading.Event()
    problems: list[str] = []

    def read() -> None:
        seen = 0
        while not done.is_set():
            try:
                n = len(fol.ids())
                fol.find("frame", k=2)
            except Exception as exc:  # reported by the assertion below
                problems.append(repr(exc))
                return
            if n < seen:
                problems.append(f"went back from {seen} to {n}")
            seen = n

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(60):
        write(child, "put", f"frame {i}", id=f"{i:03d}")
        assert fol.get(f"{i:03d}").text == f"frame {i}"
        if i % 20 == 19:
            write(child, "seal")
    done.set()
    for t in threads:
        t.join(30)
    assert problems == []
    assert fol.ids() == [f"{i:03d}" for i in range(60)]


def test_a_following_readers_collections_follow_too(mem_path, opened, child):
    Memory.create(mem_path, dim=DIM, wal_size=1 << 20).close()
    assert "error" not in child.call("open", path=mem_path, readonly=False)
    fol = Memory.open(mem_path, readonly=True, follow=True)
    opened.append(fol)
    chat = fol.collection("chat")
    assert chat.count() == 0
    got = child.call("write", method="put", args=["hello there"], kwargs={"id": "m1"},
                     collection="chat")
    assert "error" not in got, got
    assert chat.get("m1").text == "hello there" and chat.count() == 1
    assert fol.collections() == {"chat": 1, "default": 0} and fol.count() == 0
