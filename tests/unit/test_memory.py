"""Behaviour of the Memory facade: writes, reads, versions, time travel, lifecycle."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from memvid_store import (
    AlreadyExistsError,
    ClosedError,
    DimensionMismatchError,
    FrameNotFoundError,
    HistoryUnavailableError,
    InvalidInputError,
    Memory,
    MemoryNotFoundError,
    NotAMemoryFileError,
    ReadOnlyError,
)
from tests.conftest import day


def now() -> datetime:
    return datetime.now(UTC)


def test_put_get_roundtrip(mem):
    fid = mem.put("hello", embedding=[1, 2, 3, 4], metadata={"a": {"b": [1, 2.5, None]}},
                  tags=["x", "y"], created_at=day(3))
    frame = mem.get(fid)
    assert (frame.id, frame.text, frame.metadata, frame.tags) == (
        fid, "hello", {"a": {"b": [1, 2.5, None]}}, ["x", "y"])
    assert frame.created_at == day(3)
    assert frame.version == 1 and frame.valid_to is None
    assert frame.embedding == [1.0, 2.0, 3.0, 4.0]


def test_created_at_defaults_to_now_and_keeps_offsets(mem):
    before = now()
    a = mem.put("a")
    b = mem.put("b", created_at=datetime(2019, 5, 1, 12, tzinfo=timezone(timedelta(hours=8))))
    assert before <= mem.get(a).created_at <= now()
    assert mem.get(b).created_at == datetime(2019, 5, 1, 4, tzinfo=UTC)


def test_explicit_id_put_twice_makes_a_new_version(mem):
    mem.put("one", id="k")
    mem.put("two", id="k")
    assert mem.get("k").text == "two" and mem.get("k").version == 2
    assert [f.text for f in mem.history("k")] == ["one", "two"]
    assert len(mem) == 1


def test_a_large_batch_links_each_id_to_its_latest_version(mem):
    """A put of many named ids looks them up together: ids in sealed runs, in the WAL,
    deleted, repeated within the batch and new all get the right version."""
    mem.put_many([{"id": f"k{i}", "text": f"a{i}"} for i in range(300)])
    mem.seal()
    mem.put_many([{"id": f"k{i}", "text": f"b{i}"} for i in range(0, 300, 3)])
    mem.seal()
    mem.delete_many([f"k{i}" for i in range(1, 300, 3)])
    mem.put_many([{"id": f"k{i}", "text": f"w{i}"} for i in range(2, 300, 30)])  # the WAL
    batch = [{"id": f"k{i}", "text": f"c{i}"} for i in range(0, 300, 2)]
    batch += [{"id": "k0", "text": "again"}, {"id": "new", "text": "n1"},
              {"id": "new", "text": "n2"}]
    mem.put_many(batch)
    for i in range(0, 300, 2):
        k = f"k{i}"
        put_before = 1 + (i % 3 == 0) + (i % 3 == 1) + (i % 30 == 2)  # puts and deletes
        want = put_before + 1 + (i == 0)
        assert mem.get(k).version == want, k
        assert [f.text for f in mem.history(k)][-1] == ("again" if i == 0 else f"c{i}")
    assert mem.get("new").version == 2 and mem.get("new").text == "n2"
    assert mem.get("k3").version == 2 and "k1" not in mem


@pytest.mark.parametrize("n", [5, 200])  # one lookup each; looked up together
def test_get_many_returns_current_frames_in_order(mem, n):
    mem.put_many([{"id": f"k{i}", "text": f"a{i}"} for i in range(n)])
    mem.seal()
    mem.put_many([{"id": f"k{i}", "text": f"b{i}"} for i in range(0, n, 2)])  # the WAL
    mem.delete_many([f"k{i}" for i in range(1, n, 4)])
    before = mem.generation
    mem.put("late", id="new")
    ids = [f"k{i}" for i in range(n)] + ["never", "k0", "new"]
    frames = mem.get_many(ids)
    want = [None if i % 4 == 1 else (f"b{i}" if i % 2 == 0 else f"a{i}") for i in range(n)]
    assert [f and f.text for f in frames] == [*want, None, "b0", "late"]
    assert [f.id for f in frames if f is not None] == [
        i for i, w in zip(ids, [*want, None, "b0", "late"], strict=True) if w is not None]
    assert [f and f.text for f in mem.as_of(before).get_many(["new", "k0"])] == [None, "b0"]
    other = mem.collection("other")
    other.put("elsewhere", id="k0")
    assert [f and f.text for f in other.get_many(["k0", "k2"])] == ["elsewhere", None]
    with pytest.raises(InvalidInputError):
        mem.get_many(["ok", ""])


def test_update_keeps_unspecified_fields(mem):
    fid = mem.put("v1", embedding=[1, 0, 0, 0], metadata={"m": 1}, tags=["t"], created_at=day(1))
    assert mem.update(fid, text="v2") == 2
    frame = mem.get(fid)
    assert (frame.text, frame.metadata, frame.tags, frame.created_at) == ("v2", {"m": 1}, ["t"],
                                                                          day(1))
    assert frame.embedding == [1.0, 0.0, 0.0, 0.0]
    mem.update(fid, metadata={"m": 2}, embedding=None)
    assert mem.get(fid).metadata == {"m": 2} and mem.get(fid).embedding is None


def test_delete_hides_frame_but_keeps_history(mem):
    fid = mem.put("secret")
    before = now()
    mem.delete(fid)
    with pytest.raises(FrameNotFoundError) as info:
        mem.get(fid)
    assert info.value.frame_id == fid and isinstance(info.value, KeyError)
    assert fid not in mem
    hist = mem.history(fid)
    assert [f.text for f in hist] == ["secret"] and hist[0].valid_to is not None
    assert mem.as_of(before).get(fid).text == "secret"
    with pytest.raises(FrameNotFoundError):
        mem.delete(fid)


def test_unknown_id_errors(mem):
    for call in (mem.get, mem.history, mem.delete, lambda i: mem.update(i, text="x")):
        with pytest.raises(FrameNotFoundError):
            call("nope")


@pytest.mark.parametrize("sealed", [False, True])
def test_as_of_time_and_generation(mem, sealed):
    fid = mem.put("first", id="doc")
    t1 = now()
    g1 = mem.seal()
    time.sleep(0.002)
    mem.update(fid, text="second")
    other = mem.put("other")
    t2 = now()
    if sealed:
        mem.seal()
    assert mem.as_of(t1).get("doc").text == "first"
    assert mem.as_of(g1).get("doc").text == "first"
    assert other not in mem.as_of(t1)
    assert mem.as_of(t2).get("doc").text == "second"
    assert [f.text for f in mem.as_of(t1).timeline()] == ["first"]
    view_hist = mem.as_of(t1).history("doc")
    assert len(view_hist) == 1 and view_hist[0].valid_to is None
    assert mem.as_of(datetime(2000, 1, 1, tzinfo=UTC)).timeline() == []


def test_as_of_survives_reopen(mem_path, opened):
    m = Memory.create(mem_path)
    m.put("a", id="x")
    t = now()
    m.update("x", text="b")
    m.close()
    m = Memory.open(mem_path, readonly=True)
    opened.append(m)
    assert m.as_of(t).get("x").text == "a" and m.get("x").text == "b"


def test_as_of_rejects_bad_arguments(mem):
    mem.put("a")
    with pytest.raises(TypeError):
        mem.as_of("yesterday")
    with pytest.raises(ValueError):
        mem.as_of(datetime(2024, 1, 1))  # naive
    with pytest.raises(ValueError):
        mem.as_of(mem.generation + 5)
    with pytest.raises(TypeError):
        mem.as_of(True)


def test_views_are_read_only(mem):
    mem.put("a", id="a")
    view = mem.as_of(now())
    for call in (lambda: view.put("x"), lambda: view.delete("a"), view.seal, view.compact):
        with pytest.raises(ReadOnlyError):
            call()


def test_timeline_order_range_limit_reverse(mem):
    ids = [mem.put(f"t{i}", created_at=day(i)) for i in (5, 1, 3, 2, 4)]
    mem.seal()
    late = mem.put("t0", created_at=day(0))
    texts = [f.text for f in mem.timeline()]
    assert texts == ["t0", "t1", "t2", "t3", "t4", "t5"]
    assert [f.text for f in mem.timeline(since=day(2), until=day(4))] == ["t2", "t3"]
    assert [f.text for f in mem.timeline(limit=2, reverse=True)] == ["t5", "t4"]
    mem.delete(ids[0])
    assert "t5" not in [f.text for f in mem.timeline()]
    assert mem.timeline(limit=1)[0].id == late
    with pytest.raises(ValueError):
        mem.timeline(limit=-1)


def test_timeline_ties_follow_insertion_order(mem):
    ids = [mem.put(str(i), created_at=day(1)) for i in range(5)]
    mem.seal()
    ids += [mem.put(str(i), created_at=day(1)) for i in range(5, 8)]
    assert [f.id for f in mem.timeline()] == ids


def test_put_many_is_atomic_on_bad_record(mem):
    mem.put("keep")
    with pytest.raises(TypeError):
        mem.put_many([{"text": "ok"}, {"text": 5}])
    with pytest.raises(DimensionMismatchError):
        mem.put_many([{"text": "ok", "embedding": [1, 2, 3, 4]}, {"text": "x", "embedding": [1]}])
    assert [f.text for f in mem.timeline()] == ["keep"]


def test_put_many_duplicate_ids_last_wins(mem):
    mem.put_many([{"text": "a", "id": "d"}, {"text": "b", "id": "d"}])
    assert mem.get("d").text == "b" and mem.get("d").version == 2 and len(mem) == 1
    mem.seal()
    assert mem.get("d").text == "b" and [f.text for f in mem.history("d")] == ["a", "b"]


def test_large_batch_commits_directly_and_merges_runs(mem_path, opened):
    m = Memory.create(mem_path, dim=8, wal_size=1 << 20)
    opened.append(m)
    for b in range(12):
        m.put_many([{"text": f"batch {b} row {i} " + "lorem ipsum " * 20,
                     "embedding": [float(b), float(i)] + [0.5] * 6,
                     "id": f"{b}-{i}"} for i in range(400)])
    stats = m.stats()
    assert stats.frames == 4800 and stats.runs <= 6
    assert m.get("7-123").text.startswith("batch 7 row 123 ")
    assert m.get("11-0").embedding[:2] == [11.0, 0.0]
    m.update("0-0", text="changed")
    m.seal()
    assert m.get("0-0").text == "changed"
    assert m.verify().ok


def test_dimension_is_learned_and_enforced(mem_path, opened):
    m = Memory.create(mem_path)
    opened.append(m)
    assert m.dim is None
    m.put("a", embedding=[0.1, 0.2, 0.3])
    assert m.dim == 3
    with pytest.raises(DimensionMismatchError) as info:
        m.put("b", embedding=[1, 2])
    assert (info.value.expected, info.value.got) == (3, 2)
    m.close()
    m2 = Memory.open(mem_path)
    opened.append(m2)
    assert m2.dim == 3


def test_one_batch_learns_the_dimension_from_its_first_embedding(mem_path, opened):
    m = Memory.create(mem_path)
    opened.append(m)
    plain = [{"text": f"t{i}"} for i in range(3)]
    with pytest.raises(DimensionMismatchError) as info:
        m.put_many([*plain, {"text": "a", "embedding": [0.1, 0.2, 0.3]}, *plain,
                    {"text": "b", "embedding": [1.0, 2.0]}])
    assert (info.value.expected, info.value.got) == (3, 2)
    assert len(m) == 0 and m.dim is None  # nothing of the refused batch was written
    m.put_many([*plain, {"text": "a", "embedding": [0.1, 0.2, 0.3]},
                {"text": "b", "embedding": [1.0, 2.0, 3.0]}])
    assert len(m) == 5 and m.dim == 3


@pytest.mark.parametrize(
    "bad", [[float("nan")] * 4, [float("inf")] * 4, [], "abcd", [1, "a", 2, 3]])
def test_bad_embeddings_are_refused(mem, bad):
    with pytest.raises((ValueError, TypeError)):
        mem.put("x", embedding=bad)
    assert len(mem) == 0


def test_numpy_embeddings_are_accepted(mem):
    np = pytest.importorskip("numpy")
    fid = mem.put("x", embedding=np.arange(4, dtype=np.float64))
    assert mem.get(fid).embedding == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        mem.put("y", embedding=np.array([1, np.nan, 0, 0]))


@pytest.mark.parametrize("kwargs, error", [
    ({"metadata": {1: "x"}}, ValueError),
    ({"metadata": {"x": float("nan")}}, ValueError),
    ({"metadata": {"x": object()}}, ValueError),
    ({"metadata": ["x"]}, TypeError),
    ({"tags": "single"}, TypeError),
    ({"tags": [""]}, TypeError),
    ({"created_at": datetime(2024, 1, 1)}, ValueError),
    ({"created_at": "2024-01-01"}, TypeError),
    ({"id": ""}, ValueError),
    ({"id": 5}, TypeError),
    ({"id": "a\x00b"}, ValueError),  # NUL separates a collection from an id
])
def test_bad_input_is_refused(mem, kwargs, error):
    with pytest.raises(error):
        mem.put("x", **kwargs)
    assert len(mem) == 0


def test_unknown_record_keys_and_options(mem, mem_path):
    with pytest.raises(TypeError, match="unknown key"):
        mem.put_many([{"text": "x", "colour": "red"}])
    with pytest.raises(TypeError, match="unknown option"):
        Memory.open(mem_path, readonly=True, colour="red")
    with pytest.raises(ValueError, match="wal_size"):
        Memory.create(mem_path + "2", wal_size=10)


def test_create_and_open_errors(mem_path, tmp_path, opened):
    with pytest.raises(MemoryNotFoundError):
        Memory.open(mem_path)
    opened.append(Memory.create(mem_path))
    with pytest.raises(AlreadyExistsError):
        Memory.create(mem_path)
    text = tmp_path / "notes.txt"
    text.write_text("just some text, long enough to cover a header slot " * 100)
    with pytest.raises(NotAMemoryFileError):
        Memory.open(text, readonly=True)
    with pytest.raises(NotAMemoryFileError):
        Memory.open(tmp_path, readonly=True)
    assert not [p for p in os.listdir(tmp_path) if ".creating-" in p]


def test_close_is_idempotent_and_blocks_use(mem_path):
    m = Memory.create(mem_path)
    m.put("a", id="a")
    view = m.as_of(datetime.now(UTC))
    m.close()
    m.close()
    with pytest.raises(ClosedError):
        m.get("a")
    with pytest.raises(ClosedError):
        view.get("a")
    with Memory.open(mem_path, readonly=True) as r:
        assert r.get("a").text == "a"


def test_close_seals_wal(mem_path):
    with Memory.create(mem_path) as m:
        m.put("a")
        assert m.stats().wal_records == 1
    with Memory.open(mem_path, readonly=True) as r:
        stats = r.stats()
        assert stats.wal_records == 0 and stats.frames == 1 and stats.generation == 3  # put, seal


def test_readonly_refuses_writes(mem_path):
    Memory.create(mem_path).close()
    with Memory.open(mem_path, readonly=True) as r:
        for call in (lambda: r.put("x"), lambda: r.update("a", text="b"), lambda: r.delete("a"),
                     r.seal, r.compact):
            with pytest.raises(ReadOnlyError):
                call()


def test_stats(mem):
    mem.put("hello " * 100, embedding=[1, 1, 1, 1])
    fid = mem.put("bye")
    mem.delete(fid)
    mem.seal()
    s = mem.stats()
    assert (s.frames, s.versions, s.deleted, s.dim, s.runs) == (1, 3, 1, 4, 1)
    assert s.text_bytes == 603 and 0 < s.stored_bytes < s.text_bytes
    assert s.as_dict()["created_at"].startswith(str(s.created_at.year))


def test_compact_keeps_all_history_by_default(mem):
    fid = mem.put("v1", id="d")
    t1 = now()
    mem.update(fid, text="v2")
    gone = mem.put("gone")
    mem.delete(gone)
    size_before = mem.stats().file_bytes
    mem.compact()
    assert mem.get("d").text == "v2" and mem.as_of(t1).get("d").text == "v1"
    assert [f.text for f in mem.history(gone)] == ["gone"]
    # the data is rewritten once; new bytes are the BM25 index files of sealed frames
    assert mem.stats().file_bytes <= size_before + 16384
    assert mem.verify().ok


def test_compact_retain_after_drops_older_history(mem):
    mem.put("v1", id="d")
    mem.put("old-deleted", id="x")
    mem.delete("x")
    time.sleep(0.002)
    cut = now()
    time.sleep(0.002)
    mem.update("d", text="v2")
    after = now()
    mem.compact(retain_after=cut)
    assert mem.as_of(after).get("d").text == "v2"
    assert mem.as_of(cut).get("d").text == "v1"  # v1 was still current at the cut
    with pytest.raises(FrameNotFoundError):
        mem.history("x")
    with pytest.raises(HistoryUnavailableError):
        mem.as_of(cut - timedelta(seconds=1))
    assert mem.stats().history_floor == cut
    mem.put("after compaction", id="n")
    assert mem.get("n").text == "after compaction"


def test_reader_follows_writer_with_refresh(mem_path, opened):
    w = Memory.create(mem_path)
    opened.append(w)
    w.put("a", id="a")
    r = Memory.open(mem_path, readonly=True)
    opened.append(r)
    w.put("b", id="b")
    assert "b" not in r
    r.refresh()
    assert r.get("b").text == "b"
    w.seal()
    w.put("c", id="c")
    r.refresh()
    assert sorted(r.ids()) == ["a", "b", "c"]


def test_mmap_off_reads_the_same(mem_path, opened):
    with Memory.create(mem_path) as m:
        m.put_many([{"text": f"row {i}", "id": str(i)} for i in range(300)])
    a = Memory.open(mem_path, readonly=True)
    b = Memory.open(mem_path, readonly=True, mmap=False)
    opened += [a, b]
    assert a.stats().mmap and not b.stats().mmap
    assert [(f.id, f.text) for f in a.timeline()] == [(f.id, f.text) for f in b.timeline()]


def test_dictionary_compression_kicks_in(mem_path, opened):
    m = Memory.create(mem_path, wal_size=1 << 20)
    opened.append(m)
    words = "agent memory budget meeting friday planning vector index time travel".split()
    m.put_many([{"text": " ".join(words[(i + j) % len(words)] for j in range(40)) + f" #{i}"}
                for i in range(1000)])
    m.seal()
    s = m.stats()
    assert s.text_bytes / s.stored_bytes > 3
    assert m.get(m.ids()[500]).text.endswith("#500")


def test_damaged_newest_toc_falls_back_to_previous_commit(mem_path, opened):
    with Memory.create(mem_path) as m:
        m.put("kept", id="a")
        m.seal()
        m.put("in the damaged commit", id="b")
    size = os.path.getsize(mem_path)
    with open(mem_path, "r+b") as fh:
        fh.truncate(size - 20)  # cut into the newest TOC
    r = Memory.open(mem_path, readonly=True)
    opened.append(r)
    # the previous commit is used, and "b" is still replayed from its WAL record
    assert r.get("a").text == "kept" and r.get("b").text == "in the damaged commit"
    report = r.verify()
    assert not report.ok and any("toc" in p.lower() for p in report.problems)
    w = Memory.open(mem_path)
    opened.append(w)
    w.put("again", id="b")
    w.seal()
    assert w.get("b").text == "again" and w.get("b").version == 2 and w.verify().ok


def test_threads_share_one_writer(mem):
    import threading

    def work(k: int) -> None:
        for i in range(50):
            mem.put(f"thread {k} item {i}", id=f"{k}-{i}")
            if i % 20 == 0:
                mem.seal()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(mem) == 200 and mem.get("3-49").text == "thread 3 item 49"
    assert mem.verify().ok


def test_generations_before_compaction_stay_addressable(mem):
    mem.put("v1", id="d")
    g_old = mem.seal()
    mem.update("d", text="v2")
    mem.seal()
    mem.compact()
    mem.compact()
    assert mem.as_of(g_old).get("d").text == "v1"
    assert mem.get("d").text == "v2" and mem.verify().ok


def test_empty_put_many_writes_nothing(mem):
    assert mem.put_many([]) == []
    assert mem.stats().wal_bytes == 0 and len(mem) == 0


def test_fresh_file_verifies_clean(mem_path):
    with Memory.create(mem_path) as m:
        assert m.verify().ok
        m.put("a")
        assert m.verify().ok
    with Memory.open(mem_path) as m:
        assert m.verify().ok


def test_as_of_generation_survives_compaction(mem):
    mem.put("x", id="x")
    g = mem.seal()
    mem.compact()
    assert mem.as_of(g).ids() == ["x"]


def test_writer_removes_temp_files_of_dead_writers(mem_path, tmp_path):
    Memory.create(mem_path).close()
    dead = subprocess_pid_that_exited()
    leftover = tmp_path / f"agent.mv2.compact-{dead}"
    leftover.write_bytes(b"partial compaction")
    alive = tmp_path / f"agent.mv2.compact-{os.getpid()}"
    alive.write_bytes(b"in progress")
    with Memory.open(mem_path, readonly=True):
        assert leftover.exists()  # readers never delete anything
    with Memory.open(mem_path):
        assert not leftover.exists() and alive.exists()


def subprocess_pid_that_exited() -> int:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_delete_many_is_atomic(mem):
    mem.put_many([{"text": t, "id": t} for t in "abc"])
    with pytest.raises(FrameNotFoundError):
        mem.delete_many(["a", "zzz"])
    assert sorted(mem.ids()) == ["a", "b", "c"]
    assert mem.delete_many(["a", "zzz", "a"], missing_ok=True) == 1
    before = datetime.now(UTC)
    assert mem.delete_many(["b", "c"]) == 2
    assert mem.ids() == [] and sorted(mem.as_of(before).ids()) == ["b", "c"]
    mem.seal()
    assert mem.ids() == [] and mem.stats().deleted == 3
