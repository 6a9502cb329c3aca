"""Bad input gets a typed error before anything is written, and committed data stays intact.

Each case is a call a careless or hostile caller could make: strings UTF-8 cannot encode,
metadata nested without end, wrong container types, object arrays, oversized frames, and
``str`` subclasses with surprising methods.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from memvid_store import InvalidInputError, InvalidTypeError, Memory, MemvidError
from memvid_store.engine.codec import RAW, ZSTD, Codec
from memvid_store.validate import MAX_METADATA_DEPTH, MAX_PAYLOAD_BYTES

SURROGATE = "a\ud800b"


def _nested(depth: int) -> dict:
    root: dict = {}
    cur = root
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return root


def _self_referencing() -> dict:
    d: dict = {}
    d["me"] = d
    return d


BAD_CALLS = {
    "text with a lone surrogate": lambda m: m.put(SURROGATE),
    "id with a lone surrogate": lambda m: m.put("t", id=SURROGATE),
    "metadata value with a lone surrogate": lambda m: m.put("t", metadata={"k": SURROGATE}),
    "metadata key with a lone surrogate": lambda m: m.put("t", metadata={SURROGATE: 1}),
    "tag with a lone surrogate": lambda m: m.put("t", tags=[SURROGATE]),
    "collection with a lone surrogate": lambda m: m.collection(SURROGATE),
    "query with a lone surrogate": lambda m: m.find(SURROGATE),
    "filter operand with a lone surrogate": lambda m: m.find("x", filter={"k": SURROGATE}),
    "filter key with a lone surrogate": lambda m: m.select({SURROGATE: 1}),
    "get with a lone surrogate": lambda m: m.get(SURROGATE),
    "metadata nested 5,000 deep": lambda m: m.put("t", metadata=_nested(5000)),
    "self-referencing metadata": lambda m: m.put("t", metadata=_self_referencing()),
    "put_many(None)": lambda m: m.put_many(None),
    "put_many of one dict": lambda m: m.put_many({"text": "t"}),
    "delete_many(None)": lambda m: m.delete_many(None),
    "find_batch([1])": lambda m: m.find_batch([1]),
    "find_batch(None)": lambda m: m.find_batch(None),
    "object-array embedding": lambda m: m.put(
        "t", embedding=np.array(["a", None, 1, 2], dtype=object)),
    "tags as an int": lambda m: m.put("t", tags=3),
    "frame over the payload limit": lambda m: m.put("x" * (MAX_PAYLOAD_BYTES + 1)),
    "update over the payload limit": lambda m: m.update("keep", text="y" * (MAX_PAYLOAD_BYTES + 1)),
}


@pytest.fixture
def mem(tmp_path):
    m = Memory.create(tmp_path / "m.mv2", dim=4)
    m.put("committed", id="keep", embedding=[1, 0, 0, 0], metadata={"k": "v"})
    m.seal()
    yield m
    m.close()


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_raises_a_typed_error_and_writes_nothing(mem, case):
    generation = mem.generation
    with pytest.raises(InvalidInputError):
        BAD_CALLS[case](mem)
    assert mem.generation == generation
    assert mem.get("keep").text == "committed"
    mem.put("still writable", id="after")
    mem.seal()
    assert mem.count() == 2


def test_the_error_says_what_to_do(mem):
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        mem.put(SURROGATE)
    with pytest.raises(InvalidInputError, match=f"more than {MAX_METADATA_DEPTH} levels"):
        mem.put("t", metadata=_self_referencing())
    with pytest.raises(InvalidInputError, match="split the text"):
        mem.put("x" * (MAX_PAYLOAD_BYTES + 1))


def test_metadata_at_the_depth_limit_is_stored(mem):
    mem.put("t", id="deep", metadata=_nested(MAX_METADATA_DEPTH - 1))
    mem.seal()
    assert mem.get("deep").metadata == _nested(MAX_METADATA_DEPTH - 1)


class Hostile(str):
    """A str whose own methods fail: only its characters may be used."""

    def encode(self, *args, **kwargs):  # type: ignore[override]
        raise RuntimeError("encode called")

    def __str__(self) -> str:
        raise RuntimeError("__str__ called")


def test_str_subclasses_are_stored_as_plain_strings(tmp_path):
    path = tmp_path / "m.mv2"
    with Memory.create(path) as m:
        m.put(Hostile("text"), id=Hostile("id"), tags=[Hostile("tag")],
              metadata={Hostile("key"): Hostile("value")})
        m.seal()
    with Memory.open(path, readonly=True) as m:
        frame = m.get("id")
        assert (frame.text, frame.tags, frame.metadata) == ("text", ["tag"], {"key": "value"})
        assert type(frame.text) is str


def test_a_crafted_frame_cannot_inflate_past_the_payload_limit():
    bomb = zstandard.ZstdCompressor(write_content_size=True).compress(
        b"\0" * (MAX_PAYLOAD_BYTES + 1))
    assert len(bomb) < 64 * 1024
    with pytest.raises(ValueError, match="limit"):
        Codec().decompress(ZSTD, bomb)


def test_a_frame_without_a_recorded_size_is_refused_before_inflating():
    sizeless = zstandard.ZstdCompressor(write_content_size=False).compress(b"abc" * 100)
    with pytest.raises(ValueError, match="inflated size"):
        Codec().decompress(ZSTD, sizeless)
    sized = zstandard.ZstdCompressor(write_content_size=True).compress(b"abc" * 100)
    assert Codec().decompress(ZSTD, sized) == b"abc" * 100
    assert Codec().decompress(RAW, b"raw") == b"raw"


def test_a_decompression_bomb_in_a_file_is_a_corrupt_file_error(tmp_path, monkeypatch):
    """The codec's refusal reaches the caller as a CorruptFileError on that frame only."""
    path = tmp_path / "m.mv2"
    with Memory.create(path) as m:
        m.put("y" * 10_000, id="big")
        m.put("small", id="small")
    import memvid_store.engine.codec as codec

    monkeypatch.setattr(codec, "MAX_PAYLOAD_BYTES", 1000)
    with Memory.open(path, readonly=True) as m:
        with pytest.raises(MemvidError, match="limit"):
            m.get("big")
        assert m.get("small").text == "small"


