"""A writer that hits the file-size limit (RLIMIT_FSIZE): puts, seals and closes until the
OS refuses, then prints what was acknowledged and which errors were raised, as JSON.

Usage: storage_full_proc.py <path> <file size limit in bytes>
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

from memvid_store import Memory, StorageError


def attempt(errors: list[list[str]], what: str, call, *args, **kwargs) -> bool:
    try:
        call(*args, **kwargs)
        return True
    except StorageError as exc:
        errors.append([what, "StorageError", str(exc)])
    except Exception as exc:  # reported, so that the test names the raw error
        errors.append([what, type(exc).__name__, str(exc)])
    return False


def main(path: str, limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG
    mem = Memory.create(path, dim=8)
    mem.put("first", id="first", embedding=[1.0] * 8)
    mem.seal()
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    acked, errors = ["first"], []
    for i in range(400):
        text = f"frame {i} " + os.urandom(1500).hex()  # incompressible
        if attempt(errors, "put", mem.put, text, id=f"f{i}", embedding=[i % 7 + 1.0] * 8):
            acked.append(f"f{i}")
        if i % 50 == 49:
            attempt(errors, "seal", mem.seal)
    attempt(errors, "close", mem.close)
    print(json.dumps({"acked": acked, "errors": errors}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
