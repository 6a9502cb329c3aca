"""A commit's BM25 add runs in a thread beside the encoding of its run
(``IndexMaintainer.prepare``): what it indexes is what the commit holds, also when the
commit fails half way and is made again."""

from __future__ import annotations

import threading

import pytest

from memvid_store import Memory
from memvid_store.engine.store import Committer
from memvid_store.index.lexical.builder import LexBuilder


def records(start: int, n: int) -> list[dict]:
    return [{"id": f"d{i}", "text": f"token{i} shared words"} for i in range(start, start + n)]


def check_index(mem: Memory, n: int) -> None:
    for i in (0, n // 2, n - 1):
        hits = mem.find(f"token{i}", k=3, mode="lexical")
        assert [h.id for h in hits] == [f"d{i}"]
    assert mem.verify().ok


@pytest.fixture
def threaded(monkeypatch):
    """The BM25 adds made: (whether off the committing thread, documents)."""
    seen = []
    real = LexBuilder.add

    def spy(self, docs):
        seen.append((threading.current_thread() is not threading.main_thread(), len(docs)))
        return real(self, docs)

    monkeypatch.setattr(LexBuilder, "add", spy)
    return seen


def test_each_seal_adds_its_documents_in_a_thread(mem_path, threaded):
    with Memory.create(mem_path) as mem:
        for step in range(3):
            mem.put_many(records(step * 300, 300))
            mem.seal()
        check_index(mem, 900)
    assert threaded == [(True, 300)] * 3
    with Memory.open(mem_path, readonly=True) as mem:
        check_index(mem, 900)


def test_a_commit_failing_while_its_add_runs_is_made_again(mem_path, monkeypatch, threaded):
    real = Committer._build_run
    failures = []

    def failing_once(self, *args, **kwargs):
        if not failures:
            failures.append(1)
            raise OSError("no space left on device")
        return real(self, *args, **kwargs)

    with Memory.create(mem_path) as mem:
        mem.put_many(records(0, 300))
        mem.seal()
        mem.put_many(records(300, 300))
        monkeypatch.setattr(Committer, "_build_run", failing_once)
        with pytest.raises(OSError):
            mem.seal()
        mem.seal()  # the same versions again: the workdir that ran ahead is rebuilt
        check_index(mem, 600)
        mem.put_many(records(600, 300))
        mem.seal()
        check_index(mem, 900)
    assert [n for _, n in threaded] == [300, 300, 300, 300]
    with Memory.open(mem_path, readonly=True) as mem:
        check_index(mem, 900)
        assert len(mem.find("shared", k=1000, mode="lexical")) == 900


def test_a_failing_add_fails_its_commit_only(mem_path, monkeypatch):
    real = LexBuilder.add
    failures = []

    def failing_once(self, docs):
        if not failures:
            failures.append(1)
            raise OSError("tantivy could not write")
        return real(self, docs)

    with Memory.create(mem_path) as mem:
        mem.put_many(records(0, 300))
        mem.seal()
        mem.put_many(records(300, 300))
        monkeypatch.setattr(LexBuilder, "add", failing_once)
        with pytest.raises(OSError, match="tantivy could not write"):
            mem.seal()
        assert [h.id for h in mem.find("token450", k=3, mode="lexical")] == ["d450"]
        mem.seal()
        check_index(mem, 600)
    with Memory.open(mem_path, readonly=True) as mem:
        check_index(mem, 600)
