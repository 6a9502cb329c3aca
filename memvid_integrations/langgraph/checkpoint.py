"""``MemvidSaver``: LangGraph checkpoints and pending writes in a ``.mv2`` memory file.

Each stored record is one frame tagged ``langgraph:checkpoint`` (no embedding): a checkpoint
``(thread, ns, id)``, the pending writes of one checkpoint, or one channel-value blob. Frame
metadata holds the record's key and its serialized value (serde type + base64 bytes). The
saver keeps LangGraph's in-memory layout as a read cache, loaded from the file at open and
written through on every change, so reads cost no I/O and the file is the source of truth
across processes. A file can hold both checkpoints and other adapters' frames.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.base import SerializerProtocol

from memvid_store import FrameNotFoundError
from memvid_store.errors import InvalidInputError

from .._common import MemoryHolder, MemorySource, in_thread, open_memory

__all__ = ["MemvidSaver"]

TAG = "langgraph:checkpoint"
_KINDS = ("checkpoint", "writes", "blob")


def _typed(value: tuple[str, bytes]) -> list[str]:
    return [value[0], base64.b64encode(value[1]).decode("ascii")]


def _untyped(value: list[str]) -> tuple[str, bytes]:
    return value[0], base64.b64decode(value[1])


def _frame_id(kind: str, key: tuple) -> str:
    digest = hashlib.sha256(json.dumps([kind, *key]).encode()).hexdigest()[:32]
    return f"lg:{kind}:{digest}"


class MemvidSaver(InMemorySaver, MemoryHolder):
    """A LangGraph checkpointer persisted in a memvid memory file.

    Args:
        path: the memory file (created if missing) or an open Memory to share.
        serde: the serializer (LangGraph's default when None).
        **options: ``Memory.create``/``Memory.open`` options when a path is given.

    ``close()`` closes the memory if the saver opened it; ``with saver:`` keeps
    ``InMemorySaver``'s meaning and leaves the memory open.
    """

    def __init__(self, path: MemorySource, *, serde: SerializerProtocol | None = None,
                 **options: Any) -> None:
        super().__init__(serde=serde)
        self._hold(*open_memory(path, **options), "default")
        self._lock = threading.RLock()
        self._stored: dict[str, tuple[str, str]] = {}  # frame id -> (thread, encoded value)
        self._load()

    # ------------------------------------------------------------ persistence

    def _load(self) -> None:
        for frame in self._memory.iter_timeline():
            meta = frame.metadata
            if TAG not in frame.tags or meta.get("kind") not in _KINDS:
                continue
            key, value = tuple(meta["key"]), meta["value"]
            if meta["kind"] == "checkpoint":
                thread, ns, cid = key
                cp, md, parent = value
                self.storage[thread][ns][cid] = (_untyped(cp), _untyped(md), parent)
            elif meta["kind"] == "writes":
                self.writes[key] = {
                    (task, idx): (task, channel, _untyped(v), path)
                    for task, idx, channel, v, path in value}
            else:
                self.blobs[key] = _untyped(value)
            self._stored[frame.id] = (key[0], json.dumps(value))

    def _entries(self, threads: set[str] | None) -> dict[str, tuple[str, tuple, Any]]:
        """Encoded records of the given threads (all when None): frame id -> (kind, key, value)."""
        out: dict[str, tuple[str, tuple, Any]] = {}
        for thread, namespaces in self.storage.items():
            if threads is not None and thread not in threads:
                continue
            for ns, checkpoints in namespaces.items():
                for cid, (cp, md, parent) in checkpoints.items():
                    key = (thread, ns, cid)
                    out[_frame_id("checkpoint", key)] = (
                        "checkpoint", key, [_typed(cp), _typed(md), parent])
        for key, inner in self.writes.items():
            if threads is not None and key[0] not in threads:
                continue
            value = [[task, idx, channel, _typed(v), path]
                     for (task, idx), (_, channel, v, path) in inner.items()]
            out[_frame_id("writes", key)] = ("writes", key, value)
        for key, blob in self.blobs.items():
            if threads is None or key[0] in threads:
                out[_frame_id("blob", key)] = ("blob", key, _typed(blob))
        return out

    def _sync(self, threads: set[str] | None) -> None:
        """Write the records of these threads that changed; delete the ones that are gone."""
        entries = self._entries(threads)
        records = []
        for fid, (kind, key, value) in entries.items():
            encoded = json.dumps(value)
            if self._stored.get(fid) == (key[0], encoded):
                continue
            records.append({"id": fid, "text": "", "tags": [TAG], "metadata": {
                "kind": kind, "thread_id": key[0], "key": list(key), "value": value}})
            self._stored[fid] = (key[0], encoded)
        if records:
            self._memory.put_many(records)
        gone = [fid for fid, (thread, _) in self._stored.items()
                if fid not in entries and (threads is None or thread in threads)]
        for fid in gone:
            with contextlib.suppress(FrameNotFoundError):
                self._memory.delete(fid)
            del self._stored[fid]

    # ---------------------------------------------------------------- writes

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        with self._lock:
            out = super().put(config, checkpoint, metadata, new_versions)
            self._sync({config["configurable"]["thread_id"]})
            return out

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        with self._lock:
            super().put_writes(config, writes, task_id, task_path)
            self._sync({config["configurable"]["thread_id"]})

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            super().delete_thread(thread_id)
            self.storage.pop(thread_id, None)
            self._sync({thread_id})

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is listed."""
        targets = set(run_ids)
        if not targets:
            return
        with self._lock:
            touched: set[str] = set()
            for thread, namespaces in self.storage.items():
                for ns, checkpoints in namespaces.items():
                    for cid, (_, md, _) in list(checkpoints.items()):
                        if self.serde.loads_typed(md).get("run_id") in targets:
                            del checkpoints[cid]
                            self.writes.pop((thread, ns, cid), None)
                            touched.add(thread)
            if touched:
                self._sync(touched)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, pending write and blob of a thread to another thread."""
        with self._lock:
            for ns, checkpoints in self.storage.get(source_thread_id, {}).items():
                for cid, (cp, md, parent) in checkpoints.items():
                    meta = self.serde.loads_typed(md)
                    if "thread_id" in meta:
                        meta["thread_id"] = target_thread_id
                    self.storage[target_thread_id][ns][cid] = (
                        cp, self.serde.dumps_typed(meta), parent)
            for (thread, ns, cid), inner in list(self.writes.items()):
                if thread == source_thread_id:
                    self.writes[(target_thread_id, ns, cid)] = dict(inner)
            for (thread, ns, channel, version), blob in list(self.blobs.items()):
                if thread == source_thread_id:
                    self.blobs[(target_thread_id, ns, channel, version)] = blob
            self._sync({target_thread_id})

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the newest checkpoint per namespace (``keep_latest``) or drop all."""
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInputError(f"strategy must be 'keep_latest' or 'delete', got {strategy!r}")
        with self._lock:
            threads = set(thread_ids)
            for thread in threads:
                if strategy == "delete":
                    super().delete_thread(thread)
                    self.storage.pop(thread, None)
                    continue
                for ns, checkpoints in self.storage.get(thread, {}).items():
                    if not checkpoints:
                        continue
                    latest = max(checkpoints)
                    for cid in [c for c in checkpoints if c != latest]:
                        del checkpoints[cid]
                        self.writes.pop((thread, ns, cid), None)
                    cp = self.serde.loads_typed(checkpoints[latest][0])
                    keep = {(ch, ver) for ch, ver in cp.get("channel_versions", {}).items()}
                    for key in [k for k in self.blobs if k[0] == thread and k[1] == ns]:
                        if (key[2], key[3]) not in keep:
                            del self.blobs[key]
            if threads:
                self._sync(threads)

    # ---------------------------------------------------------------- async

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint,
                   metadata: CheckpointMetadata, new_versions: ChannelVersions
                   ) -> RunnableConfig:
        return await in_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                          task_id: str, task_path: str = "") -> None:
        await in_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await in_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await in_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await in_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await in_thread(self.prune, thread_ids, strategy=strategy)
