"""The pieces of remote reads without a server: chunking and coalescing, the retry
budget, the chunk cache's bound, and the configuration."""

from __future__ import annotations

import os

import pytest

from memvid_store.errors import (
    ConfigError,
    ObjectChangedError,
    RemoteServerError,
    RemoteThrottledError,
    RemoteTruncatedError,
)
from memvid_store.remote.cache import ChunkCache
from memvid_store.remote.client import Fetched
from memvid_store.remote.config import RemoteConfig
from memvid_store.remote.retry import RetryingClient
from memvid_store.remote.source import open_object

CHUNK = 64 << 10


class Bytes:
    """An object in memory served by range, recording each request."""

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


def _object(tmp_path, data: bytes, limit: int = 1 << 30):
    client = Bytes(data)
    cache = ChunkCache(str(tmp_path / "s3"), limit)
    obj = open_object(client, cache, cache.object_dir("k"), CHUNK, 4 * CHUNK, 4)
    return client, cache, obj


def test_reads_fetch_aligned_chunks_and_coalesce_adjacent_ones(tmp_path):
    data = os.urandom(20 * CHUNK + 123)
    client, _, obj = _object(tmp_path, data)
    assert client.calls == [(0, 2 * CHUNK)]  # the header and the WAL's first read
    assert bytes(obj.read(5 * CHUNK + 10, 100)) == data[5 * CHUNK + 10 : 5 * CHUNK + 110]
    assert client.calls[-1] == (5 * CHUNK, 6 * CHUNK)
    assert bytes(obj.read(7 * CHUNK, 9 * CHUNK + 1)) == data[7 * CHUNK : 16 * CHUNK + 1]
    assert client.calls[-3:] == [(7 * CHUNK, 11 * CHUNK), (11 * CHUNK, 15 * CHUNK),
                                 (15 * CHUNK, 17 * CHUNK)]  # at most 4 chunks a request
    assert bytes(obj.pread(1000, 20 * CHUNK)) == data[20 * CHUNK :]  # short at the end
    before = len(client.calls)
    obj.read(7 * CHUNK, 10 * CHUNK)
    assert len(client.calls) == before  # nothing twice


def test_announced_spans_are_fetched_together(tmp_path):
    data = os.urandom(40 * CHUNK)
    client, _, obj = _object(tmp_path, data)
    spans = [(30 * CHUNK + 5, 10), (10 * CHUNK, 2 * CHUNK), (20 * CHUNK, 4), (11 * CHUNK, 1)]
    obj.fetch(spans)
    assert sorted(client.calls[1:]) == [(10 * CHUNK, 12 * CHUNK), (20 * CHUNK, 21 * CHUNK),
                                        (30 * CHUNK, 31 * CHUNK)]
    calls = len(client.calls)
    for offset, size in spans:
        assert bytes(obj.read(offset, size)) == data[offset : offset + size]
    assert len(client.calls) == calls


def test_a_warm_open_reads_the_disk_cache(tmp_path):
    data = os.urandom(8 * CHUNK)
    client, cache, obj = _object(tmp_path, data)
    obj.read(0, len(data))
    again = open_object(client, cache, cache.object_dir("k"), CHUNK, 4 * CHUNK, 4)
    calls = len(client.calls)
    assert bytes(again.read(0, len(data))) == data
    assert len(client.calls) == calls and again.fetched == 0


def test_the_cache_is_trimmed_to_its_bound(tmp_path):
    _, _, obj = _object(tmp_path, os.urandom(32 * CHUNK), limit=6 * CHUNK)
    obj.read(0, 32 * CHUNK)
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tmp_path)
             for f in files if f.isdigit()]
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
                                          "MEMVID_S3_CHUNK_BYTES": "131072"})
    assert (cfg.cache_bytes, cfg.chunk_bytes, cfg.retries) == (1 << 20, 128 << 10, 1)
    for bad in ({"chunk_bytes": 1000}, {"retries": -1}, {"nope": 1},
                {"parallel_requests": 0}):
        with pytest.raises(ConfigError):
            RemoteConfig.of(bad, {})
    with pytest.raises(ConfigError):
        RemoteConfig.of(None, {"MEMVID_S3_RETRIES": "many"})
