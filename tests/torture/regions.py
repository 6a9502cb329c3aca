"""Where each kind of region of the corpus file lies: byte positions to flip and offsets
to truncate at (built on ``tests.crash.conftest.parse_layout``)."""

from __future__ import annotations

import json
import struct
from typing import Any

from memvid_store.engine import format as fmt

from ..crash.conftest import Layout, parse_layout

# kinds flipped at every byte; the others are sampled
EVERY_BYTE = ("header", "toc", "wal records")
SAMPLED = ("run header", "run parts", "run dead", "payload blocks", "vector blocks", "dict",
           "lex manifest", "lex files", "ann graph", "commits", "toc older", "wal unused")
# flips in these kinds may leave an acknowledged prefix of the WAL
WAL_KINDS = ("wal records", "wal unused")


def _span(off: int, length: int) -> range:
    return range(off, off + length)


def _run_head(data: bytes, off: int) -> int:
    _magic, hlen, _crc = struct.unpack_from("<4sII", data, off)
    return fmt.align(12 + hlen)


def _lex_files(data: bytes, lay: Layout) -> list[range]:
    out = []
    for seg in lay.live_segments + lay.dead_segments:
        if seg.kind == "lex":
            manifest = json.loads(data[seg.offset : seg.offset + seg.length])
            out += [_span(int(off), int(length)) for off, length, _ in manifest["files"].values()]
    return out


def regions(data: bytes) -> dict[str, list[range]]:
    """Every region kind of ``data`` as lists of byte ranges."""
    lay = parse_layout(data)
    hdr = lay.header
    segs = lay.live_segments

    def of(kind: str, pool: list[fmt.SegmentRef] = segs) -> list[range]:
        return [_span(s.offset, s.length) for s in pool if s.kind == kind]

    runs = [s for s in segs if s.kind == "run"]
    return {
        "header": [range(0, fmt.HEADER_SIZE)],
        "wal records": [range(r.start, r.start + fmt.align(r.end - r.start)) for r in lay.wal],
        "wal unused": [range(lay.wal_end, hdr.wal_offset + hdr.wal_size)],
        "toc": [_span(lay.tocs[0][1], lay.tocs[0][2] + fmt.TOC_FOOTER_SIZE)],
        "toc older": [_span(off, length + fmt.TOC_FOOTER_SIZE) for _, off, length in lay.tocs[1:]],
        "run header": [_span(s.offset, _run_head(data, s.offset)) for s in runs],
        "run parts": [range(s.offset + _run_head(data, s.offset), s.offset + s.length)
                      for s in runs],
        "run dead": of("run", lay.dead_segments),
        "payload blocks": [_span(off, length) for off, length in lay.blocks],
        "vector blocks": [_span(off, length) for off, length in lay.vblocks],
        "dict": of("dict"),
        "lex manifest": of("lex"),
        "lex files": _lex_files(data, lay),
        "ann graph": of("ann"),
        "commits": of("commits"),
    }


def positions(spans: list[range]) -> list[int]:
    return sorted({p for r in spans for p in r})


def boundaries(data: bytes) -> list[int]:
    """Offsets where a region starts or ends (truncation points), plus their neighbours."""
    cuts: set[int] = {0, 1, 4, fmt.SLOT_SIZE, fmt.HEADER_SIZE}
    for spans in regions(data).values():
        for r in spans:
            cuts.update((r.start, r.stop, r.start + 1, r.stop - 1))
    return sorted(c for c in cuts if 0 <= c < len(data))


def describe(data: bytes) -> dict[str, Any]:
    """Bytes per kind (for the report)."""
    return {kind: len(positions(spans)) for kind, spans in regions(data).items()}
