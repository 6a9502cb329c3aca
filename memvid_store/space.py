"""Which bytes of a memory file its newest commit reads; the rest is dead space.

Commits only append. A run merge, an index extension or a tantivy segment merge leaves
what it replaced in the file (older tables of contents still name it) until
``compact()`` rewrites the file, which keeps every version of the history it is asked to
keep. ``file_bytes - live_bytes`` is what a compaction keeping all history reclaims.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .engine.format import TOC_FOOTER_SIZE
from .errors import MemvidError

if TYPE_CHECKING:
    from .engine.snapshot import Snapshot


def live_extents(snap: Snapshot) -> list[tuple[int, int]]:
    """(offset, length) of every byte range ``snap`` reads, sorted: the header slots and
    the WAL region, the table of contents, each segment, the payload and vector blocks
    of each run, and the BM25 index's files."""
    header = snap.header
    out = [(0, header.data_start), (header.toc_offset, header.toc_len + TOC_FOOTER_SIZE)]
    out += [(seg.offset, seg.length) for seg in snap.toc.segments]
    out += _lex_files(snap)
    width = 4 * (snap.dim or 0)
    for run in snap.runs:
        out += [(off, length) for off, length, _ in run.header["blocks"]]
        out += [(off, rows * width) for off, rows, _ in run.header["vblocks"]]
    return sorted(out)


def live_bytes(snap: Snapshot) -> int:
    """Bytes of the file ``snap`` reads (overlapping extents counted once)."""
    total = end = 0
    for off, length in live_extents(snap):
        start = max(off, end)
        if off + length > start:
            total += off + length - start
            end = off + length
    return total


def _lex_files(snap: Snapshot) -> list[tuple[int, int]]:
    """Extents of tantivy's files the BM25 manifest names (none without one, or when it
    is damaged: they are then counted dead)."""
    from .index.lexical.manifest import read_manifest

    try:
        manifest = read_manifest(snap)
    except MemvidError:
        return []
    return [] if manifest is None else [(off, size) for off, size, _ in manifest.files.values()]


DEAD_NOTICE_BYTES = 16 << 20  # less dead space than this is not worth a notice
DEAD_NOTICE_SHARE = 0.5  # nor a smaller share of the file (a compaction would not halve it)


def space_notices(snap: Snapshot, file_bytes: int) -> list[str]:
    """A notice when much of the file is dead space."""
    dead = file_bytes - live_bytes(snap)
    if dead < DEAD_NOTICE_BYTES or dead < DEAD_NOTICE_SHARE * file_bytes:
        return []
    return [f"{dead / 2**20:,.0f} MiB of the file's {file_bytes / 2**20:,.0f} MiB is dead space "
            "left by merges and index rebuilds: compact() (mv2 compact) reclaims it, "
            "keeping all history"]
