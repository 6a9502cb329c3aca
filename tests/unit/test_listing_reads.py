"""Listings (``timeline``, ``select``, ``get_many``, ``history``, ``changes``) read their
frames' records together, as a search reads its hits': from object storage in one round of
requests instead of one round per chunk of payloads, and from a mapped file whose pages
come from disk with the kernel told every page before they are decoded. The frames are
the same either way."""

from __future__ import annotations

import itertools
import os
import random

import pytest

from memvid_store import Memory
from memvid_store.engine import snapshot as snapshot_module

from .conftest import covered, view_calls

pytest.importorskip("obstore")

from bench.s3_trace import LocalObject

N = 3000
CHUNK = 64 << 10


@pytest.fixture(autouse=True)
def _aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def spread(tmp_path_factory):
    """A file whose payloads span many chunks: 3,000 frames of 400 random letters, edited
    and deleted a little, in three commits."""
    path = str(tmp_path_factory.mktemp("listing") / "m.mv2")
    rng = random.Random(3)

    def text(i: int) -> str:
        return f"frame {i} " + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz ", k=400))

    with Memory.create(path) as mem:
        for start in range(0, N, 1000):
            mem.put_many([{"id": f"f{i}", "text": text(i), "metadata": {"i": i}}
                          for i in range(start, start + 1000)])
            mem.seal()
        mem.put_many([{"id": f"f{i}", "text": text(i), "metadata": {"i": -i}}
                      for i in range(0, N, 50)])
        mem.delete_many([f"f{i}" for i in range(7, N, 100)])
    return path


def _reads(mem: Memory) -> list:
    """Each listing, as a call."""
    return [lambda: mem.timeline(limit=2000),
            lambda: mem.select(limit=1000, offset=500, reverse=True),
            lambda: mem.get_many([f"f{i}" for i in range(0, N, 3)] + ["missing"]),
            lambda: mem.history("f100"),
            lambda: list(mem.iter_timeline(limit=300)),
            lambda: list(mem.changes())]


def _listings(mem: Memory) -> list:
    return [read() for read in _reads(mem)]


def test_a_listing_from_object_storage_takes_a_few_rounds(spread, tmp_path):
    with Memory.open(spread, readonly=True) as local:
        want = _listings(local)
    with Memory.open(f"s3://listing/{os.path.basename(spread)}", readonly=True,
                     warmup="none", remote={
                         "cache_dir": str(tmp_path), "chunk_bytes": CHUNK,
                         "wrap_client": lambda client: LocalObject(spread, client.url)}) as mem:
        source = mem._reader.fd
        mem.count()  # the run parts every listing reads
        rounds = [source.rounds]
        got = []
        for read in _reads(mem)[::-1]:  # the change log first, while the cache is empty
            got.append(read())
            rounds.append(source.rounds)
        got.reverse()
        payload_chunks = sum(length for run in mem._snap().runs
                             for _, length, _ in run.header["blocks"]) // CHUNK
    assert got == want
    per_listing = [b - a for a, b in itertools.pairwise(rounds)]
    # read a frame at a time, a listing took about a round per chunk of payloads
    assert max(per_listing) <= 4 and payload_chunks >= 10, (per_listing, payload_chunks)


def test_a_listing_out_of_the_page_cache_reads_ahead(spread, monkeypatch):
    with Memory.open(spread, readonly=True) as mem:
        calm = _listings(mem)
    monkeypatch.setattr(snapshot_module, "SLOW_RECORD_S", -1.0)  # every read from disk
    with Memory.open(spread, readonly=True) as mem:
        assert _listings(mem) == calm
    prefetched = view_calls(monkeypatch, "prefetch")
    with Memory.open(spread, readonly=True) as mem:
        page = [f for f in mem.get_many([f"f{i}" for i in range(11, N, 61)])  # far apart
                if f is not None]
        snap = mem._snap()
        refs = [snap.get(frame.id, None) for frame in page]
        payloads = {(ref.run.item("poff", ref.row), ref.run.item("plen", ref.row))
                    for ref in refs[1:]}
        # the first record read is slow: the kernel is told the others' payloads
        assert len(payloads) == len(page) - 1 and all(
            covered(span, prefetched) for span in payloads)
        prefetched.clear()
        mem.select(limit=40, offset=2001)  # rows in order: the kernel reads ahead alone
        assert prefetched == []


def test_a_long_listing_is_asked_for_a_window_at_a_time(spread, monkeypatch):
    """The reads of a listing of every frame are announced (and read ahead) a window of
    records at a time, not all at once."""
    windows: list[int] = []
    real = snapshot_module.Snapshot.fetch_frames

    def spy(self, refs):
        windows.append(len(refs))
        real(self, refs)

    monkeypatch.setattr(snapshot_module, "LOAD_WINDOW", 100)
    monkeypatch.setattr(snapshot_module.Snapshot, "fetch_frames", spy)
    with Memory.open(spread, readonly=True) as mem:
        frames = mem.select(limit=1050)
    assert len(frames) == 1050 and windows == [100] * 10 + [50]


def test_select_ids_decode_no_payload(spread, monkeypatch):
    """``select_ids(filter)`` is ``select(filter)``'s ids, in its order, answered from the
    postings and value columns however many frames match: what a delete of every match
    needs. A range is checked on the records it admits only."""
    with Memory.open(spread, readonly=True) as mem:
        specs = [None, {"i": -50}, {"i": {"$in": list(range(0, 3000, 2))}},
                 {"i": {"$lt": 500}}]
        want = [[f.id for f in mem.select(spec)] for spec in specs]
        decoded: list[int] = []
        real = snapshot_module.Snapshot._payload

        def spy(self, *args):
            decoded.append(1)
            return real(self, *args)

        monkeypatch.setattr(snapshot_module.Snapshot, "_payload", spy)
        got = []
        for spec in specs:
            mem._snap().frame_cache.clear()
            decoded.clear()
            got.append((mem.select_ids(spec), len(decoded)))
    assert [ids for ids, _ in got] == want
    assert [n for _, n in got][:3] == [0, 0, 0] and got[3][1] <= len(want[3])
    assert want[1] == ["f50"] and len(want[2]) > N // 8  # more than a selective share
