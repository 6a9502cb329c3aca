"""SnapStart hooks: the holder's hooks run the way Lambda runs them (the registered lists,
in order, with their arguments) warm the memory, close it before the snapshot and reopen
it after a restore, seeing a file or object that changed meanwhile."""

from __future__ import annotations

import os
import random
import sys

import pytest

from memvid_store import Memory
from memvid_store.errors import ClosedError, InvalidInputError
from memvid_store.snapstart import SnapStartMemory, file_version, hooks_available, register

DIM = 16


def _build(path: str, n: int, word: str = "alpha") -> None:
    rng = random.Random(n)
    with Memory.create(path, dim=DIM) as mem:
        mem.put_many([{"id": f"f{i}", "text": f"{word} note {i}",
                       "embedding": [rng.uniform(-1, 1) for _ in range(DIM)]}
                      for i in range(n)])


@pytest.fixture
def runtime():
    """The hook library with empty lists, restored after the test."""
    lib = pytest.importorskip(
        "snapshot_restore_py",
        reason="snapshot-restore-py (the SnapStart hook library) is not installed")
    saved = (list(lib.get_before_snapshot()), list(lib.get_after_restore()))
    lib.get_before_snapshot().clear()
    lib.get_after_restore().clear()
    yield lib
    lib.get_before_snapshot()[:] = saved[0]
    lib.get_after_restore()[:] = saved[1]


def snapshot(lib) -> None:
    for func, args, kwargs in lib.get_before_snapshot():
        func(*args, **kwargs)


def restore(lib) -> None:
    for func, args, kwargs in lib.get_after_restore():
        func(*args, **kwargs)


def test_hooks_close_before_the_snapshot_and_reopen_after_restore(runtime, tmp_path):
    path = str(tmp_path / "m.mv2")
    _build(path, 50)
    holder = register(path, level="aggressive")
    assert holder.registered and hooks_available()
    assert len(runtime.get_before_snapshot()) == len(runtime.get_after_restore()) == 1
    first = holder.memory
    before = file_version(first)
    snapshot(runtime)
    with pytest.raises(ClosedError):
        first.count()  # no descriptor or mapping goes into the snapshot
    assert holder.snapshots == 1
    restore(runtime)
    report = holder.last_restore
    assert report is not None and not report.changed
    assert report.before == report.after == before
    assert holder.memory is not first and holder.memory.count() == 50
    assert holder.memory.find("alpha", k=3, mode="lexical")
    holder.close()


def test_a_file_replaced_while_snapshotted_is_seen_after_restore(runtime, tmp_path):
    path, newer = str(tmp_path / "m.mv2"), str(tmp_path / "newer.mv2")
    _build(path, 30, "alpha")
    _build(newer, 80, "bravo")
    holder = register(path)
    snapshot(runtime)
    os.replace(newer, path)
    restore(runtime)
    report = holder.last_restore
    assert report.changed and report.before.identity != report.after.identity
    mem = holder.memory
    assert mem.count() == 80
    assert [h.id for h in mem.find("bravo", k=80, mode="lexical")]
    assert not mem.find("alpha", k=5, mode="lexical")
    holder.close()


def test_a_write_while_snapshotted_moves_the_generation(runtime, tmp_path):
    path = str(tmp_path / "m.mv2")
    _build(path, 10)
    holder = register(path, tiers=["time_index", "lex_index"])
    snapshot(runtime)
    with Memory.open(path) as writer:
        writer.put("charlie arrives", id="new")
    restore(runtime)
    report = holder.last_restore
    assert report.changed and report.after.generation > report.before.generation
    assert holder.memory.get("new").text == "charlie arrives"
    holder.close()


def test_an_opener_and_a_restore_without_a_snapshot(runtime, tmp_path):
    path = str(tmp_path / "m.mv2")
    _build(path, 10)
    holder = register(lambda: Memory.open(path, readonly=True), rewarm=False)
    kept = holder.memory
    restore(runtime)  # a restore hook with the handle still open: it refreshes it
    assert holder.memory is kept and not holder.last_restore.changed
    assert holder.last_restore.warmup_seconds >= 0
    assert register(holder) is holder and len(runtime.get_after_restore()) == 1
    holder.close()
    assert holder.memory.count() == 10  # reopened on use
    holder.close()


def test_registration_is_a_no_op_without_the_hook_library(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import raises
    path = str(tmp_path / "m.mv2")
    _build(path, 5)
    holder = register(path)
    assert not holder.registered and not hooks_available()
    assert holder.memory.count() == 5
    holder.close()


def test_bad_targets_are_typed_errors(tmp_path):
    with pytest.raises(InvalidInputError):
        SnapStartMemory(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        SnapStartMemory(lambda: None, readonly=True)  # type: ignore[arg-type,return-value]


def test_an_object_replaced_while_snapshotted_is_seen_after_restore(runtime, tmp_path):
    pytest.importorskip("obstore")
    pytest.importorskip("moto.server")
    from .s3_server import moto_s3

    old, new = str(tmp_path / "old.mv2"), str(tmp_path / "new.mv2")
    _build(old, 20, "alpha")
    _build(new, 40, "bravo")
    with moto_s3("snapstart") as bucket:
        bucket.upload(old, "m.mv2")
        holder = register("s3://snapstart/m.mv2",
                          remote={"cache_dir": str(tmp_path / "cache"), "backoff": 0.001})
        snapshot(runtime)
        restore(runtime)
        assert not holder.last_restore.changed
        snapshot(runtime)
        bucket.upload(new, "m.mv2")
        restore(runtime)
        report = holder.last_restore
        assert report.changed and report.before.identity != report.after.identity
        assert holder.memory.count() == 40
        assert holder.memory.find("bravo", k=3, mode="lexical")
        holder.close()
