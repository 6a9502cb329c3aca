"""Retrieval-augmented generation with LlamaIndex over a memvid file, offline.

A ``VectorStoreIndex`` is built on ``MemvidVectorStore`` with the project's embedder; a
retriever and a query engine (``MockLLM`` stands in for a real LLM) answer questions in
vector, hybrid and text-search modes. Then a document is updated and the same question is
asked ``as_of`` before the update: the old text comes back.

Run: python examples/llamaindex_rag.py [--embedder default|hash] [--path FILE]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.llms import MockLLM

from memvid_integrations.llamaindex import MemvidVectorStore
from memvid_store.embeddings import get_embedder, to_llamaindex

DOCS = [
    Document(id_="launch", text="The Atlas agent launches on 6 May 2024 in Europe.",
             metadata={"kind": "fact"}),
    Document(id_="budget", text="Budget for Q1 approved at 40k EUR, mostly for evaluation runs.",
             metadata={"kind": "decision"}),
    Document(id_="backlog", text="The support backlog holds 18,400 tickets from 2019 to 2023.",
             metadata={"kind": "fact"}),
    Document(id_="router", text="Product code ZX-4410 refers to the router model recalled in "
             "March 2022.", metadata={"kind": "fact"}),
    Document(id_="iceland", text="Pack waterproof trousers, a warm hat and a headlamp for "
             "Iceland.", metadata={"kind": "travel"}),
    Document(id_="shanghai", text="上海办公室每周大约收到九百张中文工单,高峰在周一上午。",
             metadata={"kind": "fact"}),
]


def show(title: str, nodes) -> None:
    print(f"\n== {title}")
    for n in nodes:
        print(f"  {n.score:6.3f}  [{n.node.ref_doc_id}] {n.node.get_content()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default="default", help="default (MiniLM) or hash")
    parser.add_argument("--path", help="memory file (default: a new temp dir)")
    args = parser.parse_args()
    path = args.path or os.path.join(tempfile.mkdtemp(prefix="memvid-li-"), "rag.mv2")

    embed_model = to_llamaindex(get_embedder(args.embedder))  # any BaseEmbedding works
    with MemvidVectorStore(path) as store:
        index = VectorStoreIndex.from_documents(
            DOCS, storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=embed_model)
        print(f"{len(DOCS)} documents indexed in {path} (embedder {embed_model.model_name})")

        question = "what should I bring on a cold rainy trip?"
        show(f"{question!r} (vector)", index.as_retriever(similarity_top_k=2).retrieve(question))
        show("'ZX-4410' (hybrid, alpha=0.5)",
             index.as_retriever(similarity_top_k=2, vector_store_query_mode="hybrid",
                                alpha=0.5).retrieve("ZX-4410"))
        show("'上海办公室' (text search)",
             index.as_retriever(similarity_top_k=1,
                                vector_store_query_mode="text_search").retrieve("上海办公室"))

        engine = index.as_query_engine(llm=MockLLM(max_tokens=8), similarity_top_k=2)
        response = engine.query("How many tickets are in the backlog?")
        print("\n== query engine (MockLLM writes placeholder text; a real LLM answers from "
              "the sources)")
        print(f"  response: {str(response)!r}")
        print(f"  sources : {[n.node.ref_doc_id for n in response.source_nodes]}")

        # The launch slips: update_ref_doc replaces the document's nodes; the old ones stay
        # reachable with as_of until the file is compacted.
        before = datetime.now(UTC)
        time.sleep(0.01)
        index.update_ref_doc(Document(id_="launch", metadata={"kind": "fact"},
                                      text="The Atlas agent launch moved to 13 May 2024."))
        ask = "when does the Atlas agent launch?"
        show(f"{ask!r} now", index.as_retriever(similarity_top_k=1).retrieve(ask))
        past = index.as_retriever(similarity_top_k=1, vector_store_kwargs={"as_of": before})
        show(f"{ask!r} as of before the update", past.retrieve(ask))


if __name__ == "__main__":
    main()
