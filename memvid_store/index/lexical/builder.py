"""Writer side of the BM25 index: a working directory kept in sync with the manifest.

A commit adds documents with one writer thread, so it writes one new immutable segment
(plus, now and then, a merged one); the engine stores each new file once as a blob and
keeps a :class:`~.manifest.LexManifest` (file name -> blob location, plus the text of
tantivy's ``meta.json``).
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Iterator, Sequence

from ...engine.hooks import Pieces
from ...errors import MemvidError, VersionMismatchError
from .analyzer import load_tantivy
from .manifest import MANIFEST_VERSION, POSITIONS, TAIL_BYTES, LexManifest, content_identity
from .schema import WRITER_HEAP, LexDoc, add_docs, check_docs, open_index, schema
from .unpack import (
    MARKER,
    SEGMENT_FILE_RE,
    complete,
    needed_files,
    rmtree,
    write_files,
    write_marker,
)


class LexBuilder:
    """Writer side. Keeps a working directory in sync with the file's manifest and adds docs.

    ``workdir`` is private to one writer of one file. When it does not hold exactly the
    manifest's index (checked by a marker holding the manifest's identity) it is rebuilt
    from ``read_file(name)`` for each manifest file. ``add`` is relative to the state after
    the previous ``add`` (or the constructor's manifest): if a commit that carried its files
    fails, make a new builder from the manifest that is actually in the file.
    """

    def __init__(self, workdir: str, manifest: LexManifest | None,
                 read_file: Callable[[str], bytes | memoryview]) -> None:
        self.workdir = os.path.abspath(workdir)
        self.rebuilt = False
        if manifest is not None and manifest.version > MANIFEST_VERSION:
            raise VersionMismatchError(
                f"lexical index manifest version {manifest.version} is not supported")
        if manifest is None:
            self._reset()
            self._files: set[str] = set()
            self.docs = 0
            return
        self._files = set(manifest.files)
        self.docs = manifest.docs
        self._identity = manifest.identity()
        if not complete(self.workdir, self._identity):
            self.rebuilt = True
            rmtree(self.workdir)
            os.makedirs(self.workdir, exist_ok=True)
            sizes = write_files(self.workdir, manifest, read_file)
            write_marker(self.workdir, manifest.identity(), sizes, "workdir")

    def _reset(self) -> None:
        self.rebuilt = True
        rmtree(self.workdir)
        os.makedirs(self.workdir, exist_ok=True)
        load_tantivy().Index(schema(), path=self.workdir, reuse=False)
        meta = self._meta()
        self._identity = content_identity(meta, ())
        write_marker(self.workdir, self._identity, {}, "workdir")

    def in_sync(self) -> bool:
        """True while the workdir still holds the index this builder last wrote (a cache
        cleaner may have removed it: then make a new builder from the file's manifest)."""
        return complete(self.workdir, self._identity)

    def positions_tail(self, name: str) -> list[int] | None:
        """:func:`positions_tail` of the workdir's file ``name``."""
        return positions_tail(os.path.join(self.workdir, name))

    def _meta(self) -> str:
        with open(os.path.join(self.workdir, "meta.json"), encoding="utf-8") as fh:
            return fh.read()

    def add(self, docs: Sequence[LexDoc]) -> tuple[str, dict[str, Pieces], list[str]]:
        """Index ``docs``; return (meta_json, new files {name: their bytes, read from the
        workdir a piece at a time while a commit writes them}, names of all files).

        A new file stays in the workdir, unchanged, until the next ``add``: a merge of
        large segments makes files of tens of MB, never held in memory whole."""
        if not self.in_sync():
            raise MemvidError(f"lexical index workdir {self.workdir} changed under the builder; "
                              "create a new LexBuilder from the file's manifest")
        if not docs:
            return self._meta(), {}, sorted(self._files)
        check_docs(docs)
        with contextlib.suppress(FileNotFoundError):  # dirty until the add completes
            os.unlink(os.path.join(self.workdir, MARKER))
        index = open_index(self.workdir)
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        try:
            added = add_docs(writer, docs)
            writer.commit()
            writer.garbage_collect_files()
        except BaseException:
            try:
                writer.rollback()
            finally:
                writer.wait_merging_threads()
            raise
        writer.wait_merging_threads()
        del writer, index
        meta = self._meta()
        needed = needed_files(self.workdir, meta)
        for name in os.listdir(self.workdir):  # segments merged away
            if SEGMENT_FILE_RE.fullmatch(name) and name not in needed:
                os.unlink(os.path.join(self.workdir, name))
        new_files = {name: file_pieces(os.path.join(self.workdir, name))
                     for name in needed if name not in self._files}
        sizes = {n: os.path.getsize(os.path.join(self.workdir, n)) for n in needed}
        self._identity = content_identity(meta, needed)
        write_marker(self.workdir, self._identity, sizes, "workdir")
        self._files = set(needed)
        self.docs += added
        return meta, new_files, needed


PIECE_BYTES = 8 << 20  # bytes of an index file read at a time


def positions_tail(path: str) -> list[int] | None:
    """[bytes, CRC-32] of the end of the positions file at ``path`` (the manifest's
    ``tails``); None for another file, or one too small to leave anything out."""
    size = os.path.getsize(path)
    if not path.endswith(POSITIONS) or size <= TAIL_BYTES:
        return None
    with open(path, "rb") as fh:
        fh.seek(size - TAIL_BYTES)
        return [TAIL_BYTES, zlib.crc32(fh.read(TAIL_BYTES))]


def file_pieces(path: str) -> Pieces:
    """The bytes of the file at ``path`` as ``Pieces`` read ``PIECE_BYTES`` at a time."""

    def pieces() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while piece := fh.read(PIECE_BYTES):
                yield piece

    return Pieces(os.path.getsize(path), pieces)
