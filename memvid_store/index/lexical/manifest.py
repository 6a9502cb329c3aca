"""The ``lex`` segment's manifest: which blobs of the file are tantivy's files.

Kept apart from the other modules of this package (tantivy, the tokenizer, the unpack
cache) so that sizing the BM25 tier at open reads the manifest without importing any of
that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...engine.format import crc32
from ...errors import CorruptFileError, DamagedIndexError, InvalidInputError, VersionMismatchError

if TYPE_CHECKING:
    from ...engine.snapshot import Snapshot

MANIFEST_VERSION = 1
POSITIONS = ".pos"  # tantivy's term positions: only phrase queries read them
TAIL_BYTES = 64 << 10  # the end of a positions file, which opening its index reads


@dataclass(slots=True)
class LexManifest:
    """The ``lex`` segment: tantivy's files as blobs of the .mv2, and its ``meta.json``;
    ``tails``: for positions files, the CRC-32 of their last bytes (name -> [bytes, crc]),
    so that a reader can unpack a positions file's end alone, checked, until a phrase
    query needs the rest (manifests written before it have none: every file is read
    whole)."""

    files: dict[str, list[int]]  # name -> [offset, length, crc32] in the .mv2
    meta: str  # content of tantivy's meta.json
    docs: int
    version: int = MANIFEST_VERSION
    tails: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {"version": self.version, "docs": self.docs, "meta": self.meta,
                "files": {k: list(v) for k, v in sorted(self.files.items())}}
        if self.tails:
            body["tails"] = {k: list(v) for k, v in sorted(self.tails.items())}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    def deferred(self) -> list[str]:
        """The positions files a reader may unpack by their tail alone."""
        return sorted(name for name in self.tails if name in self.files)

    @classmethod
    def from_json(cls, raw: bytes | memoryview) -> LexManifest:
        try:
            body = json.loads(bytes(raw))
            version = int(body["version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptFileError(f"lexical index manifest is not valid JSON: {exc}",
                                   "segment:lex") from None
        if version > MANIFEST_VERSION:
            raise VersionMismatchError(
                f"lexical index manifest version {version} is newer than supported "
                f"({MANIFEST_VERSION})")
        try:
            files = {str(k): [int(x) for x in v] for k, v in body["files"].items()}
            if any(len(v) != 3 for v in files.values()):
                raise InvalidInputError("file entries must be [offset, length, crc32]")
            tails = {str(k): [int(x) for x in v] for k, v in body.get("tails", {}).items()}
            if any(len(v) != 2 or not k.endswith(POSITIONS) or k not in files
                   or not 0 < v[0] <= files[k][1] for k, v in tails.items()):
                raise InvalidInputError("tail entries must be [bytes, crc32] of a positions "
                                        "file the manifest names")
            return cls(files=files, meta=str(body["meta"]), docs=int(body["docs"]),
                       version=version, tails=tails)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptFileError(f"lexical index manifest is malformed: {exc}",
                                   "segment:lex") from None

    def identity(self) -> str:
        """Content identity: tantivy's meta.json (random segment ids) and the file names."""
        return content_identity(self.meta, self.files)


def read_manifest(snap: Snapshot) -> LexManifest | None:
    """The BM25 index's manifest in ``snap``, checked (None without one).

    Raises:
        DamagedIndexError: it fails its checksum or cannot be parsed.
    """
    ref = snap.toc.find("lex")
    if ref is None:
        return None
    raw = bytes(snap.view.read(ref.offset, ref.length, "segment:lex"))
    if crc32(raw) != ref.crc:
        raise DamagedIndexError("the full-text index manifest fails its checksum",
                                "segment:lex", ref.offset)
    try:
        return LexManifest.from_json(raw)
    except CorruptFileError as exc:
        raise DamagedIndexError(exc.message, "segment:lex", ref.offset) from None


def content_identity(meta: str, names: Iterable[str]) -> str:
    from hashlib import sha256  # on unpack only: hashlib loads OpenSSL

    h = sha256(meta.encode())
    for name in sorted(names):
        h.update(b"\0" + name.encode())
    return h.hexdigest()[:32]
