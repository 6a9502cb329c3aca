"""Freed heap memory goes back to the system (glibc's malloc_trim)."""

from __future__ import annotations

import pytest

from memvid_store.heap import release_free_heap


def _resident_anonymous_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no RssAnon in /proc/self/status")


def test_memory_freed_below_a_live_block_leaves_the_process() -> None:
    if not release_free_heap():
        pytest.skip("no glibc malloc_trim here")
    before = _resident_anonymous_mb()
    blocks = [bytearray(2048) for _ in range(40_000)]  # 80 MB of malloc'ed blocks
    pin = bytearray(2048)  # above them: the heap's top cannot shrink past it
    grown = _resident_anonymous_mb()
    del blocks
    held = _resident_anonymous_mb()
    assert release_free_heap()
    after = _resident_anonymous_mb()
    assert grown - before > 60
    assert held - after > 40  # what free() kept, trimmed
    del pin
