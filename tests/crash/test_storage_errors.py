"""The OS refusing writes (file-size limit, permissions, a blocked path) gives a
StorageError, every acknowledged write survives, and the file accepts writes again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memvid_store import Memory, StorageError

PROC = Path(__file__).with_name("storage_full_proc.py")


def test_hitting_the_file_size_limit_loses_no_acknowledged_write(tmp_path):
    path = tmp_path / "m.mv2"
    out = subprocess.run([sys.executable, str(PROC), str(path), str(1_500_000)],
                         capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout)
    kinds = {(what, kind) for what, kind, _ in report["errors"]}
    assert kinds, "the limit was never reached: the test wrote too little"
    assert {kind for _, kind in kinds} == {"StorageError"}, report["errors"]
    assert ("seal", "StorageError") in kinds
    assert all("last commit" in message for _, _, message in report["errors"])
    with Memory.open(path) as mem:
        assert mem.verify().ok
        assert set(report["acked"]) <= set(mem.ids())
        assert mem.get("f0").text.startswith("frame 0 ")
        mem.put("after the limit", id="after")
        mem.seal()
        assert mem.get("after").text == "after the limit"


def test_a_blocked_compaction_path_is_a_storage_error(tmp_path):
    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        mem.put("kept", id="a")
        mem.seal()
        os.mkdir(f"{path}.compact-{os.getpid()}")  # where compact writes its new file
        with pytest.raises(StorageError, match="compact"):
            mem.compact()
        assert mem.get("a").text == "kept"
        mem.put("still writable", id="b")
    with Memory.open(path, readonly=True) as mem:
        assert mem.count() == 2


def test_a_directory_that_refuses_the_file_is_a_storage_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory is expected")
    with pytest.raises(StorageError, match="create"):
        Memory.create(blocker / "m.mv2")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only file")
def test_opening_a_read_only_file_for_writing_names_readonly(tmp_path):
    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        mem.put("x", id="a")
    path.chmod(0o444)
    with pytest.raises(StorageError, match="readonly=True"):
        Memory.open(path)
    with Memory.open(path, readonly=True) as mem:
        assert mem.get("a").text == "x"


def test_permission_denied_on_a_writable_open_names_readonly(tmp_path, monkeypatch):
    """The same refusal as above, injected, so that it is checked when running as root."""
    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        mem.put("x", id="a")
    real_open = os.open

    def refusing_open(name, flags, *args, **kwargs):
        if os.fspath(name) == str(path) and flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(StorageError, match="readonly=True"):
        Memory.open(path)
    with Memory.open(path, readonly=True) as mem:
        assert mem.get("a").text == "x"
