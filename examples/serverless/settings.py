"""Settings shared by handler.py and local_driver.py (importing this opens nothing)."""

from __future__ import annotations

import os
import tempfile

DEFAULT_PATH = os.path.join(tempfile.gettempdir(), "memvid-serverless", "sample.mv2")
MODES = ("hybrid", "lexical", "vector")
MAX_K = 100


def memory_path() -> str:
    """``MEMVID_PATH``, else the sample file the local driver builds."""
    return os.environ.get("MEMVID_PATH") or DEFAULT_PATH
