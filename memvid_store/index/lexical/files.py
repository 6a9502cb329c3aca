"""The BM25 manifest's files read from a snapshot's bytes, each batch a reader needs asked
for together: one round of requests from object storage, one read-ahead from a mapped
file (not a disk read per 4 KiB page).

A reader unpacks the files with the positions files as their tails alone
(:func:`.unpack.write_files`): the first read asks for every other file whole and those
tails. The first phrase query fills the positions files (:func:`.unpack.fill_files`): its
first whole read of one asks for all of them.
"""

from __future__ import annotations

from typing import Any

from .manifest import LexManifest

REGION = "segment:lex"


class ManifestFiles:
    """``read`` (a file whole), ``read_tail`` (the end its manifest's ``tails`` checks)
    and ``release`` (its bytes are no longer needed) of the files of ``manifest`` in
    ``view``."""

    def __init__(self, view: Any, manifest: LexManifest) -> None:
        self.view, self.manifest = view, manifest
        self._deferred = set(manifest.deferred())
        self._unpacking = self._filling = True  # their reads not asked for yet

    def read(self, name: str) -> memoryview:
        if name in self._deferred:
            self._fill_announced()
        else:
            self._unpack_announced()
        return self.view.read(*self._whole(name), REGION)

    def read_tail(self, name: str) -> memoryview:
        self._unpack_announced()
        return self.view.read(*self._tail(name), REGION)

    def release(self, name: str) -> None:
        self.view.release(*self._whole(name))

    def _unpack_announced(self) -> None:
        if self._unpacking:
            self._unpacking = False
            self._announce([self._tail(n) if n in self._deferred else self._whole(n)
                            for n in self.manifest.files])

    def _fill_announced(self) -> None:
        if self._filling:
            self._filling = False
            self._announce([self._whole(n) for n in sorted(self._deferred)])

    def _announce(self, spans: list[tuple[int, int]]) -> None:
        if self.view.batches:  # the files lie side by side: no gap
            self.view.fetch(spans, REGION, 0)
        else:
            for span in spans:
                self.view.prefetch(*span)

    def _whole(self, name: str) -> tuple[int, int]:
        off, length, _ = self.manifest.files[name]
        return off, length

    def _tail(self, name: str) -> tuple[int, int]:
        off, length, _ = self.manifest.files[name]
        size = self.manifest.tails[name][0]
        return off + length - size, size


__all__ = ["ManifestFiles"]
