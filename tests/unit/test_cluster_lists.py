"""Cluster lists beside the graph: what they hold, and a memory (local, or read from object
storage, never downloading the graph) answering vector queries from them as the exact
search does, with newer, deleted and updated frames, and damaged lists costing only
themselves."""

from __future__ import annotations

import os
import shutil
import time
import warnings
from datetime import UTC, datetime

import numpy as np
import pytest

from bench.s3_trace import LocalObject
from memvid_store import Memory
from memvid_store.coldstart.warmup import tier_sizes
from memvid_store.index.damage import DamagedIndexWarning
from memvid_store.index.searcher import searcher_for
from memvid_store.index.vector.lists_build import list_arrays
from memvid_store.index.vector.lists_format import ENTRY, HEADER, lists_segment, unpack_header

pytest.importorskip("obstore")

DIM = 32
INDEX = {"ann_threshold": 500, "lexical": False}


@pytest.fixture(autouse=True)
def _aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


def remote(path: str, cache: str) -> Memory:
    return Memory.open(f"s3://lists/{os.path.basename(path)}", readonly=True, warmup="none",
                       remote={"cache_dir": cache,
                               "wrap_client": lambda client: LocalObject(path, client.url)})


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows around 24 fixed centers (the same for every seed)."""
    centers = np.random.default_rng(99).standard_normal((24, DIM))
    rng = np.random.default_rng(seed)
    return (centers[rng.integers(0, 24, n)] + 0.6 * rng.standard_normal((n, DIM))).astype("f4")


def build(path: str, data: np.ndarray, **options) -> None:
    with Memory.create(path, dim=DIM, index={**INDEX, **options},
                       graph_background=False) as mem:
        mem.put_many([{"id": str(i), "text": f"t{i}", "embedding": row}
                      for i, row in enumerate(data)])
        mem.build_index()


def exact(data: np.ndarray, query: np.ndarray, k: int, ids: list[str] | None = None
          ) -> tuple[list[str], np.ndarray]:
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    scores = unit @ (query / np.linalg.norm(query))
    top = np.argsort(-scores, kind="stable")[:k]
    names = ids or [str(i) for i in range(len(data))]
    return [names[i] for i in top], scores[top]


def recall_of(mem: Memory, data: np.ndarray, queries: np.ndarray) -> float:
    """recall@10 of ``mem``'s vector answers against the exact ones; every score of a hit
    in the exact top 10 is checked to be the exact score (candidates are rescored)."""
    found = 0
    for query in queries:
        hits = mem.find(vector=query, k=10, mode="vector")
        ids, scores = exact(data, query, 10)
        found += len({h.id for h in hits} & set(ids))
        truth = dict(zip(ids, scores, strict=True))
        assert all(abs(h.score - truth[h.id]) < 1e-5 for h in hits if h.id in truth)
    return found / (10 * len(queries))


def segment(path: str):
    with Memory.open(path, readonly=True) as mem:
        snap = mem._snap()
        return snap.toc.find("lists"), snap.toc.find("ann"), lists_segment(snap, mem.index_config)


def lists_of(path: str, ref) -> tuple[object, list, np.ndarray, np.ndarray, np.ndarray]:
    """(header, directory entries, gids, scales, codes of every row, list after list) of
    the lists segment ``ref`` of the file at ``path``."""
    with open(path, "rb") as fh:
        fh.seek(ref.offset)
        raw = fh.read(ref.length)
    header = unpack_header(raw, ref.length)
    entries = [ENTRY.unpack_from(raw, HEADER.size + i * ENTRY.size)
               for i in range(header.nlist)]
    width = 12 + header.dim
    columns = [list_arrays(raw[header.rows_at + start * width :
                               header.rows_at + (start + rows) * width], rows, header.dim)
               for start, rows, _ in entries]
    return (header, entries, *(np.concatenate([c[i] for c in columns]) for i in range(3)))


def test_the_lists_hold_every_vector_of_the_graph_once(mem_path):
    data = clustered(3000)
    build(mem_path, data)
    ref, graph, usable = segment(mem_path)
    assert usable == ref and ref.meta["covered"] == graph.meta["covered"] == 3000
    assert 1 <= ref.meta["nprobe"] <= ref.meta["nlist"] and ref.meta["recall"] >= 0.95
    header, entries, gids, scales, codes = lists_of(mem_path, ref)
    assert (header.count, header.covered, header.dim) == (3000, 3000, DIM)
    assert sum(rows for _, rows, _ in entries) == 3000
    assert sorted(gids.tolist()) == list(range(3000))
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    error = np.abs(scales[:, None] * codes - unit[gids]).max(axis=1)
    assert (error <= scales * 0.51).all()  # rounding to the nearest code
    with open(mem_path, "rb") as fh:
        fh.seek(ref.offset + header.centroids_at)
        centroids = np.frombuffer(fh.read(header.nlist * DIM * 4), "<f4")
    nearest = np.argmax(unit @ centroids.reshape(header.nlist, DIM).T, axis=1)
    for j, (start, rows, _) in enumerate(entries):  # each row in its nearest centroid's list
        assert (nearest[gids[start : start + rows]] == j).all()
    with Memory.open(mem_path, readonly=True) as mem:
        assert mem.verify().ok


def test_a_remote_memory_answers_from_the_lists_as_the_exact_search(mem_path, tmp_path):
    data = clustered(3000, 1)
    build(mem_path, data)
    lists, _, _ = segment(mem_path)
    queries = clustered(40, 2)
    with remote(mem_path, str(tmp_path / "cache")) as mem:
        mem.find(vector=queries[0], k=10, mode="vector")
        first = [r for r in mem._reader.fd.log if r.region == "segment:lists"]
        # the header, then the few lists of the query's nearest centroids
        assert 0 < sum(r.length for r in first) < lists.length / 4
        assert recall_of(mem, data, queries) >= 0.95
        log = list(mem._reader.fd.log)
    assert not any(r.region == "segment:ann" for r in log)  # the graph never downloaded


def test_newer_deleted_and_updated_frames(mem_path, tmp_path):
    data = clustered(3000, 3)
    build(mem_path, data)
    extra = clustered(5, 4)
    with Memory.open(mem_path) as mem:
        mem.put_many([{"id": f"new{i}", "text": "n", "embedding": row}
                      for i, row in enumerate(extra)])
        gone = exact(data, data[10], 3)[0]
        mem.delete_many(gone)
        mem.update("20", embedding=extra[0] * 2)
        mem.seal()
    usable = segment(mem_path)[2]
    assert usable is not None and usable.meta["covered"] < 3006  # the new ones: its tail
    with remote(mem_path, str(tmp_path / "cache")) as mem:
        for i, row in enumerate(extra):
            top = [h.id for h in mem.find(vector=row, k=2, mode="vector")]
            assert top[0] == f"new{i}" or (i == 0 and top[0] == "20")
            if i == 0:
                assert set(top) == {"new0", "20"}
        hits = [h.id for h in mem.find(vector=data[10], k=10, mode="vector")]
        assert not set(hits) & set(gone)
        assert mem.find(vector=data[20], k=10, mode="vector")[0].id != "20"


@pytest.mark.parametrize("where", ["rows", "directory"])
def test_damaged_lists_cost_only_themselves(mem_path, tmp_path, where):
    data = clustered(3000, 5)
    build(mem_path, data)
    ref, _, _ = segment(mem_path)
    with open(mem_path, "rb") as fh:
        fh.seek(ref.offset)
        header = unpack_header(fh.read(ref.length), ref.length)
    damaged = str(tmp_path / "damaged.mv2")
    shutil.copyfile(mem_path, damaged)
    width = 12 + DIM
    if where == "rows":  # a byte of every list's first row
        with open(mem_path, "rb") as fh:
            fh.seek(ref.offset + HEADER.size)
            entries = [ENTRY.unpack(fh.read(ENTRY.size)) for _ in range(header.nlist)]
        spots = [ref.offset + header.rows_at + start * width + 13
                 for start, rows, _ in entries if rows]
    else:
        spots = [ref.offset + HEADER.size + 3]
    with open(damaged, "r+b") as fh:
        for at in spots:
            fh.seek(at)
            byte = fh.read(1)
            fh.seek(at)
            fh.write(bytes([byte[0] ^ 0x40]))
    queries = clustered(10, 6)
    with Memory.open(damaged, readonly=True) as local, pytest.warns(DamagedIndexWarning,
                                                                    match="lists"):
        expected = [[h.id for h in local.find(vector=q, k=5, mode="vector")] for q in queries]
    with remote(damaged, str(tmp_path / "cache")) as mem:
        with pytest.warns(DamagedIndexWarning, match="lists"):
            got = [[h.id for h in mem.find(vector=q, k=5, mode="vector")] for q in queries]
        assert got == expected  # the exact scan answers, as for the file opened locally
        assert not mem.verify().ok
    assert expected == [exact(data, q, 5)[0] for q in queries]


def test_no_lists_when_turned_off_or_for_l2(mem_path, tmp_path):
    data = clustered(1500, 7)
    build(mem_path, data, ann_lists=False)
    assert segment(mem_path)[0] is None
    other = str(tmp_path / "l2.mv2")
    build(other, data, distance="l2")
    assert segment(other)[0] is None
    with remote(other, str(tmp_path / "cache")) as mem:  # the graph answers
        ids = [h.id for h in mem.find(vector=data[3], k=1, mode="vector")]
        assert ids == ["3"]


def test_a_background_build_commits_its_lists(mem_path):
    data = clustered(3000, 8)
    mem = Memory.create(mem_path, dim=DIM, index=INDEX, graph_sync_limit=100)
    try:
        mem.put_many([{"id": str(i), "text": "t", "embedding": row}
                      for i, row in enumerate(data)])
        mem.seal()  # too long for the seal: the background builder takes it
        end = time.monotonic() + 60
        while mem._snap().toc.find("ann") is None:
            assert time.monotonic() < end
            time.sleep(0.05)
        snap = mem._snap()
        ref = lists_segment(snap, mem.index_config)
        assert ref is not None and ref.meta["count"] == 3000
    finally:
        mem.close()
    with Memory.open(mem_path, readonly=True) as r:
        assert r.verify().ok


def test_compaction_carries_the_lists_renumbered(mem_path, tmp_path):
    data = clustered(3000, 9)
    build(mem_path, data)
    before = segment(mem_path)[0]
    with Memory.open(mem_path) as mem:
        mem.delete_many([str(i) for i in range(0, 3000, 3)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mem.compact(retain_after=datetime.now(UTC))  # the deleted versions go
    ref, graph, usable = segment(mem_path)
    assert usable == ref and ref.meta["covered"] == graph.meta["covered"] == 2000
    assert ref.meta["count"] == 2000 and ref.meta["nprobe"] == before.meta["nprobe"]
    assert ref.meta["centroid_floor"] == before.meta["centroid_floor"]
    _, _, gids, scales, codes = lists_of(mem_path, ref)
    assert sorted(gids.tolist()) == list(range(2000))
    kept = [i for i in range(3000) if i % 3]
    with Memory.open(mem_path, readonly=True) as mem:
        assert mem.verify().ok
        for gid in (0, 777, 1999):  # a row's codes are its (renumbered) version's vector
            at = int(np.flatnonzero(gids == gid)[0])
            vector = np.asarray(mem.get(str(kept[gid])).embedding, "<f4")
            unit = vector / np.linalg.norm(vector)
            assert np.abs(scales[at] * codes[at] - unit).max() <= scales[at] * 0.51
    with remote(mem_path, str(tmp_path / "cache")) as mem:
        found = 0
        for q in clustered(20, 10):
            hits = [h.id for h in mem.find(vector=q, k=10, mode="vector")]
            found += len(set(hits) & set(exact(data[kept], q, 10, [str(i) for i in kept])[0]))
        assert found / 200 >= 0.95
        assert not any(r.region == "segment:ann" for r in mem._reader.fd.log)


def test_inner_product_lists_and_small_graphs(mem_path, tmp_path):
    data = clustered(2500, 11) * np.random.default_rng(12).uniform(0.5, 2.0, (2500, 1))
    build(mem_path, data.astype("f4"), distance="ip")
    assert segment(mem_path)[2] is not None
    with remote(mem_path, str(tmp_path / "cache")) as mem:
        found = 0
        for q in clustered(20, 13):
            hits = mem.find(vector=q, k=10, mode="vector")
            scores = data @ q
            top = np.argsort(-scores, kind="stable")[:10]
            found += len({h.id for h in hits} & {str(i) for i in top})
            for hit in hits:  # inner products, rescored exactly
                assert abs(hit.score - scores[int(hit.id)]) < 1e-4 * max(1.0, abs(hit.score))
        assert found / 200 >= 0.95
    small = str(tmp_path / "small.mv2")
    build(small, clustered(800, 14))  # a graph, too few vectors for lists
    ref, graph, _ = segment(small)
    assert graph is not None and ref is None
    with Memory.open(small, graph_background=False) as mem:  # nothing for build_index
        before = mem.generation
        mem.build_index()
        assert mem.generation == before


NUMPY_FREE = """
import json, sys
sys.path.insert(0, sys.argv[4])
from bench.s3_trace import LocalObject
from memvid_store import Memory
path, cache, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
mem = Memory.open("s3://lists/m.mv2", readonly=True, warmup="none",
                  remote={"cache_dir": cache,
                          "wrap_client": lambda client: LocalObject(path, client.url)})
