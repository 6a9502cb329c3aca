"""Ingestion on Ray: files into a sharded memory, embedded on parallel Ray workers.

The driver reads, chunks and plans as ``mv2 ingest`` does (``ingest/pipeline.py``): frames
whose content is unchanged are skipped before anything is embedded, so running it again
embeds and writes only what changed. The frames to embed go through a Ray Data pipeline,
``map_batches`` on a pool of ``workers`` actors that each load the embedder once; the
driver writes the embedded batches to the shards, each frame to its own. Embedding is
what costs: the model's forward pass runs on the workers, one CPU each (onnxruntime on
one thread, so workers do not fight over cores).

Needs the ``ray`` extra (``pip install memvid-py[ray]``). Ray is started locally when it
is not running yet (``ray.init()``); connect to a cluster first to use one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import EmbedderMismatchError, InvalidInputError, MissingDependencyError

QUEUE = 4096  # frames planned per Ray Data run (the driver holds their texts)
WORKER_BATCH = 64  # frames a worker embeds per call


def require_ray() -> Any:
    """The ``ray`` module, or a MissingDependencyError saying how to install it."""
    try:
        import ray
        import ray.data  # the pipeline needs Ray Data
    except ImportError as exc:
        raise MissingDependencyError(
            f"Ray is not installed ({exc}): pip install 'memvid-py[ray]'") from None
    return ray


class _EmbedBatch:
    """A Ray Data worker: loads the embedder once, then embeds batches of texts."""

    def __init__(self, spec: str, threads: int) -> None:
        from ..embeddings import get_embedder

        self.embedder = get_embedder(spec)
        if hasattr(self.embedder, "threads"):
            self.embedder.threads = threads  # before its first batch opens the model

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        vectors = self.embedder.embed_documents([str(t) for t in batch["text"]])
        return {"row": batch["row"], "embedding": np.asarray(vectors, "<f4")}


class RayEmbedding:
    """Embeds queued frames on ``workers`` Ray actors (an ``ingest`` embedding)."""

    def __init__(self, spec: str, workers: int, *, queue_size: int = QUEUE,
                 worker_batch: int = WORKER_BATCH, threads: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidInputError(f"workers must be a positive int, got {workers!r}")
        self.spec, self.workers = spec, workers
        self.queue_size, self.worker_batch, self.threads = queue_size, worker_batch, threads

    def embed(self, records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        ray = require_ray()
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        rows = ray.data.from_items([{"row": i, "text": r["text"]}
                                    for i, r in enumerate(records)])
        embedded = rows.map_batches(
            _EmbedBatch, fn_constructor_kwargs={"spec": self.spec, "threads": self.threads},
            batch_size=self.worker_batch, num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            batch_format="numpy")
        for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            done = []
            for row, vector in zip(batch["row"].tolist(), batch["embedding"], strict=True):
                record = records[row]
                record["embedding"] = vector
                done.append(record)
            yield done


def ingest_on_ray(manifest: str | os.PathLike[str], paths: Iterable[str], *,
                  embedder: str = "default", workers: int = 2, shards: int = 4,
                  route: str | None = None, options: Any = None) -> Any:
    """Ingest files and directories into the sharded memory at ``manifest`` (created with
    ``shards`` shards and ``route`` when missing), embedding on ``workers`` Ray workers.

    Args:
        embedder: an embedder spec (``default``, ``hash:DIM``...), loaded by each worker.
        options: an ``IngestOptions`` (chunking, tags, globs, batch size).

    Returns:
        The ``IngestReport`` (frames added, updated, unchanged and deleted; problems).

    Raises:
        MissingDependencyError: Ray is not installed.
        EmbedderMismatchError: the memory was embedded with another model.
    """
    require_ray()
    from ..embeddings import get_embedder
    from ..ingest import ingest
    from ..sharded.memory import ShardedMemory

    model = get_embedder(embedder)  # its name and dim: the model loads on the workers only
    path = os.fspath(manifest)
    if os.path.exists(path):
        mem = ShardedMemory.open(path)
        recorded = mem.shards[0].embedder_info
        if recorded is not None and recorded != {"name": model.name, "dim": model.dim}:
            mem.close()
            raise EmbedderMismatchError(
                f"{path} was embedded with {recorded['name']} ({recorded['dim']}-d), not "
                f"{model.name}: ingest with the same embedder")
    else:
        mem = ShardedMemory.create(path, shards, route=route,
                                   embedder={"name": model.name, "dim": model.dim})
    with mem:
        report = ingest(mem, paths, options, embedder=model,
                        embedding=RayEmbedding(embedder, workers))
        mem.build_index(complete=False)
    return report
