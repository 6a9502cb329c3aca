"""The ``lex`` segment's manifest: which blobs of the file are tantivy's files.

Kept apart from the other modules of this package (tantivy, the tokenizer, the unpack
cache) so that sizing the BM25 tier at open reads the manifest without importing any of
that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from ...errors import CorruptFileError, InvalidInputError, VersionMismatchError

MANIFEST_VERSION = 1


@dataclass(slots=True)
class LexManifest:
    """The ``lex`` segment: tantivy's files as blobs of the .mv2, and its ``meta.json``."""

    files: dict[str, list[int]]  # name -> [offset, length, crc32] in the .mv2
    meta: str  # content of tantivy's meta.json
    docs: int
    version: int = MANIFEST_VERSION

    def to_json(self) -> bytes:
        body = {"version": self.version, "docs": self.docs, "meta": self.meta,
                "files": {k: list(v) for k, v in sorted(self.files.items())}}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

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
            return cls(files=files, meta=str(body["meta"]), docs=int(body["docs"]),
                       version=version)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptFileError(f"lexical index manifest is malformed: {exc}",
                                   "segment:lex") from None

    def identity(self) -> str:
        """Content identity: tantivy's meta.json (random segment ids) and the file names."""
        return content_identity(self.meta, self.files)


def content_identity(meta: str, names: Iterable[str]) -> str:
    from hashlib import sha256  # on unpack only: hashlib loads OpenSSL

    h = sha256(meta.encode())
    for name in sorted(names):
        h.update(b"\0" + name.encode())
    return h.hexdigest()[:32]
