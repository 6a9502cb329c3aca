"""Collections: one file, several sets of frames with their own ids, every read scoped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memvid_store import FrameNotFoundError, InvalidInputError, Memory, ReadOnlyError
from memvid_store.transfer import export_jsonl, import_jsonl
from tests.conftest import day


@pytest.fixture
def shared(mem_path, opened) -> Memory:
    """Docs in the default collection, chat and notes in named ones; same ids in each."""
    m = Memory.create(mem_path, dim=2, wal_size=1 << 20)
    opened.append(m)
    m.put_many([{"id": "a", "text": "the launch is in may", "embedding": [1, 0],
                 "metadata": {"kind": "doc"}, "created_at": day(1)},
                {"id": "b", "text": "budget review", "embedding": [0, 1],
                 "metadata": {"kind": "doc"}, "created_at": day(2)}])
    m.collection("chat").put_many([
        {"id": "a", "text": "hello, when is the launch?", "embedding": [1, 0.1],
         "metadata": {"role": "user"}, "tags": ["s1"], "created_at": day(3)},
        {"id": "c", "text": "the launch moved to june", "embedding": [1, 0.2],
         "metadata": {"role": "ai"}, "tags": ["s1"], "created_at": day(4)}])
    m.collection("notes").put("launch checklist", id="a", embedding=[0.9, 0.1],
                              created_at=day(5))
    return m


def test_ids_are_unique_per_collection(shared):
    assert shared.get("a").text == "the launch is in may"
    assert shared.collection("chat").get("a").text == "hello, when is the launch?"
    assert shared.collection("notes").get("a").text == "launch checklist"
    assert shared.collection("chat").get("a").collection == "chat"
    assert shared.get("a").collection == "default"
    with pytest.raises(FrameNotFoundError, match="in collection 'chat'"):
        shared.collection("chat").get("b")
    with pytest.raises(FrameNotFoundError):
        shared.get("c")


def test_every_read_is_scoped(shared):
    chat = shared.collection("chat")
    assert [f.id for f in shared.timeline()] == ["a", "b"]
    assert [f.id for f in chat.timeline()] == ["a", "c"]
    assert shared.ids() == ["a", "b"] and len(shared) == 2 and len(chat) == 2
    assert {h.id for h in shared.find("launch", k=10)} == {"a"}
    assert {(h.id, h.collection) for h in chat.find("launch", k=10)} == {("a", "chat"),
                                                                        ("c", "chat")}
    for mode in ("vector", "hybrid"):
        hits = chat.find("launch", vector=[1, 0], k=10, mode=mode)
        assert {h.collection for h in hits} == {"chat"} and len(hits) == 2
    assert [f.id for f in chat.select({"role": "ai"})] == ["c"]
    assert chat.count() == 2 and shared.count() == 2
    assert shared.collection("notes").count({"kind": "doc"}) == 0
    assert [len(h) for h in (shared.history("a"), chat.history("a"))] == [1, 1]
    assert "c" in chat and "c" not in shared


def test_collections_lists_live_counts(shared):
    assert shared.collections() == {"chat": 2, "default": 2, "notes": 1}
    chat = shared.collection("chat")
    chat.delete("a")
    chat.update("c", text="the launch moved to july")
    assert shared.collections() == {"chat": 1, "default": 2, "notes": 1}
    shared.seal()
    assert shared.collections() == {"chat": 1, "default": 2, "notes": 1}


def test_writes_and_deletes_stay_in_their_collection(shared):
    chat = shared.collection("chat")
    assert chat.clear() == 2
    assert chat.count() == 0 and shared.count() == 2
    assert shared.collection("notes").get("a").text == "launch checklist"
    new = chat.put("fresh start")
    assert chat.get(new).text == "fresh start"
    with pytest.raises(FrameNotFoundError):
        shared.get(new)
    assert shared.delete_many(["a", "b"]) == 2
    assert chat.count() == 1 and shared.collection("notes").count() == 1


def test_time_travel_per_collection(shared):
    chat = shared.collection("chat")
    before = datetime.now(UTC)
    chat.delete("c")
    assert "c" not in chat
    view = chat.as_of(before)
    assert view.get("c").text == "the launch moved to june"
    assert [f.id for f in view.select()] == ["a", "c"] and view.count() == 2
    assert {h.collection for h in view.find("launch")} == {"chat"}
    assert shared.as_of(before).count() == 2
    with pytest.raises(ReadOnlyError):
        view.clear()


def test_collections_survive_reopen_seal_and_compaction(shared, mem_path):
    shared.close()
    with Memory.open(mem_path, readonly=True) as reader:  # WAL replay
        assert reader.collections() == {"chat": 2, "default": 2, "notes": 1}
        assert reader.collection("chat").get("c").text == "the launch moved to june"
    with Memory.open(mem_path) as writer:
        writer.compact()
        assert writer.collections() == {"chat": 2, "default": 2, "notes": 1}
        assert [f.id for f in writer.collection("chat").timeline()] == ["a", "c"]
        assert [h.collection for h in writer.collection("notes").find("launch")] == ["notes"]


def test_export_and_import_keep_collections(shared, tmp_path):
    shared.collection("chat").delete("c")
    out = tmp_path / "export.jsonl"
    with open(out, "w") as fh:
        export_jsonl(shared, fh)
    assert '"collection":"chat"' in out.read_text()
    import_jsonl(str(out), str(tmp_path / "copy.mv2"))
    with Memory.open(str(tmp_path / "copy.mv2"), readonly=True) as copy:
        assert copy.collections() == shared.collections() == {"chat": 1, "default": 2,
                                                               "notes": 1}
        assert copy.collection("chat").get("a").text == "hello, when is the launch?"
        assert [len(copy.collection("chat").history(i)) for i in "ac"] == [1, 1]


@pytest.mark.parametrize("name", ["", "a\x00b", 5, "x" * 256])
def test_bad_collection_names(shared, name):
    with pytest.raises((InvalidInputError, TypeError)):
        shared.collection(name)


def test_default_collection_by_name(shared):
    assert shared.collection("default").get("a").text == shared.get("a").text
