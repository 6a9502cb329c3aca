"""Runs: immutable, column-wise frame tables written by commits.

A run covers the versions with gids ``[base, base + n)`` in gid (= record time) order.
Its segment::

    b"MVRN" | header_len u32 | header_crc u32 | pad | header JSON | parts (8-byte aligned)

The header lists each part as ``[offset within segment, length, crc32]`` and the payload
payload and vector block ranges the run references. Parts (n = rows, m = supersessions):

==========  =======  =====================================================
part        type     meaning
==========  =======  =====================================================
hash        u64[n]   id hash (blake2b-64)
created     i64[n]   event time µs
vfrom       i64[n]   record time the version became current
vto         i64[n]   record time it was replaced, if known when written
poff, plen  u64,u32  stored payload location (absolute file offset)
pcrc        u32[n]   CRC-32 of the stored payload
version     u32[n]   version number of the id
flags       u32[n]   bit 0 tombstone, bit 1 has vector, bits 8-15 codec
vrow        u32[n]   row among the run's vector blocks, or 0xFFFFFFFF
idoff       u32[n+1] offsets into ``ids``; ids: utf-8 frame ids
hsort/hperm u64,u32  hashes sorted, and the rows they belong to (id lookup)
tperm       u32[n]   rows sorted by (created, gid) (time index)
sup_gid/to  u64,i64  versions in older runs this run replaced, and when
tkey        u64[m]   posting lists: term hashes (engine/terms.py), ascending
toff        u32[m+1] offsets into ``trows`` of each term's rows
trows       u32[p]   the rows of the run's content versions posted under each term,
                     ascending within a term
nkey        u64[k]   value columns of numbers (engine/value_kinds.py): hashes of
                     ``NUMBERS.term(path)`` of the paths holding numbers, ascending
noff        u32[k+1] offsets into ``nval``/``nrow`` of each path's numbers
nval        f64[q]   the numbers at each path (``numbers_of``), ascending within a path
nrow        u32[q]   the row each number belongs to (ascending among equal numbers)
skey, soff  u64,u32  value columns of strings: as ``nkey``/``noff``, for ``STRINGS``
sval        24B[s]   string keys (UTF-8 cut or zero-padded to 24 bytes), ascending
srow        u32[s]   the row each key belongs to (ascending among equal keys)
gtag        bytes    the distinct tags of the run's content versions, UTF-8, ascending
gtof        u32[g+1] offsets into ``gtag`` of each tag (``tag_list``)
vcrc        u32[v]   CRC-32 of each vector row, in vector-row order
pchk        u32[c]   CRC-32 of every 4 KiB page of the other parts (part_pages.py);
                     the header's ``pages`` maps each part to its first check
==========  =======  =====================================================

The posting parts (``POSTING_PARTS``) and the value parts of each kind are absent from
runs written before they existed; ``has_postings`` and ``has_values`` tell them apart
and the snapshot computes what such a run lacks from its payloads when it needs it.

Embeddings live in vector blocks (``vblocks``: ``[offset, rows, crc]``, float32 rows of
``dim``, 64-byte aligned) written once by the commit that added them; merging runs
concatenates block lists and never copies vectors, so merges cost O(table), not O(vectors).

Reading needs no numpy: parts are memoryviews cast to their type, checked against their
CRC on first use, or page by page for lookups of a few rows (``item``, ``items``). Vector
bytes are checked too, never trusted: a row read alone against its ``vcrc`` (a few KiB
hashed, so a graph walk's few rows cost microseconds), a block scanned whole against the
block's CRC, once per reader (``check_vector_block``). Runs written before ``vcrc``
existed check the whole block of a row read alone, once. Building uses numpy for sorting.
"""

from __future__ import annotations

import json
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from itertools import pairwise
from typing import Any

from ..errors import ChecksumError, CorruptFileError, DamagedIndexError
from ..lazy import numpy as np
from .distinct import distinct
from .fileio import FileView
from .format import NO_ROW, TIME_MAX, SegmentRef, align, crc32
from .part_pages import PAGE_BYTES, PagedPart, page_checks, whole_after
from .value_kinds import (
    NUMBERS,
    STRING_KEY_BYTES,
    STRINGS,
    VALUE_KINDS,
    ValueKind,
    value_span,
)

RUN_MAGIC = b"MVRN"
_RUN_HEAD = struct.Struct("<4sII")

FLAG_TOMBSTONE = 1
FLAG_VECTOR = 2

PART_TYPES = {
    "hash": "Q", "created": "q", "vfrom": "q", "vto": "q", "poff": "Q", "plen": "I",
    "pcrc": "I", "version": "I", "flags": "I", "vrow": "I", "idoff": "I", "ids": "B",
    "hsort": "Q", "hperm": "I", "tperm": "I", "sup_gid": "Q", "sup_to": "q",
    "tkey": "Q", "toff": "I", "trows": "I", "nkey": "Q", "noff": "I", "nval": "d",
    "nrow": "I", "vcrc": "I", "skey": "Q", "soff": "I", "sval": "B", "srow": "I",
    "gtag": "B", "gtof": "I", "pchk": "I",
}
POSTING_PARTS = ("tkey", "toff", "trows")
VALUE_PARTS = NUMBERS.parts + STRINGS.parts
TAG_LIST_PARTS = ("gtag", "gtof")
# filter indexes: damage costs filters only
DERIVED_PARTS = POSTING_PARTS + VALUE_PARTS + TAG_LIST_PARTS
VECTOR_CHECK_PARTS = ("vcrc",)
PAGE_CHECK_PART = "pchk"
OPTIONAL_PARTS = DERIVED_PARTS + VECTOR_CHECK_PARTS + (PAGE_CHECK_PART,)  # older runs lack them
TABLE_PARTS = tuple(name for name in PART_TYPES if name not in OPTIONAL_PARTS)
# What a query's acceptance and its hits read of a row. A reader of remote bytes reads
# them by the page, the rows of a query's candidates announced together (``row_spans``),
# and fetches one whole, for every run at once, only when a bulk path reads it whole.
ROW_PARTS = ("created", "vto", "poff", "plen", "pcrc", "version", "flags", "idoff", "ids")
# Parts a reader of remote bytes fetches together, for every run, on the first use of
# one: the small ones every query needs (ahead of the first query), a vector path's row
# lookups, and the row columns once one is read whole.
PART_GROUPS = (("sup_gid", "sup_to", PAGE_CHECK_PART), ("vrow", "vcrc"), ROW_PARTS)
SMALL_RUN = 256 << 10  # a run this small is fetched whole with its first part
# Row columns of a run larger than this are read by the page from remote bytes, and then
# those of every run of the file but the small ones (read_rows_by_page), until a vector
# query fetches them with the graph (hnsw_format.fetch_graph). Smaller ones are fetched
# whole with the first query, in the round of tantivy's files or the graph, which they
# do not lengthen (5.6 MB at 100k rows); at 1M rows (61 MB) they would add 40 % to a
# first lexical answer's bytes, more than the round a query's rows take.
BY_PAGE_BYTES = 16 << 20
# pages of its times a run's stream of the first versions in time order reads one by one
# before it fetches the column whole (RunReader.times_in_order)
STREAM_PAGES = 1
NP_TYPES = {"Q": "<u8", "q": "<i8", "I": "<u4", "B": "u1", "f": "<f4", "d": "<f8"}