hits = [[(h.id, h.score) for h in mem.find(vector=q, k=10, mode="vector")] for q in queries]
regions = sorted({r.region for r in mem._reader.fd.log})
print(json.dumps({"hits": hits, "numpy": "numpy" in sys.modules, "regions": regions}))
"""


def test_a_fresh_process_answers_from_the_lists_without_numpy(mem_path, tmp_path):
    data = clustered(3000, 15)
    build(mem_path, data)
    queries = clustered(12, 16)
    got = numpy_free_hits(mem_path, str(tmp_path / "c"), queries)
    assert not got["numpy"] and "segment:ann" not in got["regions"]
    found = 0
    for q, hits in zip(queries, got["hits"], strict=True):
        ids, scores = exact(data, q, 10)
        found += len({i for i, _ in hits} & set(ids))
        truth = dict(zip(ids, scores, strict=True))
        for hit_id, score in hits:  # rescored from the float32 rows
            if hit_id in truth:
                assert abs(score - truth[hit_id]) < 1e-5
    assert found / 120 >= 0.95
    with remote(mem_path, str(tmp_path / "numpy")) as mem:  # numpy loaded: the same hits
        assert [[h.id for h in mem.find(vector=q, k=10, mode="vector")] for q in queries] \
            == [[i for i, _ in hits] for hits in got["hits"]]


def numpy_free_hits(path: str, cache: str, queries: np.ndarray) -> dict:
    """The hits (id, score) of ``queries`` from a fresh process reading ``path`` as an
    object, with what it imported and the regions it downloaded."""
    import json
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", NUMPY_FREE, path, cache,
                          json.dumps(queries.tolist()), root], capture_output=True, text=True,
                         check=True, env={**os.environ, "AWS_ACCESS_KEY_ID": "t",
                                          "AWS_SECRET_ACCESS_KEY": "t",
                                          "AWS_REGION": "us-east-1"})
    return json.loads(out.stdout)


def test_queries_far_from_every_list_read_more_of_them(mem_path, tmp_path, monkeypatch):
    """A query unlike every stored row (a topic the memory does not hold) has weak
    neighbours spread over many lists: it reads lists until one more batch changes none
    of its candidates, locally and from object storage, with and without numpy."""
    from memvid_store.index.vector import lists_format, lists_search

    data = clustered(6000, 40)
    build(mem_path, data)
    ref = segment(mem_path)[0]
    assert 0.5 < ref.meta["centroid_floor"] < 1.0  # rows lie near their centroids
    far = np.random.default_rng(41).standard_normal((30, DIM)).astype("f4")
    near = clustered(30, 42)
    with Memory.open(mem_path, readonly=True) as mem:
        assert recall_of(mem, data, far) >= 0.95
        assert recall_of(mem, data, near) >= 0.95
    with monkeypatch.context() as patched:  # the calibrated lists alone fall short
        patched.setattr(lists_search, "far_from_lists", lambda best, floor: False)
        with Memory.open(mem_path, readonly=True) as mem:
            assert recall_of(mem, data, far) < 0.9
    got = numpy_free_hits(mem_path, str(tmp_path / "c"), far)
    assert not got["numpy"]
    with remote(mem_path, str(tmp_path / "numpy")) as mem:  # numpy loaded: the same hits
        assert [[h.id for h in mem.find(vector=q, k=10, mode="vector")] for q in far] \
            == [[i for i, _ in hits] for hits in got["hits"]]
    assert lists_format.widenings(3, 20) == [(0, 3), (3, 9), (9, 17)]
    assert lists_format.widenings(5, 5) == []


@pytest.mark.parametrize("value", [0.62, 1, -1.0, True, "0.5", float("nan"), 1.5, None])
def test_a_floor_is_used_only_when_it_is_a_cosine(value):
    from memvid_store.index.vector.lists_format import far_from_lists, score_floor

    floor = score_floor({} if value is None else {"centroid_floor": value})
    valid = not isinstance(value, bool | str) and value is not None and -1 <= value <= 1
    assert floor == (float(value) if valid else None)
    assert far_from_lists(0.1, floor) == (valid and value > 0.1)
    assert not far_from_lists(0.1, None)  # lists built before the floor: as calibrated


def test_build_index_adds_lists_to_a_graph_built_without_them(mem_path, monkeypatch):
    import memvid_store.index.vector.lists_build as lists_build

    def fails(*_, **__):
        raise MemoryError("no room")

    data = clustered(2000, 17)
    monkeypatch.setattr(lists_build, "build_lists", fails)
    with pytest.warns(RuntimeWarning, match="cluster lists could not be built"):
        build(mem_path, data)  # a graph without lists, as files written before them
    ref, first_graph, _ = segment(mem_path)
    assert ref is None and first_graph is not None
    monkeypatch.undo()
    with Memory.open(mem_path, graph_background=False) as mem:
        before = mem.generation
        mem.build_index()
        assert mem.generation > before
        mem.build_index()  # nothing left to add
        after = mem.generation
        mem.build_index()
        assert mem.generation == after
    ref, graph, usable = segment(mem_path)
    assert usable == ref and ref.meta["count"] == 2000 and ref.meta["covered"] == 2000
    assert graph == first_graph  # the graph itself is not rebuilt


def test_an_append_only_remote_memory_reads_the_rows_of_its_hits_only(mem_path, tmp_path,
                                                                       monkeypatch):
    from memvid_store.engine.snapshot import Snapshot

    data = clustered(3000, 18)
    build(mem_path, data)
    asked: list[int] = []
    real = Snapshot.fetch_rows
    monkeypatch.setattr(Snapshot, "fetch_rows",
                        lambda self, refs: asked.append(len(refs)) or real(self, refs))
    with remote(mem_path, str(tmp_path / "cache")) as mem:
        assert mem._snap().all_live()
        hits = mem.find(vector=data[7], k=10, mode="vector")
        assert hits[0].id == "7"
    assert asked and max(asked) <= 10  # the hits', not the 40 candidates'


def test_flipped_bytes_anywhere_in_the_lists_never_give_a_wrong_answer(mem_path, tmp_path):
    """A byte flipped anywhere in the lists segment, the file opened locally or read from
    object storage: the answer is the undamaged lists' (a flip the lists never read: the
    header's padding) or the exact scan's, with a warning, and ``verify`` names the
    damage; never an untyped error or another answer."""
    import random
    import zlib

    data = clustered(3000, 19)
    build(mem_path, data)
    ref = segment(mem_path)[0]
    queries = clustered(4, 20)

    def answers(mem: Memory) -> list[list[str]]:
        with mem, warnings.catch_warnings():
            warnings.simplefilter("ignore", DamagedIndexWarning)
            return [[h.id for h in mem.find(vector=q, k=5, mode="vector")] for q in queries]

    by_exact = [exact(data, q, 5)[0] for q in queries]
    by_lists = answers(remote(mem_path, str(tmp_path / "clean")))
    assert answers(Memory.open(mem_path, readonly=True)) == by_lists
    rng = random.Random(21)
    with open(mem_path, "rb") as fh:
        raw = fh.read()
    header = unpack_header(raw[ref.offset : ref.offset + ref.length], ref.length)
    spots = [rng.randrange(ref.length) for _ in range(24)] + [0, 10, 20, 40, 60,
                                                              HEADER.size + 1,
                                                              header.centroids_at + 5,
                                                              header.rows_at + 3]
    for i, spot in enumerate(spots):
        damaged = bytearray(raw)
        damaged[ref.offset + spot] ^= 1 << rng.randrange(8)
        path = str(tmp_path / f"d{i}.mv2")
        with open(path, "wb") as fh:
            fh.write(damaged)
        assert answers(remote(path, str(tmp_path / f"c{i}"))) in (by_lists, by_exact), spot
        assert answers(Memory.open(path, readonly=True)) in (by_lists, by_exact), spot
        with Memory.open(path, readonly=True) as mem:
            assert not mem.verify().ok
    # a directory that passes its checksum but names more rows than the lists hold
    crafted = bytearray(raw)
    at = ref.offset + HEADER.size
    start, rows, crc = ENTRY.unpack_from(crafted, at)
    ENTRY.pack_into(crafted, at, start, rows + 1, crc)
    rest = bytes(crafted[at : ref.offset + header.rows_at])
    head = bytearray(crafted[ref.offset : ref.offset + HEADER.size])
    HEADER.pack_into(head, 0, *HEADER.unpack_from(head)[:-1], zlib.crc32(rest))
    crafted[ref.offset : ref.offset + HEADER.size] = head
    path = str(tmp_path / "crafted.mv2")
    with open(path, "wb") as fh:
        fh.write(crafted)
    for opened in (remote(path, str(tmp_path / "crafted")), Memory.open(path, readonly=True)):
        with pytest.warns(DamagedIndexWarning), opened as mem:
            assert [[h.id for h in mem.find(vector=q, k=5, mode="vector")]
                    for q in queries] == by_exact


def centroids_of(path: str, ref) -> np.ndarray:
    with open(path, "rb") as fh:
        fh.seek(ref.offset)
        raw = fh.read(ref.length)
    header = unpack_header(raw, ref.length)
    return np.frombuffer(raw, "<f4", header.nlist * header.dim,
                         header.centroids_at).reshape(header.nlist, header.dim)


def test_extended_lists_keep_their_centroids_until_their_trained_rows_double(mem_path, tmp_path):
    data = clustered(9000, 22)
    build(mem_path, data[:3000])
    first = segment(mem_path)[0]
    with Memory.open(mem_path, graph_background=False) as mem:
        mem.put_many([{"id": str(i), "text": "t", "embedding": data[i]}
                      for i in range(3000, 4000)])
        mem.build_index()  # the graph extended by a third: the centroids stay
    ref, graph, usable = segment(mem_path)
    assert usable == ref and graph.meta["covered"] == ref.meta["covered"] == 4000
    assert np.array_equal(centroids_of(mem_path, ref), centroids_of(mem_path, first))
    _, entries, gids, _, _ = lists_of(mem_path, ref)
    assert sorted(gids.tolist()) == list(range(4000))
    unit = data[:4000] / np.linalg.norm(data[:4000], axis=1, keepdims=True)
    nearest = np.argmax(unit @ centroids_of(mem_path, ref).T, axis=1)
    for j, (start, rows, _) in enumerate(entries):
        assert (nearest[gids[start : start + rows]] == j).all()
    with remote(mem_path, str(tmp_path / "c1")) as mem:
        found = sum(len({h.id for h in mem.find(vector=q, k=10, mode="vector")}
                        & set(exact(data[:4000], q, 10)[0])) for q in clustered(20, 23))
        assert found / 200 >= 0.95
    assert first.meta["trained"] == ref.meta["trained"] == 3000
    with Memory.open(mem_path, graph_background=False) as mem:
        mem.put_many([{"id": str(i), "text": "t", "embedding": data[i]}
                      for i in range(4000, 5000)])
        mem.build_index()  # a quarter more than the last lists, under twice the trained
    ref = segment(mem_path)[0]
    assert ref.meta["trained"] == 3000
    assert np.array_equal(centroids_of(mem_path, ref), centroids_of(mem_path, first))
    with Memory.open(mem_path, graph_background=False) as mem:
        mem.put_many([{"id": str(i), "text": "t", "embedding": data[i]}
                      for i in range(5000, 6000)])
        mem.build_index()  # a fifth more than the last lists, but twice the trained rows
    ref = segment(mem_path)[0]
    assert ref.meta["count"] == ref.meta["trained"] == 6000
    assert ref.meta["nlist"] != first.meta["nlist"]


def test_a_damaged_list_is_not_kept_by_an_extension(mem_path):
    data = clustered(4000, 24)
    build(mem_path, data[:3000])
    ref = segment(mem_path)[0]
    header, entries, *_ = lists_of(mem_path, ref)
    start, rows, _ = next(e for e in entries if e[1])
    with open(mem_path, "r+b") as fh:  # a byte of a list's codes
        at = ref.offset + header.rows_at + start * (12 + DIM) + 12 * rows + 3
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0x10]))
    with Memory.open(mem_path, graph_background=False) as mem:
        mem.put_many([{"id": str(i), "text": "t", "embedding": data[i]}
                      for i in range(3000, 3500)])
        mem.build_index()
    ref = segment(mem_path)[2]
    assert ref is not None and ref.meta["count"] == 3500
    _, _, gids, scales, codes = lists_of(mem_path, ref)
    unit = data[:3500] / np.linalg.norm(data[:3500], axis=1, keepdims=True)
    error = np.abs(scales[:, None] * codes - unit[gids]).max(axis=1)
    assert (error <= scales * 0.51).all()  # no damaged code carried over


def test_threads_querying_a_remote_memory_get_the_answers_one_thread_gets(mem_path, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    data = clustered(3000, 25)
    build(mem_path, data)
    queries = clustered(24, 26)
    with remote(mem_path, str(tmp_path / "one")) as mem:
        alone = [[h.id for h in mem.find(vector=q, k=10, mode="vector")] for q in queries]
    with remote(mem_path, str(tmp_path / "many")) as mem, ThreadPoolExecutor(8) as pool:
        together = list(pool.map(
            lambda q: [h.id for h in mem.find(vector=q, k=10, mode="vector")], queries))
    assert together == alone


def test_a_local_memory_answers_from_its_lists_without_opening_the_graph(mem_path):
    data = clustered(3000, 21)
    build(mem_path, data)
    queries = clustered(40, 22)
    with Memory.open(mem_path, readonly=True) as mem:
        assert recall_of(mem, data, queries) >= 0.95
        vectors = searcher_for(mem._snap(), mem.index_config, mem._ctx.cache_root).vectors
        assert vectors.reads_lists() and vectors._lists.opened
        assert vectors._hnsw is None or not vectors._hnsw.opened  # the graph stays shut


def test_warming_the_vector_tier_checks_every_list_not_the_graph(mem_path):
    build(mem_path, clustered(3000, 23))
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        mem.warmup(tiers=["vec_index"], wait=True)
        searcher = searcher_for(mem._snap(), mem.index_config, mem._ctx.cache_root)
        vectors = searcher.vectors
        index, _ = vectors.lists.graph()
        assert set(index._checked) == {j for j in range(index.header.nlist) if index.sizes[j]}
        assert vectors._hnsw is None or not vectors._hnsw.opened
        # the tier's size is what it loads: the lists
        assert tier_sizes(mem._snap(), searcher)["vec_index"] == segment(mem_path)[0].length


def test_ranking_by_codes_is_the_same_with_and_without_numkong(monkeypatch):
    from memvid_store.index.vector import kernels, lists_rank

    rng = np.random.default_rng(24)
    lists = [(np.arange(i * 50, i * 50 + n, dtype=np.int64),
              rng.random(n).astype(np.float32) / 100,
              rng.integers(-127, 128, (n, DIM)).astype(np.int8))
             for i, n in enumerate([50, 0, 37, 1, 50])]
    for query in rng.standard_normal((20, DIM)).astype(np.float32):
        fast = lists_rank.top_rows(query, lists, 40)
        with monkeypatch.context() as m:
            m.setattr(kernels, "kernel", lambda: None)
            slow = lists_rank.top_rows(query, lists, 40)
        assert fast[0].tolist() == slow[0].tolist()
        np.testing.assert_allclose(fast[1], slow[1], rtol=1e-6)
        codes, _ = lists_rank.quantized(query)
        every = np.concatenate([s * (c.astype(np.float64) @ codes[0]) for _, s, c in lists])
        gids = np.concatenate([g for g, _, _ in lists])
        want = gids[np.lexsort((gids, -every))][:40]
        assert fast[0].tolist() == want.tolist()  # the best 40 by the integer products


def test_cosine_vectors_are_indexed_by_cluster_lists_alone(mem_path, tmp_path):
    """No HNSW graph is built: the ``ann`` segment is a header of backend ``lists`` that
    records what the lists cover; l2 vectors and files created with ``ann_lists=False``
    get a graph."""
    from memvid_store.index.vector.hnsw_format import LISTS_ONLY, holds_graph

    build(mem_path, clustered(3000, 25))
    lists, graph, usable = segment(mem_path)
    assert graph.meta == {"backend": LISTS_ONLY, "count": 3000, "covered": 3000}
    assert graph.length == 64 and not holds_graph(graph) and usable == lists
    for other, options in (("l2.mv2", {"distance": "l2"}), ("off.mv2", {"ann_lists": False})):
        path = str(tmp_path / other)
        build(path, clustered(3000, 25), **options)
        assert segment(path)[1].meta["backend"] == "usearch"
    with Memory.open(mem_path, readonly=True) as mem:
        report = mem.verify()
        assert report.ok, report


def test_a_failed_lists_build_leaves_a_graph_of_every_vector(mem_path, monkeypatch):
    from memvid_store.index.vector import lists_build

    data = clustered(4000, 26)
    with Memory.create(mem_path, dim=DIM, index=INDEX, graph_background=False) as mem:
        mem.put_many([{"id": str(i), "text": "t", "embedding": row}
                      for i, row in enumerate(data[:3000])])
        mem.build_index()
        assert mem._snap().toc.find("ann").meta["backend"] == "lists"

        def broken(*args, **kwargs):
            raise MemoryError("no room for the lists")

        monkeypatch.setattr(lists_build, "build_lists", broken)
        mem.put_many([{"id": str(i), "text": "t", "embedding": row}
                      for i, row in enumerate(data[3000:], 3000)])
        with pytest.warns(RuntimeWarning, match="cluster lists could not be built"):
            mem.build_index()
        snap = mem._snap()
        graph = snap.toc.find("ann")
        assert graph.meta["backend"] == "usearch" and graph.meta["count"] == 4000
        assert lists_segment(snap, mem.index_config) is None
        found = 0
        for query in clustered(20, 27):
            hits = mem.find(vector=query, k=10, mode="vector")
            found += len({h.id for h in hits} & set(exact(data, query, 10)[0]))
        assert found / 200 >= 0.9


@pytest.mark.parametrize("drift", [2, 1000])
def test_new_rows_unlike_the_old_renew_the_centroids(mem_path, monkeypatch, drift):
    """Rows of topics the centroids never saw would make queries read several times the
    lists; past ``DRIFT`` times the kept lists' number, the lists are built anew."""
    from memvid_store.index.vector import lists_build

    monkeypatch.setattr(lists_build, "DRIFT", drift)
    build(mem_path, clustered(4000, 30))
    first = segment(mem_path)[0]
    rng = np.random.default_rng(8)
    topics = np.random.default_rng(7).standard_normal((12, DIM))
    new = (topics[rng.integers(0, 12, 1500)] + 0.6 * rng.standard_normal((1500, DIM)))
    with Memory.open(mem_path, graph_background=False) as mem:
        mem.put_many([{"id": f"n{i}", "text": "t", "embedding": row.astype("f4")}
                      for i, row in enumerate(new)])
        mem.build_index()
    ref = segment(mem_path)[0]
    kept = np.array_equal(centroids_of(mem_path, ref), centroids_of(mem_path, first))
    if drift == 1000:  # kept, the lists a query reads grow several times
        assert kept and ref.meta["nprobe"] > 2 * first.meta["nprobe"]
    else:
        assert not kept and ref.meta["trained"] == 5500
        assert ref.meta["nprobe"] <= 2 * first.meta["nprobe"]
