"""Shared fixtures: a temporary memory path and closing of every memory a test opens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from memvid_store import Memory

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True, scope="session")
def private_cache_dir(tmp_path_factory) -> Iterator[None]:
    """Unpacked indexes go to one directory of this test session (child processes inherit
    it), not into the user's cache; a caller's own MEMVID_CACHE_DIR wins."""
    if os.environ.get("MEMVID_CACHE_DIR"):
        yield
        return
    os.environ["MEMVID_CACHE_DIR"] = str(tmp_path_factory.mktemp("memvid-cache"))
    try:
        yield
    finally:
        os.environ.pop("MEMVID_CACHE_DIR", None)


@pytest.fixture
def mem_path(tmp_path) -> str:
    return os.path.join(tmp_path, "agent.mv2")


@pytest.fixture
def opened() -> Iterator[list[Memory]]:
    """Collects memories to close after the test, even when it fails."""
    handles: list[Memory] = []
    yield handles
    for handle in handles:
        handle.close()


@pytest.fixture
def mem(mem_path, opened) -> Memory:
    m = Memory.create(mem_path, dim=4, wal_size=1 << 20)
    opened.append(m)
    return m


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)