def np_type(name: str) -> str:
    """The numpy type of a part's items."""
    return STRINGS.dtype if name == STRINGS.parts[2] else NP_TYPES[PART_TYPES[name]]


@dataclass(slots=True)
class RunColumns:
    """Columns of a run being built (numpy arrays, or bytes for ``ids``)."""

    base: int
    dim: int | None
    cols: dict[str, Any]
    blocks: list[list[int]] = field(default_factory=list)
    vblocks: list[list[int]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.cols["hash"])


def finish_columns(base: int, dim: int | None, cols: dict[str, Any],
                   blocks: list[list[int]], vblocks: list[list[int]]) -> RunColumns:
    """Derive the lookup parts (hsort, hperm, tperm) and return buildable columns."""
    hashes = cols["hash"]
    perm = np.argsort(hashes, kind="stable")
    cols["hsort"] = hashes[perm]
    cols["hperm"] = perm.astype("<u4")
    cols["tperm"] = np.argsort(cols["created"], kind="stable").astype("<u4")
    return RunColumns(base, dim, cols, blocks, vblocks)


def tag_list_parts(tags: list[str]) -> dict[str, Any]:
    """The tag list parts of a run from its distinct tags (ascending)."""
    encoded = [tag.encode() for tag in tags]
    offsets = np.zeros(len(encoded) + 1, "<u4")
    if encoded:
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return {"gtag": b"".join(encoded), "gtof": offsets}


def tag_list(data: bytes, offsets: Any) -> list[str]:
    """The tags of tag list parts (``gtag`` bytes, ``gtof`` offsets).

    Raises:
        ValueError: the parts disagree, or a tag is not UTF-8.
    """
    offsets = list(offsets)
    if not offsets or offsets[0] != 0 or offsets[-1] != len(data) or any(
            a > b for a, b in pairwise(offsets)):
        raise ValueError("offsets do not cover the tags")
    return [data[a:b].decode() for a, b in pairwise(offsets)]


def group_postings(keys: Any, rows: Any) -> dict[str, Any]:
    """The posting parts of (term hash, row) pairs, each term's rows listed ascending.

    A stable sort by term keeps each term's rows in the order given; a row posted twice
    under one hash (two terms of a version sharing it) is kept once.
    """
    if len(keys) >= 2**32:
        raise ValueError("a run's postings exceed 2^32 entries")
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    if len(keys) > 1:
        again = (keys[1:] == keys[:-1]) & (rows[1:] == rows[:-1])
        if again.any():
            keep = np.concatenate(([True], ~again))
            keys, rows = keys[keep], rows[keep]
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(first)
    return {"tkey": keys[starts].astype("<u8"),
            "toff": np.append(starts, len(keys)).astype("<u4"),
            "trows": rows.astype("<u4")}


def merge_postings(parts: list[tuple[Any, Any, Any, int]]) -> dict[str, Any]:
    """The posting parts of adjacent runs concatenated, from each run's
    ``(tkey, toff, trows, first row in the merged run)`` in row order."""
    keys, offsets, _, rows = merge_grouped([(tkey, toff, None, trows, offset)
                                            for tkey, toff, trows, offset in parts])
    return {"tkey": keys, "toff": offsets, "trows": rows}


