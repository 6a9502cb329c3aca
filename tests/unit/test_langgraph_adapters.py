"""MemvidSaver: persistence across reopen, a real graph run, time travel, shared files."""

from __future__ import annotations

import operator
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("langgraph")

from langgraph.graph import END, START, StateGraph

from memvid_integrations.langgraph import MemvidSaver
from memvid_store import Memory


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def build_graph(saver: MemvidSaver):
    graph = StateGraph(State)
    graph.add_node("a", lambda s: {"steps": ["a"]})
    graph.add_node("b", lambda s: {"steps": ["b"]})
    graph.add_edge(START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", END)
    return graph.compile(checkpointer=saver)


def test_importing_the_package_does_not_import_langgraph():
    code = ("import sys, memvid_integrations.langgraph; "
            "print([m for m in ('langgraph', 'langchain_core') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_graph_state_survives_reopen(tmp_path):
    path = tmp_path / "graph.mv2"
    cfg = {"configurable": {"thread_id": "t1"}}
    saver = MemvidSaver(path)
    assert build_graph(saver).invoke({"steps": ["start"]}, cfg)["steps"] == ["start", "a", "b"]
    history = [s.values["steps"] for s in build_graph(saver).get_state_history(cfg)]
    saver.close()

    again = MemvidSaver(path)
    try:
        graph = build_graph(again)
        assert graph.get_state(cfg).values["steps"] == ["start", "a", "b"]
        assert [s.values["steps"] for s in graph.get_state_history(cfg)] == history
        out = graph.invoke({"steps": ["more"]}, cfg)
        assert out["steps"] == ["start", "a", "b", "more", "a", "b"]
    finally:
        again.close()


def test_deleted_thread_stays_reachable_with_as_of(tmp_path):
    with Memory.create(tmp_path / "shared.mv2") as mem:
        mem.put("a long-term fact", id="fact")
        saver = MemvidSaver(mem)
        cfg = {"configurable": {"thread_id": "t1"}}
        build_graph(saver).invoke({"steps": []}, cfg)
        time.sleep(0.002)
        before = datetime.now(UTC)
        time.sleep(0.002)
        saver.delete_thread("t1")
        assert saver.get_tuple(cfg) is None
        assert MemvidSaver(mem).get_tuple(cfg) is None  # read from the file
        kinds = {f.metadata["kind"] for f in saver.collection.select(as_of=before)}
        assert kinds == {"checkpoint", "write", "blob"}
        past = saver.as_of(before).get_tuple(cfg)
        assert past.checkpoint["channel_values"]["steps"] == ["a", "b"]
        assert mem.get("fact").text == "a long-term fact"
        assert [f.id for f in mem.timeline()] == ["fact"]
        assert len(saver.collection) == 0


@pytest.mark.asyncio
async def test_async_graph_run(tmp_path):
    saver = MemvidSaver(tmp_path / "async.mv2")
    try:
        cfg = {"configurable": {"thread_id": "t"}}
        out = await build_graph(saver).ainvoke({"steps": []}, cfg)
        assert out["steps"] == ["a", "b"]
        assert (await saver.aget_tuple(cfg)).checkpoint["channel_values"]["steps"] == ["a", "b"]
    finally:
        saver.close()
