"""``MemvidSaver``: LangGraph checkpoints, channel values and pending writes in a ``.mv2``
memory file.

The saver keeps no copy of the file: every read is a ``get`` or an indexed
``select`` on its collection (default ``"langgraph-checkpoints"``), every write one
``put_many`` or ``delete_many``. Each checkpoint, each channel value at each version (a
*blob*) and each pending write is its own frame (layout in :mod:`.checkpoint_layout`):

* ``put`` writes the checkpoint and the blobs of the channels in ``new_versions``, so
  its cost follows what changed, not the length of the thread;
* ``get_tuple`` reads a checkpoint by id (or the newest of its namespace: one
  ``select`` ordered by event time, which is id order), its blobs by id, and its
  writes through their ``writes_of`` term;
* ``list`` is one ``select`` newest first, with the metadata filter, ``before`` and
  ``limit`` answered by the engine.

A read-only saver on a path follows a writer in another process; ``as_of`` gives a
read-only view of the checkpoints at a past record time. Deleted checkpoints stay in
the file's history.
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from memvid_store import Collection, Frame, FrameNotFoundError
from memvid_store.errors import InvalidInputError

from .._common import MemoryHolder, MemorySource, in_thread, open_memory
from . import checkpoint_layout as layout

__all__ = ["DEFAULT_COLLECTION", "MemvidSaver"]

DEFAULT_COLLECTION = "langgraph-checkpoints"
STRATEGIES = ("keep_latest", "delete")


def _where(config: RunnableConfig) -> tuple[Any, str]:
    conf = config["configurable"]
    return conf["thread_id"], conf.get("checkpoint_ns", "")


def _config(thread_id: Any, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns,
                             "checkpoint_id": checkpoint_id}}


class MemvidSaver(BaseCheckpointSaver[str], MemoryHolder):
    """A LangGraph checkpointer persisted in a memvid memory file.

    Args:
        path: the memory file (created if missing) or an open Memory to share.
        serde: the serializer (LangGraph's default when None).
        collection: the collection of the file holding the checkpoints
            (``"langgraph-checkpoints"``); other collections are never read or deleted.
        **options: ``Memory.create``/``Memory.open`` options when a path is given
            (``readonly=True`` follows a writer in another process).

    ``close()`` (or leaving ``with saver:``) closes the memory if the saver opened it.
    """

    def __init__(self, path: MemorySource, *, serde: SerializerProtocol | None = None,
                 collection: str = DEFAULT_COLLECTION, **options: Any) -> None:
        super().__init__(serde=serde)
        self._hold(*open_memory(path, **options), collection)
        self._lock = threading.Lock()  # put_writes reads the slots it may not overwrite

    def as_of(self, t: datetime | int) -> MemvidSaver:
        """A read-only saver showing the checkpoints as they were at record time ``t``
        (an aware datetime or a ``Memory.generation``); its writes raise ReadOnlyError.

        Raises:
            HistoryUnavailableError: ``t`` is older than the history compaction kept.
        """
        view = copy.copy(self)
        view._read_only_at(t)
        return view

    def _read_only_at(self, t: datetime | int) -> None:
        """Make this copy a view: reads as of ``t``, no writes, the memory never closed."""
        self._collection = cast(Collection, self._collection.as_of(t))
        self._owned = False
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- reads

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns = _where(config)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id:
            try:
                frame = self._collection.get(
                    layout.checkpoint_frame_id(thread_id, ns, checkpoint_id))
            except FrameNotFoundError:
                return None
            return self._tuple(frame, config)
        newest = self._collection.select(
            {"checkpoints_of": layout.checkpoints_of(thread_id, ns)}, reverse=True, limit=1)
        return self._tuple(newest[0]) if newest else None

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None
             ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of ``config``'s thread (and namespace and id, when
        given), whose metadata has every ``filter`` item, older than ``before``."""
        spec: dict[str, Any] = {"kind": layout.CHECKPOINT}
        id_condition: dict[str, Any] = {}
        if config is not None:
            conf = config["configurable"]
            spec["thread_id"] = conf["thread_id"]
            if conf.get("checkpoint_ns") is not None:
                spec["checkpoint_ns"] = conf["checkpoint_ns"]
            if checkpoint_id := get_checkpoint_id(config):
                id_condition["$eq"] = checkpoint_id
        if filter:
            spec.update(layout.metadata_filter(filter))
        window = None
        if before is not None and (before_id := get_checkpoint_id(before)):
            id_condition["$lt"] = before_id
            if (at := layout.event_time(before_id)) is not None:
                window = (None, at + timedelta(microseconds=1))
        if id_condition:
            spec["checkpoint_id"] = id_condition
        if limit is not None:
            limit = max(limit, 0)
        for frame in self._collection.select(spec, reverse=True, limit=limit,
                                             time_range=window):
            yield self._tuple(frame)

    def _tuple(self, frame: Frame, config: RunnableConfig | None = None) -> CheckpointTuple:
        meta = frame.metadata
        thread_id, ns, checkpoint_id = (meta["thread_id"], meta["checkpoint_ns"],
                                        meta["checkpoint_id"])
        checkpoint = self.serde.loads_typed(layout.unpack(meta["checkpoint"]))
        values = self._channel_values(thread_id, ns, checkpoint["channel_versions"])
        parent = meta.get("parent_checkpoint_id")
        return CheckpointTuple(
            config=config or _config(thread_id, ns, checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self.serde.loads_typed(layout.unpack(meta["metadata"])),
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=self._pending_writes(thread_id, ns, checkpoint_id),
        )

    def _channel_values(self, thread_id: Any, ns: str,
                        versions: Mapping[str, Any]) -> dict[str, Any]:
        values = {}
        for channel, version in versions.items():
            try:
                blob = self._collection.get(
                    layout.blob_frame_id(thread_id, ns, channel, version))
            except FrameNotFoundError:
                continue
            typed = layout.unpack(blob.metadata["value"])
            if typed[0] != layout.EMPTY[0]:
                values[channel] = self.serde.loads_typed(typed)
        return values

    def _write_frames(self, thread_id: Any, ns: str, checkpoint_id: str,
                      task_id: str | None = None) -> list[Frame]:
        spec: dict[str, Any] = {"writes_of": layout.writes_of(thread_id, ns, checkpoint_id)}
        if task_id is not None:
            spec["task_id"] = task_id
        return self._collection.select(spec)

    def _pending_writes(self, thread_id: Any, ns: str, checkpoint_id: str
                        ) -> list[PendingWrite]:
        metas = [f.metadata for f in self._write_frames(thread_id, ns, checkpoint_id)]
        metas.sort(key=lambda m: writes_sort_key(m["task_path"], m["task_id"], m["idx"]))
        return [(m["task_id"], m["channel"], self.serde.loads_typed(layout.unpack(m["value"])))
                for m in metas]

    # ---------------------------------------------------------------- writes

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        """Store a checkpoint and the values of the channels in ``new_versions``."""
        thread_id, ns = _where(config)
        body = checkpoint.copy()
        values: dict[str, Any] = body.pop("channel_values")  # type: ignore[misc]
        records = [layout.record(layout.blob_meta(
            thread_id, ns, channel, version,
            self.serde.dumps_typed(values[channel]) if channel in values else layout.EMPTY))
            for channel, version in new_versions.items()]
        fields = get_checkpoint_metadata(config, metadata)
        records.append(layout.record(layout.checkpoint_meta(
            thread_id, ns, checkpoint["id"], config["configurable"].get("checkpoint_id"),
            self.serde.dumps_typed(body), self.serde.dumps_typed(fields), fields),
            layout.event_time(checkpoint["id"])))
        self._collection.put_many(records)
        return _config(thread_id, ns, checkpoint["id"])

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]],
                   task_id: str, task_path: str = "") -> None:
        """Store a task's writes for a checkpoint: a regular write is kept once per
        (task, index), a special one (error, interrupt, ...) replaces the previous."""
        thread_id, ns = _where(config)
        checkpoint_id = config["configurable"]["checkpoint_id"]
        slots = [(WRITES_IDX_MAP.get(channel, idx), channel, value)
                 for idx, (channel, value) in enumerate(writes)]
        with self._lock:
            taken: set[int] = set()
            if any(slot >= 0 for slot, _, _ in slots):
                taken = {f.metadata["idx"]
                         for f in self._write_frames(thread_id, ns, checkpoint_id, task_id)}
            records = {}
            for slot, channel, value in slots:
                if slot >= 0 and slot in taken:
                    continue
                rec = layout.record(layout.write_meta(
                    thread_id, ns, checkpoint_id, task_id, task_path, slot, channel,
                    self.serde.dumps_typed(value)))
                records[rec["id"]] = rec
            if records:
                self._collection.put_many(list(records.values()))

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob and pending write of a thread (one write)."""
        self._delete(self._collection.select_ids({"thread_id": thread_id}))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints whose metadata ``run_id`` is listed, with their writes."""
        if not run_ids:
            return
        runs = [layout.canonical(run_id) for run_id in run_ids]
        checkpoints = self._collection.select(
            {"kind": layout.CHECKPOINT, layout.FIELD_PREFIX + "run_id": {"$in": runs}})
        doomed = [f.id for f in checkpoints]
        owners = [layout.writes_of(f.metadata["thread_id"], f.metadata["checkpoint_ns"],
                                   f.metadata["checkpoint_id"]) for f in checkpoints]
        if owners:  # their pending writes, by id alone, in one indexed listing
            doomed += self._collection.select_ids({"writes_of": {"$in": owners}})
        self._delete(doomed)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, blob and pending write of a thread to another thread
        (one write); checkpoint ids, order and metadata are kept (a ``thread_id`` in the
        metadata names the target)."""
        records = []
        for frame in self._collection.select({"thread_id": source_thread_id}):
            meta = {**frame.metadata, "thread_id": target_thread_id}
            created_at = None
            if meta["kind"] == layout.CHECKPOINT:
                meta["checkpoints_of"] = layout.checkpoints_of(
                    target_thread_id, meta["checkpoint_ns"])
                fields = self.serde.loads_typed(layout.unpack(meta["metadata"]))
                if "thread_id" in fields:
                    fields["thread_id"] = target_thread_id
                    meta["metadata"] = layout.pack(self.serde.dumps_typed(fields))
                    meta.update(layout.metadata_fields(fields))
                created_at = frame.created_at
            elif meta["kind"] == layout.WRITE:
                meta["writes_of"] = layout.writes_of(
                    target_thread_id, meta["checkpoint_ns"], meta["checkpoint_id"])
            records.append(layout.record(meta, created_at))
        if records:
            self._collection.put_many(records)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the newest checkpoint of each namespace with its writes and the
        blobs it names (``keep_latest``), or delete the threads (``delete``); one write.

        Raises:
            InvalidInputError: an unknown strategy.
        """
        if strategy not in STRATEGIES:
            raise InvalidInputError(
                f"strategy must be 'keep_latest' or 'delete', got {strategy!r}")
        doomed: list[str] = []
        for thread_id in thread_ids:
            if strategy == "keep_latest":
                frames = self._collection.select({"thread_id": thread_id}, reverse=True)
                doomed += [f.id for f in self._superseded(frames)]
            else:  # the ids alone, no frame read
                doomed += self._collection.select_ids({"thread_id": thread_id})
        self._delete(doomed)

    def _superseded(self, frames: list[Frame]) -> list[Frame]:
        """The frames of one thread (newest first) that ``keep_latest`` drops."""
        latest: dict[str, Frame] = {}
        for frame in frames:
            if frame.metadata["kind"] == layout.CHECKPOINT:
                latest.setdefault(frame.metadata["checkpoint_ns"], frame)
        kept_versions = {}
        for ns, frame in latest.items():
            body = self.serde.loads_typed(layout.unpack(frame.metadata["checkpoint"]))
            kept_versions[ns] = body.get("channel_versions", {})
        out = []
        for frame in frames:
            meta = frame.metadata
            ns = meta["checkpoint_ns"]
            if meta["kind"] == layout.BLOB:
                versions = kept_versions.get(ns, {})
                keep = meta["channel"] in versions and versions[meta["channel"]] == meta["version"]
            else:
                keep = ns in latest and latest[ns].metadata["checkpoint_id"] == meta[
                    "checkpoint_id"]
            if not keep:
                out.append(frame)
        return out

    def _delete(self, ids: list[str]) -> None:
        if ids:
            self._collection.delete_many(ids, missing_ok=True)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next channel version: a zero-padded counter and a random fraction, as in
        ``InMemorySaver``."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(current.split(".")[0])
        return f"{number + 1:032}.{random.random():016}"

    # ---------------------------------------------------------------- async

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await in_thread(self.get_tuple, config)

    async def alist(self, config: RunnableConfig | None, *,
                    filter: dict[str, Any] | None = None, before: RunnableConfig | None = None,
                    limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        def collect() -> list[CheckpointTuple]:
            return [*self.list(config, filter=filter, before=before, limit=limit)]

        for item in await in_thread(collect):
            yield item

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
