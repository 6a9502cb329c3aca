"""Round-trip properties: frames, WAL records and header slots; typed errors for bad input."""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memvid_store import DimensionMismatchError, FormatError, Memory
from memvid_store.engine.format import (
    HEADER_BYTES,
    MAX_WAL_SIZE,
    MIN_WAL_SIZE,
    SLOT_SIZE,
    WAL_OFFSET,
    Header,
    align,
    pick_header,
    unpack_header,
)
from memvid_store.engine.wal import REC_HEADER, encode_record, replay

DIM = 5
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ------------------------------------------------------------------------ strategies

ZONE_OFFSETS = st.timedeltas(min_value=-timedelta(hours=23, minutes=59, seconds=59),
                             max_value=timedelta(hours=23, minutes=59, seconds=59))
aware_datetimes = st.builds(
    lambda naive, offset: naive.replace(tzinfo=timezone(offset)),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2199, 12, 30)),
    ZONE_OFFSETS,
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
metadatas = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
vectors = st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=DIM,
                   max_size=DIM)
frame_ids = st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=20)
frame_records = st.fixed_dictionaries(
    {"id": frame_ids, "text": st.text()},
    optional={
        "metadata": st.none() | metadatas,
        "tags": st.none() | st.lists(st.text(min_size=1, max_size=8), max_size=4),
        "created_at": st.none() | aware_datetimes,
        "embedding": st.none() | vectors,
    },
)


@contextmanager
def new_memory(dim: int | None = DIM) -> Iterator[tuple[str, Memory]]:
    """A fresh memory in its own temporary directory, closed afterwards."""
    with tempfile.TemporaryDirectory(prefix="mv2-rt-") as tmp:
        path = os.path.join(tmp, "rt.mv2")
        mem = Memory.create(path, dim=dim, wal_size=1 << 20, sync=False)
        try:
            yield path, mem
        finally:
            mem.close()


def as_embedding_input(values: list[float], kind: str) -> Any:
    if kind == "numpy32":
        return np.array(values, dtype=np.float32)
    if kind == "numpy64":
        return np.array(values, dtype=np.float64)
    if kind == "array":
        return array("f", values)
    if kind == "tuple":
        return tuple(values)
    return list(values)


def exact_json(value: Any) -> str:
    """JSON text that tells apart True/1 and 1/1.0 and keeps key order."""
    return json.dumps(value, ensure_ascii=False)


def assert_same(mem: Memory, rec: dict[str, Any], *, embedding: bool = True) -> None:
    frame = mem.get(rec["id"])
    assert frame.id == rec["id"]
    assert frame.text == rec["text"]
    assert exact_json(frame.metadata) == exact_json(rec.get("metadata") or {})
    assert frame.tags == list(rec.get("tags") or [])
    if rec.get("created_at") is not None:
        assert frame.created_at == rec["created_at"]
        assert frame.created_at.utcoffset() == timedelta(0)
    assert frame.version == 1
    if embedding:
        want = rec.get("embedding")
        assert frame.embedding == (None if want is None else [float(x) for x in want])


# ---------------------------------------------------------------------------- frames


@SETTINGS
@given(recs=st.lists(frame_records, min_size=1, max_size=4, unique_by=lambda r: r["id"]),
       kind=st.sampled_from(["list", "tuple", "array", "numpy32", "numpy64"]))
@example(recs=[{"id": "empty", "text": ""}, {"id": "nul-in-text", "text": "a\x00b\x00"},
               {"id": "🙂", "text": "emoji 🙂👍🏽‍👩‍👩‍👧 and CJK 記憶ファイル 메모리",
                "metadata": {"": None, "ключ": [1, 2.5, True, {"深い": "値"}]},
                "tags": ["日本", "🙂"]}], kind="list")
@example(recs=[{"id": "old", "text": "epoch", "created_at": datetime(1970, 1, 2, tzinfo=UTC)},
               {"id": "future", "text": "far",
                "created_at": datetime(2199, 12, 30, 23, 59, 59, 999999,
                                       tzinfo=timezone(-timedelta(hours=23, minutes=59)))},
               {"id": "ints", "text": "big", "metadata": {"n": 2**200, "m": -(2**64),
                                                          "f": 1.0, "b": False, "z": -0.0}}],
         kind="numpy64")
