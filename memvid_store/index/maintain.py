"""Index maintenance: the BM25 index and the HNSW graph, inside commits and beside them.

Both are keyed by gid and cover the versions below a ``covered`` gid (in their TOC entry's
meta, see :mod:`.coverage`), so runs can merge without touching them. Versions above it,
the *tail*, are searched exactly: an in-memory BM25 and a float32 scan.

What a commit asks (``full``, :mod:`memvid_store.engine.hooks`):

* ``AUTO`` (a large ``put_many``, a full WAL) adds to the BM25 index only once the tail
  reaches ``LEX_TAIL`` versions (a tantivy commit costs ~40 ms whatever its size), and
  never builds the graph: bulk ingest stays fast.
* ``SEAL`` (``seal()``, ``close()``) brings the BM25 index up to date, and the graph when
  its extension is due and short: at most ``sync_limit`` vectors (``StoreConfig
  .graph_sync_limit``), so a close never waits minutes.
* ``DUE`` (``build_index(complete=False)``) as ``SEAL``, and a due graph extension
  however long; ``ALL`` (``build_index()``, ``compact()``) brings both up to date,
  whatever it costs.

A graph extension is *due* once the file has ``ann_threshold`` vectors and the graph lacks
at least ``GRAPH_GROWTH`` of its size (``GRAPH_MIN_TAIL`` at least): each extension
rewrites the whole graph, so growing it geometrically keeps the bytes written per vector
constant, while the exact scan of the tail stays a small share of a search. A due
extension too long for ``SEAL`` is built in the background (:mod:`.graph_worker`) while the
writer stays open, and committed when ready; ``build_index()`` builds it at once.

The BM25 index adds new tantivy segment files as blobs (each stored once; the ``lex``
segment is a manifest naming every file).

:class:`IndexMaintainer` is the engine's ``CommitHook`` (:mod:`memvid_store.engine.hooks`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ..config import IndexConfig, StoreConfig
from ..engine.format import SegmentRef, crc32
from ..engine.hooks import ALL, AUTO, DUE, SEAL, Append
from ..engine.records import Version
from ..engine.shared import SharedWriter, commit_prepared
from ..engine.snapshot import Snapshot
from ..errors import DamagedIndexError
from .coverage import covered_gid, graph_count, tail_versions
from .damage import warn_not_maintained
from .graph_worker import BackgroundGraph
from .vector.hnsw_format import holds_graph

LEX_TAIL = 8192  # versions an automatic commit may leave out of the BM25 index
GRAPH_GROWTH = 0.1  # share of the graph's size its tail reaches before it is extended
GRAPH_MIN_TAIL = 1024  # vectors; below this a tail is never worth a graph rewrite


class _LexJob:
    """A BM25 add (``LexBuilder.add``) in a thread of its own; ``result()`` waits for it
    and raises what it raised."""

    def __init__(self, builder: Any, manifest: Any, docs: list[Any]) -> None:
        self.manifest, self.docs, self.builder = manifest, docs, builder
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="memvid-bm25-add",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self.builder.add(self.docs)
        except BaseException as exc:  # raised again in the committing thread
            self._error = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self.wait()
        if self._error is not None:
            raise self._error
        return self._result


class IndexMaintainer:
    """Adds the indexes' share to a commit. One per writer (it keeps a tantivy workdir).

    ``path``: the file (the background builder opens it); ``sync_limit``: the most
    vectors a ``SEAL`` commit adds to the graph; ``on_graph_ready``: commits a graph
    built in the background (None: no background builds).
    """

    def __init__(self, config: IndexConfig, cache_root: str, *, path: str = "",
                 sync_limit: int = 20_000,
                 on_graph_ready: Callable[[], None] | None = None) -> None:
        self.config = config
        self.cache_root = cache_root
        self.sync_limit = sync_limit
        self._builder: Any = None
        self._builder_key: tuple[str, int] | None = None
        self._pending: list[Any] = []  # BM25 documents of [_pending_from, _pending_to)
        self._pending_from = self._pending_to = -1
        self._lex_job: _LexJob | None = None  # the BM25 add of the commit being made
        self._carried: Any = None  # compaction's renumbered old graph, for the next commit
        self._graph_memory: int | None = None  # compaction's bound on a graph build
        self._background = (BackgroundGraph(path, self._scratch_dir, on_graph_ready)
                            if on_graph_ready is not None and config.ann_backend != "none"
                            else None)

    @classmethod
    def for_writer(cls, config: IndexConfig, store: StoreConfig,
                   entry: SharedWriter) -> IndexMaintainer:
        """The hook of the writer of ``entry``'s file, opened with ``store``'s settings:
        a graph built in the background is committed through the entry."""
        ready = partial(commit_prepared, entry) if store.graph_background else None
        return cls(config, store.cache_root, path=entry.path,
                   sync_limit=store.graph_sync_limit, on_graph_ready=ready)

    def on_commit(self, snap: Snapshot, versions: list[Version], segments: list[SegmentRef],
                  write: Append, *, next_gid: int, vectors_total: int, full: int
                  ) -> list[SegmentRef]:
        """Return ``segments`` with the lex / ann entries this commit needs."""
        if self.config.lexical:
            segments = self._lexical(snap, segments, write, next_gid)
        if self.config.ann_backend != "none":
            segments = self._ann(snap, versions, segments, write, next_gid, vectors_total,
                                 full)
        return segments

    def behind(self, snap: Snapshot, full: int) -> bool:
        """Whether a commit at level ``full`` would add to an index."""
        if self.ready():
            return True
        if full == AUTO:
            return False
        if self.config.lexical and covered_gid(snap.toc.find("lex")) < snap.toc.next_gid:
            return True
        count = graph_count(snap.toc.find("ann"))
        return (self._builds_graph(snap.toc.counters.get("vectors", 0), count, full)
                or self._lists_missing(snap, full))

    def ready(self) -> bool:
        return self._carried is not None or (self._background is not None
                                             and self._background.ready())

    def compacting(self, old: Snapshot, kept: Sequence[int], memory_limit: int) -> bool:
        """Compaction: the old file's graph and its cluster lists, renumbered, go into the
        next commit when they can be (:mod:`.vector.graph_carry`,
        :mod:`.vector.lists_carry`), and a graph is built only when its estimated memory
        fits ``memory_limit``; the BM25 index is rebuilt as chunks commit."""
        self._graph_memory = memory_limit
        ref = old.toc.find("ann")
        alone = ref is not None and not holds_graph(ref)  # cluster lists without a graph
        if self.config.ann_backend != "usearch" and not alone:
            return False
        import numpy as np

        from .vector.graph_carry import carry_graph
        from .vector.lists_carry import carry_lists

        gids = np.asarray(kept, np.int64)
        if alone:
            from .vector.graph_update import lists_alone

            covered = int(np.searchsorted(gids, covered_gid(ref)))
            lists = carry_lists(old, self.config, gids, covered, self._scratch_dir())
            self._carried = (None if lists is None else
                             lists_alone(lists, self.config.distance, old.dim or 0, None))
            return self._carried is not None
        self._carried = carry_graph(old, self.config, gids)
        if self._carried is not None:
            self._carried.lists = carry_lists(old, self.config, gids,
                                              self._carried.meta["covered"],
                                              self._scratch_dir())
        return self._carried is not None

    def committed(self, snap: Snapshot) -> None:
        """Start a background graph build when one is due that ``SEAL`` leaves alone."""
        background = self._background
        if background is None or background.running or background.failures >= 3:
            return
        count = graph_count(snap.toc.find("ann"))
        uncovered = self._uncovered(snap.toc.counters.get("vectors", 0), count)
        if uncovered > self.sync_limit and self._due(uncovered, count):
            background.start()

    def close(self) -> None:
        self._drop_lex_job()
        if self._background is not None:
            self._background.close()

    # ----------------------------------------------------------------- lexical

    def prepare(self, snap: Snapshot, versions: list[Version], *, next_gid: int,
                full: int) -> None:
        """Start the BM25 share of the commit about to be made in a thread: tantivy's
        commit releases the GIL, so it runs while the engine encodes the commit's run
        (``on_commit`` takes its result)."""
        self._drop_lex_job()
        if not self.config.lexical:
            return
        docs = self._lex_docs(snap, versions, next_gid, full)
        if docs is None:
            return
        try:
            builder, manifest = self._lex_builder(snap)
        except DamagedIndexError:  # the frames are committed; the index stays as it is
            warn_not_maintained("segment:lex")
            return
        self._builder_key = None  # the workdir is ahead of the file until the commit
        self._lex_job = _LexJob(builder, manifest, docs)

    def _drop_lex_job(self) -> None:
        """Forget a job a failed commit left (its workdir may be ahead of the file)."""
        job, self._lex_job = self._lex_job, None
        if job is not None:
            job.wait()
            self._builder = None

    def _lexical(self, snap: Snapshot, segments: list[SegmentRef], write: Append,
                 next_gid: int) -> list[SegmentRef]:
        """``segments`` with the BM25 add ``prepare`` started, written into the commit."""
        from .lexical.manifest import LexManifest
        from .lexical.unpack import prune_cache

        job, self._lex_job = self._lex_job, None
        if job is None:  # ``prepare`` found no documents for this commit to add
            return segments
        meta, new_files, all_files = job.result()
        manifest, docs = job.manifest, job.docs
        files: dict[str, list[int]] = {}
        tails: dict[str, list[int]] = {}
        for name in all_files:
            if name in new_files:
                data = new_files[name]
                off, length = write(data)
                files[name] = [off, length, data.crc32()]
                tail = job.builder.positions_tail(name)
            else:
                files[name] = list(manifest.files[name])
                tail = manifest.tails.get(name)
            if tail is not None:
                tails[name] = list(tail)
        total = (manifest.docs if manifest else 0) + len(docs)
        raw = LexManifest(files=files, meta=meta, docs=total, tails=tails).to_json()
        off, length = write(raw)
        uuid = snap.header.uuid.hex()
        self._builder_key = (uuid, off)
        # unpacked copies of older versions of this file's index are no longer needed
        prune_cache(self.cache_root, prefix=f"{uuid}-", keep=f"{uuid}-{crc32(raw):08x}")
        return [s for s in segments if s.kind != "lex"] + [
            SegmentRef("lex", off, length, crc32(raw), {"docs": total, "covered": next_gid})]

    def _lex_docs(self, snap: Snapshot, versions: list[Version], next_gid: int,
                  full: int) -> list[Any] | None:
        """The BM25 documents this commit adds to the index (None: it adds none; their
        documents wait for a later commit)."""
        from .lexical.schema import lex_doc

        covered = covered_gid(snap.toc.find("lex"))
        # documents of the versions committed since ``covered``, kept while they wait
        if self._pending_from != covered or self._pending_to != snap.toc.next_gid:
            self._pending = [lex_doc(v) for v in tail_versions(snap, covered, committed=True)
                             if not v.tombstone]
            self._pending_from = covered
        self._pending += [lex_doc(v) for v in versions if not v.tombstone]
        self._pending_to = next_gid
        if next_gid <= covered or (not full and next_gid - covered < LEX_TAIL):
            return None
        docs, self._pending, self._pending_from = self._pending, [], next_gid
        return docs

    def _lex_builder(self, snap: Snapshot) -> tuple[Any, Any]:
        """The tantivy builder of the file's BM25 index, and its manifest (None: none
        yet); a builder is made anew from the file when its workdir went out of sync."""
        from .lexical.builder import LexBuilder
        from .lexical.manifest import read_manifest

        old_ref = snap.toc.find("lex")
        manifest = read_manifest(snap)
        view = snap.view

        def read_file(name: str) -> bytes:
            off, length, _ = manifest.files[name]
            return bytes(view.read(off, length, "segment:lex"))

        key = (snap.header.uuid.hex(), old_ref.offset if old_ref else -1)
        if self._builder is None or self._builder_key != key or not self._builder.in_sync():
            workdir = os.path.join(self._scratch_dir(), f"{snap.header.uuid.hex()}-writer")
            self._builder = LexBuilder(workdir, manifest, read_file)
        return self._builder, manifest

    # --------------------------------------------------------------------- ann

    def _uncovered(self, vectors_total: int, count: int) -> int:
        """Vectors the graph lacks (0 while the file has fewer than ``ann_threshold``)."""
        if vectors_total < self.config.ann_threshold:
            return 0
        return max(0, vectors_total - count)

    @staticmethod
    def _due(uncovered: int, count: int) -> bool:
        """Whether a tail of ``uncovered`` vectors is worth rewriting a graph of ``count``."""
        return uncovered > 0 and (count == 0
                                  or uncovered >= max(GRAPH_MIN_TAIL, count * GRAPH_GROWTH))

    def _builds_graph(self, vectors_total: int, count: int, full: int) -> bool:
        """Whether a commit at level ``full`` builds the graph itself."""
        uncovered = self._uncovered(vectors_total, count)
        if full == ALL:
            return uncovered > 0
        if full == DUE:
            return self._due(uncovered, count)
        return (full == SEAL and uncovered <= self.sync_limit
                and self._due(uncovered, count))

    def _ann(self, snap: Snapshot, versions: list[Version], segments: list[SegmentRef],
             write: Append, next_gid: int, vectors_total: int, full: int) -> list[SegmentRef]:
        from .vector.graph_update import graph_identity, graph_refs, prepare_graph

        if self._carried is not None:
            carried, self._carried = self._carried, None
            return _without_graph(segments) + graph_refs(carried, write)
        old = snap.toc.find("ann")
        if full >= DUE and self._background is not None:
            self._background.cancel()  # this commit builds it all
        graph = self._background.take(graph_identity(old)) if self._background else None
        if graph is None:
            if (not self._builds_graph(vectors_total, graph_count(old), full)
                    or not self._fits(snap, old, vectors_total)):
                return self._with_lists(snap, segments, write, full)
            first_extra = snap.toc.next_gid + len(snap.delta)  # versions not in the delta
            graph = prepare_graph(snap, self.config, self._scratch_dir(), upto=next_gid,
                                  fresh=[v for v in versions
                                         if v.embedding and v.gid >= first_extra])
            if graph is None:
                return segments
        return _without_graph(segments) + graph_refs(graph, write)

    def _lists_missing(self, snap: Snapshot, full: int) -> bool:
        """Whether ``build_index()`` (``full == ALL``) adds cluster lists to a graph built
        without them (a file written before they existed, or with a failed build)."""
        if full != ALL or not self.config.ann_lists:
            return False
        from .vector.lists_format import METRICS, MIN_ROWS, lists_segment

        return (self.config.distance in METRICS
                and graph_count(snap.toc.find("ann")) >= MIN_ROWS
                and lists_segment(snap, self.config) is None)

    def _with_lists(self, snap: Snapshot, segments: list[SegmentRef], write: Append,
                    full: int) -> list[SegmentRef]:
        """``segments`` with cluster lists for the snapshot's graph, when missing."""
        if not self._lists_missing(snap, full):
            return segments
        from .vector.graph_update import lists_of_graph, lists_ref

        lists = lists_of_graph(snap, self.config, self._scratch_dir())
        if lists is None:
            return segments
        return [s for s in segments if s.kind != "lists"] + [lists_ref(lists, write)]

    def _fits(self, snap: Snapshot, old: SegmentRef | None, vectors: int) -> bool:
        """Whether a graph of ``vectors`` fits the memory bound of a compaction (None: no
        bound): it is built in memory whole, about its own size (``graph_memory``) on top
        of the process's quarter of the bound."""
        from .vector.graph_update import graph_memory, lists_only

        if self._graph_memory is None or lists_only(self.config, old, vectors):
            return True  # lists are built in bounded memory

        dtype = old.meta.get("dtype", "f32") if old is not None else self.config.graph_dtype
        need = graph_memory(vectors, snap.dim or 0, self.config.ann_m, dtype)
        return need <= self._graph_memory * 3 // 4

    def _scratch_dir(self) -> str:
        """Where a graph is saved before it is written into the file."""
        from .lexical.cache_dir import usable_root

        self.cache_root = usable_root(self.cache_root)
        return self.cache_root


def _without_graph(segments: list[SegmentRef]) -> list[SegmentRef]:
    """``segments`` less the graph and its cluster lists (a new graph replaces both)."""
    return [s for s in segments if s.kind not in ("ann", "lists")]
