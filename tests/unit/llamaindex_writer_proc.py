"""Child process for tests/unit/test_llamaindex_collections.py: a LlamaIndex writer.

Usage: ``llamaindex_writer_proc.py PATH`` opens a ``MemvidVectorStore`` and a
``MemvidChatStore`` on PATH (writable, sharing one writer), then reads one JSON command per
line on stdin and answers each with ``{"generation": ...}`` once its write is durable:

* ``{"op": "add_message", "key": K, "content": C}``
* ``{"op": "add_nodes", "nodes": [[id, text, embedding, ref_doc_id], ...]}``
* ``{"op": "delete", "ref_doc_id": D}``
"""

from __future__ import annotations

import json
import sys

from llama_index.core.llms import ChatMessage
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from memvid_integrations.llamaindex import MemvidChatStore, MemvidVectorStore


def main(path: str) -> None:
    with MemvidVectorStore(path) as store, MemvidChatStore(path) as chats:
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd["op"] == "add_message":
                chats.add_message(cmd["key"], ChatMessage(role="user", content=cmd["content"]))
            elif cmd["op"] == "add_nodes":
                nodes = []
                for nid, text, emb, doc in cmd["nodes"]:
                    node = TextNode(id_=nid, text=text, embedding=emb)
                    node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc)
                    nodes.append(node)
                store.add(nodes)
            elif cmd["op"] == "delete":
                store.delete(cmd["ref_doc_id"])
            print(json.dumps({"generation": store.memory.generation}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
