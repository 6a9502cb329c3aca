"""A sharded memory read from object storage: manifest, pins and shards as objects."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("obstore")
pytest.importorskip("moto.server")

from memvid_store import RemoteNotFoundError, RemoteReadOnlyError, ShardedMemory

from .s3_server import moto_s3
from .test_sharded import queries, records, same_hits


@pytest.fixture(scope="module")
def bucket():
    with moto_s3("shards") as b:
        yield b


def upload(bucket, folder, prefix: str) -> None:
    """Shards first, then the manifest, then the pins: what a reader is told of exists."""
    names = sorted(os.listdir(folder))
    order = ([n for n in names if n.endswith(".mv2")] + [n for n in names if n.endswith(".mv2s")]
             + [n for n in names if n.endswith(".pins")])
    for name in order:
        bucket.upload(str(folder / name), f"{prefix}/{name}")


def test_open_from_object_storage_and_refresh(bucket, tmp_path):
    local = tmp_path / "m.mv2s"
    with ShardedMemory.create(local, 3, dim=16, route="tenant") as mem:
        mem.put_many(records(200, seed=31))
    upload(bucket, tmp_path, "team")
    url = "s3://shards/team/m.mv2s"
    reqs = queries(32, 3)
    with ShardedMemory.open(url, readonly=True) as remote, \
            ShardedMemory.open(local, readonly=True) as here:
        assert [s.path for s in remote.shards] == [f"s3://shards/team/m-00{i}.mv2"
                                                   for i in range(3)]
        for req, got, want in zip(reqs, remote.find_batch(reqs), here.find_batch(reqs),
                                  strict=True):
            same_hits(got, want, req)
        assert remote.count() == 200 and remote.generation == here.generation
        with ShardedMemory.open(local) as mem:  # a writer adds, then publishes again
            mem.put_many(records(50, seed=33, start=5000))
        upload(bucket, tmp_path, "team")
        assert remote.count() == 200  # its pinned state until refresh
        remote.refresh()
        assert remote.count() == 250
        with ShardedMemory.open(local, readonly=True) as fresh:
            assert remote.get("f05001").text == fresh.get("f05001").text


def test_remote_errors_are_typed(bucket, tmp_path):
    with pytest.raises(RemoteReadOnlyError):
        ShardedMemory.open("s3://shards/team/m.mv2s")
    with pytest.raises(RemoteNotFoundError):
        ShardedMemory.open("s3://shards/nowhere/m.mv2s", readonly=True)
