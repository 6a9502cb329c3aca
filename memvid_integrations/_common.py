"""Shared by every adapter: opening a memory, and running engine calls off the event loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, TypeVar

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


async def in_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking engine call in a worker thread so the event loop stays free."""
    return await asyncio.to_thread(func, *args, **kwargs)
