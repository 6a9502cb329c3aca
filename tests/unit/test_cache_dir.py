"""The directory of unpacked lexical indexes: private, bounded, never a reason to fail."""

from __future__ import annotations

import os
import stat
import time

import pytest

from memvid_store import Memory
from memvid_store.index.lexical import cache_dir
from memvid_store.index.lexical.unpack import SEGMENT_FILE_RE, write_marker


def _copy(root, name: str, size: int, age_s: float, kind: str = "cache") -> str:
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, "data"), "wb") as fh:
        fh.write(b"x" * size)
    write_marker(path, name, {"data": size}, kind)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_a_new_root_is_private(tmp_path):
    root = str(tmp_path / "cache")
    assert cache_dir.usable_root(root) == root
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


def test_a_shared_root_is_made_private(tmp_path):
    root = tmp_path / "cache"
    root.mkdir(mode=0o777)
    os.chmod(root, 0o777)
    assert cache_dir.usable_root(str(root)) == str(root)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


def test_a_root_owned_by_another_user_is_not_used(tmp_path, monkeypatch):
    root = tmp_path / "theirs"
    root.mkdir()
    monkeypatch.setattr(os, "getuid", lambda: os.stat(root).st_uid + 1)
    got = cache_dir.usable_root(str(root))
    assert got != str(root) and os.path.isdir(got)
    assert cache_dir.usable_root(str(root)) == got  # one private directory per process


def test_old_copies_go_then_the_least_recently_used_until_under_the_limit(tmp_path):
    root = str(tmp_path)
    _copy(root, "ancient", 10, age_s=cache_dir.MAX_AGE_S + 60)
    _copy(root, "old", 1000, age_s=3600 * 5)
    _copy(root, "older", 1000, age_s=3600 * 6)
    _copy(root, "fresh", 1000, age_s=10)  # may be opening right now: kept
    _copy(root, "workdir-writer", 5000, age_s=cache_dir.MAX_AGE_S * 2, kind="writer")
    removed = cache_dir.prune_unused(root, limit=2500)
    assert removed == ["ancient", "older"]
    assert sorted(os.listdir(root)) == ["fresh", "old", "workdir-writer"]


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEMVID_CACHE_DIR_LIMIT", "500MB")
    assert cache_dir.limit_from_env() == 500 * 1024**2
    monkeypatch.delenv("MEMVID_CACHE_DIR_LIMIT")
    assert cache_dir.limit_from_env() == cache_dir.DEFAULT_LIMIT


@pytest.mark.parametrize("name", ["0123456789abcdef0123456789abcdef./../../etc/x",
                                  "0123456789abcdef0123456789abcdef..idx",
                                  "0123456789abcdef0123456789abcdef.i\x00dx",
                                  "0123456789abcdef0123456789abcdef/idx"])
def test_stored_lexical_file_names_cannot_leave_the_directory(name):
    assert SEGMENT_FILE_RE.fullmatch(name) is None


def test_tantivy_file_names_are_accepted():
    for name in ("0123456789abcdef0123456789abcdef.idx", "0123456789abcdef0123456789abcdef.12.del"):
        assert SEGMENT_FILE_RE.fullmatch(name)


def test_a_read_only_open_answers_when_no_cache_can_be_written(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_dir, "_fallback", None)
    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        mem.put_many([{"text": f"harbor note {i}", "id": f"n{i}"} for i in range(50)])
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("MEMVID_CACHE_DIR", str(blocker))
    with Memory.open(path, readonly=True) as mem:
        hits = mem.find("harbor note 7", k=3, mode="lexical")
        assert hits and hits[0].id == "n7"
    assert cache_dir._fallback is not None  # the index was unpacked there


def test_pruning_runs_in_the_background_at_most_once_per_interval(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_dir, "_pruned_at", {})
    root = str(tmp_path)
    _copy(root, "ancient", 10, age_s=cache_dir.MAX_AGE_S + 60)
    thread = cache_dir.prune_soon(root)
    assert thread is not None
    thread.join(10)
    assert os.listdir(root) == []
    _copy(root, "ancient again", 10, age_s=cache_dir.MAX_AGE_S + 60)
    assert cache_dir.prune_soon(root) is None  # pruned moments ago: not again yet
    assert os.listdir(root) == ["ancient again"]
