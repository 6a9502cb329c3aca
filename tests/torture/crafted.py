"""Crafted files: length fields that point past the file or claim gigabytes, and zstd
bombs, each with every checksum fixed up so that only the engine's bound checks stop it.

``recommit`` is the tool: it appends rewritten segments after the newest commit, writes a
TOC naming them, its footer, and the header slot of the same generation, all with valid
checksums (the old bytes stay behind as dead space).
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from memvid_store.engine import format as fmt
from memvid_store.engine import wal as walfmt
from memvid_store.engine.part_pages import page_checks
from memvid_store.lazy import zstandard

from ..crash.conftest import parse_layout

HUGE = 1 << 40
RUN_HEAD = struct.Struct("<4sII")
PART_DTYPES = {"hash": "<u8", "created": "<i8", "vfrom": "<i8", "vto": "<i8", "poff": "<u8",
               "plen": "<u4", "pcrc": "<u4", "version": "<u4", "flags": "<u4", "vrow": "<u4",
               "idoff": "<u4", "hsort": "<u8", "hperm": "<u4", "tperm": "<u4",
               "sup_gid": "<u8", "sup_to": "<i8", "tkey": "<u8", "toff": "<u4", "trows": "<u4",
               "nkey": "<u8", "noff": "<u4", "nval": "<f8", "nrow": "<u4", "skey": "<u8",
               "soff": "<u4", "srow": "<u4", "gtof": "<u4"}


def newest(data: bytes) -> tuple[fmt.Header, fmt.Toc]:
    header, _ = fmt.pick_header(data[: fmt.HEADER_SIZE])
    return header, fmt.Toc.decode(data[header.toc_offset : header.toc_offset + header.toc_len],
                                  header.toc_offset)


def write_header(data: bytearray, header: fmt.Header) -> None:
    start = header.slot * fmt.SLOT_SIZE
    packed = header.pack()
    data[start : start + len(packed)] = packed


def recommit(data: bytes, blobs: list[bytes],
             edit: Callable[[fmt.Toc, list[int]], None]) -> bytes:
    """Append ``blobs`` (8-byte aligned) after the newest commit, let ``edit`` change the
    TOC (it gets the blobs' offsets), and write TOC, footer and header slot anew."""
    header, toc = newest(data)
    out = bytearray(data[: header.toc_offset])
    offsets = []
    for blob in blobs:
        out += b"\0" * (fmt.align(len(out)) - len(out))
        offsets.append(len(out))
        out += blob
    out += b"\0" * (fmt.align(len(out)) - len(out))
    edit(toc, offsets)
    raw = toc.encode()
    toc_off, crc = len(out), fmt.crc32(raw)
    out += raw + fmt.pack_toc_footer(header.generation, toc_off, len(raw), crc)
    write_header(out, dataclasses.replace(header, toc_offset=toc_off, toc_len=len(raw),
                                          toc_crc=crc))
    return bytes(out)


def replace_segment(data: bytes, seg: fmt.SegmentRef, blob: bytes,
                    meta: dict[str, Any] | None = None) -> bytes:
    """The file with segment ``seg`` replaced by ``blob`` (appended, checksums valid)."""
    def edit(toc: fmt.Toc, offsets: list[int]) -> None:
        for s in toc.segments:
            if s.offset == seg.offset:
                s.offset, s.length, s.crc = offsets[0], len(blob), fmt.crc32(blob)
                s.meta.update(meta or {})
    return recommit(data, [blob], edit)


# ------------------------------------------------------------------------------- runs


def read_run(data: bytes, seg: fmt.SegmentRef) -> tuple[dict[str, Any], dict[str, bytes]]:
    _magic, hlen, _ = RUN_HEAD.unpack_from(data, seg.offset)
    header = json.loads(data[seg.offset + 12 : seg.offset + 12 + hlen])
    base = seg.offset + fmt.align(12 + hlen)
    parts = {name: data[base + rel : base + rel + length]
             for name, (rel, length, _crc) in header["parts"].items()}
    return header, parts


def encode_run(header: dict[str, Any], parts: dict[str, bytes],
               keep: tuple[str, ...] = ()) -> tuple[bytes, int]:
    """Run bytes and prefix size; part entries named in ``keep`` are written as given in
    ``header`` (crafted), the others recomputed from ``parts``, their page checks too."""
    if "pages" in header:
        parts = {name: blob for name, blob in parts.items() if name != "pchk"}
        header["pages"], checks = {}, []
        for name, blob in parts.items():
            header["pages"][name] = len(checks)
            checks += page_checks(blob)
        parts["pchk"] = np.asarray(checks, "<u4").tobytes()
    body, pos, table = b"", 0, {}
    for name, blob in parts.items():
        table[name] = [pos, len(blob), fmt.crc32(blob)]
        body += blob + b"\0" * (fmt.align(len(blob)) - len(blob))
        pos = len(body)
    for name in keep:
        table[name] = header["parts"][name]
    raw = json.dumps({**header, "parts": table}, separators=(",", ":")).encode()
    prefix = RUN_HEAD.pack(b"MVRN", len(raw), fmt.crc32(raw)) + raw
    head = fmt.align(len(prefix))
    return prefix + b"\0" * (head - len(prefix)) + body, head


def main_run(data: bytes) -> fmt.SegmentRef:
    return max(parse_layout(data).segments("run"), key=lambda s: s.meta.get("n", 0))


def row_of(data: bytes, seg: fmt.SegmentRef, fid: str) -> int:
    _, parts = read_run(data, seg)
    offs = np.frombuffer(parts["idoff"], "<u4")
    ids = parts["ids"]
    for row in range(len(offs) - 1):
        if ids[offs[row] : offs[row + 1]] == fid.encode():
            return row
    raise LookupError(fid)


def edit_run(data: bytes, change: Callable[[dict[str, Any], dict[str, np.ndarray | bytes]],
                                           tuple[str, ...] | None],
             seg: fmt.SegmentRef | None = None) -> bytes:
    """Rewrite a run after ``change(header, parts)`` edits it in place (parts as numpy
    arrays); ``change`` returns part names whose header entry it crafted."""
    seg = seg or main_run(data)
    header, raw_parts = read_run(data, seg)
    parts: dict[str, Any] = {n: (np.frombuffer(b, PART_DTYPES[n]).copy() if n in PART_DTYPES
                                 else bytes(b)) for n, b in raw_parts.items()}
    keep = change(header, parts) or ()
    blobs = {n: (p.tobytes() if isinstance(p, np.ndarray) else p) for n, p in parts.items()}
    blob, head = encode_run(header, blobs, keep)
    return replace_segment(data, seg, blob, {"head": head, "n": header["n"]})


def set_part_value(name: str, index: int, value: int) -> Callable[..., None]:
    def change(_header: dict[str, Any], parts: dict[str, Any]) -> None:
        parts[name][index] = value
    return change


def part_entry(name: str, field: int, value: int) -> Callable[..., tuple[str, ...]]:
    def change(header: dict[str, Any], _parts: dict[str, Any]) -> tuple[str, ...]:
        header["parts"][name][field] = value
        return (name,)
    return change


# ------------------------------------------------------------------------------ bombs


def bomb(kind: str) -> bytes:
    """zstd frames: ``lie`` claims 1 TiB in a few bytes; ``big`` inflates to 100 MiB
    (over the payload limit); ``unsized`` is ``big`` without a content size; ``under``
    inflates to 15 MiB (under the limit) of zeros."""
    if kind == "lie":
        real = zstandard.ZstdCompressor(write_content_size=True).compress(b"x" * 64)
        assert real[4] == 0x20, "expected a single-segment frame with a 1-byte size"
        # frame header descriptor: single segment, 8-byte content size
        return real[:4] + b"\xe0" + struct.pack("<Q", HUGE) + real[6:]
    size = {"big": 100 << 20, "unsized": 100 << 20, "under": 15 << 20}[kind]
    cctx = zstandard.ZstdCompressor(level=3, write_content_size=kind != "unsized")
    return _compress(cctx, size, kind != "unsized")


def _compress(cctx: Any, size: int, sized: bool) -> bytes:
    chunk = bytes(1 << 20)
    obj = cctx.compressobj(size=size if sized else -1)
    out = b"".join(obj.compress(chunk) for _ in range(size >> 20))
    return out + obj.flush()


def with_payload(data: bytes, fid: str, stored: bytes) -> bytes:
    """The file with frame ``fid``'s stored payload replaced by ``stored`` in place (its
    length, CRC, and the CRC of its payload block fixed up)."""
    seg = main_run(data)
    row = row_of(data, seg, fid)
    header, raw_parts = read_run(data, seg)
    poff = int(np.frombuffer(raw_parts["poff"], "<u8")[row])
    plen = int(np.frombuffer(raw_parts["plen"], "<u4")[row])
    if len(stored) > plen:
        raise ValueError(f"{len(stored)} bytes do not fit in the {plen} of {fid}")
    out = bytearray(data)
    out[poff : poff + len(stored)] = stored

    def change(hdr: dict[str, Any], parts: dict[str, Any]) -> None:
        parts["plen"][row] = len(stored)
        parts["pcrc"][row] = fmt.crc32(stored)
        for block in hdr["blocks"]:
            if block[0] <= poff < block[0] + block[1]:
                block[2] = fmt.crc32(bytes(out[block[0] : block[0] + block[1]]))
    del header
    return edit_run(bytes(out), change, seg)


# -------------------------------------------------------------------------------- WAL


def wal_append(data: bytes, payload: bytes) -> bytes:
    """A valid WAL record (checksum and chain right) appended after the last one."""
    lay = parse_layout(data)
    last = lay.wal[-1]
    _m, _l, seq, crc, _p = struct.unpack_from("<4sIQII", data, last.start)
    record, _ = walfmt.encode_record(seq + 1, payload, crc)
    out = bytearray(data)
    out[lay.wal_end : lay.wal_end + len(record)] = record
    return bytes(out)


def wal_length(data: bytes, value: int) -> bytes:
    """The last WAL record's length field set to ``value`` (its CRC left as is)."""
    rec = parse_layout(data).wal[-1]
    out = bytearray(data)
    struct.pack_into("<I", out, rec.start + 4, value)
    return bytes(out)


def wal_payload(count: int, json_len: int, emb_len: int = 0) -> bytes:
    return struct.pack("<qI", 1_700_000_000_000_000, count) + struct.pack("<II", json_len,
                                                                         emb_len)


# ------------------------------------------------------------------------------ cases


def _seg(data: bytes, kind: str) -> fmt.SegmentRef:
    return parse_layout(data).segments(kind)[0]


def _toc_length(data: bytes, length: int) -> bytes:
    header, _ = newest(data)
    out = bytearray(data)
    write_header(out, dataclasses.replace(header, toc_len=length))
    return bytes(out)


def _toc_offset(data: bytes, offset: int) -> bytes:
    header, _ = newest(data)
    out = bytearray(data)
    write_header(out, dataclasses.replace(header, toc_offset=offset))
    return bytes(out)


def _segment_field(kind: str, **fields: int) -> Callable[[bytes], bytes]:
    def make(data: bytes) -> bytes:
        target = _seg(data, kind)

        def edit(toc: fmt.Toc, _offsets: list[int]) -> None:
            for s in toc.segments:
                if s.offset == target.offset:
                    for name, value in fields.items():
                        setattr(s, name, value)
        return recommit(data, [], edit)
    return make


def _run_header_length(value: int) -> Callable[[bytes], bytes]:
    def make(data: bytes) -> bytes:
        seg = main_run(data)
        blob = bytearray(data[seg.offset : seg.offset + seg.length])
        struct.pack_into("<I", blob, 4, value)
        return replace_segment(data, seg, bytes(blob))
    return make


def _lex_file_length(data: bytes) -> bytes:
    seg = _seg(data, "lex")
    manifest = json.loads(data[seg.offset : seg.offset + seg.length])
    name = max(manifest["files"], key=lambda n: manifest["files"][n][1])
    manifest["files"][name][1] = HUGE
    return replace_segment(data, seg, json.dumps(manifest).encode())


def _ann_field(offset: int, fmt_char: str, value: int) -> Callable[[bytes], bytes]:
    def make(data: bytes) -> bytes:
        seg = _seg(data, "ann")
        blob = bytearray(data[seg.offset : seg.offset + seg.length])
        struct.pack_into("<" + fmt_char, blob, offset, value)
        return replace_segment(data, seg, bytes(blob))
    return make


def _run_row(name: str, value: int, fid: str = "big") -> Callable[[bytes], bytes]:
    def make(data: bytes) -> bytes:
        row = row_of(data, main_run(data), fid)
        return edit_run(data, set_part_value(name, row, value))
    return make


def _run_part_first(name: str, value: int) -> Callable[[bytes], bytes]:
    return lambda data: edit_run(data, set_part_value(name, 0, value))


def _run_n(data: bytes) -> bytes:
    def change(header: dict[str, Any], _parts: dict[str, Any]) -> None:
        header["n"] = 1 << 31
    return edit_run(data, change)


CASES: dict[str, Callable[[bytes], bytes]] = {
    "wal record length past the region": lambda d: wal_length(d, 1 << 21),
    "wal record length 4 GiB": lambda d: wal_length(d, 0xFFFFFFF0),
    "wal record (valid crc) claiming 2^31 operations": lambda d: wal_append(
        d, wal_payload(1 << 31, 10)),
    "wal record (valid crc) op json length 4 GiB": lambda d: wal_append(
        d, wal_payload(1, 0xFFFFFFF0)),
    "wal record (valid crc) op embedding length 4 GiB": lambda d: wal_append(
        d, wal_payload(1, 2, 0xFFFFFFF0) + b"[]"),
    "header toc length past the file": lambda d: _toc_length(d, len(d) * 2),
    "header toc length 1 TiB": lambda d: _toc_length(d, HUGE),
    "header toc offset past the file": lambda d: _toc_offset(d, len(d) + 4096),
    "toc segment length 1 TiB (run)": _segment_field("run", length=HUGE),
    "toc segment offset past the file (run)": _segment_field("run", offset=1 << 34),
    "toc segment length 1 TiB (lex)": _segment_field("lex", length=HUGE),
    "toc segment length 1 TiB (ann)": _segment_field("ann", length=HUGE),
    "toc segment length 1 TiB (dict)": _segment_field("dict", length=HUGE),
    "toc segment length 1 TiB (commits)": _segment_field("commits", length=HUGE),
    "run header length 4 GiB": _run_header_length(0xFFFFFFF0),
    "run header length past the segment": _run_header_length(1 << 24),
    "run part length 1 TiB (plen)": lambda d: edit_run(d, part_entry("plen", 1, HUGE)),
    "run part offset past the segment (ids)": lambda d: edit_run(d, part_entry("ids", 0, HUGE)),
    "run n 2^31": _run_n,
    "frame plen 4 GiB": _run_row("plen", 0xFFFFFFF0),
    "frame poff past the file": _run_row("poff", 1 << 40),
    "frame vrow past the vectors": _run_row("vrow", 0xFFFFFFF0),
    "frame idoff past the ids": _run_row("idoff", 0xFFFFFFF0),
    "posting toff past trows": _run_part_first("toff", 0xFFFFFFF0),
    "value column noff past nval": _run_part_first("noff", 0xFFFFFFF0),
    "tag list offset past its tags": _run_part_first("gtof", 0xFFFFFFF0),
    "time index tperm past n": _run_part_first("tperm", 0xFFFFFFF0),
    "id index hperm past n": _run_part_first("hperm", 0xFFFFFFF0),
    "lex manifest file length 1 TiB": _lex_file_length,
    "ann vector count 2^40": _ann_field(20, "Q", HUGE),
    "ann meta length 4 GiB": _ann_field(36, "I", 0xFFFFFFF0),
    "ann payload length 1 TiB": _ann_field(44, "Q", HUGE),
    "zstd bomb: frame claims 1 TiB": lambda d: with_payload(d, "big", bomb("lie")),
    "zstd bomb: 100 MiB of zeros": lambda d: with_payload(d, "big", bomb("big")),
    "zstd bomb: 100 MiB, no content size": lambda d: with_payload(d, "big", bomb("unsized")),
    "zstd bomb: 15 MiB of zeros (under the payload limit)": lambda d: with_payload(
        d, "big", bomb("under")),
}
