"""MemvidSaver's layout and behaviour: the same answers as InMemorySaver, writes that follow
what changed, reads through the indexes, other collections untouched, a reader in another
process following the writer."""

from __future__ import annotations

import operator
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph")

from langgraph.checkpoint.base import ERROR, INTERRUPT, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from memvid_integrations.langgraph import MemvidSaver
from memvid_integrations.langgraph.checkpoint import DEFAULT_COLLECTION
from memvid_integrations.langgraph.checkpoint_layout import event_time, pack, unpack
from memvid_store import Memory
from memvid_store.errors import InvalidInputError, InvalidTypeError, ReadOnlyError

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("saver_writer_proc.py")
SCANS = {"iter_timeline", "timeline", "ids", "changes", "__iter__", "clear"}


class Recorder:
    """A collection that records every call and fails on a whole-collection scan."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str) -> Any:
        if name in SCANS:
            raise AssertionError(f"the saver scanned the collection with {name}()")
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "select":
                assert args and args[0], "select without a filter lists the collection"
            self.calls.append((name, args, kwargs))
            return attr(*args, **kwargs)
        return call

    def named(self, name: str) -> list[tuple[tuple, dict]]:
        return [(a, k) for n, a, k in self.calls if n == name]


def recorded(saver: MemvidSaver) -> Recorder:
    recorder = Recorder(saver.collection)
    saver._collection = recorder  # type: ignore[assignment]
    return recorder


@pytest.fixture
def saver(tmp_path):
    with MemvidSaver(tmp_path / "cp.mv2") as s:
        yield s


def checkpoint(values: dict[str, Any], versions: dict[str, Any], step: int = 0) -> dict:
    cp = empty_checkpoint()
    cp["id"] = str(uuid6(clock_seq=step))
    cp["channel_values"] = dict(values)
    cp["channel_versions"] = dict(versions)
    return cp


def cfg(thread: Any, ns: str = "", checkpoint_id: str | None = None) -> dict:
    conf = {"thread_id": thread, "checkpoint_ns": ns}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


# ------------------------------------------------------------------ same as InMemorySaver

def populate(saver: Any) -> list[tuple[str, str, str]]:
    """Checkpoints, blobs and writes on two threads and two namespaces; the same ids and
    calls for every saver it is given (ids generated once, see ``SCRIPT``)."""
    made = []
    for thread, ns, steps in SCRIPT:
        parent = None
        for step, cp, versions, writes in steps:
            config = cfg(thread, ns, parent)
            md = {"source": "loop" if step % 2 else "input", "step": step,
                  "parents": {"": "root"} if ns else {}, "score": 1.0 * step}
            if step == 2:
                md["note"] = None
            stored = saver.put(config, cp, md, versions)
            parent = stored["configurable"]["checkpoint_id"]
            for task, task_path, items in writes:
                saver.put_writes(stored, items, task, task_path)
            made.append((thread, ns, parent))
    return made


def _script() -> list:
    out = []
    for thread in ("t1", "t2"):
        for ns in ("", "child:1"):
            steps = []
            values: dict[str, Any] = {}
            for step in range(4):
                changed = {"messages": list(range(step + 1))} if step != 2 else {}
                if step == 0:
                    changed["config"] = {"fixed": True}
                values.update(changed)
                versions = {k: f"{step + 1:032}.0" for k in changed}
                all_versions = {k: v for k, v in (steps[-1][1]["channel_versions"].items()
                                                  if steps else ())}
                all_versions.update(versions)
                cp = checkpoint(values, all_versions, step)
                writes = [("task-b", "~b", [("messages", step), ("extra", "x")]),
                          ("task-a", "~a", [("messages", -step)])]
                if step == 3:
                    writes.append(("task-a", "~a", [(INTERRUPT, "stop"), (ERROR, "boom")]))
                    writes.append(("task-a", "~a", [("messages", "ignored"), (INTERRUPT, "again")]))
                steps.append((step, cp, versions, writes))
            out.append((thread, ns, steps))
    return out


SCRIPT = _script()


def plain(tup: Any) -> Any:
    if tup is None:
        return None
    return (tup.config, tup.checkpoint, tup.metadata, tup.parent_config, tup.pending_writes)


def test_answers_like_inmemory_saver(saver):
    reference = InMemorySaver()
    made = populate(reference)
    assert populate(saver) == made
    for thread, ns, checkpoint_id in made:
        assert plain(saver.get_tuple(cfg(thread, ns, checkpoint_id))) == plain(
            reference.get_tuple(cfg(thread, ns, checkpoint_id)))
    queries = [({}, None, None)] + [
        (kw, before, limit)
        for kw in ({}, {"source": "loop"}, {"step": 2}, {"note": None}, {"parents": {}},
                   {"score": 3}, {"source": "input", "step": 0}, {"missing": "x"})
        for before in (None, made[2][2])
        for limit in (None, 1, 0)]
    for thread in ("t1", "t2", "nobody"):
        for ns in ("", "child:1"):
            assert plain(saver.get_tuple(cfg(thread, ns))) == plain(
                reference.get_tuple(cfg(thread, ns)))
            for flt, before, limit in queries:
                got = [plain(t) for t in saver.list(
                    cfg(thread, ns), filter=flt, before=before and cfg(thread, ns, before),
                    limit=limit)]
                want = [plain(t) for t in reference.list(
                    cfg(thread, ns), filter=flt, before=before and cfg(thread, ns, before),
                    limit=limit)]
                assert got == want, (thread, ns, flt, before, limit)
    # across namespaces and threads the order is newest first overall: compare as sets
    for config in ({"configurable": {"thread_id": "t1"}}, None):
        got = sorted(t.checkpoint["id"] for t in saver.list(config, filter={"source": "loop"}))
        want = sorted(t.checkpoint["id"] for t in reference.list(config,
                                                                 filter={"source": "loop"}))
        assert got == want
    assert saver.get_next_version(None, None).startswith(f"{1:032}.")
    assert saver.get_next_version(f"{7:032}.5", None).startswith(f"{8:032}.")
    assert saver.get_next_version(3, None).startswith(f"{4:032}.")


# ------------------------------------------------------------------ writes follow changes

def test_a_put_writes_the_changed_channels_in_one_write(saver):
    calls = recorded(saver)
    first = saver.put(cfg("t"), checkpoint({"a": 1, "b": [1]}, {"a": "1", "b": "1"}),
                      {"source": "input"}, {"a": "1", "b": "1"})
    second = saver.put(first, checkpoint({"a": 1, "b": [1, 2]}, {"a": "1", "b": "2"}, 1),
                       {"source": "loop"}, {"b": "2"})
    puts = calls.named("put_many")
    assert [len(args[0]) for args, _ in puts] == [3, 2]  # blobs + checkpoint, one call each
    assert {r["metadata"]["kind"] for r in puts[1][0][0]} == {"blob", "checkpoint"}
    assert all(r["text"] == "" for args, _ in puts for r in args[0])
    assert saver.get_tuple(second).checkpoint["channel_values"] == {"a": 1, "b": [1, 2]}
    assert saver.get_tuple(first).checkpoint["channel_values"] == {"a": 1, "b": [1]}

    saver.put_writes(second, [("x", 1), ("y", 2)], "task")
    saver.put_writes(second, [("x", "again")], "task")  # a regular slot is kept once
    saver.put_writes(second, [(INTERRUPT, "i1")], "task")
    saver.put_writes(second, [(INTERRUPT, "i2")], "task")  # a special slot is replaced
    writes = calls.named("put_many")[2:]
    assert [len(args[0]) for args, _ in writes] == [2, 1, 1]
    assert saver.get_tuple(cfg("t")).pending_writes == [
        ("task", INTERRUPT, "i2"), ("task", "x", 1), ("task", "y", 2)]


def test_big_payloads_are_stored_compressed(saver):
    small, big = ("msgpack", b"\x01" * 10), ("msgpack", b"message " * 1000)
    assert unpack(pack(small)) == small and len(pack(small)) == 2
    assert unpack(pack(big)) == big and pack(big)[2] == "zstd"
    assert len(pack(big)[1]) < len(big[1]) // 10
    stored = saver.put(cfg("t"), checkpoint({"log": "line\n" * 2000}, {"log": "1"}), {},
                       {"log": "1"})
    [blob] = saver.collection.select({"kind": "blob"})
    assert blob.metadata["value"][2] == "zstd"
    assert saver.get_tuple(stored).checkpoint["channel_values"] == {"log": "line\n" * 2000}


def test_graph_reads_never_scan_the_collection(tmp_path):
    with MemvidSaver(tmp_path / "g.mv2") as saver:
        calls = recorded(saver)
        graph = review_graph(saver)
        transcript(graph)
        assert calls.named("select") and calls.named("get") and calls.named("put_many")
        gets_before = len(calls.named("select"))
        graph.get_state(cfg("review"))
        assert len(calls.named("select")) - gets_before <= 2  # the newest checkpoint, its writes


# ------------------------------------------------------------------ graphs

class Review(TypedDict):
    steps: Annotated[list[str], operator.add]


def review_graph(saver: Any):
    def ask(state: Review) -> dict:
        return {"steps": [f"approved:{interrupt('approve?')}"]}

    graph = StateGraph(Review)
    graph.add_node("draft", lambda s: {"steps": ["draft"]})
    graph.add_node("ask", ask)
    graph.add_node("publish", lambda s: {"steps": ["publish"]})
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "ask")
    graph.add_edge("ask", "publish")
    graph.add_edge("publish", END)
    return graph.compile(checkpointer=saver)


def transcript(graph: Any) -> list[Any]:
    """Interrupt, resume, replay from a past checkpoint and fork it: what each returned."""
    config = cfg("review")
    out: list[Any] = []
    first = graph.invoke({"steps": ["start"]}, config)
    out.append((first["steps"], [i.value for i in first["__interrupt__"]]))
    state = graph.get_state(config)
    out.append((state.next, [i.value for t in state.tasks for i in t.interrupts]))
    out.append(graph.invoke(Command(resume="yes"), config)["steps"])
    history = list(graph.get_state_history(config))
    out.append([(s.values.get("steps"), s.next, s.metadata["step"]) for s in history])
    before_ask = next(s for s in history if s.next == ("ask",))
    replay = graph.invoke(None, before_ask.config)
    out.append(("__interrupt__" in replay, replay["steps"]))
    out.append(graph.invoke(Command(resume="again"), config)["steps"])
    fork = graph.update_state(before_ask.config, {"steps": ["edited"]})
    forked = graph.invoke(None, fork)
    out.append(forked["steps"])
    out.append(graph.invoke(Command(resume="forked"), config)["steps"])
    out.append(len(list(graph.get_state_history(config))))
    out.append(len(list(graph.get_state_history(config, filter={"source": "update"}))))
    return out


def test_interrupt_resume_replay_and_fork_match_inmemory_saver(tmp_path):
    with MemvidSaver(tmp_path / "g.mv2") as saver:
        got = transcript(review_graph(saver))
    assert got == transcript(review_graph(InMemorySaver()))
    assert got[2] == ["start", "draft", "approved:yes", "publish"]
    with MemvidSaver(tmp_path / "g.mv2") as again:  # persisted: the same after reopening
        state = review_graph(again).get_state(cfg("review"))
        assert state.values["steps"][-1] == "publish"
        assert len(list(review_graph(again).get_state_history(cfg("review")))) == got[-2]


# ------------------------------------------------------------------ deletes and copies

def test_prune_keep_latest_keeps_the_blobs_the_latest_names(saver):
    first = saver.put(cfg("t"), checkpoint({"a": "kept", "b": 1}, {"a": "1", "b": "1"}),
                      {}, {"a": "1", "b": "1"})
    second = saver.put(first, checkpoint({"a": "kept", "b": 2}, {"a": "1", "b": "2"}, 1),
                       {}, {"b": "2"})
    saver.put_writes(first, [("x", 1)], "old")
    saver.put_writes(second, [("x", 2)], "new")
    saver.prune(["t"])
    assert [t.checkpoint["id"] for t in saver.list(cfg("t"))] == [
        second["configurable"]["checkpoint_id"]]
    latest = saver.get_tuple(cfg("t"))
    assert latest.checkpoint["channel_values"] == {"a": "kept", "b": 2}
    assert latest.pending_writes == [("new", "x", 2)]
    assert saver.collection.count({"kind": "blob"}) == 2  # b@1 went with the old checkpoint
    with pytest.raises(InvalidInputError):
        saver.prune(["t"], strategy="newest")
    saver.prune(["t"], strategy="delete")
    assert len(saver.collection) == 0


def test_saver_never_touches_other_collections(tmp_path):
    with Memory.create(tmp_path / "shared.mv2") as mem:
        lookalike = {"kind": "checkpoint", "thread_id": "t", "checkpoint_ns": "",
                     "checkpoints_of": '["t", ""]', "md:run_id": '"r1"'}
        mem.put("a document", id="doc", metadata=lookalike)
        mem.collection("notes").put("a note", id="note", metadata=lookalike)
        first, second = MemvidSaver(mem), MemvidSaver(mem, collection="other-checkpoints")
        for s in (first, second):
            stored = s.put(cfg("t"), checkpoint({"a": 1}, {"a": "1"}), {"run_id": "r1"},
                           {"a": "1"})
            s.put_writes(stored, [("x", 1)], "task")
        assert first.collection.name == DEFAULT_COLLECTION
        first.delete_for_runs(["r1"])
        assert first.get_tuple(cfg("t")) is None
        assert second.get_tuple(cfg("t")).checkpoint["channel_values"] == {"a": 1}
        first.copy_thread("t", "u")
        first.prune(["t", "u"], strategy="keep_latest")
        first.delete_thread("t")
        second.delete_thread("t")
        assert second.get_tuple(cfg("t")) is None
        assert mem.get("doc").metadata == lookalike
        assert mem.collection("notes").get("note").text == "a note"
        assert mem.collections()["default"] == 1


def test_copy_thread_renames_the_thread_in_metadata(saver):
    stored = saver.put(cfg("src"), checkpoint({"a": 1}, {"a": "1"}),
                       {"source": "input", "thread_id": "src"}, {"a": "1"})
    saver.put_writes(stored, [("x", 1)], "task")
    saver.copy_thread("src", "dst")
    copied = saver.get_tuple(cfg("dst"))
    assert copied.checkpoint["id"] == stored["configurable"]["checkpoint_id"]
    assert copied.metadata["thread_id"] == "dst"
    assert copied.checkpoint["channel_values"] == {"a": 1}
    assert copied.pending_writes == [("task", "x", 1)]
    assert [t.config for t in saver.list(None, filter={"thread_id": "dst"})] == [
        cfg("dst", "", stored["configurable"]["checkpoint_id"])]
    assert saver.get_tuple(cfg("src")).metadata["thread_id"] == "src"


# ------------------------------------------------------------------ time travel, input

def test_as_of_shows_a_deleted_thread_read_only(saver):
    stored = saver.put(cfg("t"), checkpoint({"a": 1}, {"a": "1"}), {}, {"a": "1"})
    generation = saver.memory.generation
    moment = datetime.now(UTC)
    saver.delete_thread("t")
    assert saver.get_tuple(cfg("t")) is None
    for view in (saver.as_of(generation), saver.as_of(moment)):
        assert view.get_tuple(cfg("t")).checkpoint["channel_values"] == {"a": 1}
        assert [t.config for t in view.list(cfg("t"))] == [stored]
        with pytest.raises(ReadOnlyError):
            view.put(cfg("t"), checkpoint({}, {}), {}, {})
        view.close()  # a view never closes the memory
    assert saver.get_tuple(cfg("t")) is None


def test_ids_order_checkpoints_and_bad_keys_are_refused(saver):
    stored = saver.put(cfg("t"), {**checkpoint({}, {}), "id": "b"}, {}, {})
    saver.put(stored, {**checkpoint({}, {}), "id": "c"}, {}, {})
    assert saver.get_tuple(cfg("t")).checkpoint["id"] == "c"  # not a UUID: put order
    assert event_time("b") is None
    uid = str(uuid6())
    assert abs((event_time(uid) - datetime.now(UTC)).total_seconds()) < 60
    assert event_time(uid.upper()) is None
    for bad in (object(), float("nan")):
        with pytest.raises(InvalidTypeError):
            saver.put(cfg(bad), checkpoint({}, {}), {}, {})
    assert saver.collection.count({"kind": "checkpoint"}) == 2


# ------------------------------------------------------------------ other processes

def test_reader_in_another_process_follows_the_writer(tmp_path):
    path = tmp_path / "shared.mv2"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    writer = subprocess.Popen([sys.executable, str(WRITER), str(path)], cwd=ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(command: str) -> str:
        writer.stdin.write(command + "\n")
        writer.stdin.flush()
        return writer.stdout.readline().strip()

    try:
        assert writer.stdout.readline().strip() == "ready"
        assert ask("turn t1 one") == "ok"
        with MemvidSaver(path, readonly=True) as reader:
            assert reader.get_tuple(cfg("t1")).checkpoint["channel_values"]["steps"] == ["one"]
            assert ask("turn t1 two") == "ok"
            assert ask("turn t2 other") == "ok"
            latest = reader.get_tuple(cfg("t1"))
            assert latest.checkpoint["channel_values"]["steps"] == ["one", "two"]
            assert len(list(reader.list(cfg("t1")))) == 6  # input, loop 0 and 1 per turn
            assert reader.get_tuple(cfg("t2")) is not None
            with pytest.raises(ReadOnlyError):
                reader.delete_thread("t1")
        ask("quit")
        assert writer.wait(30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_delete_for_runs_takes_the_runs_checkpoints_with_their_writes_only(saver):
    kept_writes = None
    for thread, run in (("a", "r1"), ("b", "r1"), ("c", "r2")):
        stored = saver.put(cfg(thread), checkpoint({"a": 1}, {"a": "1"}), {"run_id": run},
                           {"a": "1"})
        saver.put_writes(stored, [("x", 1), ("y", 2)], "task")
        if run == "r2":
            kept_writes = saver.get_tuple(cfg(thread)).pending_writes
    assert saver.collection.count({"kind": "write"}) == 6
    saver.delete_for_runs(["r1"])
    assert saver.get_tuple(cfg("a")) is None and saver.get_tuple(cfg("b")) is None
    assert saver.collection.count({"kind": "write"}) == 2  # r2's alone
    assert saver.get_tuple(cfg("c")).pending_writes == kept_writes
