"""Where a read-only snapshot's bytes come from when they are not in a local file.

The engine reads a local file through its descriptor (``os.pread`` for the header, TOC and
WAL; a ``FileView`` over the committed part for everything else). A ``ByteSource`` stands
in for that descriptor: one immutable version of a file held elsewhere (an object in a
store), with its size, positional reads and a view over ``[0, length)`` that has
``FileView``'s read API (``read``, ``prefetch``, ``fetch``, ``release``, ``close``,
``length``, ``mmapped``, ``batches``). Implementations live above the engine
(``memvid_store/remote``).
"""

from __future__ import annotations

from typing import Any, Protocol


class ByteSource(Protocol):
    """One immutable version of a file: ``identity`` names it (an ETag, a version id)."""

    size: int
    identity: str

    def pread(self, size: int, offset: int) -> bytes:
        """Bytes ``[offset, offset+size)``, shorter only past the end (like ``os.pread``)."""
        ...

    def view(self, length: int) -> Any:
        """A ``FileView``-like reader of ``[0, length)``."""
        ...


__all__ = ["ByteSource"]
