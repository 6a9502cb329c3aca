"""Which run parts a first answer downloads from object storage: a lexical query never
the vector references (``vrow``, ``vcrc``); a vector query gets them in a round it takes
anyway (with the cluster lists' head, the exact scan's vector blocks, the graph)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench.s3_trace import LocalObject, layout
from memvid_store import Memory
from memvid_store.engine import runs

pytest.importorskip("obstore")

DIM = 16
VECTOR_PARTS = ("vrow", "vcrc")


@pytest.fixture(autouse=True)
def _aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runs, "SMALL_RUN", 0)  # no run fetched whole with its first part


def build(path: str, n: int, **index) -> np.ndarray:
    vectors = np.random.default_rng(7).standard_normal((n, DIM)).astype("f4")
    with Memory.create(path, dim=DIM, index=index, graph_background=False) as mem:
        mem.put_many([{"id": f"d{i:05d}", "text": f"lighthouse {i}" if i % 97 == 0
                       else f"filler text {i}", "embedding": row}
                      for i, row in enumerate(vectors)])
        mem.build_index()
    return vectors


def first_answer(path: str, cache: str, **query) -> tuple[list[str], dict[str, int]]:
    """The ids of one query of a fresh remote handle, and the round in which each piece
    of the file (run parts by name, ``lists``, ``vectors``) was downloaded, most of it at
    least (a request starts and ends on a 512-byte sector: its neighbours' edges come
    with it). No request joins spans over bytes between them (``gap_bytes``): what is
    downloaded was asked for."""
    pieces = layout(path)
    with Memory.open(f"s3://parts/{os.path.basename(path)}", readonly=True, warmup="none",
                     remote={"cache_dir": cache, "gap_bytes": 0,
                             "wrap_client": lambda c: LocalObject(path, c.url)}) as mem:
        hits = mem.find(k=10, **query)
        log = list(mem._reader.fd.log)
    rounds: dict[str, int] = {}
    for offset, size, name in pieces:
        got: dict[int, int] = {}
        for r in log:
            n = min(offset + size, r.offset + r.length) - max(offset, r.offset)
            if n > 0:
                got[r.round] = got.get(r.round, 0) + n
        if got and max(got.values()) > size // 2:
            rounds[name.split(":")[-1]] = max(got, key=got.__getitem__)
    return [h.id for h in hits], rounds


@pytest.mark.parametrize("index", [{}, {"ann_threshold": 1000}], ids=["exact", "lists"])
def test_only_vector_queries_download_the_vector_references(mem_path, tmp_path, index):
    vectors = build(mem_path, 6_000, **index)
    with Memory.open(mem_path, readonly=True) as local:
        lexical = [h.id for h in local.find("lighthouse", k=10, mode="lexical")]
        vector = [h.id for h in local.find(vector=vectors[5], k=10, mode="vector")]

    got, rounds = first_answer(mem_path, str(tmp_path / "lex"), text="lighthouse",
                               mode="lexical")
    assert got == lexical
    assert not any(part in rounds for part in VECTOR_PARTS)

    got, rounds = first_answer(mem_path, str(tmp_path / "vec"), vector=vectors[5],
                               mode="vector")
    assert got == vector
    # in a round the query takes anyway, as what the exact scan masks its rows by
    late = (*VECTOR_PARTS, "vfrom")
    for part in late if not index else VECTOR_PARTS:  # the lists mask no rows
        assert any(rnd == rounds[part] for name, rnd in rounds.items() if name not in late)
    if not index:
        assert rounds["vfrom"] == rounds["vectors"]


def test_valid_to_is_downloaded_only_where_a_version_was_replaced(mem_path, tmp_path):
    """Every version current: no query tests a row's ``vto``, and none downloads it (the
    row columns whole at open, their pages with the hits). Once a version is replaced,
    the first query gets it with the other row columns, in the same round."""
    vectors = build(mem_path, 6_000)
    queries = [{"text": "lighthouse", "mode": "lexical"},
               {"vector": vectors[5], "mode": "vector"},
               {"text": "lighthouse", "vector": vectors[97], "mode": "hybrid"}]
    for i, query in enumerate(queries):
        with Memory.open(mem_path, readonly=True) as local:
            expected = [h.id for h in local.find(k=10, **query)]
        got, rounds = first_answer(mem_path, str(tmp_path / f"current{i}"), **query)
        assert got == expected and "vto" not in rounds and "created" in rounds
    with Memory.open(mem_path) as mem:
        mem.update("d00194", text="lighthouse moved")
        mem.seal()
    for i, query in enumerate(queries):
        with Memory.open(mem_path, readonly=True) as local:
            expected = [h.id for h in local.find(k=10, **query)]
        got, rounds = first_answer(mem_path, str(tmp_path / f"replaced{i}"), **query)
        assert got == expected and rounds["vto"] == rounds["created"]


@pytest.fixture(scope="module")
def two_collections(tmp_path_factory) -> str:
    """40k frames, half in ``default`` and half in ``beta``, every 25th about a lighthouse
    keeper (their BM25 scores tie), with a number ``n`` and a tag."""
    path = str(tmp_path_factory.mktemp("parts") / "two.mv2")
    rng = np.random.default_rng(3)
    with Memory.create(path, dim=DIM) as mem:
        for name in ("default", "beta"):
            mem.collection(name).put_many([{
                "id": f"{name}{i:06d}", "embedding": rng.standard_normal(DIM).tolist(),
                "text": f"lighthouse keeper {i}" if i % 25 == 0 else f"filler text {i}",
                "metadata": {"n": i % 7}, "tags": [f"t{i % 5}"]} for i in range(20_000)])
        mem.build_index()
    return path


def rounds_of(path: str, cache: str, queries: list, monkeypatch) -> list[int]:
    """The rounds each query takes as the first read of a fresh remote handle whose rows
    are read by the page (as past 270k frames), its answer checked against the file's."""
    with Memory.open(path, readonly=True) as local:
        expected = [query(local) for query in queries]
    monkeypatch.setattr(runs, "BY_PAGE_BYTES", 0)
    out = []
    for i, query in enumerate(queries):
        with Memory.open(f"s3://parts/{os.path.basename(path)}", readonly=True,
                         warmup="none", remote={
                             "cache_dir": os.path.join(cache, str(i)),
                             "wrap_client": lambda c: LocalObject(path, c.url)}) as mem:
            source = mem._reader.fd
            opened = source.rounds
            assert query(mem) == expected[i]
            out.append(source.rounds - opened)
    return out


