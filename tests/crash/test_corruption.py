"""Damaged files: flipped bytes and truncation in every region, torn WAL tails, foreign files.

Whatever the damage, opening and reading either work or raise a MemvidError (never a raw
Python exception), ``verify()`` never raises and names the damaged region, and data outside
the damage stays readable.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from memvid_store import (
    CorruptFileError,
    FrameNotFoundError,
    Memory,
    MemvidError,
    NotAMemoryFileError,
    VersionMismatchError,
)
from memvid_store.engine import format as fmt

from .conftest import (
    EXIT,
    SEAL,
    WAL_SIZE,
    Canon,
    Layout,
    canon,
    canon_frame,
    describe_diff,
    parse_layout,
    put,
    run_script,
    update,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
WORDS = "note meeting budget friday alpha beta vector memory agent tool reply draft".split()
FLIPS = 5  # seeded byte positions per region

Text = tuple[str, str, tuple[str, ...]]  # canon without embedding
Observed = dict[str, Any]  # id -> Canon | "missing" | "error:<class>"


def text_only(c: Canon) -> Text:
    return c[:3]


@dataclass
class Corpus:
    """A file with several commits (one merge), a dictionary and unsealed WAL records."""

    data: bytes
    layout: Layout
    gen_states: dict[int, dict[str, Canon]]  # state of each commit
    wal_states: list[dict[str, Canon]]  # [0]: newest commit, [i]: after i WAL records
    ever: dict[str, set[Text]]  # every content version written per id

    @property
    def full(self) -> dict[str, Canon]:
        return self.wal_states[-1]

    @property
    def ids(self) -> list[str]:
        return sorted(self.ever)


def _item(rng: random.Random, fid: str, n: int) -> dict[str, Any]:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
    return {"id": fid, "text": f"{fid}: {words}", "metadata": {"n": n, "w": rng.choice(WORDS)},
            "tags": [rng.choice(WORDS)], "embedding": [rng.randint(-8, 8) / 4 for _ in range(4)],
            "created_at": T0 + timedelta(minutes=n)}


def build_corpus(path: Path) -> Corpus:
    rng = random.Random(7)
    ever: dict[str, set[Text]] = {}
    mem = Memory.create(path, dim=4, wal_size=WAL_SIZE)

    def snap() -> dict[str, Canon]:
        return {f.id: canon_frame(f) for f in mem.timeline()}

    def put_many(items: list[dict[str, Any]]) -> None:
        mem.put_many(items)
        for it in items:
            ever.setdefault(it["id"], set()).add(
                text_only(canon(it["text"], it["metadata"], it["tags"], None)))

    def update(fid: str, text: str) -> None:
        old = mem.get(fid)
        mem.update(fid, text=text)
        ever[fid].add(text_only(canon(text, old.metadata, old.tags, None)))

    gen_states = {mem.generation: snap()}
    put_many([_item(rng, f"f{i:03d}", i) for i in range(300)])  # enough to train a dictionary
    mem.seal()
    gen_states[mem.generation] = snap()
    n = 300
    for round_ in range(4):  # four small runs: the fourth commit merges the small ones
        for fid in rng.sample(sorted(snap()), 5):
            update(fid, f"{fid} updated in round {round_}")
        for fid in rng.sample(sorted(snap()), 2):
            mem.delete(fid)
        put_many([_item(rng, f"g{n + i}", n + i) for i in range(5)])
        n += 5
        mem.seal()
        gen_states[mem.generation] = snap()
    wal_states = [snap()]
    put_many([_item(rng, "w1", 1000)])
    wal_states.append(snap())
    put_many([_item(rng, f"w{i}", 1000 + i) for i in (2, 3, 4)])
    wal_states.append(snap())
    update("f010", "f010 updated in the wal")
    wal_states.append(snap())
    mem.delete("f011")
    wal_states.append(snap())
    put_many([_item(rng, "w5", 1005), _item(rng, "w6", 1006)])
    wal_states.append(snap())
    data = path.read_bytes()  # taken while the WAL still holds the records
    mem.close()
    layout = parse_layout(data)
    assert len(layout.wal) == len(wal_states) - 1
    assert layout.dead_segments and layout.segments("dict") and layout.vblocks
    return Corpus(data, layout, gen_states, wal_states, ever)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("corpus") / "base.mv2")


# ----------------------------------------------------------------------------- probing


def guarded(label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; a MemvidError is returned, any other exception fails the test."""
    try:
        return fn(*args, **kwargs)
    except MemvidError as exc:
        return exc
    except Exception as exc:
        raise AssertionError(f"{label} raised a raw {type(exc).__name__}: {exc}") from exc


