"""Readers and writers in several processes (and threads): snapshots, locks, compaction."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from memvid_store import (
    AlreadyExistsError,
    HistoryUnavailableError,
    Memory,
    MemoryLockedError,
    ReadOnlyError,
)
from memvid_store.types import to_us

READER = Path(__file__).with_name("reader_proc.py")
ROOT = Path(__file__).resolve().parents[2]
WAL_SIZE = 1 << 20
HAS_PROC_LOCKS = os.path.exists("/proc/locks")
WRITES = ("put", "put_many", "update", "delete", "seal", "compact")

Row = list[Any]


class Child:
    """A reader_proc.py subprocess answering one JSON line per command."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "MEMVID_FAULT"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen([sys.executable, str(READER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                     env=env)
        self.pid = self.proc.pid
        self._buf = b""

    def send(self, op: str, **args: Any) -> None:
        self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        self.proc.stdin.flush()

    def recv(self, timeout: float = 30.0) -> dict[str, Any]:
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no answer from the child within {timeout} s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.proc.wait(5)
                raise RuntimeError(f"child exited: {self.proc.stderr.read().decode()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        self.send(op, **args)
        return self.recv(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("exit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


def rows(mem: Any) -> list[Row]:
    return [[f.id, f.text, f.version] for f in mem.timeline()]


def now() -> datetime:
    return datetime.now(UTC)


def tick() -> datetime:
    """A time strictly between the writes before and after it."""
    time.sleep(0.002)
    t = now()
    time.sleep(0.002)
    return t


def writer(path: str) -> Memory:
    return Memory.create(path, wal_size=WAL_SIZE, sync=False, lock_timeout=0)


# -------------------------------------------------------------- (a) snapshot isolation


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "pread"])
def test_reader_process_iterates_its_snapshot_while_writer_commits(mem_path, opened, child,
                                                                   mmap):
    w = writer(mem_path)
    opened.append(w)
    for i in range(30):
        w.put(f"text {i}", id=f"{i:05d}", embedding=[float(i), 1.0, 2.0])
    w.seal()
    for i in range(30, 50):  # in the WAL only
        w.put(f"text {i}", id=f"{i:05d}", embedding=[float(i), 1.0, 2.0])
    at_open = rows(w)
    got = child.call("open", path=mem_path, mmap=mmap)
    assert got["rows"] == at_open and got["len"] == 50
    assert got["wal_records"] == 20 and got["mmap"] is mmap
    child.call("iter_start")
    first = child.call("iter_next", n=10)["rows"]

    # the writer changes what the reader has not iterated yet and commits many times:
    # the WAL region is overwritten, runs are merged, new segments are appended
    w.update("00040", text="changed")
    w.update("00015", text="changed")
    w.delete("00045")
    w.delete("00012")
    pad = "p" * 3000
    for i in range(50, 450):
        w.put(f"text {i} {pad}", id=f"{i:05d}")
        if i % 40 == 0:
            w.seal()
    w.put_many([{"text": f"batch {i}", "id": f"b{i}"} for i in range(20)])
    w.seal()
    assert w.generation > got["generation"] + 5

    middle = child.call("iter_next", n=10)["rows"]
    again = child.call("describe")
    assert again["rows"] == at_open and again["len"] == 50
    assert again["generation"] == got["generation"]
    assert child.call("get", id="00045")["row"] == ["00045", "text 45", 1]
    assert child.call("history", id="00015")["rows"] == [["00015", "text 15", 1]]

    fresh = child.call("refresh")  # an iteration already running stays on its snapshot
    rest = child.call("iter_next")["rows"]
    assert first + middle + rest == at_open
    assert fresh["generation"] == w.generation
    assert fresh["rows"] == rows(w) and fresh["len"] == len(w) == 50 - 2 + 400 + 20
    assert "error" in child.call("get", id="00045")
    assert child.call("history", id="00015")["rows"] == [["00015", "text 15", 1],
                                                       ["00015", "changed", 2]]


def test_reader_process_refresh_loop_sees_only_prefixes(mem_path, opened, child):
    """refresh() in a tight loop while the writer puts, batches, seals and compacts."""
    w = writer(mem_path)
    opened.append(w)
    child.call("open", path=mem_path)
    n = 700
    child.send("poll", target=n, width=5, timeout=90)
    pad = {"pad": "m" * 2500}  # fills the WAL: automatic seals too
    i = 0
    while i < n:
        if i % 7 == 3:
            k = min(5, n - i)
            w.put_many([{"text": f"text {j}", "id": f"{j:05d}", "metadata": pad}
                        for j in range(i, i + k)])
            i += k
        else:
            w.put(f"text {i}", id=f"{i:05d}", metadata=pad)
            i += 1
        if i % 90 == 0:
            w.seal()
        if i == 350:
            w.compact()
        time.sleep(0.0005)
    w.seal()
    result = child.recv(timeout=120)
    assert result["problems"] == []
    assert result["counts"][-1] == n
    assert len(result["counts"]) > 10 and result["generations"] > 3


# ------------------------------------------------------------------- (b) writer lock


def test_second_writer_in_another_process_is_locked_out(mem_path, opened, child):
    w = writer(mem_path)
    opened.append(w)
    w.put("held", id="h")
    child.send("open_writer", path=mem_path, lock_timeout=0.3)
    assert child.recv() == {"started": True}
    res = child.recv()
    assert res["error"] == "MemoryLockedError"
    assert 0.3 <= res["elapsed"] < 5
    if HAS_PROC_LOCKS:
        assert res["holder_pid"] == os.getpid()
        assert str(os.getpid()) in res["message"]
    w.close()

    # now the child holds the lock and this process is the one refused
    child.send("open_writer", path=mem_path, lock_timeout=0)
    assert child.recv() == {"started": True}
    assert child.recv()["rows"] == [["h", "held", 1]]
    start = time.monotonic()
    with pytest.raises(MemoryLockedError) as info:
        Memory.open(mem_path, lock_timeout=0.2)
    assert 0.2 <= time.monotonic() - start < 5
    if HAS_PROC_LOCKS:
        assert info.value.holder_pid == child.pid
    with Memory.open(mem_path, readonly=True) as reader:  # readers never wait
        assert rows(reader) == [["h", "held", 1]]
    child.call("close")
    m = Memory.open(mem_path, lock_timeout=0)
    opened.append(m)
    assert rows(m) == [["h", "held", 1]]


def test_second_writable_handle_in_the_same_process_shares_the_writer(mem_path, opened,
                                                                      child):
    """In one process writable handles share the writer (tests/unit/test_shared_writer.py);
    the lock is released with the last one, and only then can another process write."""
    w = writer(mem_path)
    opened.append(w)
    start = time.monotonic()
    second = Memory.open(mem_path, lock_timeout=5)
    assert time.monotonic() - start < 1  # no waiting for its own process's lock
    with pytest.raises(AlreadyExistsError):
        Memory.create(mem_path)
    second.put("from the second handle", id="second")
    assert w.get("second").text == "from the second handle"
    w.close()
    child.send("open_writer", path=mem_path, lock_timeout=0)
    assert child.recv() == {"started": True}
    assert child.recv()["error"] == "MemoryLockedError"  # the second handle still writes
    second.close()
    child.send("open_writer", path=mem_path, lock_timeout=5)
    assert child.recv() == {"started": True}
    assert child.recv()["rows"] == [["second", "from the second handle", 1]]


# --------------------------------------------------------------- (c) read-only handles


def test_readonly_handles_refuse_every_write(mem_path, opened, child):
    w = writer(mem_path)
    opened.append(w)
    fid = w.put("kept", id="k")
    w.seal()
    w.put("in the wal", id="w")
    size = os.path.getsize(mem_path)
    r = Memory.open(mem_path, readonly=True)
    opened.append(r)
    view = r.as_of(now())
    for target in (r, view, w.as_of(now())):
        calls = {"put": lambda t=target: t.put("x"),
                 "put_many": lambda t=target: t.put_many([{"text": "x"}]),
                 "update": lambda t=target: t.update(fid, text="x"),
                 "delete": lambda t=target: t.delete(fid),
                 "seal": lambda t=target: t.seal(),
                 "compact": lambda t=target: t.compact()}
        assert set(calls) == set(WRITES)
        for call in calls.values():
            with pytest.raises(ReadOnlyError):
                call()
    assert r.readonly and not w.readonly
    assert rows(r) == rows(w) == [["k", "kept", 1], ["w", "in the wal", 1]]
    assert os.path.getsize(mem_path) == size and w.generation == r.generation

    child.call("open", path=mem_path)
    assert child.call("try_writes") == {name: "ReadOnlyError" for name in WRITES}
    w.close()  # nobody holds the lock: a read-only handle still refuses
    assert child.call("try_writes") == {name: "ReadOnlyError" for name in WRITES}
    assert child.call("refresh")["rows"] == [["k", "kept", 1], ["w", "in the wal", 1]]


# ------------------------------------------------------------ (d) compaction and readers


@pytest.mark.parametrize("mmap", [True, False], ids=["mmap", "pread"])
def test_compaction_while_a_reader_process_is_open(mem_path, opened, child, mmap):
    w = writer(mem_path)
    opened.append(w)
    w.put("a1", id="a")
    w.put("b1", id="b")
    w.put("c1", id="c")
    w.seal()
    before = tick()
    w.update("a", text="a2")
    w.delete("c")
    w.put("d1", id="d")  # WAL only when the reader opens
    snapshot = rows(w)
    old_inode = os.stat(mem_path).st_ino
    opened_child = child.call("open", path=mem_path, mmap=mmap)
    assert opened_child["rows"] == snapshot
    child.call("iter_start")
    first = child.call("iter_next", n=1)["rows"]

    floor = tick()
    w.compact(retain_after=floor)
    assert os.stat(mem_path).st_ino != old_inode
    w.put("e1", id="e")
    w.seal()

    # the reader stays on the file it opened: content, history and the past are intact
    assert child.call("describe")["rows"] == snapshot
    assert first + child.call("iter_next")["rows"] == snapshot
    assert child.call("history", id="a")["rows"] == [["a", "a1", 1], ["a", "a2", 2]]
    assert child.call("as_of", t_us=to_us(before))["rows"] == [["a", "a1", 1], ["b", "b1", 1],
                                                               ["c", "c1", 1]]

    fresh = child.call("refresh")
    assert fresh["rows"] == rows(w)
    assert fresh["history_floor"] == floor.isoformat()
    assert child.call("history", id="a")["rows"] == [["a", "a2", 2]]
    assert child.call("as_of", t_us=to_us(before))["error"] == "HistoryUnavailableError"
    assert child.call("as_of", t_us=to_us(floor))["rows"] == [["a", "a2", 2], ["b", "b1", 1],
                                                              ["d", "d1", 1]]
    with pytest.raises(HistoryUnavailableError):
        w.as_of(before)

    w.put("f1", id="f")  # WAL of the compacted file
    assert child.call("refresh")["rows"] == rows(w)
    w.compact()
    w.close()
    with Memory.open(mem_path, readonly=True) as r:
        assert child.call("refresh")["rows"] == rows(r)


# ------------------------------------------------- (e) writers waiting through compaction


def test_writer_waiting_in_another_process_lands_on_the_compacted_file(mem_path, opened,
                                                                        child):
    w = writer(mem_path)
    opened.append(w)
    w.put("v1", id="a")
    w.update("a", text="v2")
    w.seal()
    child.send("open_writer", path=mem_path, lock_timeout=30)
    assert child.recv() == {"started": True}
    time.sleep(0.3)  # the child has opened the old file and polls its lock
    floor = tick()
    w.compact(retain_after=floor)  # renames a new file over the path, releases the old lock
    time.sleep(0.3)
    w.put("written after compaction", id="late")
    w.close()
    res = child.recv(timeout=30)
    assert "error" not in res, res
    # version 2: compaction dropped a v1, and first versions are numbered above it
    assert res["rows"] == [["a", "v2", 2], ["late", "written after compaction", 2]]
    assert res["history_floor"] == floor.isoformat()
    child.call("put", text="from the child", id="child")
    child.call("close")
    with Memory.open(mem_path, readonly=True) as r:
        assert rows(r)[-1] == ["child", "from the child", 2]
        assert r.stats().history_floor == floor


def test_writer_waiting_in_another_thread_lands_on_the_compacted_file(mem_path, opened):
    w = writer(mem_path)
    opened.append(w)
    w.put("v1", id="a")
    got: dict[str, Any] = {}

    def wait() -> None:
        try:
            got["mem"] = Memory.open(mem_path, lock_timeout=30, sync=False)
        except Exception as exc:  # reported by the assertion below
            got["error"] = exc

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    w.compact()
    time.sleep(0.3)
    w.put("late", id="late")
    w.close()
    waiter.join(30)
    assert "error" not in got and not waiter.is_alive()
    m = got["mem"]
    opened.append(m)
    assert rows(m) == [["a", "v1", 1], ["late", "late", 1]]
    m.put("from the waiter", id="waiter")
    m.close()
    with Memory.open(mem_path, readonly=True) as r:
        assert [row[0] for row in rows(r)] == ["a", "late", "waiter"]


# ------------------------------------------------------------- (f) WAL-only visibility


def test_reader_process_sees_wal_only_writes_after_refresh(mem_path, opened, child):
    w = writer(mem_path)
    opened.append(w)
    w.put("sealed", id="s")
    w.seal()
    gen = w.generation
    assert child.call("open", path=mem_path)["rows"] == [["s", "sealed", 1]]

    w.put("a1", id="a")
    w.put_many([{"text": "b1", "id": "b"}, {"text": "c1", "id": "c"}])
    assert child.call("describe")["rows"] == [["s", "sealed", 1]]  # its snapshot until refresh
    fresh = child.call("refresh")
    assert fresh["rows"] == rows(w) == [["s", "sealed", 1], ["a", "a1", 1], ["b", "b1", 1],
                                        ["c", "c1", 1]]
    assert fresh["generation"] == w.generation == gen + 2 and fresh["wal_records"] == 3

    between = tick()
    w.update("a", text="a2")
    w.delete("b")
    assert child.call("refresh")["rows"] == [["s", "sealed", 1], ["a", "a2", 2], ["c", "c1", 1]]
    assert child.call("history", id="a")["rows"] == [["a", "a1", 1], ["a", "a2", 2]]
    assert child.call("as_of", t_us=to_us(between))["rows"] == [
        ["s", "sealed", 1], ["a", "a1", 1], ["b", "b1", 1], ["c", "c1", 1]]
    assert w.generation == gen + 4  # four writes, nothing sealed: all of it from the WAL
    assert child.call("refresh")["generation"] == w.generation

    w.seal()
    after = child.call("refresh")
    assert after["generation"] == w.generation > gen and after["wal_records"] == 0
    assert after["rows"] == rows(w)


def test_a_commit_landing_during_a_read_is_not_taken_for_a_damaged_one(tmp_path, monkeypatch):
    """A reader measures the file, then reads the header: a commit landing in between
    points past the size it measured. Its TOC then looks cut short; the read starts over
    instead of falling back to the commit before (a refresh that went back in time)."""
    import os

    from memvid_store.engine import store

    path = str(tmp_path / "m.mv2")
    with Memory.create(path, wal_size=WAL_SIZE, sync=False) as mem:
        mem.put_many([{"text": f"text {i}", "id": f"{i:05d}"} for i in range(30)])
        mem.seal()
        before = os.path.getsize(path)
        mem.put_many([{"text": f"text {i}", "id": f"{i:05d}"} for i in range(30, 60)])
        mem.seal()
    fd = os.open(path, os.O_RDONLY)
    real = os.fstat
    calls = []

    def fstat(target: int) -> os.stat_result:
        got = real(target)
        if target != fd or calls:
            return got
        calls.append(target)  # the first measure: the file before the last commit
        return os.stat_result((*got[:6], before, *got[7:]))

    try:
        monkeypatch.setattr(store.os, "fstat", fstat)
        state = store.read_state(fd)
    finally:
        os.close(fd)
    assert calls and state.problems == [] and not state.newest_damaged
    assert state.toc.next_gid + len(state.delta) == 60  # the newest commit's frames
