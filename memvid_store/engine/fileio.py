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
from dataclasses import dataclass

from ..errors import ClosedError, ConfigError, CorruptFileError

_ADVICE = {"random": "MADV_RANDOM", "sequential": "MADV_SEQUENTIAL", "normal": "MADV_NORMAL"}


@dataclass(frozen=True, slots=True)
class MmapConfig:
    """How the committed part of a file is mapped.

    Attributes:
        enabled: map the file; ``False`` (or a failing mmap) reads with ``pread``, with
            identical results (``MEMVID_MMAP_ENABLED``).
        advice: kernel read-ahead policy for the map: ``random`` (default: frames, graph
            and index pages are read where queries land), ``sequential`` or ``normal``.
        prefetch: before scanning a region front to back (an exact vector scan), ask the
            kernel to read it ahead in bulk instead of faulting 4 KiB pages one by one.
    """

    enabled: bool = True
    advice: str = "random"
    prefetch: bool = True

    def __post_init__(self) -> None:
        if self.advice not in _ADVICE:
            raise ConfigError(f"MmapConfig.advice must be one of {', '.join(_ADVICE)}, "
                              f"got {self.advice!r}")


class FileView:
    batches = False  # a local file gains nothing from reads announced together (fetch)

    def __init__(self, fd: int, length: int, *, use_mmap: bool | MmapConfig = True) -> None:
        cfg = use_mmap if isinstance(use_mmap, MmapConfig) else MmapConfig(enabled=use_mmap)
        self.length = length
        self.prefetching = cfg.prefetch
        self._mm: mmap.mmap | None = None
        self.fd = -1
        if cfg.enabled and length > 0:
            try:
                self._mm = mmap.mmap(fd, length, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                self._mm = None  # e.g. a filesystem without mmap support: pread instead
            else:
                advice = getattr(mmap, _ADVICE[cfg.advice], None)
                if advice is not None and hasattr(self._mm, "madvise"):
                    with contextlib.suppress(OSError):
                        self._mm.madvise(advice)
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
            raise ClosedError("the memory this frame came from is closed: read its embedding "
                              "(or any lazily loaded field) before close()")
        data = os.pread(self.fd, size, offset)
        if len(data) != size:
            raise CorruptFileError(f"{region} at offset {offset} is truncated", region, offset)
        return memoryview(data)

    def prefetch(self, offset: int, size: int) -> None:
        """Hint that ``[offset, offset+size)`` is about to be read in full (mmap only)."""
        mm = self._mm
        if mm is None or not self.prefetching or size <= 0 or not hasattr(mmap, "MADV_WILLNEED"):
            return
        start = offset - offset % mmap.PAGESIZE
        end = min(offset + size, self.length)
        with contextlib.suppress(OSError, ValueError):
            mm.madvise(mmap.MADV_WILLNEED, start, end - start)

    def fetch(self, spans: list[tuple[int, int]], region: str = "fetch",
              gap: int | None = None) -> None:
        """Announce reads of these ``(offset, size)`` spans (``region``: what they are). A
        view over remote bytes (``batches``) fetches them together (``gap``: how far
        apart two spans may lie and share a request); a local file needs nothing.
        Callers skip building ``spans`` when ``batches`` is False."""

    def release(self, offset: int, size: int) -> None:
        """Unmap the pages of ``[offset, offset+size)`` after a one-off pass over them (a
        checksum, a copy, a graph load), so they stop counting as this process's resident
        memory. They stay in the page cache and fault back in, unchanged, when read again;
        views into them stay valid. Pages shared with the neighbouring bytes go too."""
        mm = self._mm
        if mm is None or size <= 0 or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start = max(0, offset - offset % mmap.PAGESIZE)
        end = min(offset + size, self.length)
        if end > start:
            with contextlib.suppress(OSError, ValueError):
                mm.madvise(mmap.MADV_DONTNEED, start, end - start)

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