def open_guarded(path: Path, readonly: bool) -> Memory | MemvidError:
    return guarded(f"Memory.open(readonly={readonly})", Memory.open, path, readonly=readonly)


def read_all(mem: Memory, corpus: Corpus) -> Observed:
    """Read every frame every way; returns what get() gave for each id ever written."""
    for label, call in (("ids", mem.ids), ("timeline", mem.timeline), ("stats", mem.stats),
                        ("len", mem.__len__),
                        ("timeline reverse", lambda: mem.timeline(limit=10, reverse=True))):
        guarded(label, call)
    generation = guarded("generation", lambda: mem.generation)
    if isinstance(generation, int):
        for gen in range(1, generation + 1):
            view = guarded(f"as_of({gen})", mem.as_of, gen)
            if not isinstance(view, MemvidError):
                guarded(f"as_of({gen}).timeline", view.timeline, limit=25)
    observed: Observed = {}
    for fid in corpus.ids:
        frame = guarded(f"get({fid})", mem.get, fid)
        if isinstance(frame, FrameNotFoundError):
            observed[fid] = "missing"
        elif isinstance(frame, MemvidError):
            observed[fid] = f"error:{type(frame).__name__}"
        else:
            emb = guarded(f"get({fid}).embedding", lambda f=frame: f.embedding)
            vector = None if isinstance(emb, MemvidError) or emb is None else tuple(emb)
            observed[fid] = (*canon_frame(frame, with_embedding=False)[:3], vector)
            assert text_only(observed[fid]) in corpus.ever[fid], f"get({fid}) returned garbage"
        history = guarded(f"history({fid})", mem.history, fid)
        if isinstance(history, list):
            for version in history:
                assert text_only(canon_frame(version, False)) in corpus.ever[fid], (
                    f"history({fid}) returned garbage")
    return observed


def expected_view(state: dict[str, Canon], corpus: Corpus) -> Observed:
    return {fid: state.get(fid, "missing") for fid in corpus.ids}


def assert_observed(got: Observed, want: dict[str, Canon], corpus: Corpus, what: str,
                    with_embedding: bool = True) -> None:
    expected = expected_view(want, corpus)
    if not with_embedding:
        got = {k: v[:3] if isinstance(v, tuple) else v for k, v in got.items()}
        expected = {k: v[:3] if isinstance(v, tuple) else v for k, v in expected.items()}
    assert got == expected, f"{what}: {describe_diff(got, expected)}"


def assert_correct_or_error(got: Observed, corpus: Corpus, what: str) -> None:
    """Each id reads as in the undamaged file or fails with a MemvidError."""
    expected = expected_view(corpus.full, corpus)
    wrong = {fid: v for fid, v in got.items()
             if v != expected[fid] and not (isinstance(v, str) and v.startswith("error:"))}
    assert not wrong, f"{what}: wrong reads {describe_diff(wrong, expected)}"


def verify_guarded(mem: Memory) -> list[str]:
    try:
        report = mem.verify()
    except Exception as exc:
        raise AssertionError(f"verify() raised {type(exc).__name__}: {exc}") from exc
    assert report.ok == (not report.problems)
    return report.problems


def names_region(problems: list[str], keywords: tuple[str, ...]) -> bool:
    return any(k in p.lower() for p in problems for k in keywords)


def write_and_reopen(path: Path, what: str) -> None:
    """A writable open of a damaged file fails cleanly or takes a write that stays readable."""
    rw = open_guarded(path, readonly=False)
    if isinstance(rw, MemvidError):
        return
    try:
        written = guarded(f"{what}: put after damage", rw.put, "written after damage",
                          id="after-damage")
    finally:
        guarded(f"{what}: close after damage", rw.close)
    ro = open_guarded(path, readonly=True)
    if isinstance(ro, MemvidError):
        return
    with ro:
        guarded(f"{what}: reread", ro.ids)
        verify_guarded(ro)
        if written == "after-damage":
            # an acknowledged write may hit damage on reading, but never vanishes silently
            frame = guarded(f"{what}: get after damage", ro.get, "after-damage")
            assert not isinstance(frame, FrameNotFoundError), f"{what}: acked write lost"
            if not isinstance(frame, MemvidError):
                assert frame.text == "written after damage"


# ------------------------------------------------------------------------ bit flips


