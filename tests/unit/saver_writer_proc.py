"""Child process for tests/unit/test_langgraph_saver.py: a MemvidSaver writer on a path.

Usage: ``saver_writer_proc.py PATH``. Answers ``ready`` once the saver is open, then reads
one command per line on stdin: ``turn THREAD WORD`` runs one turn of a graph appending
WORD to the thread's ``steps`` and answers ``ok``; ``quit`` closes the saver and exits.
"""

from __future__ import annotations

import operator
import sys
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

from memvid_integrations.langgraph import MemvidSaver


class State(TypedDict):
    steps: Annotated[list[str], operator.add]


def main() -> None:
    saver = MemvidSaver(sys.argv[1])
    graph = StateGraph(State)
    graph.add_node("echo", lambda s: {})
    graph.add_edge(START, "echo")
    graph.add_edge("echo", END)
    app = graph.compile(checkpointer=saver)
    print("ready", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if parts[0] == "quit":
            break
        _, thread, word = parts
        app.invoke({"steps": [word]}, {"configurable": {"thread_id": thread}})
        print("ok", flush=True)
    saver.close()


if __name__ == "__main__":
    main()
