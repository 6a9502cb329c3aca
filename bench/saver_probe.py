"""Turn time of a one-node LangGraph chat graph checkpointed by MemvidSaver vs InMemorySaver.

Each turn sends one human message; the node answers with one AI message, so the ``messages``
channel (and the blob a put stores) grows by two messages a turn. Both savers run in the
same process, turn by turn alternately, each on its own thread ids.

1. *sequential*: one thread per saver runs ``--turns`` turns; printed are the median and
   minimum turn times over ``--window`` turns around turn 10 and around the last turn.
2. *interleaved*: a second, young thread per saver is brought to turn 10 - window/2; then
   ``--window`` rounds each time one turn of the young thread (around turn 10) and one of the
   long one (around the last turn), for both savers. Both points are sampled at the same
   moments, so a machine shared with other work weighs on both alike.

For each, MemvidSaver's overhead (its time minus InMemorySaver's) at both points and their
ratio (target: at most 1.5).

Run: PYTHONPATH=. .venv/bin/python bench/saver_probe.py [--turns 200] [--window 10] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from memvid_integrations.langgraph import MemvidSaver

EARLY = 10


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


def turn(graph, thread: str, number: int) -> float:
    """Run turn ``number`` (1-based) of ``thread``; its wall time in seconds."""
    cfg = {"configurable": {"thread_id": thread}}
    started = time.perf_counter()
    out = graph.invoke({"messages": [HumanMessage(f"turn {number}")]}, cfg)
    elapsed = time.perf_counter() - started
    assert len(out["messages"]) == 2 * number
    return elapsed


def report(title: str, early: dict[str, list[float]], late: dict[str, list[float]],
           late_turn: int) -> None:
    """Print the median and minimum of each saver's samples at both points, and the
    overhead ratio."""
    print(f"\n{title} (ms)")
    print(f"{'saver':10} {'stat':6} {'~turn ' + str(EARLY):>11} {'~turn ' + str(late_turn):>11}")
    stats: list[Callable[[list[float]], float]] = [statistics.median, min]
    for stat in stats:
        at = {name: (stat(early[name]), stat(late[name])) for name in early}
        for name, (a, b) in at.items():
            print(f"{name:10} {stat.__name__:6} {a * 1e3:11.2f} {b * 1e3:11.2f}")
        over = [m - i for m, i in zip(at["memvid"], at["inmemory"], strict=True)]
        print(f"{'overhead':10} {stat.__name__:6} {over[0] * 1e3:11.2f} {over[1] * 1e3:11.2f}"
              f"   ratio {over[1] / over[0]:.2f} (target <= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--dir", default=None, help="where the .mv2 file goes (temp dir)")
    args = parser.parse_args()
    width, last = args.window, args.turns
    first_late = last - width // 2  # the long thread's sampled turns: first_late ...
    first_early = EARLY - width // 2

    folder = args.dir or tempfile.mkdtemp(prefix="saver-probe-")
    path = os.path.join(folder, "probe.mv2")
    memvid = MemvidSaver(path)
    graphs = {"memvid": build(memvid), "inmemory": build(InMemorySaver())}
    sequential: dict[str, list[float]] = {name: [] for name in graphs}
    early: dict[str, list[float]] = {name: [] for name in graphs}
    late: dict[str, list[float]] = {name: [] for name in graphs}
    try:
        for number in range(1, first_late):
            for name, graph in graphs.items():
                sequential[name].append(turn(graph, "long", number))
        for number in range(1, first_early):
            for graph in graphs.values():
                turn(graph, "young", number)
        for j in range(width):
            for name, graph in graphs.items():
                early[name].append(turn(graph, "young", first_early + j))
                late[name].append(turn(graph, "long", first_late + j))
                sequential[name].append(late[name][-1])
    finally:
        memvid.close()

    print(f"file {path} ({os.path.getsize(path) / 1e6:.1f} MB); windows of {width} turns: "
          f"turns {first_early}-{first_early + width - 1} and "
          f"{first_late}-{first_late + width - 1}")
    report("sequential: one thread, turn times in run order",
           {n: t[first_early - 1:first_early - 1 + width] for n, t in sequential.items()},
           {n: t[first_late - 1:] for n, t in sequential.items()}, last)
    report("interleaved: a young and a long thread sampled at the same moments",
           early, late, last)
    print(f"\ntotal over the long thread: memvid {sum(sequential['memvid']):.1f} s, "
          f"inmemory {sum(sequential['inmemory']):.1f} s")


if __name__ == "__main__":
    main()
