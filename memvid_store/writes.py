"""The write API of a memory, shared by ``Memory`` and its collections.

Every write goes to the engine's ``Writer`` (engine/writer.py) under the handle's lock,
in the collection of the handle it was called on (``Memory``: the default collection).
Texts are embedded before the lock is taken, so a slow model never blocks readers of
the same handle.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .autoembed import fill_embeddings
from .engine.records import KEEP
from .errors import storage_errors

if TYPE_CHECKING:
    from .engine.writer import Writer


class WriteAccess:
    """What writes need from the open handle behind them (shared by its collections).

    Attributes:
        writable: the handle's writer; raises ClosedError once closed, ReadOnlyError for
            a reader.
        mutex: serializes the handle's writes and snapshot switches.
        embedder: embeds texts stored without an embedding (None: callers pass vectors).
    """

    __slots__ = ("embedder", "mutex", "writable")

    def __init__(self, writable: Callable[[], Writer], mutex: threading.RLock,
                 embedder: Any) -> None:
        self.writable = writable
        self.mutex = mutex
        self.embedder = embedder

    @contextlib.contextmanager
    def writing(self, what: str) -> Iterator[Writer]:
        """The writer, under the handle's lock; the disk refusing the write is a
        StorageError (the file stays at its last acknowledged write)."""
        with self.mutex, storage_errors(what):
            yield self.writable()


class Writes:
    """Write API in the collection ``_scope`` through ``_writes``."""

    _writes: WriteAccess
    _scope: str

    def put(self, text: str, *, embedding: Sequence[float] | None = None,
            metadata: Mapping[str, Any] | None = None, tags: Iterable[str] | None = None,
            created_at: datetime | None = None, id: str | None = None) -> str:
        """Store a frame durably (WAL + fsync) and return its id.

        Putting an existing id stores a new version of it (the old one stays in history).
        """
        return self.put_many([{"text": text, "embedding": embedding, "metadata": metadata,
                               "tags": tags, "created_at": created_at, "id": id}])[0]

    def put_many(self, records: Iterable[Mapping[str, Any]], *,
                 recorded_at: datetime | None = None, delete: Iterable[str] = ()) -> list[str]:
        """Store many frames atomically in one durable write; returns their ids.

        Each record is a dict with ``put``'s keys (``text`` required). Either every record
        is stored or, if any is invalid, none is.

        ``delete`` names frames deleted in the same write (a replace: readers see the old
        frames or the new ones, never both); ids without a current frame are skipped, and
        an id may not be both stored and deleted (InvalidInputError).

        ``recorded_at`` replays history (e.g. an import): the write is recorded at that
        time instead of now, so ``as_of`` answers as in the file it came from. Record
        times only move forward: it must be later than every earlier write.

        With an embedder, records without an embedding are embedded (one batch).
        """
        access = self._writes
        access.writable()
        if access.embedder is not None:
            records = fill_embeddings(access.embedder, list(records))
        with access.writing("put") as writer:
            return writer.put_many(records, recorded_at, self._scope, delete)

    def update(self, id: str, *, text: str = KEEP, metadata: Mapping[str, Any] = KEEP,
               embedding: Sequence[float] | None = KEEP, tags: Iterable[str] = KEEP,
               created_at: datetime = KEEP) -> int:
        """Store a new version of a frame, keeping fields not given; returns its version.

        With an embedder, a new ``text`` without a new ``embedding`` is re-embedded.

        Raises:
            FrameNotFoundError: no current frame has this id.
        """
        access = self._writes
        access.writable()
        if access.embedder is not None and embedding is KEEP and isinstance(text, str):
            embedding = access.embedder.embed_documents([text])[0]
        with access.writing("update") as writer:
            return writer.update(id, text=text, metadata=metadata, embedding=embedding,
                                 tags=tags, created_at=created_at, collection=self._scope)

    def delete(self, id: str) -> None:
        """Delete a frame (a tombstone version); its history stays readable via as_of.

        Raises:
            FrameNotFoundError: no current frame has this id.
        """
        self.delete_many([id])

    def delete_many(self, ids: Iterable[str], *, missing_ok: bool = False,
                    recorded_at: datetime | None = None) -> int:
        """Delete several frames atomically, in one durable write; returns how many.

        ``recorded_at`` replays history, as in ``put_many``.

        Raises:
            FrameNotFoundError: an id has no current frame (nothing is deleted), unless
                ``missing_ok``, which skips such ids.
        """
        with self._writes.writing("delete") as writer:
            return writer.delete_many(
                ids, missing_ok=missing_ok, recorded_at=recorded_at, collection=self._scope)

    def clear(self) -> int:
        """Delete every current frame of this collection in one durable write; returns how
        many. Their history stays readable via ``as_of``."""
        with self._writes.writing("clear") as writer:
            ids = self.ids()  # type: ignore[attr-defined]
            return writer.delete_many(ids, collection=self._scope)
