"""A sharded memory read from object storage: manifest, pins and shards as objects."""

from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("obstore")
pytest.importorskip("moto.server")

from memvid_store import RemoteNotFoundError, RemoteReadOnlyError, ShardedMemory
from memvid_store.errors import (
    InvalidInputError,
    MemoryLockedError,
    NotSealedError,
    PublishConflictError,
)
from memvid_store.sharded.publish import Published

from .s3_server import moto_s3
from .test_sharded import queries, records, same_as_local, same_hits


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


# ------------------------------------------------------------------ publish


def _etag(bucket, key: str) -> str | None:
    import obstore

    try:
        return obstore.head(bucket.store, key)["e_tag"]
    except FileNotFoundError:
        return None


def _routed(n: int, seed: int, start: int, tenant: str) -> list[dict]:
    """Records that all route to ``tenant``'s shard."""
    out = records(n, seed=seed, start=start)
    for r in out:
        r["metadata"]["tenant"] = tenant
    return out


def test_publish_creates_then_replaces_changed_shards_and_readers_refresh(bucket, tmp_path):
    local = tmp_path / "m.mv2s"
    with ShardedMemory.create(local, 3, dim=16, route="tenant") as mem:
        mem.put_many(records(150, seed=41))
    url = "s3://shards/pub/m.mv2s"
    first = ShardedMemory.publish(local, url)
    assert set(first.etags) == {"m.mv2s", "m.mv2s.pins", "m-000.mv2", "m-001.mv2",
                                "m-002.mv2"}
    assert _etag(bucket, "pub/m.mv2s.publishing") is None  # the lease is gone
    reqs = queries(43, 2)
    with ShardedMemory.open(url, readonly=True) as remote:
        same_as_local(remote, local, reqs)
        with ShardedMemory.open(local) as mem:  # one tenant's shard changes
            mem.put_many(_routed(40, seed=44, start=7000, tenant="t1"))
        second = ShardedMemory.publish(local, url, expected=first, seal=True)
        changed = {name for name in first.etags if first.etags[name] != second.etags[name]}
        with ShardedMemory.open(local, readonly=True) as here:
            owner = here._router.of_filter({"tenant": "t1"})
        assert changed == {f"m-00{owner}.mv2", "m.mv2s.pins"}  # unchanged shards stay
        assert remote.count() == 150  # the state it opened, until refresh
        remote.refresh()
        same_as_local(remote, local, reqs)
        assert remote.get("f07003").text == records(40, seed=44, start=7000)[3]["text"]


