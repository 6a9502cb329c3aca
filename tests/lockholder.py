"""A child process holding the writer lock of a file: in one process writable handles
share the writer, so a locked-out writer needs the lock held by another process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLD = ("import sys\nfrom memvid_store import Memory\n"
        "m = Memory.open(sys.argv[1], lock_timeout=10)\nprint('held', flush=True)\n"
        "sys.stdin.read()\nm.close()\n")


@contextmanager
def held_by_another_process(path: str | os.PathLike[str]) -> Iterator[int]:
    """Hold the writer lock of ``path`` in a child process; yields its pid."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("MEMVID_FAULT", None)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == "held", proc.stderr.read()
        yield proc.pid
    finally:
        proc.communicate("", timeout=30)
