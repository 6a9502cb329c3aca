"""The object behind a read-only ``Memory`` opened from a URL (``s3://bucket/key``,
``gs://bucket/key``, ``az://container/key``).

It answers the calls ``Memory`` makes of a local reader's file (``engine/follow.py``'s
``ReaderFile``): ``fd`` is the current version as a ``ByteSource``, ``load`` reads its
state, ``reopen`` (``refresh()``) asks the store for a newer version. It never follows
a writer: a new version is seen on ``refresh()``.
"""

from __future__ import annotations

import contextlib
import os

from ..engine.follow import NOTHING
from ..engine.runs import PART_GROUPS, RunReader, part_spans, read_rows_by_page
from ..engine.snapshot import all_current
from ..engine.store import Opened, read_state_for_reader
from ..errors import CorruptFileError
from . import preload
from .cache import ChunkCache
from .client import ObstoreClient
from .config import RemoteConfig
from .retry import RetryingClient
from .source import RemoteObject, open_object
from .stores import endpoint_of


class RemoteReader:
    """One object URL read through range requests and the chunk cache."""

    follow = False

    def __init__(self, url: str, config: RemoteConfig, cache_root: str) -> None:
        self.path = url
        self.client = object_client(url, config)
        self.cache = ChunkCache(config.cache_dir or os.path.join(cache_root, "s3"),
                                config.cache_bytes)
        self.object_dir = self.cache.object_dir(f"{endpoint_of(url)}|{url}")
        self.sizes = (config.chunk_bytes, config.max_request_bytes, config.parallel_requests,
                      config.gap_bytes)
        self.fd: RemoteObject = open_object(self.client, self.cache, self.object_dir,
                                            *self.sizes)
        preload.start()  # the search code is imported while the open waits for bytes
        self.wal_end = 0
        self.installed: RemoteObject | None = None  # the version the handle reads

    def load(self) -> Opened:
        state = read_state_for_reader(self.fd)
        self.wal_end = state.wal_end
        self.fd.fetch(first_reads(state), "metadata")
        runs = [RunReader(self.fd.view(self.fd.size), ref) for ref in state.toc.runs()]
        with contextlib.suppress(CorruptFileError):  # reported when the part is read
            if runs:  # with whatever the first query downloads first
                read_rows_by_page(runs, all_current(state.toc.counters))
                whole = [run for run in runs if not run.rows_by_page]
                self.fd.ahead(part_spans(runs, PART_GROUPS[0][0]) + [
                    span for group in PART_GROUPS[2:] for span in part_spans(whole, group[0])],
                    "segment:run")
        return state

    def publish(self) -> None:
        """The handle now reads the version ``load`` read."""
        self.installed = self.fd

    def reopen(self) -> bool:
        """True while the version the handle reads is still the newest; else switch to
        the newest and return False (nothing read from another version can be reused)."""
        self.fd = open_object(self.client, self.cache, self.object_dir, *self.sizes,
                              current=self.fd)
        return self.fd is self.installed

    def news(self) -> int:
        return NOTHING

    def close(self) -> None:
        """Wait for the chunk cache's writes; the versions' chunks stay in the cache."""
        self.cache.flush()


def first_reads(state: Opened) -> list[tuple[int, int]]:
    """What any read of a snapshot needs first, known from its TOC: the header of every
    run (``meta.head``) and the small segments whole (the BM25 manifest, the compression
    dictionary), fetched in one round instead of one request each when first used. The
    runs' parts a query reads (``PART_GROUPS``; of a run whose row columns are read by
    the page, only the small ones), located by those headers, join the next round."""
    spans = []
    for seg in state.toc.segments:
        if seg.kind == "run":
            spans.append((seg.offset, min(seg.length, int(seg.meta.get("head", 0)))))
        elif seg.length <= SMALL_SEGMENT:
            spans.append((seg.offset, seg.length))
    return spans


SMALL_SEGMENT = 64 << 10

__all__ = ["RemoteReader", "first_reads"]


def object_client(url: str, config: RemoteConfig) -> RetryingClient:
    """The client reads of ``url`` go through: obstore, wrapped as ``config`` says, with
    its retries."""
    client = ObstoreClient(url, config.timeout)
    if config.wrap_client is not None:
        client = config.wrap_client(client)
    return RetryingClient(client, retries=config.retries, backoff=config.backoff,
                          max_backoff=config.max_backoff)
