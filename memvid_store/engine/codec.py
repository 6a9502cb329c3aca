"""Frame payload codec: each frame compressed on its own, with a per-file dictionary.

Raw payload::

    text_len u32 | text (utf-8) | json([metadata, tags]) or nothing when both are empty

Codecs (stored per frame in the frame table's flags):

* ``RAW``        stored as is (tiny payloads, or when compression does not help)
* ``ZSTD``       zstd without dictionary (before a dictionary exists)
* ``ZSTD_DICT``  zstd with the file's trained dictionary

zstd frames are written without checksum or dictionary id: the frame table keeps a
CRC-32 of every stored payload, checked on each read.
"""

from __future__ import annotations

import json
import struct
import threading
from functools import cached_property
from typing import TYPE_CHECKING

from ..lazy import zstandard
from ..validate import MAX_PAYLOAD_BYTES

if TYPE_CHECKING:
    from .records import Version

RAW, ZSTD, ZSTD_DICT = 0, 1, 2
MIN_COMPRESS = 64
LEVEL = 3
DICT_MIN_SAMPLES = 256
DICT_MIN_BYTES = 32 * 1024
DICT_MAX_SAMPLES = 4000
DICT_SIZE = 32 * 1024

_LEN = struct.Struct("<I")


def pack_payload(text: str, metadata: dict | None, tags: list[str] | None) -> bytes:
    raw = text.encode()
    extra = b""
    if metadata or tags:
        extra = json.dumps([metadata or {}, tags or []], separators=(",", ":"),
                           ensure_ascii=False).encode()
    return _LEN.pack(len(raw)) + raw + extra


def payload_of(v: Version) -> bytes:
    """A content version's payload: the one its put checked, or packed now."""
    return v.packed if v.packed is not None else pack_payload(v.text, v.metadata, v.tags)


def unpack_payload(raw: bytes) -> tuple[str, dict, tuple[str, ...]]:
    """Text, metadata and tags of a raw payload, decoded from views of ``raw`` (no copies
    of its parts: a payload near the size limit costs itself plus its decoded strings).

    The tags are a tuple, not a list: a tuple of strings is one the garbage collector
    stops tracking, one object fewer per record a frame cache holds (a full collection
    of a reader holding 16k records: 19.8 -> 16.8 ms)."""
    (n,) = _LEN.unpack_from(raw, 0)
    view = memoryview(raw)
    text = str(view[4 : 4 + n], "utf-8")
    if len(raw) > 4 + n:
        meta, tags = json.loads(str(view[4 + n :], "utf-8"))
        return text, meta, tuple(tags)
    return text, {}, ()


def train_dictionary(samples: list[bytes]) -> bytes | None:
    """Train a zstd dictionary from sample payloads; None when there is too little data."""
    samples = samples[:DICT_MAX_SAMPLES]
    if len(samples) < DICT_MIN_SAMPLES or sum(map(len, samples)) < DICT_MIN_BYTES:
        return None
    try:
        return zstandard.train_dictionary(DICT_SIZE, samples, level=LEVEL).as_bytes()
    except zstandard.ZstdError:
        return None  # not enough variety to train on: plain zstd is used


class Codec:
    """Compresses and decompresses payloads with an optional dictionary.

    zstd (de)compression contexts are not safe to share between threads, and one handle
    is read by many (queries, background warmup, prefetch, loaders): each thread gets its
    own contexts; the digested dictionary is shared.
    """

    def __init__(self, dictionary: bytes | None = None) -> None:
        self.dictionary = dictionary
        self._local = threading.local()

    @cached_property
    def _zdict(self):
        if not self.dictionary:
            return None
        zdict = zstandard.ZstdCompressionDict(self.dictionary)
        zdict.precompute_compress(level=LEVEL)
        return zdict

    def _context(self, name: str, make):
        ctx = getattr(self._local, name, None)
        if ctx is None:
            ctx = make()
            setattr(self._local, name, ctx)
        return ctx

    def compress(self, raw: bytes) -> tuple[int, bytes]:
        if len(raw) < MIN_COMPRESS:
            return RAW, raw
        compressor = self._context("compressor", lambda: zstandard.ZstdCompressor(
            level=LEVEL, dict_data=self._zdict, write_checksum=False,
            write_content_size=True, write_dict_id=False))
        packed = compressor.compress(raw)
        if len(packed) >= len(raw):
            return RAW, raw
        return (ZSTD_DICT if self.dictionary else ZSTD), packed

    def decompress(self, codec: int, stored: bytes) -> bytes:
        """The raw payload; ValueError for an unknown codec, a frame that does not record
        its inflated size or would inflate past ``MAX_PAYLOAD_BYTES`` (the writer never
        stores one: the file was crafted)."""
        if codec == RAW:
            return bytes(stored)
        if codec == ZSTD:
            ctx = self._context("plain", zstandard.ZstdDecompressor)
        elif codec == ZSTD_DICT and self.dictionary:
            ctx = self._context("dict", lambda: zstandard.ZstdDecompressor(
                dict_data=self._zdict))
        else:
            raise ValueError(f"unknown codec {codec}")
        size = zstandard.frame_content_size(stored)
        if size < 0:  # the writer always records it: inflating blind could cost the limit
            raise ValueError("the frame does not record its inflated size")
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"the frame claims {size} bytes once inflated, over the "
                             f"{MAX_PAYLOAD_BYTES} byte limit of a payload")
        return ctx.decompress(stored)