_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)


@settings(max_examples=60, deadline=None)
@given(text=_text, fid=_text, key=_text, value=_text, tag=_text)
def test_any_string_is_stored_exactly_or_refused_with_a_typed_error(tmp_path_factory, text, fid,
                                                                     key, value, tag):
    path = tmp_path_factory.mktemp("s") / "m.mv2"
    with Memory.create(path) as m:
        try:
            m.put(text, id=fid, metadata={key: value}, tags=[tag])
        except InvalidInputError:
            assert m.count() == 0
            return
        m.seal()
    with Memory.open(path, readonly=True) as m:
        frame = m.get(fid)
        assert (frame.text, frame.metadata, frame.tags) == (text, {key: value}, [tag])


def test_invalid_type_errors_are_also_type_errors(mem):
    with pytest.raises(TypeError):
        mem.put_many(None)
    assert issubclass(InvalidTypeError, InvalidInputError)
    assert os.path.exists(mem.path)


def test_a_record_time_in_the_future_is_refused(mem):
    from datetime import UTC, datetime, timedelta

    generation = mem.generation
    with pytest.raises(InvalidInputError, match="in the future"):
        mem.put_many([{"text": "t"}], recorded_at=datetime(2200, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidInputError, match="in the future"):
        mem.delete_many(["keep"], recorded_at=datetime.now(UTC) + timedelta(hours=1))
    assert mem.generation == generation
    mem.put("now", id="now")  # the clock was not moved by the refused writes
    assert mem.history("now")[0].valid_from <= datetime.now(UTC) + timedelta(seconds=1)


def test_compacting_with_a_future_retention_is_refused(mem):
    from datetime import UTC, datetime

    with pytest.raises(InvalidInputError, match="in the future"):
        mem.compact(retain_after=datetime(2999, 1, 1, tzinfo=UTC))
    assert mem.get("keep").text == "committed"


def test_dimensions_are_bounded_before_anything_is_allocated(tmp_path):
    from memvid_store.embeddings import get_embedder
    from memvid_store.validate import MAX_DIM

    with pytest.raises(InvalidInputError, match=str(MAX_DIM)):
        get_embedder(f"hash-{4_000_000_000}")
    with pytest.raises(InvalidInputError, match=str(MAX_DIM)):
        Memory.create(tmp_path / "big.mv2", dim=MAX_DIM + 1)
    with Memory.create(tmp_path / "m.mv2") as m, pytest.raises(InvalidInputError):
        m.put("t", embedding=[0.5] * (MAX_DIM + 1))


@pytest.mark.parametrize("dim", ['"16"', "16.0", "-1", "4000000000", "true"])
def test_a_toc_recording_a_bad_dimension_is_a_corrupt_file(dim):
    import json

    from memvid_store import CorruptFileError
    from memvid_store.engine.format import Toc

    body = {"gen": 1, "time": 1, "prev": None, "segments": [], "next_gid": 0, "ckpt": 0,
            "dim": "@", "counters": {}, "floor": None, "options": {}}
    raw = json.dumps(body).replace('"@"', dim).encode()
    with pytest.raises(CorruptFileError, match="dim"):
        Toc.decode(raw, 0)


def test_versions_keep_increasing_across_compaction(tmp_path):
    import time
    from datetime import UTC, datetime

    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        for text in ("one", "two", "three"):
            mem.put(text, id="x")
        mem.delete("x")
        mem.put("kept", id="y")
        time.sleep(0.002)
        mem.compact(retain_after=datetime.now(UTC))  # every version of "x" is dropped
        assert mem.history("y")[-1].version == 1
        mem.put("again", id="x")
        assert mem.get("x").version == 5  # never a second "version 1" of x
        mem.put("new", id="z")
        assert mem.get("z").version > 4
    with Memory.open(path) as mem:
        mem.put("later", id="w")
        assert mem.get("w").version > 4
        mem.compact()
        mem.put("after a second compaction", id="v")
        assert mem.get("v").version > 4


def test_create_in_a_missing_directory_is_a_typed_error(tmp_path):
    from memvid_store import ShardedMemory, StorageError

    with pytest.raises(StorageError, match="does not exist"):
        Memory.create(tmp_path / "nowhere" / "m.mv2")
    with pytest.raises(StorageError, match="does not exist"):
        ShardedMemory.create(tmp_path / "nowhere" / "m.mv2s", 2)
    assert not (tmp_path / "nowhere").exists()