def _record_positions(corpus: Corpus, index: int) -> list[int]:
    rec = corpus.layout.wal[index]
    # bytes 20..24 of a record header are padding outside the checksum
    return [*range(rec.start, rec.start + 20), *range(rec.start + 24, rec.end)]


def _ranges(pairs: list[tuple[int, int]]) -> list[int]:
    return [p for off, length in pairs for p in range(off, off + length)]


def region_positions(corpus: Corpus, region: str) -> list[int]:
    lay = corpus.layout
    mid = len(lay.wal) // 2
    table: dict[str, Callable[[], list[int]]] = {
        "slot_a": lambda: list(range(fmt.HEADER_BYTES)),
        "slot_b": lambda: list(range(fmt.SLOT_SIZE, fmt.SLOT_SIZE + fmt.HEADER_BYTES)),
        "wal_middle_record": lambda: _record_positions(corpus, mid),
        "wal_last_record": lambda: _record_positions(corpus, len(lay.wal) - 1),
        "wal_unused": lambda: list(range(lay.wal_end, lay.wal_end + 8192)),
        "run_live": lambda: _ranges([(s.offset, s.length) for s in lay.segments("run")]),
        "run_dead": lambda: _ranges([(s.offset, s.length)
                                     for s in lay.segments("run", live=False)]),
        "payload_blocks": lambda: _ranges(lay.blocks),
        "vector_blocks": lambda: _ranges(lay.vblocks),
        "dict": lambda: _ranges([(s.offset, s.length) for s in lay.segments("dict")]),
        "toc_newest": lambda: _ranges([lay.tocs[0][1:]]),
        "toc_older": lambda: _ranges([lay.tocs[1][1:]]),
    }
    return table[region]()


REGIONS = ("slot_a", "slot_b", "wal_middle_record", "wal_last_record", "wal_unused", "run_live",
           "run_dead", "payload_blocks", "vector_blocks", "dict", "toc_newest", "toc_older")


def flipped(corpus: Corpus, region: str, k: int) -> tuple[bytes, int]:
    rng = random.Random(f"{region}/{k}")
    pos = rng.choice(region_positions(corpus, region))
    data = bytearray(corpus.data)
    data[pos] ^= rng.randint(1, 255)
    return bytes(data), pos


