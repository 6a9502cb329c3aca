"""Index maintenance inside a commit: the BM25 index and the HNSW graph.

Both are keyed by gid and cover every stored version, so runs can merge without touching
them. A commit adds its versions' texts to the tantivy index (new tantivy segment files
are stored once; the ``lex`` segment is a manifest naming every file) and keeps the HNSW
graph up to date: built once the file has ``ann_threshold`` vectors, then extended with
the vectors it does not cover yet. An automatic commit extends the graph only when that
tail reaches a quarter of the graph (amortized O(N) bytes written, the tail is searched
exactly meanwhile); an explicit ``seal()``, ``close()`` or ``compact()`` always brings
it up to date.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..config import IndexConfig
from ..engine.format import SegmentRef, align, crc32
from ..engine.records import Version
from ..engine.snapshot import Snapshot

TAIL_FRACTION = 4
MIN_TAIL = 1000

Writer = Callable[[bytes], tuple[int, int]]  # appends bytes, returns (offset, length)


class IndexMaintainer:
    """Adds the indexes' share to a commit. One per writer (it keeps a tantivy workdir)."""

    def __init__(self, config: IndexConfig, cache_root: str) -> None:
        self.config = config
        self.cache_root = cache_root
        self._builder: Any = None
        self._builder_key: tuple[str, int] | None = None

    def on_commit(self, snap: Snapshot, versions: list[Version], segments: list[SegmentRef],
                  write: Writer, *, next_gid: int, vectors_total: int, full: bool
                  ) -> list[SegmentRef]:
        """Return ``segments`` with the lex / ann entries this commit needs."""
        if self.config.lexical:
            segments = self._lexical(snap, versions, segments, write)
        if self.config.ann_backend != "none":
            segments = self._ann(snap, versions, segments, write, next_gid, vectors_total, full)
        return segments

    # ----------------------------------------------------------------- lexical

    def _lexical(self, snap: Snapshot, versions: list[Version], segments: list[SegmentRef],
                 write: Writer) -> list[SegmentRef]:
        from .lex import LexBuilder, LexManifest

        docs = [lex_doc(v) for v in versions if not v.tombstone]
        if not docs:
            return segments
        old_ref = snap.toc.find("lex")
        manifest = None
        if old_ref is not None:
            manifest = LexManifest.from_json(
                bytes(snap.view.read(old_ref.offset, old_ref.length, "segment:lex")))
        view = snap.view

        def read_file(name: str) -> bytes:
            off, length, _ = manifest.files[name]
            return bytes(view.read(off, length, "segment:lex"))

        key = (snap.header.uuid.hex(), old_ref.offset if old_ref else -1)
        if self._builder is None or self._builder_key != key:
            workdir = os.path.join(self.cache_root, f"{snap.header.uuid.hex()}-writer")
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
        self._builder_key = (snap.header.uuid.hex(), off)
        return [s for s in segments if s.kind != "lex"] + [
            SegmentRef("lex", off, length, crc32(raw), {"docs": total})]

    # --------------------------------------------------------------------- ann

    def _ann(self, snap: Snapshot, versions: list[Version], segments: list[SegmentRef],
             write: Writer, next_gid: int, vectors_total: int, full: bool
             ) -> list[SegmentRef]:
        old = snap.toc.find("ann")
        covered = int(old.meta["covered"]) if old else 0
        count = int(old.meta["count"]) if old else 0
        tail = vectors_total - count
        if vectors_total < self.config.ann_threshold or tail <= 0:
            return segments
        if old is not None and not full and tail < max(MIN_TAIL, count // TAIL_FRACTION):
            return segments
        import numpy as np

        from .ann import AnnParams, get_backend
        from .table import VectorTable

        dim = snap.dim or _dim(versions)
        mats, labels = [], []
        for block in VectorTable(snap).blocks:
            keep = block.gids >= covered
            if keep.any():
                mats.append(block.matrix[keep])
                labels.append(block.gids[keep])
        first_extra = snap.toc.next_gid + len(snap.delta)  # versions not in the delta block
        fresh = [v for v in versions if v.embedding and v.gid >= first_extra]
        if fresh:
            mats.append(np.frombuffer(b"".join(v.embedding for v in fresh), "<f4")
                        .reshape(len(fresh), dim))
            labels.append(np.array([v.gid for v in fresh], "<i8"))
        if not mats:
            return segments
        matrix = np.ascontiguousarray(np.concatenate(mats), "<f4")
        gids = np.concatenate(labels).astype("<u8")
        cfg = self.config
        params = AnnParams(M=cfg.ann_m, ef_construction=cfg.ann_ef_construction,
                           ef_search=cfg.ann_ef_search)
        backend = get_backend(cfg.ann_backend)
        if old is None:
            data = backend.build(matrix, gids, metric=cfg.distance, params=params)
        else:
            previous = snap.view.read(old.offset, old.length, "segment:ann")
            data = backend.extend(previous, matrix, gids, metric=cfg.distance, params=params)
        off, length = write(data)
        meta = {"backend": cfg.ann_backend, "count": count + len(gids), "covered": next_gid,
                "M": cfg.ann_m, "ef_construction": cfg.ann_ef_construction, "dtype": "f32"}
        return [s for s in segments if s.kind != "ann"] + [
            SegmentRef("ann", off, length, crc32(data), meta)]


def appender(writes: list[tuple[int, bytes]], start: int) -> tuple[Writer, Callable[[], int]]:
    """A Writer that queues aligned appends from ``start``; and the next free offset."""
    state = {"pos": start}

    def write(data: bytes) -> tuple[int, int]:
        off = state["pos"]
        writes.append((off, data))
        state["pos"] = align(off + len(data))
        return off, len(data)

    return write, lambda: state["pos"]


def lex_doc(version: Version) -> Any:
    """The BM25 document of a version: its text, and ``metadata["title"]`` as the title."""
    from .lex import LexDoc

    title = (version.metadata or {}).get("title")
    return LexDoc(version.gid, version.text, title if isinstance(title, str) else "")


def _dim(versions: list[Version]) -> int:
    for v in versions:
        if v.embedding:
            return len(v.embedding) // 4
    return 0
