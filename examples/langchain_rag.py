"""Retrieval-augmented generation with LangChain over a memvid file, offline.

A ``MemvidVectorStore`` holds the notes, a retriever feeds an LCEL chain, and a fake chat
model stands in for a real one (it repeats the prompt it receives, so you see exactly what a
real model would read). Then a note is updated and the same question is asked ``as_of``
before the update: the chain answers from the old version.

Run: python examples/langchain_rag.py [--embedder default|hash] [--path FILE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime

from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import ParrotFakeChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnablePassthrough

from memvid_integrations.langchain import MemvidRetriever, MemvidVectorStore
from memvid_store.embeddings import get_embedder, to_langchain

NOTES = [
    Document(id="launch", page_content="The Atlas agent launches on 6 May 2024 in Europe.",
             metadata={"kind": "fact", "lang": "en"}),
    Document(id="budget", page_content="Budget for Q1 approved at 40k EUR, mostly for "
             "evaluation runs.", metadata={"kind": "decision", "lang": "en"}),
    Document(id="maria", page_content="Maria prefers short status updates on Fridays, bullet "
             "points only.", metadata={"kind": "preference", "lang": "en"}),
    Document(id="cold-start", page_content="Cold start budget: 500 ms from process start to "
             "the first answer.", metadata={"kind": "decision", "lang": "en"}),
    Document(id="router", page_content="Most asked question in launch week: how to reset the "
             "ZX-4410 router.", metadata={"kind": "fact", "lang": "en"}),
    Document(id="shanghai", page_content="上海办公室每周大约收到九百张中文工单,高峰在周一上午。",
             metadata={"kind": "fact", "lang": "zh"}),
    Document(id="liwei", page_content="李伟希望中文工单的回答里引用原始工单编号。",
             metadata={"kind": "preference", "lang": "zh"}),
]

PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer from the context only. Cite note ids."),
    ("human", "Question: {question}\nContext:\n{context}"),
])


def format_docs(docs: list[Document]) -> str:
    return "\n".join(f"  [{d.id}] {d.page_content}" for d in docs)


def rag_chain(retriever: Runnable) -> Runnable:
    """question -> retrieved context -> prompt -> chat model -> text (LCEL)."""
    return ({"context": retriever | format_docs, "question": RunnablePassthrough()}
            | PROMPT | ParrotFakeChatModel() | StrOutputParser())


def ask(chain: Runnable, question: str, label: str = "") -> str:
    answer = chain.invoke(question)
    print(f"\n>>> {question}{' ' + label if label else ''}\n{answer}")
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default="default", help="default (MiniLM) or hash")
    parser.add_argument("--path", help="memory file (default: a new temp dir)")
    args = parser.parse_args()
    path = args.path or os.path.join(tempfile.mkdtemp(prefix="memvid-lc-"), "rag.mv2")

    embeddings = to_langchain(get_embedder(args.embedder))  # any LangChain Embeddings works
    with MemvidVectorStore(path, embeddings) as store:
        store.add_documents(NOTES)
        print(f"{len(NOTES)} notes in {path} (embedder {embeddings.memvid_embedder.name})")
        print("The chat model is a fake that replies with the prompt it got; put a real one "
              "(ChatOpenAI, ChatOllama, ...) in rag_chain() for answers.")

        retriever = MemvidRetriever(vectorstore=store, k=2, mode="hybrid")
        chain = rag_chain(retriever)
        ask(chain, "When does the Atlas agent launch?")
        ask(chain, "上海办公室每周有多少工单?")

        # Plain VectorStore API, with the engine's filter language.
        hits = store.similarity_search("money for the project", k=1,
                                       filter={"kind": "decision"})
        print(f"\nsimilarity_search with filter kind=decision: [{hits[0].id}]")
        mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 5})
        print("MMR retriever:", [d.id for d in mmr.invoke("launch week questions")])

        # The launch slips: adding a document with the same id stores a new version.
        before = datetime.now(UTC)
        time.sleep(0.01)
        store.add_documents([Document(
            id="launch", page_content="The Atlas agent launch moved to 13 May 2024 in Europe.",
            metadata={"kind": "fact", "lang": "en"})])
        ask(chain, "When does the Atlas agent launch?", "(now)")
        past = rag_chain(MemvidRetriever(vectorstore=store, k=2, mode="hybrid", as_of=before))
        ask(past, "When does the Atlas agent launch?", "(as of before the update)")


if __name__ == "__main__":
    main()
