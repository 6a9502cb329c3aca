"""Fixtures of the unit tests: a memory in another process, the pages a view released."""

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


@pytest.fixture
def released_pages(monkeypatch) -> list[tuple[int, int]]:
    """The ``(offset, size)`` spans every ``FileView.release`` is asked for, in order
    (the pages are still released)."""
    from memvid_store.engine.fileio import FileView

    released: list[tuple[int, int]] = []
    real = FileView.release

    def spy(self, offset: int, size: int) -> None:
        released.append((offset, size))
        real(self, offset, size)

    monkeypatch.setattr(FileView, "release", spy)
    return released
