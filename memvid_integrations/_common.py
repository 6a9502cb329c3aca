"""Shared by every adapter: opening and holding a memory, and running engine calls off the
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, Self, TypeVar

from memvid_store import Memory
from memvid_store.errors import InvalidTypeError

T = TypeVar("T")

MemorySource = str | os.PathLike[str] | Memory


def open_memory(source: MemorySource, **options: Any) -> tuple[Memory, bool]:
    """Return ``(memory, owned)``: an open Memory as given, or the file at a path.

    A path that does not exist is created (its embedding dimension is learned from the first
    vector); ``index=`` is only used when creating. ``owned`` says whether the caller must
    close it.
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
    """The lifecycle every adapter shares: the memory it uses, and closing it if it opened it.

    An adapter calls :meth:`_hold` with what :func:`open_memory` returned. ``close()`` closes
    the memory only when the adapter opened it (a Memory passed in stays open for its owner),
    and closing twice is harmless. The adapter is a context manager that closes on exit.

    Adapters list this class after their framework base class, so a lifecycle method the
    framework defines itself keeps the framework's meaning (LangGraph's ``InMemorySaver``
    context manager, for instance). Pydantic-based adapters declare ``_memory`` and
    ``_owned`` as ``PrivateAttr``.
    """

    _memory: Memory
    _owned: bool

    def _hold(self, memory: Memory, owned: bool) -> None:
        """Keep ``memory``; ``owned`` says whether :meth:`close` closes it."""
        self._memory = memory
        self._owned = owned

    @property
    def memory(self) -> Memory:
        """The underlying memory (shared with other adapters on the same file)."""
        return self._memory

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
