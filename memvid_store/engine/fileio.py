"""Read-only access to the committed part of a file: mmap, or pread when mmap is off.

A view covers ``[0, length)``, the bytes one snapshot's TOC references. Bytes past it
may still be written by a writer, so the view never reads them; a newer snapshot opens a
new, longer view. Views stay valid while anything references them, so a snapshot keeps
working after the writer commits or the file is replaced by ``compact()``.
"""

from __future__ import annotations

import contextlib
import mmap
import os

from ..errors import CorruptFileError


class FileView:
    def __init__(self, fd: int, length: int, *, use_mmap: bool = True) -> None:
        self.length = length
        self._mm: mmap.mmap | None = None
        self.fd = -1
        if use_mmap and length > 0:
            try:
                self._mm = mmap.mmap(fd, length, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                self._mm = None  # e.g. a filesystem without mmap support: pread instead
        if self._mm is None:
            # a private descriptor: the view outlives the handle's fd (refresh, compact)
            self.fd = os.dup(fd)

    @property
    def mmapped(self) -> bool:
        return self._mm is not None

    def read(self, offset: int, size: int, region: str = "segment") -> memoryview:
        """Bytes ``[offset, offset+size)``; CorruptFileError if they lie outside the view."""
        if offset < 0 or size < 0 or offset + size > self.length:
            raise CorruptFileError(
                f"{region} reference [{offset}, {offset + size}) lies outside the committed "
                f"file ({self.length} bytes)", region, offset)
        if self._mm is not None:
            return memoryview(self._mm)[offset : offset + size]
        if self.fd < 0:
            raise ValueError("read from a closed file view")
        data = os.pread(self.fd, size, offset)
        if len(data) != size:
            raise CorruptFileError(f"{region} at offset {offset} is truncated", region, offset)
        return memoryview(data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        mm, self._mm = self._mm, None
        if mm is not None:
            # a caller may still hold a view into it; it is then freed with the last one
            with contextlib.suppress(BufferError):
                mm.close()

    def __del__(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
