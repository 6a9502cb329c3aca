"""Single-writer lock: ``flock`` on the .mv2 file itself, across processes.

``flock`` belongs to the open file description, so readers opening and closing the same
file in the same process never release it (unlike POSIX record locks). The holder's pid
is read from ``/proc/locks`` where the system has it, to name it in the error.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time

from ..errors import MemoryLockedError


def holder_pid(fd: int) -> int | None:
    """Pid holding a flock on the file behind ``fd``, when the OS tells (Linux)."""
    try:
        st = os.fstat(fd)
        with open("/proc/locks") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK":
                    dev_ino = parts[5].split(":")
                    if len(dev_ino) == 3 and int(dev_ino[2]) == st.st_ino:
                        return int(parts[4])
    except (OSError, ValueError):
        pass
    return None


def acquire(fd: int, path: str, timeout: float) -> None:
    """Take the exclusive writer lock or raise MemoryLockedError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                pid = holder_pid(fd)
                who = f"process {pid}" if pid else "another process"
                raise MemoryLockedError(
                    f"{path} is locked for writing by {who} (waited {timeout:g} s)", pid
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def release(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
