"""The Memory facade: one .mv2 file, its lifecycle, and delegation to the engine.

A ``Memory`` opens the file (lock, header, TOC, WAL replay), hands writes to the engine's
``Writer`` (``engine/writer.py``: record times, WAL or commit, checkpoints), reads through
the read API it shares with its ``as_of`` views (``reads.py``), and runs the cold-start
machinery (warmup tiers, frame cache, metrics, access analyzer).

>>> import tempfile, os
>>> from datetime import datetime, timezone
>>> path = os.path.join(tempfile.mkdtemp(), "agent.mv2")
>>> with Memory.create(path) as mem:
...     fid = mem.put("the budget meeting moved to friday", tags=["calendar"])
...     mem.get(fid).text
'the budget meeting moved to friday'
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .autoembed import check_binding, file_binding
from .coldstart.cache import CacheStats
from .coldstart.handle import HandleColdStart
from .config import IndexConfig, StoreConfig
from .engine import shared
from .engine.follow import ReaderFile
from .engine.hooks import ALL, DUE, SEAL
from .engine.records import live_by_collection
from .engine.snapshot import Snapshot
from .engine.store import Opened, check_not_future, create_file, make_snapshot
from .errors import (
    AlreadyExistsError,
    ClosedError,
    InvalidInputError,
    ReadOnlyError,
    RemoteReadOnlyError,
    storage_errors,
)
from .reads import MemoryView, ReadContext, Reads, index_config_of
from .remote.urls import is_remote
from .types import to_us
from .validate import check_collection
from .writes import WriteAccess, Writes

if TYPE_CHECKING:
    from .coldstart.metrics import AlertThresholds, ColdStartMetrics
    from .collection import Collection
    from .engine.writer import Writer
    from .remote.config import RemoteConfig
    from .remote.reader import RemoteReader
    from .reports import Stats, VerifyReport


class Memory(Reads, Writes):
    """An open .mv2 memory file. Create with ``Memory.create``, open with ``Memory.open``.

    One writer per file at a time across processes, shared by the writable handles of one
    process (``engine/shared.py``); any number of readers (``readonly=True``), each on the
    snapshot it opened until ``refresh()``, or following the writer (``follow=True``).
    """

    def __init__(self, path: str, source: ReaderFile | RemoteReader | shared.SharedWriter,
                 config: StoreConfig,
                 *, embedder: Any = None, allow_embedder_mismatch: bool = False) -> None:
        """``source``: a reader's file, or a share of the file's writer (a later share
        reads the writer's snapshot)."""
        started = time.perf_counter()
        self._path, self._config, self._closed, self._source = path, config, False, source
        self._shared = source if isinstance(source, shared.SharedWriter) else None
        self._reader = None if self._shared else source  # a ReaderFile or RemoteReader
        self._mutex = self._shared.lock if self._shared else threading.RLock()
        state = None if self._shared and self._shared.writer else source.load()
        self._snapshot = (source.writer.snapshot if state is None  # type: ignore[union-attr]
                          else make_snapshot(source.fd, state, config.mmap))
        self._embedder = embedder
        self._cold = HandleColdStart(config, self._current_search)
        if state is not None:
            self._snapshot.frame_cache = self._cold.frames
        self._ctx = ReadContext(path, self._current, embedder, self._cold.recorder.record,
                                lambda: config.cache_root)  # a share's snapshot outlives it
        self._writes = WriteAccess(self._writable, self._mutex, embedder)
        try:
            if embedder is not None:
                check_binding(embedder, self.embedder_info, self._snapshot.dim, path,
                              allow_mismatch=allow_embedder_mismatch)
            if self._shared is not None and state is not None:
                self._start_writer(state)
            if self._reader is not None:
                self._reader.publish()
            self._cold.recorder.record("toc", time.perf_counter() - started)
            self._cold.start()
        except BaseException:
            if state is not None:  # the map holds a duplicate of fd, and the writer lock
                self._snapshot.close(view=True)
            raise
        if self._shared is not None:  # a handle collected unclosed gives its share back
            self._dropped = weakref.finalize(self, shared.dropped, self._shared, path)
        self._cold.recorder.record("open", time.perf_counter() - started)

    # -------------------------------------------------------------- lifecycle

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, dim: int | None = None,
               config: StoreConfig | None = None,
               index: IndexConfig | Mapping[str, Any] | None = None,
               embedder: Any = None, created_at: datetime | None = None,
               **options: Any) -> Memory:
        """Create a new memory file and open it for writing.

        Args:
            path: where to create the file; it must not exist.
            dim: embedding dimension; ``None`` learns it from the first embedding.
            config: a StoreConfig; keyword ``options`` override its fields
                (``wal_size``, ``sync``, ``lock_timeout``, ``mmap``, ``cache_dir``).
            index: an IndexConfig (or a dict of its fields): distance, HNSW backend and
                parameters, lexical index; fixed for the file's life.
            embedder: embeds texts put without an embedding and queries given as text
                (see ``memvid_store.embeddings``); the file records its name and dim, and
                a later ``open`` with a different embedder is refused. A ``{"name", "dim"}``
                record (``embedder_info`` of another file) binds the file without a model.
            created_at: the file's creation time (default now). An import passes the
                source file's, so that its history can be replayed with ``recorded_at``.

        Raises:
            AlreadyExistsError: a file already exists at ``path``.
            StorageError: the directory refuses the file (permissions, disk full...).
        """
        path = os.fspath(path)
        cfg = (config or StoreConfig.from_env()).with_options(options)
        dim, binding = file_binding(dim, embedder)
        index_cfg = index if isinstance(index, IndexConfig) else IndexConfig(**(index or {}))
        file_options: dict[str, Any] = {"index": index_cfg.to_dict()}
        if binding is not None:
            file_options["embedder"] = binding
        try:
            with storage_errors("create"):
                fd = create_file(path, dim=dim, wal_size=cfg.wal_size, options=file_options,
                                 created_at_us=None if created_at is None
                                 else to_us(created_at, "created_at"))
        except FileExistsError:
            raise AlreadyExistsError(f"{path} already exists") from None
        try:
            # a bare {"name", "dim"} record binds the file without giving this handle a model
            return shared.create(path, fd, lambda entry: cls(
                path, entry, cfg, embedder=None if isinstance(embedder, Mapping) else embedder))
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False,
             follow: bool = False, config: StoreConfig | None = None, embedder: Any = None,
             allow_embedder_mismatch: bool = False,
             remote: RemoteConfig | Mapping[str, Any] | None = None,
             **options: Any) -> Memory:
        """Open an existing memory file (writable unless ``readonly=True``).

        Writable handles of one file in one process share its writer: each sees the
        others' writes, and the lock goes with the last one closed. ``follow=True`` (with
        ``readonly=True``) makes a reader see, on its next call, every write another
        process's writer acknowledged, without ``refresh()``.

        ``embedder`` embeds texts put without an embedding and text queries; it must be
        the one the file was created with (``embedder_info``) unless
        ``allow_embedder_mismatch`` (its dimension must match in any case).

        ``path`` may be an object URL (``s3://bucket/key``, ``gs://...``, ``az://...``),
        opened ``readonly=True``: it is read by range requests pinned to the object's
        version and cached locally (``remote``: a ``RemoteConfig`` or a dict of its fields;
        docs/serverless.md); ``refresh()`` moves to a newer version of the object.

        Raises:
            MemoryNotFoundError: there is no file at ``path``.
            NotAMemoryFileError, VersionMismatchError, CorruptFileError: unusable file.
            MemoryLockedError: another process holds the writer lock.
            EmbedderMismatchError, DimensionMismatchError: the embedder does not fit.
            InvalidInputError: ``follow=True`` without ``readonly=True``.
            RemoteReadOnlyError: a URL opened without ``readonly=True``.
            RemoteError: a URL's object could not be read (its subclasses say why).
        """
        path = os.fspath(path)
        cfg = (config or StoreConfig.from_env()).with_options(options)
        args = {"embedder": embedder, "allow_embedder_mismatch": allow_embedder_mismatch}
        if is_remote(path):
            return cls._open_remote(path, readonly, follow, cfg, remote, args)
        if follow and not readonly:
            raise InvalidInputError("follow=True needs readonly=True: a writable handle sees "
                                    "every write already (its process holds the only writer)")
        if not readonly:
            return shared.acquire(path, cfg.lock_timeout, lambda s: cls(path, s, cfg, **args))
        reader = ReaderFile(path, follow=follow)
        try:
            return cls(path, reader, cfg, **args)
        except BaseException:
            reader.close()
            raise

    @classmethod
    def _open_remote(cls, url: str, readonly: bool, follow: bool, cfg: StoreConfig,
                     remote: RemoteConfig | Mapping[str, Any] | None,
                     args: dict[str, Any]) -> Memory:
        from .remote.config import RemoteConfig
        from .remote.reader import RemoteReader

        if not readonly:
            raise RemoteReadOnlyError(f"{url} is an object in storage: it can only be read",
                                      url)
        if follow:
            raise InvalidInputError("follow=True is for local files: a memory in object "
                                    "storage moves to a newer version on refresh()")
        return cls(url, RemoteReader(url, RemoteConfig.of(remote), cfg.cache_root), cfg, **args)

    def _start_writer(self, state: Opened) -> None:
        from .engine.writer import Writer
        from .index.maintain import IndexMaintainer  # adds the indexes to each commit

        hook = IndexMaintainer.for_writer(index_config_of(self._snapshot), self._config,
                                          self._shared)
        self._shared.writer = Writer(self._shared.fd, state, self._snapshot, hook=hook,
                                     sync=self._config.sync, use_mmap=self._config.mmap)

    def close(self) -> None:
        """Release the file; the last writable handle of it in this process seals pending
        writes first and releases the writer lock. Calling it twice is harmless."""
        with self._mutex:
            if self._closed:
                return
            self._ctx.observer = None
            self._cold.close()
            self._closed = True
            if self._reader is not None:
                self._snapshot.close(view=True)
                self._reader.close()
                return
            self._dropped.detach()
            with storage_errors("close"):
                shared.release(self._shared, lambda writer: writer.seal(full=SEAL))

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("readonly" if self.readonly else "writable")
        return f"<Memory {self._path!r} {state}>"

    @property
    def path(self) -> str:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._reader is not None

    @property
    def generation(self) -> int:
        """The state this handle sees: +1 per write and per commit; ``as_of`` shows it."""
        return self._snap().public_generation

    @property
    def embedder(self) -> Any:
        """The embedder this handle embeds with (None: callers pass vectors)."""
        return self._embedder

    def _current(self) -> Snapshot:
        """The newest snapshot: the shared writer's (it moves with every commit of any
        handle of the file) or the reader's."""
        if self._closed:
            raise ClosedError(f"{self._path} is closed")
        writer = self._shared.writer if self._shared else None  # None: a first share opening
        return self._snapshot if writer is None else writer.snapshot

    def _snap(self) -> Snapshot:
        """The snapshot a read runs on: a following reader first catches up with the writer."""
        if self._reader is not None and self._reader.news():
            self._reader.catch_up(self._mutex, self._current, self._reload)
        return self._current()

    def _current_search(self) -> tuple[Snapshot, Any]:
        from .index.searcher import searcher_for

        snap = self._current()
        return snap, searcher_for(snap, index_config_of(snap), self._ctx.cache_root)

    def refresh(self) -> int:
        """Move a reader to the newest commit and WAL state; returns the generation. A no-op
        for a writer: it sees its own writes and those of every handle sharing it."""
        with self._mutex:
            self._current()  # ClosedError once closed
            if self._reader is not None:
                self._reload()
            return self._current().public_generation

    def _reload(self) -> None:
        """Reader: install the newest commit and WAL state, following a compacted file."""
        same = self._reader.reopen()
        self._install(self._reader.load(), self._snapshot.runs if same else None)
        self._reader.publish()

    def _install(self, state: Opened, reuse: list | None) -> None:
        """Switch to ``state`` (a newer commit, or the compacted file) and warm it; a
        writer starts writing on it. ``reuse``: run readers of the same file to keep."""
        snap = make_snapshot(self._source.fd, state, self._config.mmap, reuse)
        self._cold.switch(snap, same_file=reuse is not None)
        self._snapshot = snap
        if self._shared is not None:
            self._start_writer(state)
        self._cold.start()

    def compact(self, retain_after: datetime | None = None) -> int:
        """Rewrite the file without dead space, dropping history older than ``retain_after``.

        Versions replaced at or before ``retain_after`` are forgotten; ``as_of`` earlier
        than it then raises HistoryUnavailableError. ``None`` keeps all history. The new
        file replaces the old one atomically (the writable handles sharing this one move to
        it); readers of the old one keep working and follow on ``refresh()``. Returns the
        generation of the compacted file.
        """
        with self._mutex, storage_errors("compact"):
            self._writable()
            floor = (None if retain_after is None
                     else check_not_future(to_us(retain_after, "retain_after"), "retain_after"))
            self._shared.compact(self._path, floor, self._config,
                                 lambda state: self._install(state, None))
            return self.generation

    # ----------------------------------------------------------------- writes

    def _writable(self) -> Writer:
        self._current()
        if self._shared is None or self._shared.writer is None:
            raise ReadOnlyError(f"{self._path} was opened read-only")
        return self._shared.writer

    def seal(self) -> int:
        """Commit the WAL delta; bring the BM25 index up to date, and the vector graph when
        its due extension is short (``StoreConfig.graph_sync_limit``; a longer one is built
        in the background or by ``build_index()``). Returns the new generation."""
        with self._mutex, storage_errors("seal"):
            return self._writable().seal(full=SEAL)

    def build_index(self, *, complete: bool = True) -> int:
        """``seal()`` and the vector graph built, however long (seconds per 10k vectors):
        after a bulk load, before publishing (``complete=False``: but for a short tail)."""
        with self._mutex, storage_errors("build_index"):
            return self._writable().seal(full=ALL if complete else DUE)

    # ------------------------------------------------------------- collections

    def collection(self, name: str) -> Collection:
        """The collection ``name`` of this memory: the same read/write API, restricted to
        its frames (ids are unique per collection). ``"default"`` is this handle's own."""
        from .collection import Collection

        self._snap()
        return Collection(check_collection(name), self._ctx, self._writes, self._snap)

    def collections(self) -> dict[str, int]:
        """Every collection with frames now or in the past, with its live frame count."""
        return live_by_collection(self._snap().counters())

    # -------------------------------------------------------------- inspection

    def stats(self) -> Stats:
        """Counts, sizes and the generation as this handle sees them."""
        from .reports import file_stats

        writer = self._shared.writer if self._shared else None
        return file_stats(self._snap(), path=self._path,
                          file_bytes=self._file_bytes(),
                          wal_bytes=writer.wal_used if writer else self._reader.wal_end,
                          readonly=self.readonly, tiers=self._cold.tiers)

    def _file_bytes(self) -> int:
        fd = self._source.fd
        return os.fstat(fd).st_size if isinstance(fd, int) else fd.size

    def verify(self) -> VerifyReport:
        """Check every checksum; report damage (never raise for it) and what to act on."""
        from .engine.verify import verify_file
        from .reports import VerifyReport, file_notices

        snap = self._snap()
        problems, checked = verify_file(self._source.fd)  # a remote object: read whole
        notices = file_notices(snap, self._path, self._file_bytes())
        return VerifyReport(not problems, problems, checked, notices)

    # ------------------------------------------------------------ warmup, caches

    def warmup(self, level: str | None = None, *, tiers: Iterable[str] | None = None,
               wait: bool = True) -> dict[str, str]:
        """Load index tiers ahead of queries; returns each tier's state.

        ``level`` picks the tiers like ``MEMVID_PRELOAD_LEVEL`` (``aggressive``, the
        default, and ``balanced`` load all of them; ``lazy`` and ``none`` nothing),
        ``tiers`` names them (``time_index``, ``lex_index``, ``vec_index``). With
        ``wait=False`` a background thread loads them and this returns at once.
        """
        self._snap()
        return self._cold.warmup(level, tiers, wait=wait)

    def cache_stats(self) -> list[CacheStats]:
        """Hits, misses and size of this handle's caches (decoded frames, query results)."""
        from .index.searcher import existing_searcher

        return self._cold.cache_stats(existing_searcher(self._snap()))

    def metrics(self, thresholds: AlertThresholds | None = None) -> ColdStartMetrics:
        """Cold-start figures of this process and handle, with the alerts they raise.

        Phases: process start, ``import memvid_store``, open, each index tier loaded, the
        first ``find``; resident memory against the limit (Lambda's, the cgroup's or the
        machine's) and the caches' hit rate. ``memvid_store.coldstart.metrics.emit_metrics(m)``
        prints them as one CloudWatch Embedded Metric Format line.
        """
        return self._cold.metrics(self.cache_stats(), thresholds)

    def prefetch(self, ids: Iterable[str]) -> int:
        """Decode these frames into the frame cache ahead of use; returns how many exist.

        Unknown or deleted ids are skipped. A no-op when the cache is disabled.
        """
        return self._cold.prefetch(self._snap(), ids)

    def attach_analyzer(self, analyzer: Any = None) -> Any:
        """Learn from this handle's reads and prefetch predicted frames in the background.

        ``analyzer`` is an ``AccessPatternAnalyzer`` (a default one if None); it is given
        the current frames as its catalog and returned. The prefetch window comes from
        ``StoreConfig.cache`` (``prefetch_window``, ``adaptive_prefetch``).
        """
        analyzer = self._cold.attach(self._snap(), analyzer, self.prefetch)
        self._ctx.observer = self._cold.observe
        return analyzer

    def detach_analyzer(self) -> None:
        """Stop learning from reads and prefetching (no-op without an analyzer)."""
        self._ctx.observer = None
        self._cold.detach()


__all__ = ["AlreadyExistsError", "Memory", "MemoryView"]
