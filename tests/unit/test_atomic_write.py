"""Small files replaced whole (memvid_store/atomic_write.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memvid_store.atomic_write import write_atomic


def test_writes_text_and_bytes_and_replaces_the_old_file(tmp_path):
    path = str(tmp_path / "state.json")
    write_atomic(path, '{"a": "é"}')
    assert Path(path).read_text(encoding="utf-8") == '{"a": "é"}'
    write_atomic(path, memoryview(b"new"))
    assert Path(path).read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = str(tmp_path / "state.json")
    write_atomic(path, "old")

    def refuse(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, "new")
    assert Path(path).read_text(encoding="utf-8") == "old"
    assert os.listdir(tmp_path) == ["state.json"]