def test_frames_round_trip(recs: list[dict[str, Any]], kind: str) -> None:
    """put -> get, then through a reader (WAL replay), then sealed and reopened: identical."""
    recs = [dict(rec) for rec in recs]
    for rec in recs:
        if rec.get("embedding") is not None:
            rec["embedding"] = as_embedding_input(rec["embedding"], kind)
    with new_memory() as (path, mem):
        assert mem.put_many(recs[:1]) == [recs[0]["id"]]
        for rec in recs[1:]:
            assert mem.put(**rec) == rec["id"]
        for rec in recs:
            assert_same(mem, rec)
        reader = Memory.open(path, readonly=True)  # decodes the WAL records
        try:
            assert reader.stats().wal_records == len(recs)
            for rec in recs:
                assert_same(reader, rec)
        finally:
            reader.close()
        mem.close()  # seals: frames move into runs and compressed payloads
        reopened = Memory.open(path, readonly=True)
        try:
            assert reopened.stats().wal_records == 0
            assert sorted(reopened.ids()) == sorted(r["id"] for r in recs)
            for rec in recs:
                assert_same(reopened, rec)
        finally:
            reopened.close()


@settings(SETTINGS, max_examples=8)
@given(seed=st.integers(0, 2**32), size=st.sampled_from([70_000, 300_000]))
def test_large_unicode_frame_round_trip(seed: int, size: int) -> None:
    """Long text in every plane (committed directly when over a quarter of the WAL)."""
    rnd = random.Random(seed)
    ranges = [(0x20, 0x7E), (0xA0, 0x2FF), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF),
              (0x10000, 0x10FFFF)]
    chars = []
    for _ in range(size):
        lo, hi = rnd.choice(ranges)
        chars.append(chr(rnd.randint(lo, hi)))
    text = "".join(chars)
    rec = {"id": f"big-{seed}", "text": text, "metadata": {"seed": seed}}
    with new_memory() as (path, mem):
        mem.put(**rec)
        assert_same(mem, rec)
        mem.close()
        with Memory.open(path, readonly=True) as reopened:
            assert_same(reopened, rec)


@SETTINGS
@given(moment=aware_datetimes)
def test_created_at_keeps_the_instant(moment: datetime) -> None:
    with new_memory() as (path, mem):
        fid = mem.put("t", created_at=moment)
        assert mem.get(fid).created_at == moment
        assert mem.timeline(since=moment, until=moment + timedelta(microseconds=1))[0].id == fid
        mem.close()
        with Memory.open(path, readonly=True) as reopened:
            got = reopened.get(fid).created_at
            assert got == moment and got.tzinfo is not None
            assert got == moment.astimezone(UTC)


# ------------------------------------------------------------------------------- WAL


def wal_chain(payloads: list[bytes], checkpoint: int) -> tuple[list[bytes], list[int]]:
    """Records ``checkpoint + 1 ...`` each linked to the previous one's crc; and the crcs."""
    records, crcs, prev = [], [], 0
    for i, payload in enumerate(payloads):
        record, prev = encode_record(checkpoint + 1 + i, payload, prev)
        records.append(record)
        crcs.append(prev)
    return records, crcs


@SETTINGS
@given(payloads=st.lists(st.binary(max_size=300), max_size=12),
       checkpoint=st.integers(0, 2**62), slack=st.integers(0, 64),
       filler=st.sampled_from([b"\x00", b"\xff", b"MWAL"]))
def test_wal_records_replay(payloads: list[bytes], checkpoint: int, slack: int,
                            filler: bytes) -> None:
    encoded, crcs = wal_chain(payloads, checkpoint)
    for rec, payload in zip(encoded, payloads, strict=True):
        assert len(rec) % 8 == 0 and len(rec) == align(REC_HEADER + len(payload))
    body = b"".join(encoded)
    region = body + (filler * (8 * slack + 8))[: 8 * slack]
    expected = [(checkpoint + 1 + i, p) for i, p in enumerate(payloads)]

    rep = replay(region, checkpoint, scan_damage=True)
    assert rep.records == expected
    assert rep.end == len(body)
    assert rep.last_seq == checkpoint + len(payloads)
    assert rep.last_crc == (crcs[-1] if crcs else 0)
    assert rep.problems == []

    reads: list[tuple[int, int]] = []

    def read(offset: int, n: int) -> bytes:
        reads.append((offset, n))
        return region[offset : offset + n]

    lazy = replay(read, checkpoint, size=len(region))
    assert (lazy.records, lazy.end, lazy.last_seq) == (expected, len(body), rep.last_seq)
    assert all(off + n <= len(region) for off, n in reads)

    # a checkpoint past some records: they are stale leftovers, nothing replays
    if payloads:
        assert replay(region, checkpoint + 1).records == []


@SETTINGS
@given(payloads=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=8),
       data=st.data())
