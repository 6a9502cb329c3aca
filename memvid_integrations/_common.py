"""Shared by every adapter: opening and holding a memory and the adapter's collection, and
running engine calls off the event loop.

Each adapter keeps its frames in its own collection of the file (a documented default name,
overridable with ``collection=``), so adapters sharing one file never see or delete each
other's frames. A read-only adapter opened on a path follows the writer in another process
(``follow=True``); one opened on a writable path shares the process's writer with every
other handle of that file, so it sees their writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, Self, TypeVar

from memvid_store import Collection, Memory
from memvid_store.errors import InvalidTypeError

T = TypeVar("T")

MemorySource = str | os.PathLike[str] | Memory


def open_memory(source: MemorySource, **options: Any) -> tuple[Memory, bool]:
    """Return ``(memory, owned)``: an open Memory as given, or the file at a path.

    A path that does not exist is created (its embedding dimension is learned from the first
    vector); ``index=`` is only used when creating. A read-only open follows other processes'
    writes unless ``follow=False`` is given. ``owned`` says whether the caller must close it.
    """
    if isinstance(source, Memory):
        if options:
            raise InvalidTypeError(f"options {sorted(options)} only apply when a path is given")
        return source, False
    if not isinstance(source, str | os.PathLike):
        raise InvalidTypeError(
            f"path must be a str, os.PathLike or Memory, not {type(source).__name__}")
    path = os.fspath(source)
    if os.path.exists(path):
        options.pop("index", None)
        if options.get("readonly"):
            options.setdefault("follow", True)
        return Memory.open(path, **options), True
    return Memory.create(path, **options), True


@contextlib.contextmanager
def opened_memory(source: MemorySource, **options: Any) -> Iterator[tuple[Memory, bool]]:
    """``open_memory`` for a constructor: an owned memory is closed again if the block raises.

    Args:
        source: a path or an open Memory, as for :func:`open_memory`.
        **options: ``Memory.create``/``Memory.open`` options when a path is given.

    Yields:
        ``(memory, owned)`` as returned by :func:`open_memory`.
    """
    memory, owned = open_memory(source, **options)
    try:
        yield memory, owned
    except BaseException:
        if owned:
            memory.close()
        raise


class MemoryHolder:
    """What every adapter shares: the memory it uses, its collection in it, and closing the
    memory if it opened it.

    An adapter calls :meth:`_hold` with what :func:`open_memory` returned and its collection
    name, then reads and writes through :attr:`collection`. ``close()`` closes
    the memory only when the adapter opened it (a Memory passed in stays open for its owner),
    and closing twice is harmless. The adapter is a context manager that closes on exit.

    Adapters list this class after their framework base class, so a lifecycle method the
    framework defines itself keeps the framework's meaning (LangGraph's ``InMemorySaver``
    context manager, for instance). Pydantic-based adapters declare ``_memory``,
    ``_owned`` and ``_collection`` as ``PrivateAttr``.
    """

    _memory: Memory
    _owned: bool
    _collection: Collection

    def _hold(self, memory: Memory, owned: bool, collection: str) -> None:
        """Keep ``memory`` and its collection ``collection``; ``owned`` says whether
        :meth:`close` closes the memory (closed here already if the name is invalid)."""
        try:
            frames = memory.collection(collection)
        except BaseException:
            if owned:
                memory.close()
            raise
        self._memory = memory
        self._owned = owned
        self._collection = frames

    @property
    def memory(self) -> Memory:
        """The underlying memory (shared with other adapters on the same file)."""
        return self._memory

    @property
    def collection(self) -> Collection:
        """This adapter's collection of the memory: every frame it reads or writes."""
        return self._collection

    def close(self) -> None:
        """Close the memory if this adapter opened it (idempotent)."""
        if self._owned:
            self._memory.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking engine call in a worker thread so the event loop stays free."""
    return await asyncio.to_thread(func, *args, **kwargs)
