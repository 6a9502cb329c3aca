"""Fixtures of the unit tests that talk to a memory in another process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .test_concurrency import Child


@pytest.fixture
def child() -> Iterator[Child]:
    """A child process (tests/unit/reader_proc.py) answering commands, stopped after."""
    proc = Child()
    yield proc
    proc.stop()
