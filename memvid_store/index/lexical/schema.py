"""The BM25 index's schema and documents: one tantivy document per stored version.

Every stored version is one document keyed by its gid (a fast u64 field; no stored
fields, texts live in the frames), with its text and ``metadata["title"]`` (boosted x2)
as two fields analyzed by :mod:`.analyzer`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import InvalidInputError, InvalidTypeError
from .analyzer import TOKEN_PATTERN, TOKENIZER, build_analyzer, load_tantivy, normalize

if TYPE_CHECKING:
    from ...engine.records import Version

F_TEXT = "text"
F_TITLE = "title"
F_GID = "gid"
TITLE_BOOST = 2.0
FIELDS: tuple[tuple[str, float], ...] = ((F_TEXT, 1.0), (F_TITLE, TITLE_BOOST))
WRITER_HEAP = 64 << 20


def schema() -> Any:
    tv = load_tantivy()
    sb = tv.SchemaBuilder()
    sb.add_unsigned_field(F_GID, fast=True)
    sb.add_text_field(F_TEXT, tokenizer_name=TOKENIZER, index_option="position")
    sb.add_text_field(F_TITLE, tokenizer_name=TOKENIZER, index_option="position")
    return sb.build()


def register(index: Any) -> Any:
    index.register_tokenizer(TOKENIZER, build_analyzer(TOKEN_PATTERN))
    return index


def open_index(path: str) -> Any:
    return register(load_tantivy().Index.open(path))



@dataclass(frozen=True, slots=True)
class LexDoc:
    """One stored version as the index sees it."""

    gid: int
    text: str
    title: str = ""


def check_docs(docs: Iterable[LexDoc]) -> None:
    for d in docs:
        if not isinstance(d.gid, int) or isinstance(d.gid, bool) or not 0 <= d.gid < 1 << 64:
            raise InvalidInputError(f"LexDoc.gid must be an int in [0, 2**64), got {d.gid!r}")
        if not isinstance(d.text, str) or not isinstance(d.title, str):
            raise InvalidTypeError(f"LexDoc text and title must be str (gid {d.gid})")


def add_docs(writer: Any, docs: Iterable[LexDoc]) -> int:
    tv = load_tantivy()
    count = 0
    for d in docs:
        doc = tv.Document()
        doc.add_unsigned(F_GID, d.gid)
        if d.text:
            doc.add_text(F_TEXT, normalize(d.text))
        if d.title:
            doc.add_text(F_TITLE, normalize(d.title))
        writer.add_document(doc)
        count += 1
    return count



def lex_doc(version: Version) -> LexDoc:
    """The BM25 document of a version: its text, and ``metadata["title"]`` as the title."""
    return doc_of(version.gid, version.text, version.metadata)


def doc_of(gid: int, text: str, metadata: dict | None) -> LexDoc:
    """The BM25 document of version ``gid`` with this text and metadata."""
    title = (metadata or {}).get("title")
    return LexDoc(gid, text, title if isinstance(title, str) else "")
