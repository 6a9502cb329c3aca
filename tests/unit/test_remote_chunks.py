"""The pieces of remote reads without a server: chunking and coalescing, the retry
budget, the chunk cache's bound, and the configuration."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memvid_store.errors import (
    ConfigError,
    ObjectChangedError,
    RemoteServerError,
    RemoteThrottledError,
    RemoteTimeoutError,
    RemoteTruncatedError,
)
from memvid_store.remote.cache import ChunkCache
from memvid_store.remote.client import Fetched
from memvid_store.remote.config import RemoteConfig
from memvid_store.remote.retry import RetryingClient
from memvid_store.remote.source import SECTOR, open_object

CHUNK = 64 << 10


class Bytes:
    """An object in memory served by range, recording each request (``tail``: a suffix)."""

    url = "s3://b/k"

    def __init__(self, data: bytes, etag: str = '"v1"') -> None:
        self.data, self.etag, self.calls = data, etag, []

    def get(self, start, end, *, if_match=None, if_none_match=None):
        self.calls.append((start, end))
        if if_match is not None and if_match != self.etag:
            raise ObjectChangedError("changed", self.url, 412)
        if if_none_match == self.etag:
            return None
        return Fetched(memoryview(self.data)[start:end], self.etag, len(self.data))


class WithTail(Bytes):
    def tail(self, size):
        self.calls.append(("tail", size))
        return Fetched(memoryview(self.data)[-size:], self.etag, len(self.data))


HEAD = 69632  # the header and the WAL's first read, in whole sectors


def _object(tmp_path, data: bytes, limit: int = 1 << 30, client=None, gap: int = 2 * SECTOR):
    client = client or Bytes(data)
    cache = ChunkCache(str(tmp_path / "s3"), limit)
    obj = open_object(client, cache, cache.object_dir("k"), CHUNK, 4 * CHUNK, 4, gap)
    return client, cache, obj


def test_reads_download_the_sectors_they_miss_in_requests_of_bounded_size(tmp_path):
    data = os.urandom(20 * CHUNK + 123)
    client, _, obj = _object(tmp_path, data)
    assert client.calls == [(0, HEAD)]
    assert bytes(obj.read(5 * CHUNK + 10, 100)) == data[5 * CHUNK + 10 : 5 * CHUNK + 110]
    assert client.calls[-1] == (5 * CHUNK, 5 * CHUNK + SECTOR)  # one sector, not a chunk
    assert bytes(obj.read(7 * CHUNK, 9 * CHUNK + 1)) == data[7 * CHUNK : 16 * CHUNK + 1]
    assert sorted(client.calls[-3:]) == [(7 * CHUNK, 11 * CHUNK), (11 * CHUNK, 15 * CHUNK),
                                         (15 * CHUNK, 16 * CHUNK + SECTOR)]  # <= 4 chunks
    assert bytes(obj.pread(1000, 20 * CHUNK)) == data[20 * CHUNK :]  # short at the end
    before = len(client.calls)
    obj.read(7 * CHUNK, 9 * CHUNK)
    assert len(client.calls) == before  # nothing twice
    assert obj.requests == len(client.calls) and obj.fetched == sum(
        r.length for r in obj.log)


def test_announced_spans_take_one_round_near_ones_in_one_request(tmp_path):
    data = os.urandom(40 * CHUNK)
    client, _, obj = _object(tmp_path, data)
    spans = [(30 * CHUNK + 5, 10), (10 * CHUNK, 100), (10 * CHUNK + 3 * SECTOR, 8),
             (20 * CHUNK + SECTOR - 2, 4), (11 * CHUNK, 1)]
    rounds = obj.rounds
    obj.fetch(spans, "rows")
    assert obj.rounds == rounds + 1
    assert sorted(client.calls[1:]) == [
        (10 * CHUNK, 10 * CHUNK + 4 * SECTOR),  # two sectors apart: joined
        (11 * CHUNK, 11 * CHUNK + SECTOR), (20 * CHUNK, 20 * CHUNK + 2 * SECTOR),
        (30 * CHUNK, 30 * CHUNK + SECTOR)]
    assert {r.region for r in obj.log if r.round == obj.rounds} == {"rows"}
    calls = len(client.calls)
    for offset, size in spans:
        assert bytes(obj.read(offset, size)) == data[offset : offset + size]
    assert len(client.calls) == calls


def test_spans_read_ahead_join_the_next_round(tmp_path):
    data = os.urandom(40 * CHUNK)
    client, _, obj = _object(tmp_path, data)
    obj.ahead([(30 * CHUNK, 10)], "later")
    obj.read(5 * CHUNK, 10, "now")
    assert sorted(client.calls[1:]) == [(5 * CHUNK, 5 * CHUNK + SECTOR),
                                        (30 * CHUNK, 30 * CHUNK + SECTOR)]
    assert sorted(r.region for r in obj.log if r.round == obj.rounds) == ["later", "now"]
    calls = len(client.calls)
    assert bytes(obj.read(30 * CHUNK, 10)) == data[30 * CHUNK : 30 * CHUNK + 10]
    assert len(client.calls) == calls


def test_spans_read_ahead_are_not_joined_across_the_parts_between_them(tmp_path):
    """Every run's small parts are announced ahead: two of them 64 KiB apart are two
    requests, where spans a read asks for that far apart (under the 128 KiB gap) are one."""
    data = os.urandom(40 * CHUNK)
    client, _, obj = _object(tmp_path, data, gap=128 << 10)
    obj.ahead([(30 * CHUNK, 10), (31 * CHUNK, 10)], "later")
    obj.fetch([(5 * CHUNK, 10), (6 * CHUNK, 10)], "now")
    assert sorted(client.calls[1:]) == [(5 * CHUNK, 6 * CHUNK + SECTOR),
                                        (30 * CHUNK, 30 * CHUNK + SECTOR),
                                        (31 * CHUNK, 31 * CHUNK + SECTOR)]


def test_a_page_of_a_part_straddling_two_4k_pages_costs_one_sector_more(tmp_path):
    """A run part starts anywhere: its 4 KiB checked page at byte 1000 is downloaded as
    the sectors it touches (4.5 KiB), not as the two 4 KiB pages of the object."""
    data = os.urandom(40 * CHUNK)
    client, _, obj = _object(tmp_path, data)
    at = 10 * CHUNK + 1000
    assert bytes(obj.read(at, 4096)) == data[at : at + 4096]
    assert client.calls[-1] == (10 * CHUNK + 512, 10 * CHUNK + 512 + 9 * SECTOR)


class FailsOnce(Bytes):
    """Fails the first request for ``[start, ...)``."""

    def __init__(self, data: bytes, start: int) -> None:
        super().__init__(data)
        self.start = start

    def get(self, start, end, **conditions):
        if start == self.start:
            self.start = -1
            self.calls.append((start, end))
            raise RemoteServerError("500")
        return super().get(start, end, **conditions)


def test_a_failed_request_keeps_what_the_rest_of_its_round_downloaded(tmp_path):
    data = os.urandom(40 * CHUNK)
    client, _, obj = _object(tmp_path, data, client=FailsOnce(data, 30 * CHUNK))
    spans = [(5 * CHUNK, 100), (30 * CHUNK, 100)]
    with pytest.raises(RemoteServerError):
        obj.fetch(spans, "rows")
    calls = len(client.calls)
    obj.fetch(spans, "rows")  # only the failed range again
    assert client.calls[calls:] == [(30 * CHUNK, 30 * CHUNK + SECTOR)]
    assert bytes(obj.read(5 * CHUNK, 100)) == data[5 * CHUNK : 5 * CHUNK + 100]
    assert bytes(obj.read(30 * CHUNK, 100)) == data[30 * CHUNK : 30 * CHUNK + 100]


class Gated(Bytes):
    """Requests at or past ``start`` wait at ``gate`` (a barrier or an event)."""

    def __init__(self, data: bytes, start: int, gate) -> None:
        super().__init__(data)
        self.start, self.gate, self.sent = start, gate, []

    def get(self, start, end, **conditions):
        if start >= self.start:
            self.sent.append((start, end))
            self.gate.wait(timeout=10)
        return super().get(start, end, **conditions)


def _in_threads(*calls) -> None:
    errors: list[BaseException] = []

    def run(call):
        try:
            call()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert not errors, errors


def test_rounds_of_two_threads_run_at_once(tmp_path):
    """Each of two requests waits until the other has been sent: one round after the
    other (a lock held over the transfers) would break the barrier."""
    data = os.urandom(40 * CHUNK)
    client = Gated(data, 5 * CHUNK, threading.Barrier(2, timeout=10))
    _, _, obj = _object(tmp_path, data, client=client)
    _in_threads(lambda: obj.fetch([(5 * CHUNK, 100)], "lex"),
                lambda: obj.fetch([(30 * CHUNK, 100)], "ann"))
    assert bytes(obj.read(30 * CHUNK, 100)) == data[30 * CHUNK : 30 * CHUNK + 100]
    assert sorted(r.region for r in obj.log if r.offset >= 5 * CHUNK) == ["ann", "lex"]


def test_sectors_another_round_is_downloading_are_waited_for_not_asked_twice(tmp_path):
    data = os.urandom(40 * CHUNK)
    release = threading.Event()
    client = Gated(data, 5 * CHUNK, release)
    _, _, obj = _object(tmp_path, data, client=client)
    first = threading.Thread(target=obj.fetch, args=([(5 * CHUNK, 3000)], "first"))
    first.start()
    while not client.sent:
        time.sleep(0.001)  # the first round's request is under way
    seen: list[bytes] = []
    second = threading.Thread(target=lambda: seen.append(bytes(obj.read(5 * CHUNK + 1000,
                                                                         1000, "second"))))
    second.start()
    time.sleep(0.05)
    assert seen == []  # waiting for the first round
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert seen == [data[5 * CHUNK + 1000 : 5 * CHUNK + 2000]]
    assert client.sent == [(5 * CHUNK, 5 * CHUNK + 3072)]  # asked once


class GatedFailsOnce(Gated):
    """``Gated``, and its first gated request fails once through the gate."""

    def get(self, start, end, **conditions):
        got = super().get(start, end, **conditions)
        if start >= self.start and len(self.sent) == 1:
            raise RemoteServerError("500")
        return got


def test_a_round_waited_for_that_fails_is_asked_again_by_the_waiter(tmp_path):
    data = os.urandom(40 * CHUNK)
    release = threading.Event()
    client = GatedFailsOnce(data, 5 * CHUNK, release)
    _, _, obj = _object(tmp_path, data, client=client)
    failed: list[BaseException] = []

    def first():
        try:
            obj.fetch([(5 * CHUNK, 3000)], "first")
        except RemoteServerError as exc:
            failed.append(exc)

    one = threading.Thread(target=first)
    one.start()
    while not client.sent:
        time.sleep(0.001)
    seen: list[bytes] = []
    two = threading.Thread(target=lambda: seen.append(bytes(obj.read(5 * CHUNK, 1000))))
    two.start()
    time.sleep(0.05)
    release.set()
    one.join(timeout=10)
    two.join(timeout=10)
    assert len(failed) == 1 and seen == [data[5 * CHUNK : 5 * CHUNK + 1000]]
    assert len(client.sent) == 2  # the failed request, then the waiter's own


def test_a_cold_open_asks_for_the_tail_with_the_header(tmp_path):
    data = os.urandom(40 * CHUNK + 500)
    client, _, obj = _object(tmp_path, data, client=WithTail(data))
    assert set(client.calls) == {(0, HEAD), ("tail", 64 << 10)}
    assert obj.rounds == 1 and obj.requests == 2
    calls = len(client.calls)
    assert bytes(obj.read(len(data) - 4000, 4000)) == data[-4000:]  # a TOC at the end
    assert len(client.calls) == calls


class TailOfAnother(WithTail):
    """A tail that fails, or comes from another version than the header."""

    def __init__(self, data: bytes, other: bytes | None) -> None:
        super().__init__(data)
        self.other = other

    def tail(self, size):
        self.calls.append(("tail", size))
        if self.other is None:
            raise RemoteTimeoutError("timed out", self.url)
        return Fetched(memoryview(self.other)[-size:], '"v2"', len(self.other))


@pytest.mark.parametrize("other", [None, b"y" * (40 * CHUNK + 500)])
def test_a_tail_that_fails_or_belongs_to_another_version_is_not_used(tmp_path, other):
    data = os.urandom(40 * CHUNK + 500)
    client, _, obj = _object(tmp_path, data, client=TailOfAnother(data, other))
    assert obj.identity == '"v1"'
    assert bytes(obj.read(len(data) - 4000, 4000)) == data[-4000:]
    assert client.calls[-1] == (len(data) - 4000 - (len(data) - 4000) % SECTOR, len(data))


def test_a_warm_open_reads_the_disk_cache_chunks_and_pieces(tmp_path):
    data = os.urandom(8 * CHUNK + 77)
    client, cache, obj = _object(tmp_path, data)
    obj.read(0, 3 * CHUNK)  # whole chunks
    obj.fetch([(5 * CHUNK + 100, 50), (8 * CHUNK, 77)])  # pieces
    cache.flush()  # written in the background
    again = open_object(client, cache, cache.object_dir("k"), CHUNK, 4 * CHUNK, 4, 0)
    calls = len(client.calls)
    assert bytes(again.read(0, 3 * CHUNK)) == data[: 3 * CHUNK]
    assert bytes(again.read(5 * CHUNK + 100, 50)) == data[5 * CHUNK + 100 : 5 * CHUNK + 150]
    assert bytes(again.read(8 * CHUNK, 77)) == data[8 * CHUNK :]
    assert len(client.calls) == calls and again.fetched == 0
    assert bytes(again.read(6 * CHUNK, 10)) == data[6 * CHUNK : 6 * CHUNK + 10]
    assert len(client.calls) == calls + 1  # what was never downloaded is


def test_pieces_never_serve_another_version(tmp_path):
    old, new = os.urandom(8 * CHUNK), os.urandom(8 * CHUNK)
    client, cache, obj = _object(tmp_path, old)
    obj.fetch([(5 * CHUNK, 10)])
    client.data, client.etag = new, '"v2"'
    with pytest.raises(ObjectChangedError):
        obj.read(6 * CHUNK, 10)  # the old version's bytes are gone from the store
    moved = open_object(client, cache, cache.object_dir("k"), CHUNK, 4 * CHUNK, 4, 0)
    assert moved.identity == '"v2"'
    assert bytes(moved.read(5 * CHUNK, 10)) == new[5 * CHUNK : 5 * CHUNK + 10]


def test_the_cache_is_trimmed_to_its_bound(tmp_path):
    _, cache, obj = _object(tmp_path, os.urandom(32 * CHUNK), limit=6 * CHUNK)
    obj.read(0, 32 * CHUNK)
    obj.fetch([(i * CHUNK + 7, 10) for i in range(0, 32, 3)])
    cache.flush()
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tmp_path)
             for f in files if f.isdigit() or f.startswith("p")]
    assert sum(sizes) <= 6 * CHUNK


class Failing:
    url = "s3://b/k"

    def __init__(self, errors: list[Exception], short: int = 0) -> None:
        self.errors, self.short, self.calls = list(errors), short, 0

    def get(self, start, end, **conditions):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        if self.short:
            self.short -= 1
            return Fetched(b"x" * (end - start - 1), '"v"', 10**6)
        return Fetched(b"x" * (end - start), '"v"', 10**6)


def test_retries_back_off_exponentially_and_stop_at_the_budget():
    waits: list[float] = []
    fails = Failing([RemoteThrottledError("slow"), RemoteServerError("500")], short=1)
    client = RetryingClient(fails, retries=3, backoff=0.1, max_backoff=0.3, sleep=waits.append)
    assert len(client.get(0, 10).data) == 10
    assert fails.calls == 4 and len(waits) == 3
    assert 0.05 <= waits[0] <= 0.1 and 0.1 <= waits[1] <= 0.2 and 0.15 <= waits[2] <= 0.3
    with pytest.raises(RemoteTruncatedError):
        RetryingClient(Failing([], short=3), retries=2, backoff=0, max_backoff=0,
                       sleep=waits.append).get(0, 10)
    changed = Failing([ObjectChangedError("changed")])
    with pytest.raises(ObjectChangedError):
        RetryingClient(changed, retries=3, backoff=0, max_backoff=0).get(0, 10)
    assert changed.calls == 1  # not retried


def test_config_from_env_and_checks():
    cfg = RemoteConfig.of({"retries": 1}, {"MEMVID_S3_CACHE_BYTES": "1048576",
                                          "MEMVID_S3_CHUNK_BYTES": "131072",
                                          "MEMVID_S3_PARALLEL_REQUESTS": "16"})
    assert (cfg.cache_bytes, cfg.chunk_bytes, cfg.retries, cfg.parallel_requests) == (
        1 << 20, 128 << 10, 1, 16)
    for bad in ({"chunk_bytes": 1000}, {"retries": -1}, {"nope": 1},
                {"parallel_requests": 0}, {"gap_bytes": -1}):
        with pytest.raises(ConfigError):
            RemoteConfig.of(bad, {})
    with pytest.raises(ConfigError):
        RemoteConfig.of(None, {"MEMVID_S3_RETRIES": "many"})


def test_a_process_that_exits_without_closing_leaves_its_pieces(tmp_path):
    code = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_remote_chunks import _object
from pathlib import Path
data = bytes(range(256)) * 4096
_, _, obj = _object(Path({str(tmp_path)!r}), data, gap=0)
obj.fetch([(i * 9000, 10) for i in range(100)])
"""
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ,
                   "PYTHONPATH": os.pathsep.join(sys.path)})
    pieces = [f for _, _, files in os.walk(tmp_path) for f in files if f.startswith("p")]
    fetched = {i * 9000 // SECTOR for i in range(100) if i * 9000 >= HEAD}
    assert len(pieces) == 1 + len(fetched)  # the header's piece and every fetched sector


@pytest.mark.skipif(not hasattr(os, "setpriority") or not sys.platform.startswith("linux"),
                    reason="threads have priorities of their own on Linux")
def test_the_cache_is_written_at_the_lowest_priority(tmp_path, monkeypatch):
    """The thread writing downloads to the disk cache yields the CPU to the query's."""
    cache = ChunkCache(str(tmp_path / "s3"), 1 << 20)
    seen = []
    write = cache._write

    def recording(*args):
        seen.append((os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
                     threading.current_thread() is threading.main_thread()))
        write(*args)

    monkeypatch.setattr(cache, "_write", recording)
    ours = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    cache.store(str(tmp_path / "s3" / "v"), 0, b"x" * 4096)
    cache.flush()
    assert seen == [(19, False)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == ours
