"""Tied candidates read from object storage are ordered by frame id: with ids of one
length, their ids come in the round of their id offsets, not in one of their own."""

from __future__ import annotations

import os

import pytest

from bench.s3_trace import LocalObject
from memvid_store import Memory
from memvid_store.engine import runs

pytest.importorskip("obstore")


@pytest.fixture(autouse=True)
def _aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


def tied_rounds(path: str, cache: str) -> tuple[list[str], int]:
    """The ids of a lexical query whose hits all tie, and the rounds it took."""
    with Memory.open(f"s3://ties/{os.path.basename(path)}", readonly=True, warmup="none",
                     remote={"cache_dir": cache,
                             "wrap_client": lambda c: LocalObject(path, c.url)}) as mem:
        source = mem._reader.fd
        opened = source.rounds
        hits = mem.find("lighthouse keeper", k=10, mode="lexical")
        return [h.id for h in hits], source.rounds - opened


@pytest.mark.parametrize("width", ["fixed", "varied"])
def test_tied_hits_read_their_ids_with_their_offsets(mem_path, tmp_path, monkeypatch, width):
    monkeypatch.setattr(runs, "BY_PAGE_BYTES", 0)  # rows read by the page
    monkeypatch.setattr(runs, "SMALL_RUN", 0)
    name = (lambda i: f"d{i:06d}") if width == "fixed" else (lambda i: f"d{i}" + "x" * (i // 500))
    with Memory.create(mem_path) as mem:  # 40 identical texts: their BM25 scores tie
        mem.put_many([{"id": name(i), "text": "lighthouse keeper" if i % 500 == 7
                       else f"filler text number {i} " * 8} for i in range(20_000)])
    with Memory.open(mem_path, readonly=True) as local:
        expected = [h.id for h in local.find("lighthouse keeper", k=10, mode="lexical")]
    assert expected == sorted(expected)  # tied: by frame id
    got, rounds = tied_rounds(mem_path, str(tmp_path / "guessed"))
    assert got == expected
    with monkeypatch.context() as patched:  # reading each id after its offsets
        patched.setattr(runs.RunReader, "guessed_id_span",  # no guess: the offsets alone
                        lambda self, row: self._item_pages("idoff", row))
        got, before = tied_rounds(mem_path, str(tmp_path / "after"))
    assert got == expected
    # ids of one length: found where guessed; others: never a round more than before
    assert rounds == before - 1 if width == "fixed" else rounds <= before
