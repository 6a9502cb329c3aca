"""tantivy's positions files, which only phrase queries read, unpacked as their checked
tails until a phrase query (or tantivy's query language) needs them whole: term queries
answer the same, locally and from object storage, and a damaged positions file costs
phrase queries only."""

from __future__ import annotations

import glob
import json
import os
import zlib

import pytest

from memvid_store import DamagedIndexError, Memory
from memvid_store.errors import CorruptFileError
from memvid_store.index.lexical.manifest import TAIL_BYTES, LexManifest, read_manifest
from tests.cli.test_doctor import flip


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MEMVID_CACHE_DIR", str(tmp_path / "cache"))
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


def build(path: str, n: int = 3000) -> None:
    """``n`` documents; a tenth hold "harbor light", another tenth "light ... harbor"."""
    records = []
    for i in range(n):
        words = " ".join(f"w{(i * 7 + j) % 500}" for j in range(30))
        if i % 10 == 0:
            words += " harbor light 港口灯塔"
        elif i % 10 == 1:
            words += " light near the harbor"
        records.append({"id": f"d{i}", "text": words})
    with Memory.create(path) as mem:
        mem.put_many(records)


def manifest_of(path: str) -> LexManifest:
    with Memory.open(path, readonly=True, warmup="none") as mem:  # nothing unpacked
        return read_manifest(mem._snap())


def marker(cache: str) -> dict:
    """The marker of the reader's unpacked copy (not the writer's workdir)."""
    (path,) = [p for p in glob.glob(os.path.join(cache, "*", ".memvid-lex.json"))
               if not os.path.dirname(p).endswith("-writer")]
    with open(path, encoding="utf-8") as fh:
        return {**json.load(fh), "dir": os.path.dirname(path)}


def ids(hits) -> set[int]:
    return {int(h.id[1:]) for h in hits}


def test_positions_are_unpacked_by_their_tail_until_a_phrase_needs_them(mem_path, tmp_path):
    build(mem_path)
    cache = str(tmp_path / "cache")
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        manifest = read_manifest(mem._snap())
        (name,) = manifest.deferred()
        assert manifest.tails[name][0] == TAIL_BYTES < manifest.files[name][1]
        assert ids(mem.find("harbor", k=1000, mode="lexical")) == {
            i for i in range(3000) if i % 10 in (0, 1)}
        got = marker(cache)
        # code that knows nothing of deferred files takes such a copy for another index's
        assert got["deferred"] == [name] and got["identity"] == manifest.identity() + "+deferred"
        with open(os.path.join(got["dir"], name), "rb") as fh:
            data = fh.read()
        assert len(data) == manifest.files[name][1]  # a hole, then the checked tail
        assert not any(data[:-TAIL_BYTES])
        assert zlib.crc32(data[-TAIL_BYTES:]) == manifest.tails[name][1]
        # a phrase reads the positions: they are written whole first
        assert ids(mem.find('"harbor light"', k=1000, mode="lexical")) == set(range(0, 3000, 10))
        assert marker(cache)["deferred"] == []
        assert marker(cache)["identity"] == manifest.identity()
        with open(os.path.join(got["dir"], name), "rb") as fh:
            assert zlib.crc32(fh.read()) == manifest.files[name][2]
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:  # the filled copy kept
        assert ids(mem.find('"light harbor"', k=1000, mode="lexical")) == set()


@pytest.mark.parametrize("query, syntax, tenths", [
    ("港口", "plain", {0}), ('"harbor light"', "query", {0}),
    ("harbor AND light", "query", {0, 1})])
def test_every_query_that_may_read_positions_fills_them(mem_path, tmp_path, query, syntax,
                                                        tenths):
    build(mem_path)
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        hits = mem.find(query, k=1000, mode="lexical", syntax=syntax)
        assert ids(hits) == {i for i in range(3000) if i % 10 in tenths}
        assert marker(str(tmp_path / "cache"))["deferred"] == []


def test_warming_the_lexical_tier_fills_the_positions(mem_path, tmp_path):
    build(mem_path)
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        mem.warmup(tiers=["lex_index"])
        assert marker(str(tmp_path / "cache"))["deferred"] == []


