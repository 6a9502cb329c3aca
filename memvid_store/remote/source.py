"""One version of a remote object, read by range: the engine's ``ByteSource``.

Reads are served from chunks (``RemoteConfig.chunk_bytes``, aligned): in memory once this
process has them, else copied from the chunk cache, else downloaded, adjacent missing
chunks in one request. Every request names the version (``If-Match`` its ETag),
so the bytes of one snapshot all come from one version: if the object is replaced, the
next download raises ObjectChangedError and ``refresh()`` moves to the new version.
"""

from __future__ import annotations

import mmap
import threading

from ..engine.format import HEADER_SIZE
from ..engine.wal import FIRST_READ
from ..errors import ClosedError, CorruptFileError
from .cache import ChunkCache
from .client import ObjectClient


class RemoteObject:
    """``ByteSource`` over one version (``identity``: its ETag) of the object behind
    ``client``. ``requests`` and ``fetched`` count the downloads it made.

    The bytes live in an anonymous map the size of the object: only the chunks filled in
    take memory, and a read of chunks already there is a view into the map, without a
    copy, as for a mapped local file."""

    def __init__(self, client: ObjectClient, cache: ChunkCache, object_dir: str, etag: str,
                 size: int, chunk: int, max_request: int, parallel: int = 8) -> None:
        self.client, self.cache = client, cache
        self.parallel = parallel
        self.identity, self.size = etag, size
        self.chunk = chunk
        self.max_chunks = max(1, max_request // chunk)
        self.version_dir = cache.version_dir(object_dir, etag)
        self._map = memoryview(mmap.mmap(-1, max(size, 1)))
        self._readonly = self._map.toreadonly()  # what reads hand out
        self._have = bytearray(-(-size // chunk))  # 1: chunk i is in the map
        self._lock = threading.Lock()
        self._count = threading.Lock()  # parallel downloads update the counters
        self.requests = 0
        self.fetched = 0

    def keep(self, first: int, data: bytes | memoryview) -> None:
        """Put downloaded chunks (``first`` and the ones after it) in the map and the
        disk cache."""
        data = memoryview(data)
        for index in range(first, first + -(-len(data) // self.chunk)):
            at = (index - first) * self.chunk
            piece = data[at : at + self._length(index)]
            self._map[index * self.chunk : index * self.chunk + len(piece)] = piece
            self._have[index] = 1
            self.cache.store(self.version_dir, index, piece)

    def pread(self, size: int, offset: int) -> bytes:
        end = min(offset + size, self.size)
        return bytes(self.read(offset, end - offset)) if end > offset else b""

    def read(self, offset: int, size: int) -> memoryview:
        """Bytes ``[offset, offset+size)``, which must lie inside the object."""
        if size > 0:
            first, last = offset // self.chunk, (offset + size - 1) // self.chunk
            if not all(self._have[first : last + 1]):
                self._ensure(range(first, last + 1))
        return self._readonly[offset : offset + size]

    def fetch(self, spans: list[tuple[int, int]]) -> None:
        """Make the chunks of these ``(offset, size)`` spans readable, the missing ones
        downloaded in parallel requests (adjacent ones coalesced)."""
        chunk, have = self.chunk, self._have
        wanted = {index for offset, size in spans if size > 0
                  for index in range(offset // chunk, (offset + size - 1) // chunk + 1)
                  if not have[index]}
        if wanted:
            self._ensure(sorted(wanted))

    def _ensure(self, indexes: range | list[int]) -> None:
        """Make chunks ``indexes`` (ascending) readable: from the disk cache, else
        downloaded."""
        with self._lock:
            missing = []
            for index in indexes:
                if self._have[index]:
                    continue
                at = index * self.chunk
                if self.cache.load(self.version_dir, index,
                                   self._map[at : at + self._length(index)]):
                    self._have[index] = 1
                else:
                    missing.append(index)
            runs = _runs(missing, self.max_chunks)
            if len(runs) == 1:
                self.keep(runs[0][0], self._download(*runs[0]))
            elif runs:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(min(self.parallel, len(runs))) as pool:
                    downloads = [pool.submit(self._download, lo, hi) for lo, hi in runs]
                for (lo, _), done in zip(runs, downloads, strict=True):
                    self.keep(lo, done.result())

    def _length(self, index: int) -> int:
        return min(self.chunk, self.size - index * self.chunk)

    def _download(self, lo: int, hi: int) -> bytes | memoryview:
        """Chunks ``lo..hi`` of this version, in one request."""
        start, end = lo * self.chunk, min((hi + 1) * self.chunk, self.size)
        got = self.client.get(start, end, if_match=self.identity)
        if got is None:  # a client that ignored If-Match and answered If-None-Match
            raise AssertionError("a range GET with If-Match answered 304")
        with self._count:
            self.requests += 1
            self.fetched += len(got.data)
        return got.data

    def view(self, length: int) -> RemoteView:
        return RemoteView(self, length)


class RemoteView:
    """``FileView``'s read API over ``[0, length)`` of a ``RemoteObject``."""

    mmapped = False
    prefetching = False
    batches = True

    def __init__(self, source: RemoteObject, length: int) -> None:
        self.source: RemoteObject | None = source
        self.length = length

    def read(self, offset: int, size: int, region: str = "segment") -> memoryview:
        """Bytes ``[offset, offset+size)``; CorruptFileError if they lie outside the view."""
        if offset < 0 or size < 0 or offset + size > self.length:
            raise CorruptFileError(
                f"{region} reference [{offset}, {offset + size}) lies outside the committed "
                f"file ({self.length} bytes)", region, offset)
        if self.source is None:
            raise ClosedError("the memory this frame came from is closed: read its embedding "
                              "(or any lazily loaded field) before close()")
        return self.source.read(offset, size)

    def prefetch(self, offset: int, size: int) -> None:
        """Download ``[offset, offset+size)`` now, in as few requests as possible."""
        if self.source is not None and size > 0:
            self.source.read(offset, min(size, self.length - offset))

    def fetch(self, spans: list[tuple[int, int]]) -> None:
        """Download the chunks of these spans together (parallel requests)."""
        if self.source is not None:
            self.source.fetch([(o, min(n, self.length - o)) for o, n in spans
                               if 0 <= o < self.length])

    def release(self, offset: int, size: int) -> None:
        """Nothing to hand back: the chunks stay for later reads."""

    def close(self) -> None:
        self.source = None


def _runs(indexes: list[int], most: int) -> list[tuple[int, int]]:
    """Sorted ``indexes`` grouped into runs of consecutive values, at most ``most`` long."""
    out: list[tuple[int, int]] = []
    for index in indexes:
        if out and out[-1][1] == index - 1 and index - out[-1][0] < most:
            out[-1] = (out[-1][0], index)
        else:
            out.append((index, index))
    return out


def open_object(client: ObjectClient, cache: ChunkCache, object_dir: str, chunk: int,
                max_request: int, parallel: int,
                current: RemoteObject | None = None) -> RemoteObject:
    """The newest version of the object, in one request: its first chunks (the header
    and the WAL's first read), unless the version last seen (``current``, else the one
    the cache remembers) is still the newest, which the store confirms without sending
    it (``If-None-Match``)."""
    known = (current.identity, current.size) if current is not None \
        else cache.remembered(object_dir)
    head = -(-(HEADER_SIZE + FIRST_READ) // chunk) * chunk
    got = client.get(0, head, if_none_match=known[0] if known else None)
    if got is None:
        if current is not None:
            return current
        etag, size = known  # type: ignore[misc]
        return RemoteObject(client, cache, object_dir, etag, size, chunk, max_request, parallel)
    obj = RemoteObject(client, cache, object_dir, got.etag, got.size, chunk, max_request,
                       parallel)
    obj.requests, obj.fetched = 1, len(got.data)
    obj.keep(0, got.data)
    cache.remember(object_dir, got.etag, got.size)
    return obj


__all__ = ["RemoteObject", "RemoteView", "open_object"]
