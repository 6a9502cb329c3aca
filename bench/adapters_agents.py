"""Adapter benchmark sections for agent memory: LangGraph store and checkpointer, chat history.

* ``langgraph``: ``MemvidStore`` vs ``InMemoryStore`` (same ``index`` config) vs the engine
  (``put_many`` into a file of its own, one frame per item tagged with every prefix of its
  namespace). ``n`` items over ``USERS`` namespaces ``("users", "u<j>", "memories")``,
  written with ``batch`` of ``BATCH`` puts; then fresh-process open + first search, and
  warm search / get / list_namespaces.
* ``saver``: one compiled one-node graph per checkpointer, ``turns`` turns on one thread,
  the two graphs taking turns so both see the same machine load.
* ``chat``: a ``CHAT_LEN``-message session in a file holding ``n`` messages of other
  sessions, read with LangChain ``MemvidChatMessageHistory(...).messages`` and LlamaIndex
  ``MemvidChatStore.get_messages``, against the frameworks' in-memory histories.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench import adapters_kit as kit
from bench.adapters_kit import Adds, Recorder, collection_name, compare, file_mb, timed

USERS = 100
K = 10
SESSION_LEN = 250  # messages per other session of the chat files
CHAT_LEN = 20  # messages of the session that is read
TARGET_SESSION = "target-session"
WINDOW = 5  # turns either side of a reported turn


# ----------------------------------------------------------------------------- LangGraph store


def namespace(i: int) -> tuple[str, ...]:
    return ("users", f"u{i % USERS}", "memories")


def prefix_tags(ns: tuple[str, ...]) -> list[str]:
    return ["ns:" + ".".join(ns[:d]) for d in range(1, len(ns) + 1)]


def found(item: Any) -> list[Any]:
    """A looked-up item as a list of what was found (so the report counts it)."""
    return [] if item is None else [item]


def engine_put(col: Any, items: list[tuple[tuple[str, ...], str, dict[str, Any]]]) -> None:
    """The items straight to the engine: embed their texts, then one ``put_many``."""
    vectors = kit.hash_vectors([value["text"] for _, _, value in items])
    col.put_many([{"id": "/".join(ns) + "/" + key, "text": value["text"], "embedding": v,
                   "tags": prefix_tags(ns), "metadata": {"key": key, "value": value}}
                  for (ns, key, value), v in zip(items, vectors, strict=True)])


def langgraph(rec: Recorder, work: Path, o: dict[str, Any]) -> None:
    """LangGraph ``MemvidStore`` vs ``InMemoryStore`` vs the engine."""
    from langgraph.store.base import PutOp
    from langgraph.store.memory import InMemoryStore

    from memvid_integrations.langgraph import MemvidStore
    from memvid_store import Memory

    n = o["n"]
    index = {"dims": kit.DIM, "embed": kit.langchain_embeddings(), "fields": ["text"]}
    path, eng_path = work / "langgraph.mv2", work / "langgraph-engine.mv2"
    queries = kit.query_texts(o["calls"] + o["warmup"] + 1, o["seed"] + 2)
    state: dict[str, Any] = {}

    def build() -> dict[str, Any]:
        store = MemvidStore(path, index=index)
        ref = state["ref"] = InMemoryStore(index=index)
        mem = Memory.create(eng_path, dim=kit.DIM)
        col = mem.collection(state.setdefault("collection", collection_name(store)))
        adds = Adds("memvid", "reference", "engine")
        i = 0
        for batch in kit.records(n, o["seed"]):
            items = []
            for r in batch:
                value = {"text": r["text"], "topic": r["metadata"]["topic"],
                         "source": r["metadata"]["source"]}
                items.append((namespace(i), r["id"], value))
                i += 1
            ops = [PutOp(ns, key, value) for ns, key, value in items]
            adds.run("memvid", len(ops), store.batch, ops)
            adds.run("reference", len(ops), ref.batch, ops)
            adds.run("engine", len(ops), engine_put, col, items)
        out = {"collection": state["collection"], "add": adds.result(), "namespaces": USERS}
        out["close_s"] = {"memvid": timed(store.close)[0], "engine": timed(mem.close)[0]}
        out["file_mb"] = {"memvid": file_mb(path), "engine": file_mb(eng_path)}
        return out

    if rec.step("build", build) is None:
        return
    args = {"query": queries[0], "k": K}
    rec.step("fresh", lambda: kit.fresh({
        "memvid": ("lg-memvid", {**args, "path": str(path), "prefix": ["users", "u7"]}),
        "engine": ("lg-engine", {**args, "path": str(eng_path),
                                 "collection": state["collection"],
                                 "filter": {"tags": "ns:users.u7"}}),
    }, o["repeats"], o["child_timeout"]))

    def reopen() -> dict[str, Any]:
        seconds, state["store"] = timed(lambda: MemvidStore(path, index=index))
        return {"open_ms": seconds * 1e3}

    if rec.step("reopen", reopen) is None:
        return
    store = state["store"]
    ref = state["ref"]
    mem = Memory.open(eng_path)
    col = mem.collection(state["collection"])

    def user(i: int) -> tuple[str, str]:
        return ("users", f"u{(7 * i) % USERS}")

    def key(i: int) -> tuple[tuple[str, ...], str]:
        j = (7919 * i) % n
        return namespace(j), f"doc-{j:08d}"

    try:
        rec.step("search", lambda: compare({
            "memvid": lambda i: store.search(user(i), query=queries[i], limit=K),
            "reference": lambda i: ref.search(user(i), query=queries[i], limit=K),
            "engine": lambda i: col.find(vector=kit.hash_vectors([queries[i]])[0], k=K,
                                         mode="vector", filter={"tags": "ns:" + ".".join(user(i))}),
        }, o["calls"], o["warmup"]))
        rec.step("get", lambda: compare({
            "memvid": lambda i: found(store.get(*key(i))),
            "reference": lambda i: found(ref.get(*key(i))),
            "engine": lambda i: found(col.get("/".join(key(i)[0]) + "/" + key(i)[1])),
        }, o["calls"], o["warmup"]))
        rec.step("list_namespaces", lambda: compare({
            "memvid": lambda i: store.list_namespaces(prefix=("users",), limit=1000),
            "reference": lambda i: ref.list_namespaces(prefix=("users",), limit=1000),
        }, o["calls"], o["warmup"]))
    finally:
        store.close()
        mem.close()


# ----------------------------------------------------------------------------- saver


def _graph() -> Any:
    from typing import Annotated, TypedDict

    from langchain_core.messages import AIMessage
    from langgraph.graph import END, START, StateGraph
    from langgraph.graph.message import add_messages

    # the functional form evaluates the annotation here (not lazily in the module's scope)
    State = TypedDict("State", {"messages": Annotated[list, add_messages]})  # noqa: UP013

    def reply(state: Any) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"noted ({len(state['messages'])} so far)")]}

    graph = StateGraph(State)
    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    graph.add_edge("reply", END)
    return graph


def window(times: list[float], turn: int) -> list[float]:
    """Times of turns ``turn - WINDOW .. turn + WINDOW`` (1-based, clipped to the run)."""
    lo, hi = max(1, turn - WINDOW), min(len(times), turn + WINDOW)
    return times[lo - 1:hi]


def saver(rec: Recorder, work: Path, o: dict[str, Any]) -> None:
    """``MemvidSaver`` vs ``InMemorySaver`` under a one-node messages graph."""
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver

    from memvid_integrations.langgraph import MemvidSaver

    turns = o["turns"]
    texts = [r["text"] for batch in kit.records(turns, o["seed"]) for r in batch]

    def run() -> dict[str, Any]:
        graph = _graph()
        checkpointer = MemvidSaver(work / "saver.mv2")
        apps = {"reference": graph.compile(checkpointer=InMemorySaver()),
                "memvid": graph.compile(checkpointer=checkpointer)}
        config = {"configurable": {"thread_id": "bench-thread"}}
        times: dict[str, list[float]] = {peer: [] for peer in apps}
        try:
            for t in range(turns):
                for peer, app in apps.items():
                    dt, out = timed(lambda app=app, t=t: app.invoke(
                        {"messages": [HumanMessage(content=texts[t])]}, config))
                    times[peer].append(dt * 1e3)
                if len(out["messages"]) != 2 * (t + 1):
                    raise AssertionError(f"turn {t + 1}: {len(out['messages'])} messages")
        finally:
            checkpointer.close()
        early, late = min(10, turns), turns
        res: dict[str, Any] = {"turns": turns, "early_turn": early, "late_turn": late,
                               "window": WINDOW, "turn_ms": times,
                               "file_mb": file_mb(work / "saver.mv2")}
        for name, turn in (("early", early), ("late", late)):
            mv, ref = window(times["memvid"], turn), window(times["reference"], turn)
            res[name] = {"memvid_ms": statistics.median(mv),
                         "reference_ms": statistics.median(ref),
                         "overhead_ms": statistics.median(a - b for a, b in zip(mv, ref,
                                                                                 strict=True))}
        res["overhead_growth"] = res["late"]["overhead_ms"] / max(res["early"]["overhead_ms"],
                                                                  1e-3)
        return res

    rec.step("turns", run)


# ----------------------------------------------------------------------------- chat


def _chat_texts(n: int, seed: int) -> list[str]:
    return [r["text"] for batch in kit.records(n, seed) for r in batch]


def _sessions(n: int) -> list[tuple[str, int, int]]:
    """``(session id, first text, count)`` of the other sessions, the read one in the middle."""
    out = [(f"session-{s:05d}", s * SESSION_LEN, min(SESSION_LEN, n - s * SESSION_LEN))
           for s in range(-(-n // SESSION_LEN))]
    out.insert(len(out) // 2, (TARGET_SESSION, 0, CHAT_LEN))
    return out


def chat(rec: Recorder, work: Path, o: dict[str, Any]) -> None:
    """Reading one session among ``n`` other messages, LangChain and LlamaIndex."""
    from langchain_core.chat_history import InMemoryChatMessageHistory
    from langchain_core.messages import AIMessage, HumanMessage
    from llama_index.core.llms import ChatMessage
    from llama_index.core.storage.chat_store import SimpleChatStore

    from memvid_integrations.langchain import MemvidChatMessageHistory
    from memvid_integrations.llamaindex import MemvidChatStore
    from memvid_store import Memory

    n = o["n"]
    texts = _chat_texts(max(n, CHAT_LEN), o["seed"] + 3)
    sessions = _sessions(n)
    lc_path, li_path = work / "chat-langchain.mv2", work / "chat-llamaindex.mv2"

    def lc_messages(first: int, count: int) -> list[Any]:
        return [(HumanMessage if j % 2 == 0 else AIMessage)(content=texts[first + j])
                for j in range(count)]

    def li_messages(first: int, count: int) -> list[Any]:
        return [ChatMessage(role="user" if j % 2 == 0 else "assistant", content=texts[first + j])
                for j in range(count)]

    def build_langchain() -> dict[str, Any]:
        seconds = 0.0
        with Memory.create(lc_path) as mem:
            for sid, first, count in sessions:
                history = MemvidChatMessageHistory(mem, session_id=sid)
                msgs = lc_messages(first, count)
                seconds += timed(lambda h=history, m=msgs: h.add_messages(m))[0]
        return {"messages": n + CHAT_LEN, "sessions": len(sessions), "add_s": seconds,
                "messages_per_s": (n + CHAT_LEN) / seconds, "file_mb": file_mb(lc_path)}

    def build_llamaindex() -> dict[str, Any]:
        seconds = 0.0
        with Memory.create(li_path) as mem:
            store = MemvidChatStore(mem)
            for sid, first, count in sessions:
                msgs = li_messages(first, count)
                seconds += timed(lambda s=sid, m=msgs: store.set_messages(s, m))[0]
        return {"messages": n + CHAT_LEN, "sessions": len(sessions), "set_s": seconds,
                "messages_per_s": (n + CHAT_LEN) / seconds, "file_mb": file_mb(li_path)}

    def read_langchain() -> dict[str, Any]:
        ref = InMemoryChatMessageHistory()
        ref.add_messages(lc_messages(0, CHAT_LEN))
        open_s, history = timed(lambda: MemvidChatMessageHistory(lc_path,
                                                                 session_id=TARGET_SESSION))
        try:
            out = {"open_ms": open_s * 1e3, **compare({
                "memvid": lambda i: history.messages,
                "reference": lambda i: ref.messages}, o["calls"], o["warmup"])}
        finally:
            history.close()
        return out

    def read_llamaindex() -> dict[str, Any]:
        ref = SimpleChatStore()
        for sid, first, count in sessions:
            ref.set_messages(sid, li_messages(first, count))
        open_s, store = timed(lambda: MemvidChatStore(li_path))
        try:
            out = {"open_ms": open_s * 1e3, **compare({
                "memvid": lambda i: store.get_messages(TARGET_SESSION),
                "reference": lambda i: ref.get_messages(TARGET_SESSION)}, o["calls"], o["warmup"])}
        finally:
            store.close()
        return out

    if rec.step("build_langchain", build_langchain) is not None:
        rec.step("read_langchain", read_langchain)
    if rec.step("build_llamaindex", build_llamaindex) is not None:
        rec.step("read_llamaindex", read_llamaindex)
