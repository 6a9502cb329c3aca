"""Index maintenance inside a commit: the BM25 index and the HNSW graph.

Both are keyed by gid and cover the versions below a ``covered`` gid (in their TOC entry's
meta, see :mod:`.coverage`), so runs can merge without touching them. Versions above it,
the *tail*, are searched exactly: an in-memory BM25 and a float32 scan.

* An explicit ``seal()``, ``close()`` or ``compact()`` brings both up to date.
* An automatic commit (a large ``put_many``, a full WAL) adds to the BM25 index only once
  the tail reaches ``LEX_TAIL`` versions (a tantivy commit costs ~40 ms whatever its size),
  and never builds the HNSW graph (building costs seconds per 10k vectors): bulk ingest
  stays fast, and the next explicit seal indexes everything at once.

The BM25 index adds new tantivy segment files as blobs (each stored once; the ``lex``
segment is a manifest naming every file). The HNSW graph is built once the file has
``ann_threshold`` vectors, then extended with the vectors it does not cover.

:class:`IndexMaintainer` is the engine's ``CommitHook`` (:mod:`memvid_store.engine.hooks`):
the engine calls it inside each commit and asks it whether the indexes lag (``behind``).
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from ..config import IndexConfig
from ..engine.format import SegmentRef, crc32
from ..engine.hooks import Append
from ..engine.records import Version
from ..engine.snapshot import Snapshot
from .coverage import covered_gid, tail_versions

if TYPE_CHECKING:
    from .vector.calibrate import Calibration

LEX_TAIL = 8192  # versions an automatic commit may leave out of the BM25 index


class IndexMaintainer:
    """Adds the indexes' share to a commit. One per writer (it keeps a tantivy workdir)."""

    def __init__(self, config: IndexConfig, cache_root: str) -> None:
        self.config = config
        self.cache_root = cache_root
        self._builder: Any = None
        self._builder_key: tuple[str, int] | None = None
        self._pending: list[Any] = []  # BM25 documents of [_pending_from, _pending_to)
        self._pending_from = self._pending_to = -1

    def on_commit(self, snap: Snapshot, versions: list[Version], segments: list[SegmentRef],
                  write: Append, *, next_gid: int, vectors_total: int, full: bool
                  ) -> list[SegmentRef]:
        """Return ``segments`` with the lex / ann entries this commit needs."""
        if self.config.lexical:
            segments = self._lexical(snap, versions, segments, write, next_gid, full)
        if self.config.ann_backend != "none" and full:
            segments = self._ann(snap, versions, segments, write, next_gid, vectors_total)
        return segments

    def behind(self, snap: Snapshot) -> bool:
        """Committed versions the BM25 index or (once due) the HNSW graph do not cover."""
        cfg = self.config
        if cfg.lexical and covered_gid(snap.toc.find("lex")) < snap.toc.next_gid:
            return True
        ref = snap.toc.find("ann")
        vectors = snap.toc.counters.get("vectors", 0)
        return (cfg.ann_backend != "none" and vectors >= cfg.ann_threshold
                and vectors > (int(ref.meta["count"]) if ref else 0))

    # ----------------------------------------------------------------- lexical

    def _lexical(self, snap: Snapshot, versions: list[Version], segments: list[SegmentRef],
                 write: Append, next_gid: int, full: bool) -> list[SegmentRef]:
        from .lexical.builder import LexBuilder
        from .lexical.manifest import LexManifest
        from .lexical.schema import lex_doc
        from .lexical.unpack import prune_cache

        old_ref = snap.toc.find("lex")
        covered = covered_gid(old_ref)
        # documents of the versions committed since ``covered``, kept while they wait
        if self._pending_from != covered or self._pending_to != snap.toc.next_gid:
            self._pending = [lex_doc(v) for v in tail_versions(snap, covered, committed=True)
                             if not v.tombstone]
            self._pending_from = covered
        self._pending += [lex_doc(v) for v in versions if not v.tombstone]
        self._pending_to = next_gid
        if next_gid <= covered or (not full and next_gid - covered < LEX_TAIL):
            return segments
        docs, self._pending, self._pending_from = self._pending, [], next_gid
        manifest = None
        if old_ref is not None:
            manifest = LexManifest.from_json(
                bytes(snap.view.read(old_ref.offset, old_ref.length, "segment:lex")))
        view = snap.view

        def read_file(name: str) -> bytes:
            off, length, _ = manifest.files[name]
            return bytes(view.read(off, length, "segment:lex"))

        key = (snap.header.uuid.hex(), old_ref.offset if old_ref else -1)
        if self._builder is None or self._builder_key != key or not self._builder.in_sync():
            workdir = os.path.join(self._scratch_dir(), f"{snap.header.uuid.hex()}-writer")
            self._builder = LexBuilder(workdir, manifest, read_file)
        meta, new_files, all_files = self._builder.add(docs)
        files: dict[str, list[int]] = {}
        for name in all_files:
            if name in new_files:
                data = new_files[name]
                off, length = write(data)
                files[name] = [off, length, crc32(data)]
            else:
                files[name] = list(manifest.files[name])
        total = (manifest.docs if manifest else 0) + len(docs)
        raw = LexManifest(files=files, meta=meta, docs=total).to_json()
        off, length = write(raw)
        uuid = snap.header.uuid.hex()
        self._builder_key = (uuid, off)
        # unpacked copies of older versions of this file's index are no longer needed
        prune_cache(self.cache_root, prefix=f"{uuid}-", keep=f"{uuid}-{crc32(raw):08x}")
        return [s for s in segments if s.kind != "lex"] + [
            SegmentRef("lex", off, length, crc32(raw), {"docs": total, "covered": next_gid})]

    # --------------------------------------------------------------------- ann

    def _ann(self, snap: Snapshot, versions: list[Version], segments: list[SegmentRef],
             write: Append, next_gid: int, vectors_total: int) -> list[SegmentRef]:
        old = snap.toc.find("ann")
        covered = covered_gid(old)
        count = int(old.meta["count"]) if old else 0
        if vectors_total < self.config.ann_threshold or vectors_total <= count:
            return segments
        import numpy as np

        from .vector.graph_build import build_graph
        from .vector.hnsw import AnnParams, get_backend
        from .vector.hnsw_format import DEFAULT_EF_SEARCH
        from .vector.stored import VectorTable

        dim = snap.dim or _dim(versions)
        new: list[tuple[Any, Any]] = []  # the rows to add: views of whole blocks
        held = []  # every row the graph will hold, as (matrix, gids) views
        for block in VectorTable(snap).blocks:
            held.append((block.matrix, block.gids))
            keep = block.gids >= covered
            if keep.all():
                new.append((block.matrix, block.gids))
            elif keep.any():
                new.append((block.matrix[keep], block.gids[keep]))
        first_extra = snap.toc.next_gid + len(snap.delta)  # versions not in the delta block
        fresh = [v for v in versions if v.embedding and v.gid >= first_extra]
        if fresh:
            new.append((np.frombuffer(b"".join(v.embedding for v in fresh), "<f4")
                        .reshape(len(fresh), dim), np.array([v.gid for v in fresh], "<i8")))
            held.append(new[-1])
        if not new:
            return segments
        cfg = self.config
        dtype = old.meta.get("dtype", "f32") if old is not None else cfg.graph_dtype
        params = AnnParams(M=cfg.ann_m, ef_construction=cfg.ann_ef_construction,
                           ef_search=cfg.ann_ef_search or DEFAULT_EF_SEARCH, dtype=dtype,
                           build_threads=os.cpu_count() or 1)
        previous = None if old is None else snap.view.read(old.offset, old.length,
                                                            "segment:ann")
        blob, calibration = build_graph(
            get_backend(cfg.ann_backend), previous, new, metric=cfg.distance, dim=dim,
            params=params, scratch_dir=self._scratch_dir(),
            measure=lambda index, queries, labels: self._calibrate(index, held, queries,
                                                                  labels, dtype))
        off, end = write(blob.parts[0])
        end += off
        for part in blob.parts[1:]:  # back to back: the 64-byte header keeps alignment
            at, length = write(part)
            if at != end:
                raise AssertionError("graph parts must be written back to back")
            end += length
        meta = {"backend": cfg.ann_backend, "count": count + sum(len(g) for _, g in new),
                "covered": next_gid, "M": cfg.ann_m,
                "ef_construction": cfg.ann_ef_construction, "dtype": dtype,
                **_calibrated(calibration, old)}
        return [s for s in segments if s.kind != "ann"] + [
            SegmentRef("ann", off, blob.length, blob.crc, meta)]

    def _scratch_dir(self) -> str:
        """Where a graph is saved before it is written into the file."""
        from .lexical.cache_dir import usable_root

        self.cache_root = usable_root(self.cache_root)
        return self.cache_root

    def _calibrate(self, index: Any, blocks: list[tuple[Any, Any]], queries: Any,
                   labels: Any, dtype: str) -> Calibration | None:
        """The search width the new graph needs for the recall target (calibrate.py);
        None, with a warning, if measuring fails: the commit never does for it, and the
        graph is searched with the default width."""
        from .vector.calibrate import calibrate

        cfg = self.config
        try:
            return calibrate(index, blocks, queries, labels, metric=cfg.distance,
                             dtype=dtype, target=cfg.recall_target)
        except Exception as exc:  # a measurement never costs the commit
            warnings.warn(f"the vector graph's search width could not be calibrated "
                          f"({exc!r}); it is searched with the default width",
                          RuntimeWarning, stacklevel=2)
            return None


def _calibrated(calibration: Calibration | None, old: SegmentRef | None) -> dict[str, Any]:
    """The TOC fields of the graph's width: measured now, else kept from the graph it
    extends (too few new vectors to measure with), else none (the default width)."""
    if calibration is not None:
        return calibration.meta()
    keep = ("ef_search", "recall", "recall_sample")
    return {k: old.meta[k] for k in keep if k in old.meta} if old is not None else {}


def _dim(versions: list[Version]) -> int:
    for v in versions:
        if v.embedding:
            return len(v.embedding) // 4
    return 0
