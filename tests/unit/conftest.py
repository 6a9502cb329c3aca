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
    return view_calls(monkeypatch, "release")


def view_calls(monkeypatch, method: str) -> list[tuple[int, int]]:
    """The ``(offset, size)`` spans ``FileView.<method>`` (``release``, ``prefetch``) is
    called with from now on, in order; the calls still happen."""
    from memvid_store.engine.fileio import FileView

    spans: list[tuple[int, int]] = []
    real = getattr(FileView, method)

    def spy(self, offset: int, size: int) -> None:
        spans.append((offset, size))
        real(self, offset, size)

    monkeypatch.setattr(FileView, method, spy)
    return spans


def covered(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """Whether ``span`` lies inside one of ``spans`` (``(offset, size)`` each)."""
    offset, size = span
    return any(start <= offset and offset + size <= start + length for start, length in spans)
