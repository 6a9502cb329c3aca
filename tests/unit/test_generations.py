"""Generations: every write and every commit is one; ``as_of(generation)`` shows that state."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import pytest

from memvid_store import HistoryUnavailableError, InvalidInputError, Memory
from memvid_store.engine.format import Toc
from memvid_store.types import from_us, to_us


def state(view: Any) -> list[tuple[str, int, str]]:
    """(id, version, text) of every current frame, in timeline order."""
    return [(f.id, f.version, f.text) for f in view.timeline()]


def found(view: Any, text: str = "word", **kw: Any) -> list[str]:
    return sorted(h.id for h in view.find(text, mode="lexical", k=50, **kw))


class Recorder:
    """Remembers (generation, state, search result) after each write of one handle."""

    def __init__(self, mem: Memory) -> None:
        self.mem = mem
        self.states: dict[int, tuple[list[tuple[str, int, str]], list[str]]] = {}
        self.take()

    def take(self) -> int:
        g = self.mem.generation
        self.states[g] = (state(self.mem), found(self.mem))
        return g

    def check(self, view: Any = None) -> None:
        """``as_of`` each recorded generation shows exactly what was recorded."""
        view = self.mem if view is None else view
        assert view.generation == self.mem.generation
        for g, (frames, hits) in self.states.items():
            past = view.as_of(g)
            assert state(past) == frames, g
            assert found(past) == hits and found(view, as_of=g) == hits, g
            for fid, version, text in frames:
                got = past.get(fid)
                assert (got.version, got.text) == (version, text)


def big(n: int, size: int, prefix: str) -> list[dict[str, Any]]:
    return [{"text": f"word {prefix}{i} " + "x" * size, "id": f"{prefix}{i}"} for i in range(n)]


def test_every_write_is_a_generation(mem):
    rec = Recorder(mem)
    assert mem.generation == 1  # the empty file
    mem.put("word one", id="a")
    assert rec.take() == 2
    mem.put_many([{"text": "word two", "id": "b"}, {"text": "word three", "id": "c"}])
    assert rec.take() == 3
    mem.update("a", text="word uno")
    assert rec.take() == 4
    mem.delete("b")
    assert rec.take() == 5
    mem.delete_many(["c", "nope"], missing_ok=True)
    assert rec.take() == 6
    assert len(mem.commits()) == 1 and mem.stats().generation == 6  # all in the WAL
    rec.check()
    assert mem.as_of(3).history("a")[0].valid_to is None  # replaced only at generation 4
    assert mem.commits()[-1][0] == 1  # commits() lists commits only
    assert mem.delete_many(["nope"], missing_ok=True) == 0 and mem.generation == 6
    assert mem.put_many([]) == [] and mem.generation == 6


def test_seal_is_a_generation_and_keeps_every_earlier_one(mem):
    rec = Recorder(mem)
    mem.put("word one", id="a")
    rec.take()
    mem.update("a", text="word two")
    rec.take()
    g = mem.seal()
    assert g == mem.generation == 4 and mem.commits()[-1][0] == 4
    rec.take()
    assert mem.seal() == 4  # nothing to commit: the same generation
    mem.put("word three", id="b")
    rec.take()
    rec.check()
    mem.seal()
    rec.check()


def test_a_direct_commit_is_the_batch_and_then_the_commit(mem):
    rec = Recorder(mem)
    mem.put("word small", id="s")
    rec.take()
    mem.put_many(big(8, 40_000, "d"))  # over a quarter of the WAL: committed directly
    assert mem.stats().wal_records == 0
    g = rec.take()
    assert g == 4 and mem.commits()[-1][0] == 4  # the batch is 3, the commit 4
    assert state(mem.as_of(3)) == state(mem.as_of(4)) != state(mem.as_of(2))
    mem.put("word after", id="t")
    rec.take()
    rec.check()


def test_wal_full_auto_commit(mem):
    rec = Recorder(mem)
    commits = len(mem.commits())
    for i in range(7):  # 200 KB records: a 1 MiB WAL fills after five
        before = mem.generation
        mem.put_many(big(1, 200_000, f"w{i}-"))
        rec.take()
        grew = len(mem.commits()) - commits
        commits += grew
        assert mem.generation == before + 1 + grew
    assert commits >= 2 and mem.stats().wal_records >= 1
    rec.check()
    mem.seal()
    rec.check()


def test_readers_see_the_writers_generations(mem, mem_path, opened):
    rec = Recorder(mem)
    mem.put("word one", id="a")
    rec.take()
    mem.seal()
    rec.take()
    mem.put_many([{"text": "word two", "id": "b"}])
    rec.take()
    mem.delete("a")
    rec.take()
    reader = Memory.open(mem_path, readonly=True)
    opened.append(reader)
    assert reader.generation == mem.generation == 5 and reader.stats().generation == 5
    rec.check(reader)
    mem.update("b", text="word three")
    rec.take()
    assert reader.as_of(5).get("b").text == "word two"
    with pytest.raises(InvalidInputError, match=r"generation 6 does not exist.*refresh"):
        reader.as_of(6)
    assert reader.refresh() == mem.generation == 6
    rec.check(reader)


def test_generations_that_do_not_exist(mem):
    mem.put("a")
    for g in (0, -1, 3):
        with pytest.raises(InvalidInputError, match=f"generation {g} does not exist"):
            mem.as_of(g)
    with pytest.raises(InvalidInputError):
        mem.find("a", as_of=3)


def test_compaction_keeps_every_generation(mem):
    rec = Recorder(mem)
    mem.put("word one", id="a")
    rec.take()
    mem.put("word two", id="b")
    rec.take()
    mem.seal()
    mem.update("a", text="word uno")
    rec.take()
    mem.delete("b")
    rec.take()
    g = mem.compact()  # seals the two writes, then the compaction's own commit
    assert g == mem.generation == 8
    rec.take()
    rec.check()
    mem.put("word three", id="c")
    rec.take()
    mem.compact()
    rec.check()


def test_compaction_with_a_floor(mem):
    rec = Recorder(mem)
    mem.put("word one", id="a")
    rec.take()
    mem.put("word two", id="b")
    rec.take()
    mem.seal()
    mem.delete("a")  # the floor is this delete's record time: it is dropped by compaction
    floor_gen = rec.take()
    floor = to_us(mem.history("a")[-1].valid_to)
    mem.update("b", text="word deux")
    rec.take()
    mem.put("word three", id="c")
    rec.take()
    mem.compact(retain_after=from_us(floor))
    for g in list(rec.states):
        if g < floor_gen:
            with pytest.raises(HistoryUnavailableError):
                mem.as_of(g)
            del rec.states[g]
    rec.take()
    rec.check()
    assert state(mem.as_of(floor_gen)) == [("b", 1, "word two")]
    mem.put("word four", id="d")  # the state at the floor stays known through later compactions
    rec.take()
    mem.compact(retain_after=from_us(floor))
    rec.check()


def _without_public_generation(encode: Any) -> Any:
    def encode_old(toc: Toc) -> bytes:
        obj = json.loads(encode(toc))
        del obj["pgen"]
        return json.dumps(obj, separators=(",", ":")).encode()

    return encode_old


def test_files_without_public_generations(mem_path, tmp_path, monkeypatch, opened):
    """A file whose TOCs have no public generation (written before it existed): its
    commit counter is its generation, and new writes count on from it."""
    monkeypatch.setattr(Toc, "encode", _without_public_generation(Toc.encode))
    old = Memory.create(mem_path)
    commit_states = {}
    for i in range(3):
        old.put_many([{"text": f"word {i}", "id": f"k{i}"}, {"text": "word x", "id": "x"}])
        old.put(f"word {i} again", id=f"k{i}")
        old.seal()
        commit_states[2 + i] = state(old)  # the commit counter: the file was made at 1
    old.put("word pending", id="p")  # left in the WAL of the copy
    copy = str(tmp_path / "copy.mv2")
    shutil.copyfile(mem_path, copy)
    old.close()
    monkeypatch.undo()

    mem = Memory.open(copy)
    opened.append(mem)
    assert mem.generation == 5 and [g for g, _ in mem.commits()] == [1, 2, 3, 4]
    for g, frames in commit_states.items():
        assert state(mem.as_of(g)) == frames
    rec = Recorder(mem)
    mem.put("word new", id="n")
    rec.take()
    mem.seal()
    rec.take()
    mem.compact()
    rec.take()
    rec.check()
    for g, frames in commit_states.items():
        assert state(mem.as_of(g)) == frames
    # a floor inside an old commit's writes: that commit stays readable, earlier ones go
    floor = to_us(mem.history("k2")[-1].valid_from) - 1
    mem.compact(retain_after=from_us(floor))
    rec.take()
    rec.check()
    assert state(mem.as_of(4)) == commit_states[4]
    for g in (2, 3):
        with pytest.raises(HistoryUnavailableError):
            mem.as_of(g)


def test_a_replayed_commit_shares_its_time_with_its_last_write(mem):
    """``recorded_at`` commits at the batch's own record time: both generations show it."""
    t0 = time.time_ns() // 1000 + 10_000_000
    mem.put_many([{"text": "word a", "id": "a"}], recorded_at=from_us(t0))
    mem.put_many(big(8, 40_000, "d"), recorded_at=from_us(t0 + 1))
    g = mem.generation
    assert g == 4 and to_us(dict(mem.commits())[4]) == t0 + 1
    assert state(mem.as_of(3)) == state(mem.as_of(4)) and len(state(mem.as_of(2))) == 1


def test_toc_public_generation_and_floor_state_round_trip():
    toc = Toc(generation=3, commit_time_us=10, prev=None, segments=[], public_generation=9,
              floor_state=(7, 5))
    again = Toc.decode(toc.encode(), 0)
    assert (again.generation, again.public_generation, again.floor_state) == (3, 9, (7, 5))
    obj = json.loads(toc.encode())
    del obj["pgen"], obj["floor_state"]
    old = Toc.decode(json.dumps(obj).encode(), 0)
    assert (old.generation, old.public_generation, old.floor_state) == (3, 3, None)
