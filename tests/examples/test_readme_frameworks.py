"""The README's Frameworks snippet runs as written: several adapters of three frameworks
opened on one path in one process, each in its own collection of the file."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("langgraph")
pytest.importorskip("llama_index.core")

README = Path(__file__).resolve().parents[2] / "README.md"


def frameworks_snippet() -> str:
    section = README.read_text(encoding="utf-8").split("## Frameworks", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def names_the_snippet_assumes() -> dict:
    """What the snippet leaves to the reader: a model, a chain, a graph builder, documents."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import AnyMessage
    from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
    from langgraph.graph import START, StateGraph
    from langgraph.graph.message import add_messages
    from llama_index.core import Document, Settings

    from memvid_store import Memory
    from memvid_store.embeddings import HashEmbedder, to_langchain, to_llamaindex

    Settings.embed_model = to_llamaindex(HashEmbedder(dim=384))
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"),
                                               ("human", "{question}")])
    chain = prompt | FakeListChatModel(responses=["13 May", "still 13 May"])

    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    builder = StateGraph(State)
    builder.add_node("echo", lambda state: {"messages": [("ai", "noted")]})
    builder.add_edge(START, "echo")
    return {"embeddings": to_langchain(HashEmbedder(dim=384)), "chain": chain,
            "builder": builder, "last_week": datetime.now(UTC) - timedelta(days=7),
            "docs": [Document(text="the harbor opens at six", id_="harbor")],
            "Memory": Memory}


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the snippet never closes its adapters
@pytest.mark.filterwarnings("ignore:.*RunnableWithMessageHistory")
def test_the_frameworks_snippet_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = names_the_snippet_assumes()
    exec(compile(frameworks_snippet(), "README.md", "exec"), scope)

    # a second turn of the chat reads the first from the file
    second = scope["chat"].invoke({"question": "and now?"},
                                  {"configurable": {"session_id": "user-42"}})
    assert second.content == "still 13 May"
    graph = scope["graph"]
    graph.invoke({"messages": [("human", "hi")]}, {"configurable": {"thread_id": "t1"}})

    from memvid_store import Memory

    mem = scope["mem"]
    assert len(mem.collection("langchain-chat").select({"session_id": "user-42"})) == 4
    counts = Memory.collections(mem)
    assert counts["langchain"] == 1 and counts["llamaindex"] == 1
    assert counts["langgraph-checkpoints"] > 0
    found = scope["store"].similarity_search("harbor", k=5)  # LlamaIndex's node is not its
    assert [d.page_content for d in found] == ["launch moved to 13 May"]