def group_values(kind: ValueKind, keys: Any, values: Any, rows: Any) -> dict[str, Any]:
    """The value parts of ``kind`` from (path hash, value, row) triples: grouped by hash,
    each group ascending by (value, row), a triple given twice kept once."""
    if len(keys) >= 2**32:
        raise ValueError("a run's value columns exceed 2^32 entries")
    values = values.astype(kind.dtype)
    order = np.lexsort((rows, values, keys))
    keys, values, rows = keys[order], values[order], rows[order]
    if len(keys) > 1:
        again = ((keys[1:] == keys[:-1]) & (values[1:] == values[:-1])
                 & (rows[1:] == rows[:-1]))
        if again.any():
            keep = np.concatenate(([True], ~again))
            keys, values, rows = keys[keep], values[keep], rows[keep]
    first = np.ones(len(keys), bool)
    first[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(first)
    key, off, val, row = kind.parts
    return {key: keys[starts].astype("<u8"), off: np.append(starts, len(keys)).astype("<u4"),
            val: values, row: rows.astype("<u4")}


def merge_values(kind: ValueKind, parts: list[tuple[Any, Any, Any, Any, int]]
                 ) -> dict[str, Any]:
    """The value parts of ``kind`` of adjacent runs concatenated, from each run's
    ``(keys, offsets, values, rows, first row in the merged run)`` in row order."""
    keys, offsets, values, rows = merge_grouped(
        [(pkey, poff, pval.astype(kind.dtype, copy=False), prow, offset)
         for pkey, poff, pval, prow, offset in parts])
    key, off, val, row = kind.parts
    return {key: keys, off: offsets, val: values, row: rows}


MERGE_BATCH = 1 << 18  # entries of grouped parts sorted at once by ``merge_grouped``

Grouped = tuple[Any, Any, Any | None, Any, int]
"""A run's grouped part (posting lists, a kind's value columns): ``(keys ascending,
offsets of each key's entries, values or None, rows, first row in the merged run)``."""


def merge_grouped(parts: list[Grouped], batch: int = MERGE_BATCH
                  ) -> tuple[Any, Any, Any | None, Any]:
    """Grouped parts of adjacent runs, given in row order, merged into one ``(keys,
    offsets, values, rows)``: each key's entries ascending by (value, row), an entry
    given twice kept once.

    The output is allocated once and filled a batch of keys at a time (about ``batch``
    entries sorted at once), so a merge holds the merged part plus one batch instead of
    the several copies of every entry that sorting them all at once makes.
    """
    _check_grouped(parts)
    keys = distinct(np.concatenate([np.zeros(0, "<u8"), *(p[0] for p in parts)])
                    ).astype("<u8")
    where = [np.searchsorted(keys, p[0]) for p in parts]  # the key index of each group
    counts = np.zeros(len(keys), "i8")
    for part, at in zip(parts, where, strict=True):
        counts[at] += np.diff(np.asarray(part[1], "i8"))
    bounds = np.concatenate(([0], np.cumsum(counts)))  # before repeated entries go
    if bounds[-1] >= 2**32:
        raise ValueError("a run's postings or value columns exceed 2^32 entries")
    dtype = next((p[2].dtype for p in parts if p[2] is not None), None)
    out_rows = np.empty(int(bounds[-1]), "<u4")
    out_vals = None if dtype is None else np.empty(int(bounds[-1]), dtype)
    out_counts = np.zeros(len(keys), "i8")
    filled = start = 0
    while start < len(keys):
        stop = max(start + 1, int(np.searchsorted(bounds, bounds[start] + batch, "right")) - 1)
        at_key, at_val, at_row = _merged_batch(parts, where, start, stop)
        end = filled + len(at_row)
        out_rows[filled:end] = at_row
        if out_vals is not None:
            out_vals[filled:end] = at_val
        out_counts[start:stop] = np.bincount(at_key - start, minlength=stop - start)
        filled, start = end, stop
    offsets = np.concatenate(([0], np.cumsum(out_counts))).astype("<u4")
    return keys, offsets, None if out_vals is None else out_vals[:filled], out_rows[:filled]


def _check_grouped(parts: list[Grouped]) -> None:
    """CorruptFileError unless each part's keys ascend and its offsets cover its rows."""
    for pkey, poff, pval, prow, _ in parts:
        counts = np.diff(np.asarray(poff, "i8"))
        if (len(poff) != len(pkey) + 1 or (len(poff) and poff[0] != 0)
                or (counts < 0).any() or int(counts.sum()) != len(prow)
                or (pval is not None and len(pval) != len(prow))
                or not (np.asarray(pkey[1:]) > np.asarray(pkey[:-1])).all()):
            raise CorruptFileError("run postings or value columns are inconsistent",
                                   "segment:run", -1)


def _merged_batch(parts: list[Grouped], where: list[Any], start: int, stop: int
                  ) -> tuple[Any, Any | None, Any]:
    """The entries of keys ``[start, stop)`` (indexes into the merged keys) of every
    part, sorted by (key, value, row) without repeats: ``(key indexes, values, rows)``."""
    key_at, vals, rows = [], [], []
    for (_, poff, pval, prow, offset), at in zip(parts, where, strict=True):
        first, last = np.searchsorted(at, (start, stop))
        lo, hi = int(poff[first]), int(poff[last])
        key_at.append(np.repeat(at[first:last],
                                np.diff(np.asarray(poff[first:last + 1], "i8"))))
        rows.append(np.asarray(prow[lo:hi], "<u8") + offset)
        if pval is not None:
            vals.append(pval[lo:hi])
    at_key, at_row = np.concatenate(key_at), np.concatenate(rows)
    at_val = np.concatenate(vals) if vals else None
    # posting lists hold each key's rows ascending and the parts come in row order: a
    # stable sort by key keeps them ascending (values: sorted by value, then row)
    order = (np.argsort(at_key, kind="stable") if at_val is None
             else np.lexsort((at_row, at_val, at_key)))
    at_key, at_row = at_key[order], at_row[order]
    repeated = (at_key[1:] == at_key[:-1]) & (at_row[1:] == at_row[:-1])
    if at_val is not None:
        at_val = at_val[order]
        repeated &= at_val[1:] == at_val[:-1]
    keep = np.concatenate(([True], ~repeated))
    return at_key[keep], None if at_val is None else at_val[keep], at_row[keep]


@dataclass(frozen=True, slots=True)
class EncodedRun:
    """A serialized run as pieces to write back to back (its parts' own buffers, never
    joined into one copy: a merged run holds up to about 128 MiB), with the
    segment's length and CRC-32 and the meta of its TOC entry."""

    pieces: list[Any]
    length: int
    crc: int
    meta: dict[str, Any]


def encode_run(run: RunColumns) -> EncodedRun:
    """Serialize a run."""
    parts: dict[str, list[int]] = {}
    pages: dict[str, int] = {}  # each part's first page check
    checks: list[int] = []
    pieces: list[Any] = []
    pos = 0

    def add(name: str, data: Any) -> None:
        nonlocal pos
        parts[name] = [pos, len(data), crc32(data)]
        padded = align(len(data))
        pieces.extend((data, b"\x00" * (padded - len(data))))
        pos += padded

    for name in PART_TYPES:
        value = run.cols.get(name)
        if value is None and name in OPTIONAL_PARTS:
            continue  # a run without these parts (the layout of earlier versions)
        if value is None:
            data: Any = b""
        elif isinstance(value, bytes | bytearray):
            data = value
        else:
            data = memoryview(np.ascontiguousarray(value, dtype=np_type(name)).reshape(-1)
                              .view(np.uint8))
        pages[name] = len(checks)
        checks += page_checks(data)
        add(name, data)
    add(PAGE_CHECK_PART, memoryview(np.asarray(checks, "<u4").view(np.uint8)))
    nvec = sum(rows for _, rows, _ in run.vblocks)
    header = json.dumps({"n": run.n, "base": run.base, "dim": run.dim, "nvec": nvec,
                         "parts": parts, "pages": pages, "blocks": run.blocks,
                         "vblocks": run.vblocks}, separators=(",", ":")).encode()
    head_len = align(_RUN_HEAD.size + len(header))
    prefix = _RUN_HEAD.pack(RUN_MAGIC, len(header), crc32(header)) + header
    prefix += b"\x00" * (head_len - len(prefix))
    # part offsets are relative to the end of the prefix
    meta = {"base": run.base, "n": run.n, "nvec": nvec, "head": head_len}
    pieces = [prefix, *(piece for piece in pieces if len(piece))]
    crc = 0
    for piece in pieces:
        crc = crc32(piece, crc)
    return EncodedRun(pieces, head_len + pos, crc, meta)


class RunReader:
    """Lazy, read-only access to one committed run."""

    def __init__(self, view: FileView, ref: SegmentRef) -> None:
        self.view = view
        self.ref = ref
        self.base = int(ref.meta["base"])
        self.n = int(ref.meta["n"])
        self._parts: dict[str, memoryview] = {}  # parts checked whole
        self._paged: dict[str, PagedPart] = {}  # parts checked page by page so far
        self._term_ranges: dict[int, tuple[int, int]] = {}  # term hash -> its rows' span
        self._posting_slices: dict[tuple[int, int], memoryview] = {}  # span -> checked rows
        # term hash -> rows, computed from the payloads of a run without posting parts
        self.computed_postings: dict[int, list[int]] | None = None
        # kind name -> path hash -> (stored values ascending, their rows), computed from
        # the payloads of a run without that kind's value parts
        self.computed_values: dict[str, dict[int, tuple[list[Any], list[int]]]] = {}
        self._checked_blocks: set[int] = set()  # vector blocks whose CRC matched
        # over a view that batches: the snapshot's runs, whose parts are fetched together
        self.siblings: list[RunReader] | None = None
        self.rows_by_page = False  # remote bytes of its row columns read by the page
        self.deferred: tuple[str, ...] = ()  # parts fetched only when read themselves
        self._fetched: set[str] = set()  # parts announced already

    @property
    def end(self) -> int:
        return self.base + self.n

    @cached_property
    def header(self) -> dict[str, Any]:
        off = self.ref.offset
        raw = self.view.read(off, min(self.ref.length, _RUN_HEAD.size), "segment:run")
        if len(raw) < _RUN_HEAD.size:
            raise CorruptFileError(f"run segment at offset {off} is truncated", "segment:run", off)
        magic, hlen, hcrc = _RUN_HEAD.unpack(raw)
        if magic != RUN_MAGIC or hlen > self.ref.length:
            raise CorruptFileError(f"run segment at offset {off} has a bad header",
                                   "segment:run", off)
        text = bytes(self.view.read(off + _RUN_HEAD.size, hlen, "segment:run"))
        if crc32(text) != hcrc:
            raise ChecksumError(f"run segment header at offset {off} checksum mismatch",
                                "segment:run", off)
        try:
            header = json.loads(text)
            if header["n"] != self.n or header["base"] != self.base:
                raise ValueError("header disagrees with the TOC")
            for name, rows in _sized_parts(self.n):
                if name in header["parts"] and header["parts"][name][1] != rows * _size_of(name):
                    raise ValueError(f"part {name!r} does not hold {rows} rows")
            pages = header.setdefault("pages", {})
            if not isinstance(pages, dict) or any(type(first) is not int or first < 0
                                                  for first in pages.values()):
                raise ValueError("page check indexes are not counts")
            return header
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"run segment at offset {off}: {exc}", "segment:run",
                                   off) from None

    @property
    def has_postings(self) -> bool:
        """False for a run written before posting lists existed."""
        return "tkey" in self.header["parts"]

    @property
    def posts_multi(self) -> bool:
        """Whether the run's posting lists hold the ``m`` terms (``terms.multi_term``):
        written along with the string value columns, so runs written before them lack
        both."""
        return self.has_values(STRINGS)

    def has_values(self, kind: ValueKind) -> bool:
        """False for a run written before value columns of ``kind`` existed."""
        return kind.parts[0] in self.header["parts"]

    @property
    def has_tag_list(self) -> bool:
        """False for a run written before its list of distinct tags existed."""
        return TAG_LIST_PARTS[0] in self.header["parts"]

    @cached_property
    def distinct_tags(self) -> list[str]:
        """The distinct tags of the run's content versions, ascending (the run must have
        its tag list).

        Raises:
            DamagedIndexError: the list fails its checks.
        """
        try:
            return tag_list(bytes(self.raw_part("gtag")), self.part("gtof"))
        except ValueError as exc:
            raise DamagedIndexError(f"the tag list of the run at offset {self.ref.offset} "
                                    f"is inconsistent ({exc})", "segment:run",
                                    self.ref.offset) from None

    @property
    def has_vector_checks(self) -> bool:
        """False for a run written before per-row vector checksums existed."""
        return "vcrc" in self.header["parts"]

    def _locate(self, name: str) -> tuple[int, int, int]:
        try:
            rel, length, crc = self.header["parts"][name]
        except KeyError:
            raise CorruptFileError(f"run part {name!r} is missing", "segment:run",
                                   self.ref.offset) from None
        start = self.ref.offset + int(self.ref.meta["head"]) + rel
        if rel + length + int(self.ref.meta["head"]) > self.ref.length:
            raise CorruptFileError(f"run part {name!r} exceeds its segment", "segment:run", start)
        return start, length, crc

    def _part_items(self, name: str) -> int:
        """How many items part ``name`` holds (from the header: nothing is read)."""
        return self._locate(name)[1] // struct.calcsize(PART_TYPES[name])

    def raw_part(self, name: str, *, check: bool = True) -> memoryview:
        start, length, crc = self._locate(name)
        data = self.view.read(start, length, "segment:run")
        if check:
            valid = crc32(data) == crc
            self.view.release(start, length)  # lookups fault back only the pages they read
            if not valid:
                raise _mismatch(name, start)
        return data

    def part(self, name: str) -> memoryview:
        """Part ``name`` cast to its type, checked whole (once)."""
        mv = self._parts.get(name)
        if mv is None:
            self._announce(name)
            mv = _typed(name, self.raw_part(name), self.ref.offset)
            self._parts[name] = mv
            self._paged.pop(name, None)
        return mv

    def item(self, name: str, i: int) -> Any:
        """Item ``i`` of part ``name``, its page checked."""
        mv = self._parts.get(name)
        if mv is None:
            mv = self._checked(name, i, i + 1)
        return mv[i]

    def row_items(self, names: tuple[str, ...], i: int) -> list[Any]:
        """Item ``i`` of each part of ``names`` (``item`` for several parts at once)."""
        return [self.item(name, i) for name in names]

    def items(self, name: str, lo: int, hi: int) -> memoryview:
        """Items ``[lo, hi)`` of part ``name``, their pages checked."""
        mv = self._parts.get(name)
        if mv is None:
            mv = self._checked(name, lo, hi)
        return mv[lo:hi]

    def _checked(self, name: str, lo: int, hi: int) -> memoryview:
        """Part ``name`` cast to its type with the pages of items ``[lo, hi)`` checked; the
        whole part checked when the run has no page checks or many pages were read."""
        paged = self._paged.get(name)
        if paged is not None and hi == lo + 1 and paged.item_checked(lo):
            return paged.items  # one item of a checked page (items never straddle pages)
        by_page = self.by_page(name)
        if paged is None:
            first = self.header["pages"].get(name)
            if first is None:
                return self.part(name)
            start, length, _ = self._locate(name)
            if by_page:  # remote: its pages are downloaded as they are checked
                raw = self.view.mapped(start, length)
            else:
                self._announce(name)
                raw = self.view.read(start, length, "segment:run")
            paged = PagedPart.of(_typed(name, raw, self.ref.offset), raw, first)
            checks = self.part(PAGE_CHECK_PART)
            if paged.first + len(paged.checked) > len(checks):
                raise CorruptFileError(f"run part {name!r} has no page checks",
                                       "segment:run", start)
            self._paged[name] = paged
        checks = self._parts[PAGE_CHECK_PART]
        for page in paged.unchecked_pages(lo, hi):
            if paged.checked[page]:
                continue
            if paged.count >= paged.whole_after:
                return self.part(name)
            if by_page and name not in self._fetched:
                at = page * PAGE_BYTES
                self.view.read(self._locate(name)[0] + at,
                               min(PAGE_BYTES, len(paged.raw) - at), "segment:run")
            if not paged.page_matches(page, checks):
                raise _mismatch(name, self._locate(name)[0], page)
            if paged.count == len(paged.checked):  # every page matched: the whole part
                self._parts[name] = paged.items
                del self._paged[name]
        return paged.items

    def _announce(self, name: str) -> None:
        """Fetch part ``name`` whole, with its group, for every run (remote bytes): of the
        runs reading their row columns by the page, only this one's."""
        if self.siblings is not None and name not in self._fetched:
            fetch_parts([run for run in self.siblings if run is self or name not in ROW_PARTS
                         or not run.rows_by_page], name)

    def by_page(self, name: str) -> bool:
        """Whether row column ``name`` is read by the page: remote bytes (``siblings``)
        of a run whose row columns are too large to fetch whole (``BY_PAGE_BYTES``), the
        column not fetched whole yet."""
        return (self.siblings is not None and name in ROW_PARTS
                and name not in self._fetched and self.rows_by_page)

    @cached_property
    def row_bytes(self) -> int:
        """Bytes of the run's row columns (``ROW_PARTS``)."""
        parts = self.header["parts"]
        return sum(parts[name][1] for name in ROW_PARTS if name in parts)

    def rows_spans(self, rows: list[int]) -> list[tuple[int, int]]:
        """``row_spans`` of ``rows``; the row columns whole when the rows lie on as many
        pages as would make a column be checked whole (``part_pages.whole_after``)."""
        if self.by_page("created"):
            size, pages = _size_of("created"), -(-self._locate("created")[1] // PAGE_BYTES)
            if len({row * size // PAGE_BYTES for row in rows}) >= whole_after(pages):
                return part_spans([self], "created")
        return [span for row in rows for span in self.row_spans(row)]

    def row_spans(self, row: int) -> list[tuple[int, int]]:
        """``(offset, size)`` in the file of the checked pages (``PAGE_BYTES`` of a part
        from its start) holding row ``row``'s items of the row columns read by the page
        (its id's excepted: ``id_span``, once ``idoff`` is read; the ``deferred`` parts,
        which no query's rows read, excepted too)."""
        return [span for name in ROW_PARTS[:-1]
                if name not in self.deferred and (span := self.item_span(name, row))]

    def item_span(self, name: str, row: int) -> tuple[int, int] | None:
        """``row_spans`` of one row column (``idoff``: the row's two offsets); None when
        that column is not read by the page."""
        if name in self._parts or not self.by_page(name):
            return None
        return self._item_pages(name, row)

    def item_spans(self, names: tuple[str, ...], row: int) -> list[tuple[int, int]]:
        """``(offset, size)`` of the checked pages holding row ``row``'s items of the parts
        ``names`` (``idoff``: the row's two offsets), however the parts are read."""
        return [self._item_pages(name, row) for name in names if name in self.header["parts"]]

    def _item_pages(self, name: str, row: int) -> tuple[int, int]:
        """``(offset, size)`` of the checked pages of part ``name`` holding row ``row``'s
        item (``idoff``: its two offsets)."""
        size = _size_of(name)
        at = row * size
        return self._page_span(name, at, at + size * (2 if name == "idoff" else 1))

    def id_span(self, row: int) -> tuple[int, int]:
        """``row_spans`` of row ``row``'s id (reads its ``idoff``)."""
        start, end = self.items("idoff", row, row + 2)
        return self._page_span("ids", start, max(start, end))

    def guessed_id_span(self, row: int) -> tuple[int, int]:
        """:meth:`id_span` as ids of one length would place it, a quarter page either
        side: read with the ``idoff`` items instead of after them, it holds the id when
        ids are about as long as each other (a round fewer), else the id is read next as
        before."""
        _, length, _ = self._locate("ids")
        each, slack = length / max(1, self.n), PAGE_BYTES // 4
        lo, hi = int(row * each) - slack, int((row + 1) * each) + slack
        return self._page_span("ids", max(0, lo), max(0, min(length, hi)))

    def _page_span(self, name: str, lo: int, hi: int) -> tuple[int, int]:
        """``(offset, size)`` in the file of the checked pages of part ``name`` holding
        its bytes ``[lo, hi)``."""
        start, length, _ = self._locate(name)
        first = lo // PAGE_BYTES * PAGE_BYTES
        end = min(length, ((max(hi, lo + 1) - 1) // PAGE_BYTES + 1) * PAGE_BYTES)
        return start + first, max(0, end - first)

    def load_all(self) -> None:
        """Read and check every frame table column now (warmup): later lookups find them
        verified and in the page cache. Posting lists load on first use."""
        for name in TABLE_PARTS:
            self.part(name)

    def verify(self) -> list[str]:
        """Check every part's checksum and page checks; return problems."""
        problems = []
        try:
            pages = self.header["pages"]
            checks = self.raw_part(PAGE_CHECK_PART).cast("I") if pages else None
            for name in (TABLE_PARTS + (POSTING_PARTS if self.has_postings else ())
                         + tuple(p for kind in VALUE_KINDS if self.has_values(kind)
                                 for p in kind.parts)
                         + (TAG_LIST_PARTS if self.has_tag_list else ())
                         + (VECTOR_CHECK_PARTS if self.has_vector_checks else ())):
                try:
                    data = self.raw_part(name)
                    if checks is not None and name in pages:
                        first = pages[name]
                        found = page_checks(data)
                        stored = checks[first : first + len(found)]
                        bad = next((i for i, crc in enumerate(found)
                                    if i >= len(stored) or crc != stored[i]), None)
                        if bad is not None:
                            raise _mismatch(name, self._locate(name)[0], bad)
                except CorruptFileError as exc:
                    problems.append(f"segment:run at offset {exc.offset}: {exc.message}")
        except CorruptFileError as exc:
            problems.append(f"segment:run at offset {exc.offset}: {exc.message}")
        return problems

    # ------------------------------------------------------------------ lookups

    def rows_for_hash(self, h: int) -> list[int]:
        """The rows whose id hashes to ``h`` (a binary search of ``hsort``, checking the
        pages it reads until the part is checked whole)."""
        lo = self._bisect("hsort", h, 0, self.n)
        hi = self._bisect("hsort", h, lo, self.n, right=True)
        return sorted(self.checked_row(self.item("hperm", i), "id index")
                      for i in range(lo, hi))

    def holds_hashes(self, hashes: Any) -> Any:
        """Whether each id hash (a numpy array) is some row's: one search of ``hsort``
        for all of them."""
        stored = np.frombuffer(self.part("hsort"), "<u8")
        if not len(stored):
            return np.zeros(len(hashes), bool)
        at = np.minimum(np.searchsorted(stored, hashes), len(stored) - 1)
        return stored[at] == hashes

    def time_row(self, i: int) -> int:
        """The row at position ``i`` of the time index."""
        return self.checked_row(self.item("tperm", i), "time index")

    def checked_row(self, row: int, what: str) -> int:
        """``row``, read from the run's ``what``, if the run has it."""
        if row >= self.n:
            raise CorruptFileError(f"the {what} of the run at offset {self.ref.offset} "
                                   f"points past its {self.n} rows", "segment:run",
                                   self.ref.offset)
        return row

    def _term_range(self, h: int) -> tuple[int, int]:
        """Where the rows of term hash ``h`` lie in ``trows`` (empty when not posted)."""
        span = self._term_ranges.get(h)
        if span is None:
            span = self._term_ranges[h] = self._find_term(h)
        return span

    def _find_term(self, h: int) -> tuple[int, int]:
        terms = self._part_items("tkey")
        i = self._bisect("tkey", h, 0, terms)
        if i == terms or self.item("tkey", i) != h:
            return 0, 0
        if self._part_items("toff") != terms + 1:
            raise CorruptFileError("run postings are inconsistent", "segment:run",
                                   self.ref.offset)
        return self.item("toff", i), self.item("toff", i + 1)

    def _bisect(self, name: str, value: int, lo: int, hi: int, *, right: bool = False
                ) -> int:
        """``bisect_left`` (``right``: ``bisect_right``) over items ``[lo, hi)`` of the
        sorted part ``name``: on the part once it is checked whole, else item by item,
        checking the pages it reads (a cold lookup reads a few pages of a part of tens of
        MB, not all of it)."""
        find = bisect_right if right else bisect_left
        whole = self._parts.get(name)
        if whole is not None:
            return find(whole, value, lo, hi)
        return find(range(hi), value, lo, hi, key=partial(self.item, name))

    def posted_rows(self, h: int) -> list[int]:
        """Rows posted under term hash ``h``, ascending (the run must have postings)."""
        return self._posted_slice(*self._term_range(h)).tolist()

    def is_posted(self, h: int, row: int) -> bool:
        """Whether ``row`` is posted under term hash ``h`` (the run must have postings):
        a binary search of the term's rows, whose pages are checked on the first test."""
        rows = self._posted_slice(*self._term_range(h))
        i = bisect_left(rows, row)
        return i < len(rows) and rows[i] == row

    def posted_under(self, row: int, groups: Sequence[Sequence[int]],
                     excluded: Sequence[int]) -> bool:
        """Whether ``row`` is posted under a term hash of every group and under none of
        ``excluded`` (the run must have postings)."""
        return (all(any(self.is_posted(h, row) for h in group) for group in groups)
                and not any(self.is_posted(h, row) for h in excluded))

    def posted_array(self, h: int) -> Any:
        """``posted_rows`` as a numpy uint32 array (a view of the part, no copy; the
        pages of its slice checked)."""
        return np.frombuffer(self._posted_slice(*self._term_range(h)), "<u4")

    def _posted_slice(self, lo: int, hi: int) -> memoryview:
        """Items ``[lo, hi)`` of the posting rows (ascending rows of one term), the pages
        they lie on checked and their rows inside the run (once: a filter tests many
        candidates against the same terms)."""
        rows = self._posting_slices.get((lo, hi))
        if rows is None:
            if not 0 <= lo <= hi <= self._part_items("trows"):
                raise CorruptFileError("run postings point outside the run", "segment:run",
                                       self.ref.offset)
            rows = self.items("trows", lo, hi)
            if len(rows) and rows[-1] >= self.n:
                raise CorruptFileError("run postings point outside the run", "segment:run",
                                       self.ref.offset)
            self._posting_slices[lo, hi] = rows
        return rows

    def posted_count(self, h: int) -> int:
        """How many rows are posted under term hash ``h`` (the run must have postings)."""
        lo, hi = self._term_range(h)
        return max(0, hi - lo)

    def values_at(self, kind: ValueKind, h: int) -> tuple[Any, int, int]:
        """The run's values of ``kind`` (a sequence to bisect) and the span ``[start,
        end)`` of those at path hash ``h`` (empty when the path has none here)."""
        key, off, val, _ = kind.parts
        keys = self.part(key)
        i = bisect_left(keys, h)
        if i == len(keys) or keys[i] != h:
            return (), 0, 0
        offsets = self.part(off)
        values = kind.values_view(self.part(val))
        if len(offsets) != len(keys) + 1 or not offsets[i] <= offsets[i + 1] <= len(values):
            raise CorruptFileError("run value columns are inconsistent", "segment:run",
                                   self.ref.offset)
        return values, offsets[i], offsets[i + 1]

    def value_rows(self, kind: ValueKind, first: int, last: int) -> list[int]:
        """The rows of positions ``[first, last)`` of the values of ``kind``, ascending,
        each once."""
        if first >= last:
            return []
        row_part = self.part(kind.parts[3])
        if last > len(row_part):
            raise CorruptFileError("run value columns are inconsistent", "segment:run",
                                   self.ref.offset)
        rows = sorted(set(row_part[first:last].tolist()))
        if rows[-1] >= self.n:
            raise CorruptFileError("run value columns point outside the run", "segment:run",
                                   self.ref.offset)
        return rows

    def _value_span(self, kind: ValueKind, h: int, lo: Any, hi: Any, lo_inclusive: bool,
                    hi_inclusive: bool) -> tuple[int, int]:
        """Where the values of ``kind`` at path hash ``h`` within the bounds lie in its
        values part."""
        values, start, end = self.values_at(kind, h)
        if start == end:
            return 0, 0
        return value_span(kind, values, start, end, lo, hi, lo_inclusive, hi_inclusive)

    def ranged_rows(self, kind: ValueKind, h: int, lo: Any, hi: Any, *, lo_inclusive: bool,
                    hi_inclusive: bool) -> list[int]:
        """Rows with a value of ``kind`` within the bounds at path hash ``h``, ascending,
        each once (the run must have the kind's value parts)."""
        first, last = self._value_span(kind, h, lo, hi, lo_inclusive, hi_inclusive)
        return self.value_rows(kind, first, last)

    def ranged_count(self, kind: ValueKind, h: int, lo: Any, hi: Any, *,
                     lo_inclusive: bool, hi_inclusive: bool) -> int:
        """How many values of ``kind`` within the bounds lie at path hash ``h``: an upper
        bound of the rows (the run must have the kind's value parts)."""
        first, last = self._value_span(kind, h, lo, hi, lo_inclusive, hi_inclusive)
        return last - first

    def frame_id(self, row: int) -> str:
        start, end = self.items("idoff", row, row + 2)
        found = self.items("ids", start, end) if start < end else b""
        if len(found) != end - start or not found:  # every id is a non-empty string
            raise CorruptFileError(f"the id of row {row} of the run at offset "
                                   f"{self.ref.offset} lies outside its ids", "segment:run",
                                   self.ref.offset)
        return str(found, "utf-8")

    @cached_property
    def _vblock_starts(self) -> list[int]:
        starts, total = [], 0
        for _, rows, _ in self.header["vblocks"]:
            starts.append(total)
            total += rows
        return starts

    def vector(self, row: int) -> bytes | None:
        view = self.vector_view(row)
        return None if view is None else bytes(view)

    def vector_span(self, row: int) -> tuple[int, int] | None:
        """``(offset, size)`` of ``row``'s float32 embedding in the file (None: no
        vector, or a reference outside its blocks, which ``vector_view`` reports)."""
        vrow = self.item("vrow", row)
        block = bisect_right(self._vblock_starts, vrow) - 1
        if vrow == NO_ROW or block < 0:
            return None
        width = int(self.header["dim"]) * 4
        return self.header["vblocks"][block][0] + (vrow - self._vblock_starts[block]) * width, width

    def vector_view(self, row: int) -> memoryview | None:
        """The float32 embedding bytes of ``row`` as read from the file (no copy when
        mapped), or None when the row has no vector."""
        vrow = self.item("vrow", row)
        if vrow == NO_ROW:
            return None
        block = bisect_right(self._vblock_starts, vrow) - 1
        if block < 0:
            raise CorruptFileError(f"vector row {vrow} has no block", "segment:run",
                                   self.ref.offset)
        offset, rows, _ = self.header["vblocks"][block]
        local = vrow - self._vblock_starts[block]
        if local >= rows:
            raise CorruptFileError(f"vector row {vrow} lies outside its block", "segment:run",
                                   self.ref.offset)
        width = int(self.header["dim"]) * 4
        data = self.view.read(offset + local * width, width, "segment:vectors")
        if not self.has_vector_checks:
            self.check_vector_block(block)
        elif crc32(data) != self.item("vcrc", vrow):
            raise ChecksumError(f"vector row {vrow} at offset {offset + local * width} fails "
                                "its checksum", "segment:vectors", offset + local * width)
        return data

    def check_vector_block(self, block: int, data: memoryview | None = None) -> None:
        """Check vector block ``block`` against its CRC, once (``data``: its bytes, when
        the caller read them already)."""
        if block in self._checked_blocks:
            return
        offset, rows, crc = self.header["vblocks"][block]
        if data is None:
            data = self.view.read(offset, rows * int(self.header["dim"]) * 4,
                                  "segment:vectors")
        if crc32(data) != crc:
            raise ChecksumError(f"vector block at offset {offset} fails its checksum",
                                "segment:vectors", offset)
        self._checked_blocks.add(block)

    def time_rows(self, since: int | None, until: int | None) -> range:
        """Positions in ``tperm`` whose created time lies in [since, until): all of them
        without a bound, no time read (remote bytes read by the page then download only
        the pages of the rows a listing reaches)."""
        if since is None and until is None:
            return range(self.n)
        created = self.part("created")

        def key(i: int) -> int:
            return created[self.time_row(i)]

        lo = 0 if since is None else bisect_left(range(self.n), since, key=key)
        hi = self.n if until is None else bisect_left(range(self.n), until, key=key)
        return range(lo, hi)

    def times_in_order(self, positions: Iterable[int], few: bool = False
                       ) -> Iterator[tuple[int, int]]:
        """``(created, row)`` of the rows at ``positions`` of the time index. ``few`` (the
        first few are read) and remote bytes read by the page: each time is read by its
        page until the stream meets more than ``STREAM_PAGES`` pages, then the column
        whole (the stream went on)."""
        created = None if few and self.by_page("created") else self.part("created")
        pages: set[int] = set()
        size = _size_of("created")
        for i in positions:
            row = self.time_row(i)
            if created is None:
                pages.add(row * size // PAGE_BYTES)
                if len(pages) <= STREAM_PAGES:
                    yield self.item("created", row), row
                    continue
                created = self.part("created")
            yield created[row], row

    def superseded(self) -> dict[int, int]:
        """Versions of older runs this run replaced: {gid: valid_to}."""
        gids, tos = self.part("sup_gid"), self.part("sup_to")
        return dict(zip(gids, tos, strict=True))

    def release(self) -> None:
        for rows in self._posting_slices.values():
            rows.release()
        self._posting_slices.clear()
        for mv in self._parts.values():
            mv.release()
        self._parts.clear()
        for paged in self._paged.values():
            paged.items.release()
            paged.raw.release()
        self._paged.clear()


def _typed(name: str, data: memoryview, run_offset: int) -> memoryview:
    """A part's bytes cast to its item type."""
    mv = data.cast(PART_TYPES[name]) if PART_TYPES[name] != "B" else data
    if name == STRINGS.parts[2] and len(mv) % STRING_KEY_BYTES:
        raise CorruptFileError("run part 'sval' is not a whole number of string keys",
                               "segment:run", run_offset)
    return mv


def _mismatch(name: str, start: int, page: int | None = None) -> CorruptFileError:
    """The error for part ``name`` (at ``start``), or one page of it, failing its check:
    a damaged filter index costs filters only."""
    where = start if page is None else start + page * PAGE_BYTES
    what = f"run part {name!r}" if page is None else f"page {page} of run part {name!r}"
    if name in DERIVED_PARTS:
        return DamagedIndexError(f"the filter index ({what}) at offset {where} fails its "
                                 "checksum", "segment:run", where)
    return ChecksumError(f"{what} at offset {where} checksum mismatch", "segment:run", where)


def read_rows_by_page(runs: list[RunReader], all_current: bool = False) -> None:
    """Mark the runs of a remote snapshot whose row columns are read by the page: all
    but the small ones once one run's pass ``BY_PAGE_BYTES`` (its query rows take a round
    of their own, which the others' rows then join instead of being fetched whole).
    ``all_current``: no version was replaced or deleted, so no query tests a row's
    ``vto`` (every one is ``TIME_MAX``): it is fetched only when read itself, not with
    the row columns (0.7 MiB of a first answer at 100k)."""
    large = any(run.row_bytes > BY_PAGE_BYTES for run in runs)
    for run in runs:
        run.rows_by_page = large and run.ref.length > SMALL_RUN
        run.deferred = ("vto",) if all_current else ()


def fetch_parts(runs: list[RunReader], name: str) -> None:
    """Announce part ``name`` of every run in one ``fetch`` (a remote view downloads
    them in one round), with the rest of its ``PART_GROUPS`` group."""
    spans = part_spans(runs, name)
    if spans:
        runs[0].view.fetch(spans, "segment:run")


def id_spans(refs: list[Any]) -> list[tuple[int, int]]:
    """``(offset, size)`` of the ids of ``refs`` (row references of runs) whose run reads
    its ``ids`` by the page (their ``idoff`` items are read)."""
    return [ref.run.id_span(ref.row) for ref in refs if ref.run.by_page("ids")]


def guessed_id_spans(refs: list[Any]) -> list[tuple[int, int]]:
    """:func:`id_spans` where ids of one length would lie (``guessed_id_span``: read
    with the ``idoff`` items, not after them)."""
    return [ref.run.guessed_id_span(ref.row) for ref in refs if ref.run.by_page("ids")]


def part_spans(runs: list[RunReader], name: str) -> list[tuple[int, int]]:
    """``(offset, size)`` of part ``name`` (and the rest of its ``PART_GROUPS`` group) of
    every run not announced yet, a small run whole; marks them announced."""
    group = next((g for g in PART_GROUPS if name in g), (name,))
    spans = []
    for run in runs:
        if run.ref.length <= SMALL_RUN:
            if not run._fetched:
                spans.append((run.ref.offset, run.ref.length))
            run._fetched.update(PART_TYPES)
            continue
        for part in group:
            if part in run.deferred and part != name:
                continue
            if part not in run._fetched and part in run.header["parts"]:
                start, length, _ = run._locate(part)
                spans.append((start, length))
            run._fetched.add(part)
    return spans


def _sized_parts(n: int) -> list[tuple[str, int]]:
    """(part, rows) of the parts whose length follows from a run's ``n`` rows."""
    return [(name, n) for name in ("hash", "created", "vfrom", "vto", "poff", "plen", "pcrc",
                                   "version", "flags", "vrow", "hsort", "hperm", "tperm")
            ] + [("idoff", n + 1)]


def _size_of(name: str) -> int:
    return struct.calcsize(PART_TYPES[name])


def empty_columns(n: int) -> dict[str, Any]:
    """Numpy columns for ``n`` rows with 'current' defaults."""
    return {
        "hash": np.zeros(n, "<u8"), "created": np.zeros(n, "<i8"),
        "vfrom": np.zeros(n, "<i8"), "vto": np.full(n, TIME_MAX, "<i8"),
        "poff": np.zeros(n, "<u8"), "plen": np.zeros(n, "<u4"), "pcrc": np.zeros(n, "<u4"),
        "version": np.zeros(n, "<u4"), "flags": np.zeros(n, "<u4"),
        "vrow": np.full(n, NO_ROW, "<u4"),
    }
