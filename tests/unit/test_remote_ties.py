"""Tied candidates read from object storage are ordered by frame id: with ids of one
length, their ids come in the round of their id offsets, not in one of their own."""

from __future__ import annotations

import os

import numpy as np
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


def test_tied_hybrid_hits_read_their_ids_with_their_rows(mem_path, tmp_path, monkeypatch):
    """A hybrid query's fused scores tie often (rank r of one list alone scores what rank r
    of the other does): the ids that order them come in the round of the hits' rows."""
    monkeypatch.setattr(runs, "BY_PAGE_BYTES", 0)  # rows read by the page
    monkeypatch.setattr(runs, "SMALL_RUN", 0)
    rng = np.random.default_rng(3)
    target = np.eye(8, dtype=np.float32)[0]
    records = []
    for i in range(20_000):
        if i % 1000 == 1:  # found by the text alone, each BM25 score its own (its length)
            text, vector = "lighthouse " + "keeper " * (i // 1000), -target
        elif i % 1000 == 2:  # found by the vector alone, each its own similarity
            text, vector = f"filler {i}", target + np.float32(i / 2e5) * np.eye(8)[1]
        else:
            text, vector = f"filler text {i}", -target + rng.normal(0, 0.2, 8)
        records.append({"id": f"d{i:06d}", "text": text, "embedding": vector.tolist()})
    with Memory.create(mem_path, dim=8) as mem:
        mem.put_many(records)

    def hybrid(cache: str) -> tuple[list[str], int]:
        with Memory.open(f"s3://ties/{os.path.basename(mem_path)}", readonly=True,
                         warmup="none", remote={
                             "cache_dir": cache,
                             "wrap_client": lambda c: LocalObject(mem_path, c.url)}) as mem:
            source = mem._reader.fd
            opened = source.rounds
            hits = mem.find("lighthouse", vector=target.tolist(), k=10)
            return [h.id for h in hits], source.rounds - opened

    with Memory.open(mem_path, readonly=True) as local:
        found = local.find("lighthouse", vector=target.tolist(), k=10)
    expected = [h.id for h in found]
    assert len({h.score for h in found}) == 5  # five ties of two
    got, rounds = hybrid(str(tmp_path / "guessed"))
    assert got == expected
    with monkeypatch.context() as patched:  # no guess: the ids read after their offsets
        patched.setattr(runs.RunReader, "guessed_id_span",
                        lambda self, row: self._item_pages("idoff", row))
        got, before = hybrid(str(tmp_path / "after"))
    assert got == expected
    assert rounds == before - 1