def test_wal_replay_stops_at_torn_or_damaged_record(payloads: list[bytes],
                                                    data: st.DataObject) -> None:
    encoded, _ = wal_chain(payloads, 9)
    starts = [sum(len(r) for r in encoded[:i]) for i in range(len(encoded))]
    region = bytearray(b"".join(encoded) + b"\x00" * 64)
    k = data.draw(st.integers(0, len(payloads) - 1), label="damaged record")
    how = data.draw(st.sampled_from(["torn", "flip"]), label="damage")
    end = starts[k] + REC_HEADER + len(payloads[k])  # the zero padding after it is not read
    if how == "torn":  # the tail of an interrupted append: record k and what follows
        cut = data.draw(st.integers(starts[k], end - 1), label="cut")
        region[cut:] = b"\x00" * (len(region) - cut)
    else:  # one byte of record k's header or payload changed
        pos = data.draw(st.integers(starts[k], end - 1), label="byte")
        region[pos] ^= data.draw(st.integers(1, 255), label="xor")
    rep = replay(bytes(region), 9, scan_damage=True)
    assert rep.records == [(10 + i, p) for i, p in enumerate(payloads[:k])]
    assert rep.end == starts[k]
    assert rep.last_seq == 9 + k
    later_intact = how == "flip" and k < len(payloads) - 1
    assert bool(rep.problems) == later_intact


@SETTINGS
@given(payloads=st.lists(st.binary(min_size=1, max_size=100), min_size=2, max_size=8),
       data=st.data())
def test_wal_replay_ignores_records_of_an_earlier_pass(payloads: list[bytes],
                                                       data: st.DataObject) -> None:
    """A well-formed record with the expected seq that does not link to its predecessor."""
    current, crcs = wal_chain(payloads, 0)
    k = data.draw(st.integers(1, len(payloads) - 1), label="first stale record")
    stale, _ = wal_chain([bytes(b ^ 0x5A for b in p) for p in payloads], 0)
    region = b"".join(current[:k] + stale[k:])
    rep = replay(region, 0)
    assert rep.records == [(1 + i, p) for i, p in enumerate(payloads[:k])]
    assert rep.last_crc == crcs[k - 1] and rep.last_seq == k


# --------------------------------------------------------------------------- headers

headers = st.builds(
    lambda gen, wal_size, toc_extra, toc_len, toc_crc, ckpt, created, uuid, commit, flags:
    Header(gen, WAL_OFFSET + wal_size + toc_extra, toc_len, toc_crc, wal_size, ckpt, created,
           uuid, commit, flags),
    st.integers(1, 2**64 - 1), st.integers(MIN_WAL_SIZE, MAX_WAL_SIZE), st.integers(0, 2**60),
    st.integers(0, 2**63), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1),
    st.integers(-(2**63), 2**63 - 1), st.binary(min_size=16, max_size=16),
    st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**16 - 1),
)


def slot_bytes(header: Header) -> bytes:
    packed = header.pack()
    assert len(packed) == HEADER_BYTES <= SLOT_SIZE
    return packed + b"\x00" * (SLOT_SIZE - len(packed))


def two_slots(a: Header, b: Header) -> bytes:
    slots = [b"\x00" * SLOT_SIZE, b"\x00" * SLOT_SIZE]
    for h in (a, b):
        slots[h.slot] = slot_bytes(h)
    return slots[0] + slots[1]


@SETTINGS
@given(header=headers)
def test_header_pack_unpack(header: Header) -> None:
    raw = slot_bytes(header)
    assert unpack_header(raw, header.slot) == header
    with pytest.raises(FormatError):
        unpack_header(raw, 1 - header.slot)  # the slot must match the generation's parity
    chosen, problems = pick_header(two_slots(header, header))
    assert chosen == header and len(problems) == 1  # the other slot is empty


@SETTINGS
@given(a=headers, b=headers, data=st.data())
def test_pick_header_takes_newest_valid_slot(a: Header, b: Header, data: st.DataObject) -> None:
    if a.slot == b.slot:
        b = Header(b.generation ^ 1 if b.generation > 1 else 2, b.toc_offset, b.toc_len,
                   b.toc_crc, b.wal_size, b.wal_checkpoint_seq, b.created_at_us, b.uuid,
                   b.commit_time_us, b.flags)
    raw = bytearray(two_slots(a, b))
    chosen, problems = pick_header(bytes(raw))
    assert chosen == max(a, b, key=lambda h: h.generation) and problems == []
    damaged = data.draw(st.sampled_from([a, b]), label="damaged slot")
    pos = damaged.slot * SLOT_SIZE + data.draw(st.integers(0, HEADER_BYTES - 1), label="byte")
    raw[pos] ^= data.draw(st.integers(1, 255), label="xor")
    chosen, problems = pick_header(bytes(raw))
    assert chosen == (b if damaged is a else a) and len(problems) == 1
    other = (b if damaged is a else a).slot * SLOT_SIZE
    raw[other] ^= 0xFF  # both slots damaged: no usable header
    with pytest.raises(FormatError):
        pick_header(bytes(raw))


# ------------------------------------------------------------------------ bad input

NON_JSON = [{1, 2}, b"bytes", object(), 1 + 2j, math.nan, math.inf, -math.inf,
            datetime(2024, 1, 1, tzinfo=UTC)]