def ids(hits: list) -> list[str]:
    return [h.id for h in hits]


def test_candidates_a_collection_or_filter_refuses_take_a_few_rounds(
        two_collections, tmp_path, monkeypatch):
    """The ids a collection test reads and the records a filter reads come a chunk of
    candidates at a time (each chunk twice the last; its records' round brings the
    next chunk's rows), not a round a candidate: these queries took 204, 32, 187 and
    1,009 rounds, and take 8, 10, 8 and 14 (1,600 candidates tie: each is looked at)."""
    beta = lambda m: m.collection("beta")  # noqa: E731
    rounds = rounds_of(two_collections, str(tmp_path), [
        lambda m: ids(beta(m).find("lighthouse keeper", k=10)),
        lambda m: ids(beta(m).find(vector=np.ones(DIM).tolist(), k=10)),
        lambda m: ids(m.find("lighthouse keeper", k=10, filter={"n": 3})),
        lambda m: ids(m.find("lighthouse keeper", k=10, filter={"n": {"$gte": 5}}))],
        monkeypatch)
    assert max(rounds) <= 16


def test_lookups_and_scans_read_a_page_of_versions_a_round(two_collections, tmp_path,
                                                           monkeypatch):
    """``get_many`` looks its ids up together, ``history`` its id's versions, and a
    scanning ``select`` reads a page of records a round (pages twice the last; in a
    collection, the records of its versions alone): these took 66, 9, 13 and 16 rounds,
    and take 4, 4, 8 and 7 (the versions' ``vfrom`` joins their rows' round)."""
    beta = lambda m: m.collection("beta")  # noqa: E731
    rounds = rounds_of(two_collections, str(tmp_path), [
        lambda m: m.get_many([f"default{i:06d}" for i in range(0, 20_000, 997)]),
        lambda m: m.history("default000123"),
        lambda m: m.select({"tags": "t3"}, limit=20),
        lambda m: beta(m).select({"n": 2}, limit=20)],
        monkeypatch)
    assert max(rounds[:2]) <= 6
    assert max(rounds[2:]) <= 10


def test_the_latest_versions_read_the_pages_of_their_times_not_the_columns(
        mem_path, tmp_path, monkeypatch):
    """A timeline of the latest versions, from rows read by the page: each run's first
    time in one round, then the pages its versions lie on; not the ``created`` column
    whole (nor the row columns fetched with it)."""
    build(mem_path, 20_000)
    with Memory.open(mem_path, readonly=True) as local:
        expected = [(f.id, f.created_at) for f in local.timeline(limit=30, reverse=True)]
        oldest = [f.id for f in local.timeline(limit=30)]
    monkeypatch.setattr(runs, "BY_PAGE_BYTES", 0)
    pieces = [(offset, size) for offset, size, name in layout(mem_path)
              if name.endswith(":created")]
    with Memory.open(f"s3://parts/{os.path.basename(mem_path)}", readonly=True,
                     warmup="none", remote={
                         "cache_dir": str(tmp_path), "gap_bytes": 0,
                         "wrap_client": lambda c: LocalObject(mem_path, c.url)}) as mem:
        opened = mem._reader.fd.rounds
        got = [(f.id, f.created_at) for f in mem.timeline(limit=30, reverse=True)]
        log, rounds = list(mem._reader.fd.log), mem._reader.fd.rounds - opened
        assert [f.id for f in mem.timeline(limit=30)] == oldest
    assert got == expected
    created = sum(max(0, min(o + n, r.offset + r.length) - max(o, r.offset))
                  for o, n in pieces for r in log)
    assert created <= 4 * 4096 < sum(n for _, n in pieces) // 4
    assert rounds <= 5
