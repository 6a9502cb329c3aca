"""Writable handles of one file in one process share its writer (engine/shared.py)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading

import pytest

from memvid_store import ClosedError, InvalidInputError, Memory
from memvid_store.engine import shared

from .test_concurrency import ROOT

DIM = 3


def ids(mem: Memory) -> list[str]:
    return [f.id for f in mem.timeline()]


def test_two_handles_see_each_others_writes_and_the_last_close_releases(mem_path, child):
    a = Memory.create(mem_path, dim=DIM, wal_size=1 << 20, sync=False, lock_timeout=0)
    b = Memory.open(mem_path, lock_timeout=0)
    assert shared.shares(mem_path) == 2
    a.put("alpha budget", id="a", embedding=[1, 0, 0])
    b.put("beta meeting", id="b", embedding=[0, 1, 0])
    for mem in (a, b):
        assert mem.get("a").text == "alpha budget" and mem.get("b").text == "beta meeting"
        assert ids(mem) == ["a", "b"]
        assert [h.id for h in mem.find("budget", k=1)] == ["a"]
        assert [h.id for h in mem.find(vector=[0, 1, 0], k=1, mode="vector")] == ["b"]
    b.update("a", text="alpha changed")
    a.delete("b")
    assert a.get("a").text == "alpha changed" and ids(b) == ["a"]
    assert a.seal() == b.generation

    b.close()
    with pytest.raises(ClosedError):
        b.get("a")
    a.put("after b closed", id="c")  # the other share keeps working
    assert ids(a) == ["a", "c"] and shared.shares(mem_path) == 1
    child.send("open_writer", path=mem_path, lock_timeout=0)
    assert child.recv() == {"started": True}
    assert child.recv()["error"] == "MemoryLockedError"
    a.close()
    assert shared.shares(mem_path) == 0
    child.send("open_writer", path=mem_path, lock_timeout=0)
    assert child.recv() == {"started": True}
    got = child.recv()
    assert [r[0] for r in got["rows"]] == ["a", "c"] and got["wal_records"] == 0  # sealed


def test_follow_is_refused_on_a_writable_handle(mem_path):
    Memory.create(mem_path).close()
    with pytest.raises(InvalidInputError, match="readonly=True"):
        Memory.open(mem_path, follow=True)


def test_handles_used_from_several_threads(mem_path):
    first = Memory.create(mem_path, dim=DIM, wal_size=1 << 20, sync=False)
    handles = [first] + [Memory.open(mem_path) for _ in range(3)]
    acked: list[dict[str, str | None]] = [{} for _ in handles]  # id -> text (None: deleted)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        mem, mine, rng = handles[n], acked[n], random.Random(n)
        try:
            for i in range(120):
                fid = f"t{n}-{rng.randrange(30)}"
                roll = rng.random()
                if roll < 0.5 or mine.get(fid) is None:
                    text = f"text {n} {i} " + "pad " * rng.randrange(200)
                    mem.put(text, id=fid, embedding=[rng.random(), 1.0, float(n)])
                    mine[fid] = text
                elif roll < 0.75:
                    mem.update(fid, text=f"updated {n} {i}")
                    mine[fid] = f"updated {n} {i}"
                elif roll < 0.9:
                    mem.delete(fid)
                    mine[fid] = None
                else:
                    mem.find(f"text {n}", k=3)
                    mem.find(vector=[0.5, 1.0, float(n)], k=3, mode="vector")
                if i % 50 == 49:
                    mem.seal()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(handles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    expected = {fid: text for mine in acked for fid, text in mine.items() if text is not None}
    for mem in handles:
        assert {f.id: f.text for f in mem.timeline()} == expected
    for mem in handles[1:]:
        mem.close()
    assert first.verify().ok
    first.close()
    with Memory.open(mem_path, readonly=True) as r:
        assert {f.id: f.text for f in r.timeline()} == expected
        assert r.verify().ok


def test_compaction_through_one_share_moves_the_others(mem_path):
    a = Memory.create(mem_path, dim=DIM, wal_size=1 << 20, sync=False)
    b = Memory.open(mem_path)
    view = b.as_of(a.commits()[-1][1])
    a.put("one", id="1", embedding=[1, 0, 0])
    a.update("1", text="one again")
    b.put("two", id="2", embedding=[0, 1, 0])
    inode = os.stat(mem_path).st_ino
    a.compact()
    assert os.stat(mem_path).st_ino != inode
    b.put("three", id="3", embedding=[0, 0, 1])  # the other share writes to the new file
    assert ids(a) == ids(b) == ["1", "2", "3"]
    assert b.get("1").text == "one again" and [h.id for h in b.find("three", k=1)] == ["3"]
    assert a.stats().file_bytes == b.stats().file_bytes == os.path.getsize(mem_path)
    assert list(view.timeline()) == []  # a view made before stays on its time
    c = Memory.open(mem_path, lock_timeout=0)  # a later open finds the moved entry
    assert shared.shares(mem_path) == 3
    b.compact()
    c.put("four", id="4")
    for mem in (a, b, c):
        mem.close()
    with Memory.open(mem_path, readonly=True) as r:
        assert ids(r) == ["1", "2", "3", "4"] and r.verify().ok


DROP = textwrap.dedent("""
    import gc, sys, warnings
    from memvid_store import Memory
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        m = Memory.open(sys.argv[1], lock_timeout=0)
        m.put("dropped without close", id="dropped")
        del m
        gc.collect()
    print(",".join(sorted({w.category.__name__ for w in caught})), flush=True)
    sys.stdin.read()  # stays alive until the parent is done
""")


def test_a_handle_collected_without_close_releases_the_lock(mem_path):
    Memory.create(mem_path).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", DROP, mem_path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "ResourceWarning", proc.stderr.read()
        with Memory.open(mem_path, lock_timeout=0) as m:  # the child is alive, unlocked
            assert m.get("dropped").text == "dropped without close"
    finally:
        proc.communicate("", timeout=30)