@pytest.mark.crash
@pytest.mark.parametrize("k", range(FLIPS))
@pytest.mark.parametrize("region", REGIONS)
def test_flipped_byte(tmp_path: Path, corpus: Corpus, region: str, k: int) -> None:
    """One damaged byte: clean errors only, verify names the region, the rest stays readable."""
    data, pos = flipped(corpus, region, k)
    what = f"{region} byte {pos}"
    path = tmp_path / "damaged.mv2"
    path.write_bytes(data)
    lay = corpus.layout
    newest_slot = lay.header.slot
    previous_gen = lay.tocs[1][0]

    ro = open_guarded(path, readonly=True)
    if isinstance(ro, MemvidError):
        assert region == "run_live", f"{what}: open failed: {ro!r}"
        write_and_reopen(path, what)
        return
    with ro:
        got = read_all(ro, corpus)
        problems = verify_guarded(ro)
        errors = {fid for fid, v in got.items() if isinstance(v, str) and v.startswith("error")}
        if region in ("slot_a", "slot_b"):
            # the other slot is intact: committed data and the WAL stay readable
            slot = 0 if region == "slot_a" else 1
            kind = "newest" if slot == newest_slot else "older"
            assert_observed(got, corpus.full, corpus, f"{what} ({kind} slot)")
            assert names_region(problems, ("header",)), f"{what}: {problems}"
        elif region == "wal_middle_record":
            # replay stops at the damaged record: the records before it survive
            assert_observed(got, corpus.wal_states[len(lay.wal) // 2], corpus, what)
            assert names_region(problems, ("wal",)), f"{what}: {problems}"
        elif region == "wal_last_record":
            # a damaged last record looks like a torn append: everything before it survives
            assert_observed(got, corpus.wal_states[-2], corpus, what)
        elif region == "wal_unused":
            assert_observed(got, corpus.full, corpus, what)
            assert not problems, f"{what}: {problems}"
        elif region == "run_dead":
            assert_observed(got, corpus.full, corpus, what)
            assert names_region(problems, ("segment",)), f"{what}: {problems}"
        elif region == "run_live":
            # every part of a run is checksummed: a read is right or fails, never wrong
            assert_correct_or_error(got, corpus, what)
            assert names_region(problems, ("segment",)), f"{what}: {problems}"
        elif region == "payload_blocks":
            # one stored payload is damaged: at most one frame fails, with a clean error
            assert len(errors) <= 1, f"{what}: {sorted(errors)}"
            assert_correct_or_error(got, corpus, what)
            assert names_region(problems, ("segment", "frame")), f"{what}: {problems}"
        elif region == "vector_blocks":
            # vectors are checked by verify() only; text, metadata and tags are intact
            assert_observed(got, corpus.full, corpus, what, with_embedding=False)
            assert names_region(problems, ("segment", "vector")), f"{what}: {problems}"
        elif region == "dict":
            # frames compressed with the dictionary fail cleanly, the others read fine
            assert_correct_or_error(got, corpus, what)
            assert names_region(problems, ("segment", "dict")), f"{what}: {problems}"
        elif region == "toc_newest":
            # the previous commit (the other slot) is intact and opens
            assert ro.generation == previous_gen, f"{what}: generation {ro.generation}"
            assert_observed(got, corpus.gen_states[previous_gen], corpus, what)
            assert names_region(problems, ("toc",)), f"{what}: {problems}"
        elif region == "toc_older":
            assert_observed(got, corpus.full, corpus, what)
            assert names_region(problems, ("toc",)), f"{what}: {problems}"
    write_and_reopen(path, what)


# ------------------------------------------------------------------------ truncation


def truncation_points(corpus: Corpus) -> dict[str, int]:
    lay = corpus.layout
    runs = sorted(lay.segments("run") + lay.segments("run", live=False), key=lambda s: s.offset)
    _gen, toc_off, toc_len = lay.tocs[0]
    last = lay.wal[-1]
    return {
        "empty": 0, "header:1": 1, "header:100": 100, "header:slot_a_end": fmt.SLOT_SIZE - 1,
        "header:slot_b_start": fmt.SLOT_SIZE, "header:slot_b_mid": fmt.SLOT_SIZE + 40,
        "header:end": fmt.HEADER_SIZE - 1, "wal:start": fmt.WAL_OFFSET,
        "wal:first_record": lay.wal[0].start + 10, "wal:last_record": (last.start + last.end) // 2,
        "wal:region_end": lay.header.data_start - 1,
        "segments:dict": lay.segments("dict")[0].offset + 100,
        "segments:first_run": runs[0].offset + runs[0].length // 2,
        "segments:blocks": lay.blocks[0][0] + lay.blocks[0][1] // 2,
        "segments:last_run": runs[-1].offset + 7,
        "toc:start": toc_off, "toc:first_byte": toc_off + 1, "toc:middle": toc_off + toc_len // 2,
        "toc:last_byte": toc_off + toc_len - 1,
    }


TRUNCATIONS = ("empty", "header:1", "header:100", "header:slot_a_end", "header:slot_b_start",
               "header:slot_b_mid", "header:end", "wal:start", "wal:first_record",
               "wal:last_record", "wal:region_end", "segments:dict", "segments:first_run",
               "segments:blocks", "segments:last_run", "toc:start", "toc:first_byte",
               "toc:middle", "toc:last_byte")


@pytest.mark.crash
@pytest.mark.parametrize("where", TRUNCATIONS)
def test_truncated(tmp_path: Path, corpus: Corpus, where: str) -> None:
    """A truncated file opens to an older intact commit or fails with a MemvidError."""
    size = truncation_points(corpus)[where]
    assert size < len(corpus.data)
    path = tmp_path / "short.mv2"
    path.write_bytes(corpus.data[:size])
    lay = corpus.layout
    ro = open_guarded(path, readonly=True)
    if where.startswith("toc:"):
        # only the newest TOC is cut: the previous commit is complete
        assert not isinstance(ro, MemvidError), f"truncated at {where}: {ro!r}"
    if size < fmt.SLOT_SIZE:
        assert isinstance(ro, NotAMemoryFileError), f"{size}-byte file: {ro!r}"
    if not isinstance(ro, MemvidError):
        with ro:
            got = read_all(ro, corpus)
            gen = ro.generation
            assert gen in corpus.gen_states and gen < lay.tocs[0][0]
            assert_observed(got, corpus.gen_states[gen], corpus, f"truncated at {where}")
            problems = verify_guarded(ro)
            assert names_region(problems, ("toc",)), f"truncated at {where}: {problems}"
    write_and_reopen(path, f"truncated at {where}")


# ------------------------------------------------------------------------ torn WAL tail


@pytest.fixture(scope="module")
def small_wal_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[Any]]:
    """20 sealed frames, then four WAL records; the last one is a three-frame batch."""
    path = tmp_path_factory.mktemp("torn") / "torn.mv2"
    rng = random.Random(11)
    states = []
    with Memory.create(path, dim=4, wal_size=WAL_SIZE) as mem:
        mem.put_many([_item(rng, f"s{i}", i) for i in range(20)])
        mem.seal()
        states.append({f.id: canon_frame(f) for f in mem.timeline()})
        mem.put("r1 single", id="r1")
        mem.update("s3", text="s3 changed in the wal")
        mem.delete("s4")
        states.append({f.id: canon_frame(f) for f in mem.timeline()})
        mem.put_many([{"id": f"r{i}", "text": f"short r{i}", "metadata": {"i": i},
                       "embedding": [i, 0.5, -1, 2]} for i in (2, 3, 4)])
        states.append({f.id: canon_frame(f) for f in mem.timeline()})
        data = path.read_bytes()
    return data, states


@pytest.mark.crash
def test_torn_last_wal_record_at_every_byte(tmp_path: Path,
                                            small_wal_file: tuple[bytes, list[Any]]) -> None:
    """A last WAL record written up to any byte recovers exactly the records before it."""
    data, states = small_wal_file
    lay = parse_layout(data)
    assert len(lay.wal) == 4
    last = lay.wal[-1]
    end = last.start + fmt.align(last.end - last.start)
    assert end - last.start < 4096, "record too large for an every-byte loop"
    before, after = states[-2], states[-1]
    probe = set(before) | set(after) | {"s4"}
    path = tmp_path / "torn.mv2"
    path.write_bytes(data)
    rng = random.Random(3)
    for cut in range(end - last.start):
        for fill in ("zeros", "noise") if cut % 8 == 0 else ("zeros",):
            tail = end - (last.start + cut)
            torn = data[last.start : last.start + cut] + (
                bytes(tail) if fill == "zeros" else rng.randbytes(tail))
            with open(path, "r+b") as fh:
                fh.seek(last.start)
                fh.write(torn)
            intact = torn[: last.end - last.start] == data[last.start : last.end]
            want = after if intact else before
            what = f"record torn after {cut} bytes ({fill})"
            with Memory.open(path, readonly=True) as ro:
                got = {f.id: canon_frame(f) for f in ro.timeline()}
                assert got == want, f"{what}: {describe_diff(got, want)}"
                for fid in probe - set(want):
                    with pytest.raises(FrameNotFoundError):
                        ro.get(fid)
                if cut < 32 or cut % 16 == 0:  # verify() scans the whole WAL region
                    report = ro.verify()
                    assert report.ok, f"{what}: {report.problems}"
            if cut % 32 == 0:
                # the next writer overwrites the torn tail and its record survives
                with Memory.open(path) as rw:
                    rw.put("after the torn record", id="next")
                with Memory.open(path, readonly=True) as ro:
                    assert ro.get("next").text == "after the torn record"
                    assert set(ro.ids()) == set(want) | {"next"}
                    assert ro.verify().ok
                path.write_bytes(data)


@pytest.mark.crash
def test_records_behind_a_damaged_wal_record_stay_lost(tmp_path: Path) -> None:
    """Records behind a damaged one are never replayed later, over newer acknowledged writes.

    Replay stops at the damaged record; the next writer appends from there. When its record
    has the damaged one's length, the old records behind it line up again and must not be
    taken for a continuation (their sequence numbers and version links are stale).
    """
    path = tmp_path / "stale.mv2"
    steps = [put("base", "sealed"), SEAL, put("k1", "A" * 50), put("k2", "B" * 50),
             update("k2", "C" * 50, {"v": 2}), put("k4", "D" * 50), EXIT]
    code, _ = run_script(path, steps, tmp_path, "stale-base")
    assert code == 0
    data = bytearray(path.read_bytes())
    damaged = parse_layout(bytes(data)).wal[1]  # the put of k2
    old_length = data[damaged.start + 4 : damaged.start + 8]
    data[damaged.start + 30] ^= 0xFF
    path.write_bytes(bytes(data))
    with Memory.open(path, readonly=True) as ro:
        assert sorted(ro.ids()) == ["base", "k1"]
        assert names_region(ro.verify().problems, ("wal",))

    code, log = run_script(path, [put("k2", "E" * 50), EXIT], tmp_path, "stale-write")
    assert code == 0 and len(log.acked) == 1
    written = path.read_bytes()
    assert written[damaged.start + 4 : damaged.start + 8] == old_length, "scenario precondition"
    with Memory.open(path, readonly=True) as ro:
        assert ro.get("k2").text == "E" * 50, "an acknowledged write was overridden"
        assert sorted(ro.ids()) == ["base", "k1", "k2"]
        assert [f.text for f in ro.history("k2")] == ["E" * 50]


# ------------------------------------------------------------------- foreign files


FOREIGN: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "random-100": lambda: random.Random(1).randbytes(100),
    "random-64k": lambda: random.Random(2).randbytes(65536),
    "zeros-8k": lambda: bytes(8192),
    "text": lambda: ("just some notes, not a memory file\n" * 400).encode(),
    "json": lambda: b'{"frames": []}\n',
}


