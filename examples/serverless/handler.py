"""A Lambda-style function answering questions from one .mv2 memory file.

The file is opened once per process, at module level (the function's init phase), through a
``SnapStartMemory`` holder (``memvid_store.snapstart``): with Lambda SnapStart the holder
warms the memory before the snapshot, closes it, and reopens it after each restore; without
SnapStart it simply keeps the memory open. Every invocation reads ``HOLDER.memory`` and only
runs ``find``. The first invocation of a process (the cold one) also prints
the cold-start metrics as one CloudWatch Embedded Metric Format line, which CloudWatch Logs
turns into metrics when this runs on AWS Lambda.

Configuration (environment):

* ``MEMVID_PATH``: the memory file (default: ``<temp dir>/memvid-serverless/sample.mv2``,
  written by ``python examples/serverless/local_driver.py --build-only``);
* ``MEMVID_SNAPSTART_LEVEL``: what the SnapStart hooks warm (default ``aggressive``: every
  index tier; ``lazy``: nothing, tiers load on first use);
* ``MEMVID_METRICS_NAMESPACE``: CloudWatch namespace of the metrics (default ``Memvid``);
* ``AWS_LAMBDA_FUNCTION_NAME``: set by Lambda; used as the ``function`` dimension.

Event: ``{"query": "...", "mode": "hybrid" | "lexical" | "vector", "k": 5}`` (``mode`` and
``k`` optional; ``filter`` is passed to ``find`` as is). Text queries of vector and hybrid
mode are embedded with the embedder the file was created with (recorded in the file);
lexical queries need neither numpy nor a model.
"""

from __future__ import annotations

import os
import time
from typing import Any

from settings import MAX_K, MODES, memory_path

from memvid_store import emit_metrics
from memvid_store.snapstart import register

PATH = memory_path()
# init phase: header, TOC and WAL only; SnapStart's hooks warm, close and reopen it
HOLDER = register(PATH, level=os.environ.get("MEMVID_SNAPSTART_LEVEL", "aggressive"))

_embedder: Any = None
_cold = True


def query_embedder() -> Any:
    """The embedder recorded in the file, created on first need (None: the file has none)."""
    global _embedder
    info = HOLDER.memory.embedder_info
    if _embedder is None and info is not None:
        from memvid_store.embeddings import get_embedder

        _embedder = get_embedder(info["name"])
    return _embedder


def search(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the event's query; hits as JSON-ready dicts."""
    query = event.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValueError('the event needs a non-empty "query" string')
    mode = event.get("mode", "hybrid")
    if mode not in MODES:
        raise ValueError(f'"mode" must be one of {", ".join(MODES)}, got {mode!r}')
    k = event.get("k", 5)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValueError(f'"k" must be an int from 1 to {MAX_K}, got {k!r}')
    vector = None
    if mode != "lexical":
        embedder = query_embedder()
        if embedder is None:
            if mode == "vector":
                raise ValueError("this memory file records no embedder: use mode lexical")
            mode = "lexical"
        else:
            vector = embedder.embed_query(query)
    text = query if mode != "vector" else None
    hits = HOLDER.memory.find(text, vector=vector, k=k, mode=mode, filter=event.get("filter"))
    return [{"id": h.id, "score": round(h.score, 6), "text": h.text, "metadata": h.metadata}
            for h in hits]


WARMUP_SOURCES = ("serverless-plugin-warmup", "aws.events")


def is_warmup_ping(event: Any) -> bool:
    """A keep-warm ping (serverless-plugin-warmup's event, a scheduled EventBridge rule, or
    ``{"warmer": true}``), answered without touching the memory."""
    return isinstance(event, dict) and (event.get("source") in WARMUP_SOURCES
                                        or event.get("warmer") is True)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Lambda entry point: ``{"hits": [...], "cold": bool, "ms": float}`` (a keep-warm ping:
    ``{"warmup": true}``).

    The cold invocation adds ``"metrics"`` (``ColdStartMetrics.to_dict()``) and prints the
    EMF line; after a SnapStart restore it also adds ``"restore"``
    (``RestoreReport.to_dict()``: how long the reopen took, whether the file changed).
    """
    global _cold
    if is_warmup_ping(event):
        return {"warmup": True}  # keeps the instance warm; the memory is not touched
    started = time.perf_counter()
    hits = search(event)
    result: dict[str, Any] = {"hits": hits, "cold": _cold,
                              "ms": (time.perf_counter() - started) * 1e3}
    if _cold:
        _cold = False
        metrics = HOLDER.memory.metrics()
        function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        emit_metrics(metrics, namespace=os.environ.get("MEMVID_METRICS_NAMESPACE", "Memvid"),
                     dimensions={"function": function} if function else None)
        result["metrics"] = metrics.to_dict()
        if HOLDER.last_restore is not None:
            result["restore"] = HOLDER.last_restore.to_dict()
    return result
