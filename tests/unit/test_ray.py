"""Sharded memories on Ray: ingestion embedded on workers, shards served by actors.

One local Ray instance (``ray.init(num_cpus=2)``) is started for the module and stopped
after it; the module is skipped, with the reason, where Ray cannot be imported or start.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from memvid_store import EmbedderMismatchError, InvalidInputError, ShardedMemory
from memvid_store.embeddings import get_embedder
from memvid_store.ingest import IngestOptions, ingest

from .test_sharded import queries, records, same_hits

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

OPTIONS = IngestOptions(chunk_size=200, chunk_overlap=20, batch_size=50)
SPEC = "hash:32"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except Exception as exc:  # a sandbox without shared memory, ports...
        pytest.skip(f"Ray cannot start here: {exc}")
    yield
    ray.shutdown()


def write_docs(folder, count: int, words: int = 120) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(count):
        body = " ".join(f"word{(i * 7 + j) % 97} topic{i % 5}" for j in range(words))
        (folder / f"doc{i:02d}.md").write_text(f"# Doc {i}\n\n{body}\n")


def frames(mem) -> dict[str, tuple]:
    return {f.id: (f.text, f.metadata, f.embedding) for f in mem.iter_timeline()}


def test_ray_ingest_equals_ingest_in_process_and_resumes(tmp_path):
    from memvid_store.cluster.ray_ingest import ingest_on_ray

    docs = tmp_path / "docs"
    write_docs(docs, 12)
    report = ingest_on_ray(tmp_path / "ray.mv2s", [str(docs)], embedder=SPEC, workers=2,
                           shards=3, options=OPTIONS)
    assert report.added > 12 and report.problems == []
    embedder = get_embedder(SPEC)
    with ShardedMemory.create(tmp_path / "ref.mv2s", 3, dim=embedder.dim) as ref:
        ingest(ref, [str(docs)], OPTIONS, embedder=embedder)
        want = frames(ref)
    with ShardedMemory.open(tmp_path / "ray.mv2s", readonly=True) as mem:
        got = frames(mem)
        assert mem.shards[0].embedder_info == {"name": embedder.name, "dim": embedder.dim}
    assert got.keys() == want.keys()
    for fid, (text, meta, vector) in want.items():
        assert got[fid][0] == text and got[fid][1] == meta
        assert got[fid][2] == pytest.approx(vector, abs=1e-6)

    again = ingest_on_ray(tmp_path / "ray.mv2s", [str(docs)], embedder=SPEC, workers=2,
                          options=OPTIONS)
    assert (again.added, again.updated, again.deleted) == (0, 0, 0)
    assert again.unchanged == report.added
    (docs / "doc03.md").write_text("# Doc 3\n\nrewritten entirely\n")
    changed = ingest_on_ray(tmp_path / "ray.mv2s", [str(docs)], embedder=SPEC, workers=2,
                            options=OPTIONS)
    assert changed.updated == 1 and changed.deleted >= 1 and changed.added == 0
    with ShardedMemory.open(tmp_path / "ray.mv2s", readonly=True) as mem:
        assert mem.get("docs/doc03.md#0").text.endswith("rewritten entirely")
    with pytest.raises(EmbedderMismatchError):
        ingest_on_ray(tmp_path / "ray.mv2s", [str(docs)], embedder="hash:16", options=OPTIONS)


def test_mv2_ingest_ray_flag(tmp_path):
    from memvid_store.cli import cli

    docs = tmp_path / "docs"
    write_docs(docs, 4)
    path = str(tmp_path / "cli.mv2s")
    result = CliRunner().invoke(cli, ["ingest", path, str(docs), "--ray", "--workers", "2",
                                       "--shards", "2", "--embedder", SPEC, "--json",
                                       "--chunk-size", "200", "--chunk-overlap", "20"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["added"] > 4 and summary["embedder"] == get_embedder(SPEC).name
    with ShardedMemory.open(path, readonly=True) as mem:
        assert len(mem) == summary["added"] and mem.shard_count == 2
        want = [h.id for h in mem.find("word3 topic1", vector=get_embedder(SPEC).embed_query(
            "word3 topic1"), k=3)]
    found = CliRunner().invoke(cli, ["find", path, "word3 topic1", "-k", "3", "--json"])
    assert found.exit_code == 0, found.output
    assert [h["id"] for h in json.loads(found.stdout)] == want  # hybrid, the file's embedder
    listed = CliRunner().invoke(cli, ["timeline", path])
    assert listed.exit_code == 6  # other commands take one memory file
    bad = CliRunner().invoke(cli, ["ingest", path, str(docs), "--ray", "--embedder", "none"])
    assert bad.exit_code == 2 and "--ray" in bad.output


def test_served_shards_answer_like_shards_in_process(tmp_path):
    from memvid_store.cluster.serving import RayShardedMemory

    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 4, dim=16, route="tenant") as mem:
        data = records(500, seed=21)
        for start in range(0, 500, 100):
            mem.put_many(data[start:start + 100])
    reqs = queries(22, 6)
    with ShardedMemory.open(path, readonly=True) as local, \
            RayShardedMemory.open(path) as served:
        for req, got, want in zip(reqs, served.find_batch(reqs), local.find_batch(reqs),
                                  strict=True):
            same_hits(got, want, req)
        one = reqs[1]
        same_hits(served.find(**one), local.find(**one), one)
        with pytest.raises(InvalidInputError):
            served.find_batch([{"text": "w1", "syntax": "query"}])
        with pytest.raises(InvalidInputError):  # validated by the shards' actors
            served.find_batch([{"vector": [0.5] * 16, "k": 0}])
        with pytest.raises(InvalidInputError):
            served.find_batch([{"text": "w1", "k": 0}])


def test_served_shards_read_the_pinned_state(tmp_path):
    """A shard write the manifest does not pin yet (a writer between two shards) is not
    served; once pinned, a new server sees it."""
    from memvid_store.cluster.serving import RayShardedMemory

    path = tmp_path / "m.mv2s"
    with ShardedMemory.create(path, 2, dim=16) as writer:
        writer.put_many(records(30, seed=23))
        writer.shards[0].put("unpinned zebra", id="late")  # not through the manifest
        query = [{"text": "zebra", "k": 5, "mode": "lexical"}]
        with RayShardedMemory.open(path) as served:
            assert served.find_batch(query) == [[]]
        writer.seal()  # pins every shard's state
        with RayShardedMemory.open(path) as served:
            assert [h.id for h in served.find_batch(query)[0]] == ["late"]