def test_a_stale_publisher_conflicts_before_writing_anything(bucket, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    with ShardedMemory.create(a / "m.mv2s", 2, dim=16, route="tenant") as mem:
        mem.put_many(records(80, seed=51))
    url = "s3://shards/race/m.mv2s"
    base = ShardedMemory.publish(a / "m.mv2s", url)
    shutil.copytree(a, b)  # a second publisher with the same published state
    with ShardedMemory.open(a / "m.mv2s") as mem:
        mem.put_many(_routed(20, seed=52, start=8000, tenant="t0"))
    won = ShardedMemory.publish(a / "m.mv2s", url, expected=base)
    with ShardedMemory.open(b / "m.mv2s") as mem:
        mem.put_many(_routed(20, seed=53, start=9000, tenant="t3"))
    before = {name: _etag(bucket, f"race/{name}") for name in won.etags}
    with pytest.raises(PublishConflictError) as lost:
        ShardedMemory.publish(b / "m.mv2s", url, expected=base)
    assert "another publisher" in str(lost.value)
    assert {name: _etag(bucket, f"race/{name}") for name in won.etags} == before
    with ShardedMemory.open(url, readonly=True) as remote:
        same_as_local(remote, a / "m.mv2s", queries(54, 1))
    with ShardedMemory.open(a / "m.mv2s") as mem:  # the winner goes on
        mem.put_many(_routed(5, seed=55, start=9500, tenant="t0"))
    ShardedMemory.publish(a / "m.mv2s", url, expected=won)
    with pytest.raises(PublishConflictError):  # a first publish over published pins
        ShardedMemory.publish(b / "m.mv2s", url)


def test_one_publisher_at_a_time_and_leftovers_of_a_failed_first_publish(bucket, tmp_path):
    local = tmp_path / "m.mv2s"
    with ShardedMemory.create(local, 2, dim=16) as mem:
        mem.put_many(records(30, seed=61))
    url = "s3://shards/lease/m.mv2s"
    bucket.upload(str(tmp_path / "m-000.mv2"), "lease/m-000.mv2")  # a first publish died
    bucket.upload(str(local), "lease/m.mv2s")
    _put(bucket, "lease/m.mv2s.publishing", b"{}")  # another publisher's lease
    with pytest.raises(PublishConflictError, match="another publish holds"):
        ShardedMemory.publish(local, url)
    _delete(bucket, "lease/m.mv2s.publishing")
    done = ShardedMemory.publish(local, url)  # the leftovers are replaced
    with ShardedMemory.open(url, readonly=True) as remote:
        same_as_local(remote, local, queries(62, 1))
    assert done.etags["m-000.mv2"] == _etag(bucket, "lease/m-000.mv2")


def test_publish_refusals_are_typed(bucket, tmp_path):
    local = tmp_path / "m.mv2s"
    with ShardedMemory.create(local, 2, dim=16) as mem:
        mem.put_many(records(10, seed=71))
    url = "s3://shards/refuse/m.mv2s"
    copy = tmp_path / "copy"
    with ShardedMemory.open(local) as mem:
        with pytest.raises(MemoryLockedError):
            ShardedMemory.publish(local, url)
        mem.put_many(records(5, seed=72, start=100))
        shutil.copytree(tmp_path, copy, ignore=shutil.ignore_patterns("copy"))  # WAL only
    with pytest.raises(NotSealedError):
        ShardedMemory.publish(copy / "m.mv2s", "s3://shards/refuse-copy/m.mv2s")
    assert _etag(bucket, "refuse-copy/m.mv2s.pins") is None
    ShardedMemory.publish(copy / "m.mv2s", "s3://shards/refuse-copy/m.mv2s", seal=True)
    with ShardedMemory.open("s3://shards/refuse-copy/m.mv2s", readonly=True) as remote:
        assert remote.count() == 15
    with pytest.raises(InvalidInputError):
        ShardedMemory.publish(local, "not-a-url")
    done = ShardedMemory.publish(local, url)
    assert Published.from_json(done.to_json()) == done
    for bad in ("", "[]", '{"url": 1, "etags": {}, "digests": {}}', '{"url": "u"}'):
        with pytest.raises(InvalidInputError):
            Published.from_json(bad)
    with pytest.raises(InvalidInputError):
        ShardedMemory.publish(local, "s3://shards/other/m.mv2s", expected=done)
    outside = tmp_path / "out"
    outside.mkdir()
    with ShardedMemory.create(outside / "x.mv2s", [str(tmp_path / "elsewhere.mv2")],
                              dim=16):
        pass
    with pytest.raises(InvalidInputError, match="beside"):
        ShardedMemory.publish(outside / "x.mv2s", "s3://shards/refuse/x.mv2s")
    assert _etag(bucket, "refuse/x.mv2s.publishing") is None


def _put(bucket, key: str, data: bytes) -> None:
    import obstore

    obstore.put(bucket.store, key, data)


def _delete(bucket, key: str) -> None:
    import obstore

    obstore.delete(bucket.store, key)


def test_mv2_publish_of_a_manifest_keeps_its_state_between_publishes(bucket, tmp_path):
    import json

    from click.testing import CliRunner

    from memvid_store.cli import cli

    local, state = tmp_path / "m.mv2s", tmp_path / "published.json"
    with ShardedMemory.create(local, 2, dim=16) as mem:
        mem.put_many(records(20, seed=81))
    url = "s3://shards/cli/m.mv2s"
    args = ["publish", str(local), url, "--state", str(state)]
    first = CliRunner().invoke(cli, [*args, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["etags"] == Published.from_json(state.read_text()).etags
    with ShardedMemory.open(local) as mem:
        mem.put_many(records(5, seed=82, start=500))
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    with ShardedMemory.open(url, readonly=True) as remote:
        assert remote.count() == 25
    stale = CliRunner().invoke(cli, ["publish", str(local), url])  # no state: first publish
    assert stale.exit_code == 1 and "Traceback" not in stale.output
    shards = CliRunner().invoke(cli, [*args, "--compact"])  # a single file's option
    assert shards.exit_code == 2 and "ShardedMemory.compact()" in shards.output


def test_shards_with_graphs_answer_from_their_cluster_lists(bucket, tmp_path, monkeypatch):
    """Vector queries of shards read from object storage take each shard's cluster lists,
    never its graph (the fan-out's one-pass union of graph rounds would open them)."""
    import numpy as np

    from memvid_store.index.vector.hnsw_search import HnswSearch
    from memvid_store.index.vector.lists_search import ListsIndex

    local = tmp_path / "g.mv2s"
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((12, 16))
    rows = centers[rng.integers(0, 12, 3000)] + 0.5 * rng.standard_normal((3000, 16))
    with ShardedMemory.create(local, 2, dim=16, index={"ann_threshold": 300,
                                                       "lexical": False}) as mem:
        mem.put_many([{"id": f"f{i}", "text": "t", "embedding": row.tolist()}
                      for i, row in enumerate(rows)])
        mem.build_index()
    upload(bucket, tmp_path, "graphs")
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    found, searched = 0, []
    monkeypatch.setattr(HnswSearch, "open", lambda self: pytest.fail("a graph was opened"))
    real = ListsIndex.search
    monkeypatch.setattr(ListsIndex, "search",
                        lambda self, *a, **kw: searched.append(1) or real(self, *a, **kw))
    with ShardedMemory.open("s3://shards/graphs/g.mv2s", readonly=True) as remote:
        for shard in remote.shards:
            assert shard._snap().toc.find("lists") is not None
        for q in centers[:8] + 0.5 * rng.standard_normal((8, 16)):
            hits = remote.find(vector=q.tolist(), k=10, mode="vector")
            truth = np.argsort(-(unit @ (q / np.linalg.norm(q))))[:10]
            found += len({h.id for h in hits} & {f"f{i}" for i in truth})
    assert found >= 0.95 * 80
    assert len(searched) >= 16  # each shard's lists, for each query
