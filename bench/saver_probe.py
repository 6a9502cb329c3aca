"""Turn time of a one-node LangGraph chat graph checkpointed by MemvidSaver vs InMemorySaver.

Each turn sends one human message; the node answers with one AI message, so the ``messages``
channel (and the blob a put stores) grows by two messages a turn. Both savers run in the
same process, turn by turn alternately, each on its own thread id. Printed: the median turn
time over a window of turns around turn 10 and around the last turn, for both savers, and
MemvidSaver's overhead (its time minus InMemorySaver's) at both points and their ratio.

Run: PYTHONPATH=. .venv/bin/python bench/saver_probe.py [--turns 200] [--window 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from memvid_integrations.langgraph import MemvidSaver


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def answer(state: Chat) -> dict:
    return {"messages": [AIMessage(f"reply {len(state['messages'])}")]}


def build(saver):
    graph = StateGraph(Chat)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile(checkpointer=saver)


def window(times: list[float], turn: int, width: int) -> list[float]:
    """The turn times of the ``width`` turns around 1-based ``turn``."""
    lo = max(0, min(turn - (width + 1) // 2, len(times) - width))
    return times[lo:lo + width]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where the .mv2 file goes (temp dir)")
    args = parser.parse_args()

    folder = args.dir or tempfile.mkdtemp(prefix="saver-probe-")
    path = os.path.join(folder, "probe.mv2")
    memvid = MemvidSaver(path)
    graphs = {"memvid": build(memvid), "inmemory": build(InMemorySaver())}
    times: dict[str, list[float]] = {name: [] for name in graphs}
    try:
        for turn in range(1, args.turns + 1):
            for name, graph in graphs.items():
                cfg = {"configurable": {"thread_id": f"{name}-chat"}}
                started = time.perf_counter()
                out = graph.invoke({"messages": [HumanMessage(f"turn {turn}")]}, cfg)
                times[name].append(time.perf_counter() - started)
                assert len(out["messages"]) == 2 * turn
    finally:
        memvid.close()

    early, late = min(10, args.turns), args.turns
    print(f"turn times over {args.window} turns around each point (ms); file {path} "
          f"({os.path.getsize(path) / 1e6:.1f} MB)")
    print(f"{'saver':10} {'stat':6} {'turn ' + str(early):>10} {'turn ' + str(late):>10}")
    for stat in (statistics.median, min):
        at = {name: [stat(window(times[name], turn, args.window)) for turn in (early, late)]
              for name in graphs}
        for name, (a, b) in at.items():
            print(f"{name:10} {stat.__name__:6} {a * 1e3:10.2f} {b * 1e3:10.2f}")
        over = [m - i for m, i in zip(at["memvid"], at["inmemory"], strict=True)]
        print(f"{'overhead':10} {stat.__name__:6} {over[0] * 1e3:10.2f} {over[1] * 1e3:10.2f}"
              f"   ratio {over[1] / over[0]:.2f} (target <= 1.5)")
    print(f"total: memvid {sum(times['memvid']):.1f} s, inmemory {sum(times['inmemory']):.1f} s")


if __name__ == "__main__":
    main()