non_json_metadata = st.builds(
    lambda bad, path: _nest(bad, path),
    st.sampled_from(NON_JSON), st.lists(st.sampled_from(["dict", "list"]), max_size=3),
)
bad_key_metadata = st.builds(
    lambda key, path: _nest({key: 1}, path),
    st.sampled_from([1, None, (1, 2), True, 2.5, b"k"]),
    st.lists(st.sampled_from(["dict", "list"]), max_size=3),
)


def _nest(value: Any, path: list[str]) -> dict[str, Any]:
    for step in path:
        value = {"k": value} if step == "dict" else [0, value]
    return {"top": value}


def bad_record(kind: str, data: st.DataObject) -> tuple[dict[str, Any], type[Exception]]:
    """An invalid record of the given kind and the error it must raise."""
    if kind == "naive":
        naive = data.draw(st.datetimes(min_value=datetime(1970, 1, 2)), label="naive")
        return {"text": "t", "created_at": naive}, ValueError
    if kind == "nan":
        values = data.draw(vectors, label="vector")
        values[data.draw(st.integers(0, DIM - 1), label="at")] = data.draw(
            st.sampled_from([math.nan, math.inf, -math.inf]), label="bad")
        kind_in = data.draw(st.sampled_from(["list", "numpy64", "tuple"]), label="kind")
        return {"text": "t", "embedding": as_embedding_input(values, kind_in)}, ValueError
    if kind == "dim":
        n = data.draw(st.integers(0, 3 * DIM).filter(lambda n: n != DIM), label="dim")
        return {"text": "t", "embedding": [0.5] * n}, DimensionMismatchError
    if kind == "key":
        return {"text": "t", "metadata": data.draw(bad_key_metadata, label="meta")}, ValueError
    if kind == "value":
        return {"text": "t", "metadata": data.draw(non_json_metadata, label="meta")}, ValueError
    text = data.draw(st.sampled_from([b"bytes", None, 3, ["a"], 2.5]), label="text")
    return {"text": text}, TypeError


BAD_KINDS = ["naive", "nan", "dim", "key", "value", "text"]


@SETTINGS
@given(kind=st.sampled_from(BAD_KINDS), data=st.data())
def test_bad_input_raises_typed_errors(kind: str, data: st.DataObject) -> None:
    rec, error = bad_record(kind, data)
    with new_memory() as (_, mem):
        with pytest.raises(error):
            mem.put(**rec)
        if kind == "naive":
            naive = rec["created_at"]
            fid = mem.put("ok")
            for call in (lambda: mem.update(fid, created_at=naive), lambda: mem.as_of(naive),
                         lambda: mem.timeline(since=naive), lambda: mem.timeline(until=naive),
                         lambda: mem.compact(retain_after=naive)):
                with pytest.raises(ValueError):
                    call()
        else:
            fid = mem.put("ok")
            field = {"nan": "embedding", "dim": "embedding", "text": "text"}.get(kind, "metadata")
            with pytest.raises(error):
                mem.update(fid, **{field: rec[field]})
            assert mem.get(fid).version == 1 and len(mem.history(fid)) == 1


@SETTINGS
@given(existing=st.lists(frame_records, max_size=3, unique_by=lambda r: r["id"]),
       batch=st.lists(frame_records, max_size=4), kind=st.sampled_from(BAD_KINDS),
       seal=st.booleans(), data=st.data())
def test_failing_put_many_stores_nothing(existing: list[dict[str, Any]],
                                         batch: list[dict[str, Any]], kind: str, seal: bool,
                                         data: st.DataObject) -> None:
    bad, error = bad_record(kind, data)
    at = data.draw(st.integers(0, len(batch)), label="position")
    batch = [*batch[:at], bad, *batch[at:]]
    with new_memory(dim=None) as (path, mem):
        mem.put_many(existing)
        if seal:
            mem.seal()
        if kind == "dim" and mem.dim is None:  # the batch sets the dimension first
            batch.insert(at, {"text": "first", "embedding": [0.25] * DIM})
        before = mem.stats()
        frames = [(f.id, f.version, f.text) for f in mem.timeline()]
        with pytest.raises(error):
            mem.put_many(batch)
        after = mem.stats()
        assert (after.frames, after.versions, after.wal_records, after.wal_bytes,
                after.generation, after.dim) == (before.frames, before.versions,
                                                 before.wal_records, before.wal_bytes,
                                                 before.generation, before.dim)
        assert [(f.id, f.version, f.text) for f in mem.timeline()] == frames
        mem.close()
        with Memory.open(path, readonly=True) as reopened:
            assert [(f.id, f.version, f.text) for f in reopened.timeline()] == frames
            assert reopened.stats().versions == before.versions
