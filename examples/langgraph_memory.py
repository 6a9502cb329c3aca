"""An agent's short- and long-term memory in ONE .mv2 file with LangGraph, offline.

* ``MemvidSaver`` keeps each conversation thread's state (checkpoints): a conversation
  continues where it stopped, even after the process ends.
* ``MemvidStore`` keeps long-term memories per user, searched by meaning: what the user
  said in one thread is recalled in another.

The graph has two nodes and no LLM: ``remember`` stores lines that start with "remember",
``respond`` recalls the memory closest to the question. Replace ``respond`` with a chat
model call for a real agent; the memory wiring stays the same.

Run: python examples/langgraph_memory.py [--embedder default|hash] [--path FILE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.store.base import BaseStore

from memvid_integrations.langgraph import MemvidSaver, MemvidStore
from memvid_store import Memory
from memvid_store.embeddings import Embedder, get_embedder, to_langchain


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    user: str


def remember(state: State, *, store: BaseStore) -> dict:
    """Store "remember ..." lines as long-term memories of the user."""
    text = state["messages"][-1].content
    if text.lower().startswith("remember"):
        fact = text.split(" ", 1)[1].removeprefix("that ").strip()
        store.put(("users", state["user"], "memories"), str(uuid.uuid4()), {"text": fact})
        return {"messages": [AIMessage(f"Noted: {fact}")]}
    return {}


def respond(state: State, *, store: BaseStore) -> dict:
    """Answer a question with the user's closest long-term memory."""
    last = state["messages"][-1]
    if isinstance(last, AIMessage):  # remember already answered
        return {}
    hits = store.search(("users", state["user"], "memories"), query=last.content, limit=1)
    recalled = hits[0].value["text"] if hits else "nothing yet"
    return {"messages": [AIMessage(f"From memory: {recalled}")]}


def build(saver: MemvidSaver, store: MemvidStore):
    graph = StateGraph(State)
    graph.add_node("remember", remember)
    graph.add_node("respond", respond)
    graph.add_edge(START, "remember")
    graph.add_edge("remember", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=saver, store=store)


def open_agent(path: str, embedder: Embedder):
    """One file, two adapters: the same Memory handle serves the saver and the store."""
    memory = Memory.open(path) if os.path.exists(path) else Memory.create(path)
    saver = MemvidSaver(memory)
    store = MemvidStore(memory, index={"dims": embedder.dim, "embed": to_langchain(embedder),
                                       "fields": ["text"]})
    return memory, build(saver, store)


def chat(graph, thread: str, user: str, text: str) -> None:
    config = {"configurable": {"thread_id": thread}}
    out = graph.invoke({"messages": [HumanMessage(text)], "user": user}, config)
    print(f"  [{thread}] {user}: {text}\n  [{thread}] agent: {out['messages'][-1].content}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default="default", help="default (MiniLM) or hash")
    parser.add_argument("--path", help="memory file (default: a new temp dir)")
    args = parser.parse_args()
    path = args.path or os.path.join(tempfile.mkdtemp(prefix="memvid-lg-"), "agent.mv2")
    embedder = get_embedder(args.embedder)

    print(f"== session 1: thread 'monday' (file {path}, embedder {embedder.name})")
    memory, graph = open_agent(path, embedder)
    chat(graph, "monday", "ana", "remember that my dog is called Biscuit")
    chat(graph, "monday", "ana", "remember that I am allergic to peanuts")
    chat(graph, "monday", "ana", "remember that my team ships the Atlas agent in May")
    memory.close()  # the process could end here: everything is in the file

    print("\n== session 2: the file is reopened")
    memory, graph = open_agent(path, embedder)
    monday = {"configurable": {"thread_id": "monday"}}
    messages = graph.get_state(monday).values["messages"]
    print(f"  thread 'monday' resumes from its checkpoint with {len(messages)} messages; "
          f"the last: {messages[-1].content!r}")
    chat(graph, "monday", "ana", "what food should I avoid?")
    print(f"  thread 'monday' now has {len(graph.get_state(monday).values['messages'])} "
          "messages")

    print("\n== a new thread recalls what another thread stored")
    chat(graph, "tuesday", "ana", "what is the name of my pet?")
    chat(graph, "tuesday", "ana", "when is our product released?")
    chat(graph, "tuesday", "ben", "what is the name of my pet?")

    # each adapter keeps its frames in its own collection of the file
    checkpoints = memory.collection("langgraph-checkpoints").count()
    items = memory.collection("langgraph-store").count({"kind": "item"})
    print(f"\n== one file holds both: {checkpoints} checkpoint records and {items} "
          f"long-term memories in {path} (collections: {memory.collections()})")
    memory.close()


if __name__ == "__main__":
    main()
