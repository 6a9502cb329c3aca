"""Exit statuses: each kind of failure has its own, documented in docs/cli.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from memvid_store import Memory
from memvid_store.cli import ExitCode
from memvid_store.cli._common import exit_code_for
from memvid_store.errors import (
    ChecksumError,
    DimensionMismatchError,
    FrameNotFoundError,
    MemoryLockedError,
    MemoryNotFoundError,
    NotAMemoryFileError,
    VersionMismatchError,
)

from ..lockholder import held_by_another_process
from .support import fails, ok, run


@pytest.mark.parametrize("exc, code", [
    (MemoryLockedError("held", 123), ExitCode.LOCKED),
    (NotAMemoryFileError("x"), ExitCode.DAMAGED),
    (VersionMismatchError("x"), ExitCode.DAMAGED),
    (ChecksumError("x", "toc", 5), ExitCode.DAMAGED),
    (MemoryNotFoundError("x"), ExitCode.NOT_FOUND),
    (FrameNotFoundError("x", "id"), ExitCode.NOT_FOUND),
    (FileNotFoundError(2, "nope"), ExitCode.NOT_FOUND),
    (DimensionMismatchError("x", 3, 4), ExitCode.ERROR),
    (PermissionError(13, "denied"), ExitCode.ERROR),
])
def test_exceptions_map_to_exit_codes(exc: Exception, code: ExitCode) -> None:
    assert exit_code_for(exc) == code


def test_commands_exit_with_the_documented_codes(tmp_path: Path) -> None:
    path = tmp_path / "m.mv2"
    ok(run("create", path))
    ok(run("put", path, "hello", "--id", "a", "--embedding", "[1, 2]"))
    fails(run("get", path, "nope"), ExitCode.NOT_FOUND, "no frame with id 'nope'")
    fails(run("delete", path, "nope"), ExitCode.NOT_FOUND, "nope")
    fails(run("stats", tmp_path / "missing.mv2"), ExitCode.NOT_FOUND, "no memory file")
    fails(run("put", path, "x", "--embedding", "[1]"), ExitCode.ERROR, "dimensions")
    fails(run("put", path, "x", "--metadata", "{"), ExitCode.USAGE, "malformed JSON")
    fails(run("find", path, "x", "--bogus"), ExitCode.USAGE, "No such option")
    text = tmp_path / "notes.txt"
    text.write_text("not a memory\n" * 100)
    fails(run("timeline", text), ExitCode.DAMAGED, "not a .mv2")


def test_a_locked_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.mv2"
    real_open = Memory.open.__func__

    def no_wait(cls, p, readonly=False, **options):  # do not wait 5 s for the lock
        return real_open(cls, p, readonly=readonly, **{**options, "lock_timeout": 0})

    monkeypatch.setattr(Memory, "open", classmethod(no_wait))
    Memory.create(path).close()
    with held_by_another_process(path):  # holds the writer lock
        fails(run("put", path, "x"), ExitCode.LOCKED, "Error:")
        ok(run("timeline", path))  # readers are not blocked


def test_main_is_the_console_script(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", "from memvid_store.cli import main; main()",
                           "stats", str(tmp_path / "none.mv2")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == ExitCode.NOT_FOUND
    assert proc.stderr.startswith("Error: no memory file")
    usage = subprocess.run([sys.executable, "-c", "from memvid_store.cli import main; main()"],
                           capture_output=True, text=True, timeout=60)
    assert "Usage: mv2" in usage.stdout + usage.stderr


def test_bad_input_keeps_the_documented_codes(tmp_path: Path) -> None:
    path = tmp_path / "m.mv2"
    fails(run("ingest", path, tmp_path / "no-such-dir"), ExitCode.NOT_FOUND,
          "no such file or directory")
    assert not path.exists()  # nothing to ingest: no file created
    ok(run("create", path))
    fails(run("find", path), ExitCode.USAGE, "give a QUERY")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("a note about the harbor")
    (docs / "b.pdf").write_bytes(b"%PDF-1.4 not readable here")
    result = fails(run("ingest", path, docs, "--embedder", "none"), ExitCode.PARTIAL,
                   "unsupported file type '.pdf'")
    assert "ingested 1 file(s)" in result.stdout
    ok(run("ingest", path, docs, "--embedder", "none", "--glob", "*.txt"))