@pytest.mark.crash
@pytest.mark.parametrize("kind", list(FOREIGN))
def test_foreign_file_is_not_a_memory_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "foreign.mv2"
    content = FOREIGN[kind]()
    path.write_bytes(content)
    for readonly in (True, False):
        with pytest.raises(NotAMemoryFileError):
            Memory.open(path, readonly=readonly)
    assert path.read_bytes() == content, "a failed open changed the file"


@pytest.mark.crash
def test_directory_is_not_a_memory_file(tmp_path: Path) -> None:
    with pytest.raises(NotAMemoryFileError):
        Memory.open(tmp_path, readonly=True)


@pytest.mark.crash
def test_magic_followed_by_garbage(tmp_path: Path) -> None:
    """Header slots with the magic but garbage after it: a MemvidError, never a raw one."""
    path = tmp_path / "garbage.mv2"
    body = random.Random(5).randbytes(fmt.HEADER_SIZE + WAL_SIZE + 4096)
    path.write_bytes(fmt.MAGIC + body[4 : fmt.SLOT_SIZE] + fmt.MAGIC + body[fmt.SLOT_SIZE + 4 :])
    for readonly in (True, False):
        result = guarded("open garbage", Memory.open, path, readonly=readonly)
        assert isinstance(result, MemvidError), f"garbage opened as {result!r}"


