"""Memories read from Google Cloud Storage (``gs://``, fake-gcs-server) and Azure Blob
Storage (``az://``, Azurite), each emulator on 127.0.0.1 and started by this module:
every read equals the local file's, a snapshot never mixes two versions of a replaced
object and ``refresh()`` moves to the new one, a missing object is
``RemoteNotFoundError``; Azure takes conditional publishes, GCS refuses them."""

from __future__ import annotations

import os
import sys

import pytest

pytest.importorskip("obstore")

from memvid_store import Memory, ShardedMemory
from memvid_store.errors import (
    InvalidInputError,
    MemoryNotFoundError,
    MissingDependencyError,
    ObjectChangedError,
    PublishConflictError,
    RemoteNotFoundError,
)
from memvid_store.remote import publish, stores, upload

from .object_stores import object_store
from .remote_memories import build, open_url, reads, uploaded
from .s3_server import Recorder
from .test_sharded import queries, records, same_as_local


@pytest.fixture(scope="module", params=["gs", "az"])
def store(request, tmp_path_factory):
    with object_store(request.param, tmp_path_factory.mktemp(request.param)) as container:
        yield container


@pytest.fixture(scope="module")
def published(store, tmp_path_factory):
    """(url, local path, marks) of one memory uploaded to the emulator."""
    return uploaded(store.upload, "agent.mv2", store.url("agent.mv2"), tmp_path_factory)


def test_every_read_equals_the_local_file(published, tmp_path):
    url, path, marks = published
    with Memory.open(path, readonly=True) as local, open_url(url, str(tmp_path)) as remote:
        assert remote.path == url
        assert reads(remote, marks) == reads(local, marks)
        assert remote.generation == local.generation
        assert remote.verify().ok


def test_a_warm_open_downloads_nothing(published, tmp_path):
    url, _, marks = published
    with open_url(url, str(tmp_path)) as mem:
        first = reads(mem, marks)
    rec = Recorder()
    with open_url(url, str(tmp_path), wrap_client=rec.wrap) as mem:
        assert reads(mem, marks) == first
    assert len(rec.calls) == 1  # the store's "not modified" for the version cached


def test_a_snapshot_never_mixes_two_versions_and_refresh_moves_on(store, tmp_path):
    old, new = str(tmp_path / "old.mv2"), str(tmp_path / "new.mv2")
    build(old, 1)
    marks = build(new, 2)
    store.upload(old, "moving.mv2")
    with open_url(store.url("moving.mv2"), str(tmp_path / "cache"), gap_bytes=0) as mem, \
            Memory.open(new, readonly=True) as fresh:
        before = mem.get("f5")
        store.upload(new, "moving.mv2")
        assert mem.get("f5") == before  # already read: still the version it opened
        with pytest.raises(ObjectChangedError):
            mem.select(limit=1000)  # needs payloads of the old version, which is gone
        mem.refresh()
        assert mem.get("f5") == fresh.get("f5") != before
        assert reads(mem, marks) == reads(fresh, marks)
        source = mem._reader.fd
        assert mem.refresh() == fresh.generation  # unchanged: nothing moves
        assert mem._reader.fd is source  # also where the store ignores If-None-Match


def test_a_missing_object_is_a_typed_error(store, tmp_path):
    with pytest.raises(RemoteNotFoundError) as info:
        open_url(store.url("missing.mv2"), str(tmp_path))
    assert isinstance(info.value, MemoryNotFoundError)


def test_publishing_is_conditional_on_azure_and_refused_on_gcs(store, tmp_path):
    first, second = str(tmp_path / "a.mv2"), str(tmp_path / "b.mv2")
    build(first, 1)
    marks = build(second, 2)
    _seal(first)
    _seal(second)
    url = store.url("published.mv2")
    if store.scheme == "gs":
        with pytest.raises(InvalidInputError, match="gs://"):
            publish(first, url)
        return
    etag = publish(first, url)
    with pytest.raises(PublishConflictError):
        publish(second, url)  # a second creator loses
    with open_url(url, str(tmp_path / "cache")) as reader, \
            Memory.open(second, readonly=True) as fresh:
        newer = publish(second, url, expected_etag=etag)
        with pytest.raises(PublishConflictError) as lost:
            publish(first, url, expected_etag=etag)  # a publisher from the old version
        assert lost.value.current_etag == newer
        reader.refresh()
        assert reads(reader, marks) == reads(fresh, marks)


def test_a_sharded_memory_publishes_to_azure_and_reads_from_both(store, tmp_path):
    local = tmp_path / "m.mv2s"
    with ShardedMemory.create(local, 2, dim=16, route="tenant") as mem:
        mem.put_many(records(120, seed=51))
    url = store.url("team/m.mv2s")
    if store.scheme == "gs":
        with pytest.raises(InvalidInputError, match="gs://"):
            ShardedMemory.publish(local, url)
        for name in sorted(os.listdir(tmp_path)):  # shards, then manifest, then pins
            if name.endswith(".mv2"):
                store.upload(str(tmp_path / name), f"team/{name}")
        for name in ("m.mv2s", "m.mv2s.pins"):
            store.upload(str(tmp_path / name), f"team/{name}")
    else:
        first = ShardedMemory.publish(local, url)
    reqs = queries(52, 2)
    with ShardedMemory.open(url, readonly=True) as remote:
        same_as_local(remote, local, reqs)
        if store.scheme == "az":
            with ShardedMemory.open(local) as mem:
                mem.put_many(records(30, seed=53, start=9000))
            ShardedMemory.publish(local, url, expected=first, seal=True)
            with pytest.raises(PublishConflictError):
                ShardedMemory.publish(local, url, expected=first)  # behind: changes nothing
            remote.refresh()
            same_as_local(remote, local, reqs)


@pytest.mark.parametrize("scheme", ["s3", "az"])
def test_a_file_past_one_put_is_refused_before_anything_is_sent(tmp_path, monkeypatch,
                                                                 scheme):
    path = str(tmp_path / "a.mv2")
    build(path, 1)
    _seal(path)
    monkeypatch.setitem(stores.MAX_PUT_BYTES, scheme, os.path.getsize(path) - 1)
    monkeypatch.setattr(upload, "open_store", _no_request)
    with pytest.raises(InvalidInputError, match="one PUT"):
        publish(path, f"{scheme}://container/a.mv2")


def _no_request(*_):
    raise AssertionError("nothing may be sent")


def test_without_the_client_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "obstore", None)  # an import of it fails
    for url in ("s3://b/k", "gs://b/k", "az://c/k"):
        with pytest.raises(MissingDependencyError, match=r"memvid-py\[s3\]"):
            stores.open_store(url, 1.0)


def test_urls_of_other_schemes_are_refused():
    for url in ("gcs://b/k", "az://container", "abfs://c/k"):
        with pytest.raises((InvalidInputError, MemoryNotFoundError)):
            Memory.open(url, readonly=True)


def _seal(path: str) -> None:
    with Memory.open(path) as mem:
        mem.seal()
