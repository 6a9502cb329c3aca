"""Small files replaced whole: a crash or a failed write leaves the old file or the new
one, never half of one, and no temporary file behind."""

from __future__ import annotations

import contextlib
import os
import threading


def write_atomic(path: str, data: bytes | memoryview | str) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` through a temporary file beside it,
    renamed over ``path``; the temporary file is removed if anything fails."""
    tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