# --------------------------------------------------------------------- format version


def patch_version(data: bytes, slots: tuple[int, ...], version: int = fmt.FORMAT_VERSION + 1
                  ) -> bytes:
    out = bytearray(data)
    for slot in slots:
        raw = data[slot * fmt.SLOT_SIZE : (slot + 1) * fmt.SLOT_SIZE]
        header = fmt.unpack_header(raw, slot)
        packed = dataclasses.replace(header, version=version).pack()
        out[slot * fmt.SLOT_SIZE : slot * fmt.SLOT_SIZE + len(packed)] = packed
    return bytes(out)


@pytest.mark.crash
def test_newer_version_in_both_slots(tmp_path: Path, corpus: Corpus) -> None:
    path = tmp_path / "newer.mv2"
    path.write_bytes(patch_version(corpus.data, (0, 1)))
    for readonly in (True, False):
        with pytest.raises(VersionMismatchError):
            Memory.open(path, readonly=readonly)
    assert path.read_bytes() == patch_version(corpus.data, (0, 1))


@pytest.mark.crash
def test_newer_version_in_single_commit_file(tmp_path: Path) -> None:
    path = tmp_path / "one.mv2"
    Memory.create(path, wal_size=WAL_SIZE).close()
    data = path.read_bytes()
    slot = parse_layout(data).header.slot
    path.write_bytes(patch_version(data, (slot,)))
    with pytest.raises(VersionMismatchError):
        Memory.open(path, readonly=True)


@pytest.mark.crash
def test_newer_version_in_newest_slot_only(tmp_path: Path, corpus: Corpus) -> None:
    """The newest commit was written by a newer format: refuse, do not fall back past it."""
    path = tmp_path / "newer.mv2"
    patched = patch_version(corpus.data, (corpus.layout.header.slot,))
    path.write_bytes(patched)
    for readonly in (True, False):
        with pytest.raises(VersionMismatchError):
            Memory.open(path, readonly=readonly)
    assert path.read_bytes() == patched, "an open changed a file of a newer format"


@pytest.mark.crash
def test_damaged_file_reports_corrupt_not_raw(tmp_path: Path, corpus: Corpus) -> None:
    """Both header slots damaged: a CorruptFileError, and verify() reports the header."""
    data = bytearray(corpus.data)
    data[40] ^= 0xFF
    data[fmt.SLOT_SIZE + 40] ^= 0xFF
    path = tmp_path / "both.mv2"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        Memory.open(path, readonly=True)