def test_a_damaged_positions_file_costs_phrase_queries_only(mem_path):
    build(mem_path)
    manifest = manifest_of(mem_path)
    (name,) = manifest.deferred()
    offset, length, _ = manifest.files[name]
    flip(mem_path, offset + (length - TAIL_BYTES) // 2)  # a byte no term query reads
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        assert len(mem.find("harbor", k=1000, mode="lexical")) == 600
        with pytest.raises(DamagedIndexError, match="mv2 doctor FILE --repair"):
            mem.find('"harbor light"', k=10, mode="lexical")
        assert len(mem.find("harbor", k=1000, mode="lexical")) == 600


def test_a_damaged_tail_is_found_before_the_index_opens(mem_path):
    build(mem_path)
    manifest = manifest_of(mem_path)
    (name,) = manifest.deferred()
    offset, length, _ = manifest.files[name]
    flip(mem_path, offset + length - 100)
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        with pytest.raises(DamagedIndexError):
            mem.find("harbor", k=10, mode="lexical")
        assert mem.get("d5").id == "d5"


def test_from_object_storage_a_term_query_downloads_no_positions(mem_path, tmp_path):
    from bench.s3_trace import LocalObject

    pytest.importorskip("obstore")
    build(mem_path, 20_000)
    manifest = manifest_of(mem_path)
    (name,) = manifest.deferred()
    offset, length, _ = manifest.files[name]
    body = (offset, offset + length - TAIL_BYTES)
    with Memory.open(f"s3://lex/{os.path.basename(mem_path)}", readonly=True, warmup="none",
                     remote={"cache_dir": str(tmp_path / "s3"),
                             "wrap_client": lambda c: LocalObject(mem_path, c.url)}) as mem:
        assert len(mem.find("harbor", k=5000, mode="lexical")) == 4000
        log = list(mem._reader.fd.log)
        overlap = sum(max(0, min(r.offset + r.length, body[1]) - max(r.offset, body[0]))
                      for r in log)
        assert overlap < 1024 < body[1] - body[0]  # requests round to 512-byte sectors
        assert ids(mem.find('"harbor light"', k=5000, mode="lexical")) == set(range(0, 20_000, 10))
        later = list(mem._reader.fd.log)[len(log):]
        assert sum(r.length for r in later if r.region == "segment:lex") > body[1] - body[0] - 1024


@pytest.mark.parametrize("tails", [{"x.pos": [1, 2]}, {"a" * 32 + ".idx": [1, 2]},
                                   {"a" * 32 + ".pos": [0, 2]}, {"a" * 32 + ".pos": [99, 2]},
                                   {"a" * 32 + ".pos": [1]}])
def test_a_manifest_names_tails_of_its_positions_files_only(tails):
    files = {"a" * 32 + ".pos": [0, 10, 7], "a" * 32 + ".idx": [10, 5, 8]}
    good = LexManifest(files=files, meta="{}", docs=1, tails={"a" * 32 + ".pos": [4, 9]})
    assert LexManifest.from_json(good.to_json()) == good
    assert "tails" not in json.loads(LexManifest(files=files, meta="{}", docs=1).to_json())
    raw = json.loads(good.to_json())
    raw["tails"] = tails
    with pytest.raises(CorruptFileError):
        LexManifest.from_json(json.dumps(raw).encode())


@pytest.mark.parametrize("then", ["pruned", "replaced"])
def test_positions_are_never_read_from_a_copy_that_replaced_them(mem_path, tmp_path, then):
    """The unpacked copy is pruned, or replaced by another process's copy, while a reader
    holds it: the reader's phrase query never fills (nor reads) files its index does not
    map; it opens the index from a whole copy instead."""
    import shutil

    build(mem_path)
    cache = str(tmp_path / "cache")
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        assert len(mem.find("harbor", k=1000, mode="lexical")) == 600
        copy = marker(cache)["dir"]
        shutil.move(copy, str(tmp_path / "gone"))
        if then == "replaced":
            shutil.copytree(str(tmp_path / "gone"), copy)
        shutil.rmtree(str(tmp_path / "gone"))
        assert ids(mem.find('"harbor light"', k=1000, mode="lexical")) == set(range(0, 3000, 10))
        assert marker(cache)["deferred"] == []  # a whole copy now
        assert ids(mem.find("harbor", k=1000, mode="lexical")) == {
            i for i in range(3000) if i % 10 in (0, 1)}
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        assert ids(mem.find('"harbor light"', k=1000, mode="lexical")) == set(range(0, 3000, 10))


def test_compaction_writes_the_tails_of_its_new_positions_files(mem_path, tmp_path):
    import warnings

    build(mem_path)
    with Memory.open(mem_path) as mem:
        mem.delete_many([f"d{i}" for i in range(0, 3000, 7)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mem.compact()
    manifest = manifest_of(mem_path)
    (name,) = manifest.deferred()
    assert manifest.tails[name][0] == TAIL_BYTES
    with Memory.open(mem_path, readonly=True, warmup="none") as mem:
        kept = {i for i in range(0, 3000, 10) if i % 7}
        assert ids(mem.find('"harbor light"', k=1000, mode="lexical")) == kept
