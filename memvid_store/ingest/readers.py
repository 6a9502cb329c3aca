"""Readers turning files into documents: .txt, .md, .html, .json, .jsonl and .csv.

Every reader yields :class:`Document` objects and, for input it cannot use, a
:class:`Problem` naming the file, the line when there is one, and the reason; it never
raises for bad content. Files must be UTF-8 text (a BOM is allowed); NUL bytes mark a
binary file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .frontmatter import FrontMatterError, split_front_matter
from .html_text import html_to_text

RECORD_KEYS = ("text", "id", "metadata", "tags", "created_at")
MAX_ID_BYTES = 1000  # frame ids are limited to 1 KiB; chunk suffixes need a little room
_BINARY_PROBE = 8192
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(slots=True)
class Document:
    """One unit of text read from a file, before chunking.

    ``record`` is the 1-based record number in files holding several records (JSONL line,
    CSV row, JSON array item) and None for whole-file documents. ``created_at`` is None when
    the file gives no time; ``line`` locates the record for messages.
    """

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    id: str | None = None
    record: int | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """Input that was skipped: ``path`` (as shown to the user), ``line`` (1-based or None)."""

    path: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Reader settings: the CSV column holding the text."""

    text_column: str = "text"


Item = Document | Problem
Reader = Callable[[str, str, ReadOptions], Iterator[Item]]


def read_file(path: Path, shown: str, options: ReadOptions) -> Iterator[Item]:
    """Documents of one file (chosen by extension); problems for what cannot be used."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        yield Problem(shown, None, f"unsupported file type {path.suffix or '(none)'!r}; "
                                   f"supported: {', '.join(sorted(READERS))}")
        return
    try:
        raw = path.read_bytes()
    except OSError as exc:
        yield Problem(shown, None, f"cannot read the file: {exc.strerror or exc}")
        return
    if b"\x00" in raw[:_BINARY_PROBE]:
        yield Problem(shown, None, "binary file (contains NUL bytes); only UTF-8 text is read")
        return
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield Problem(shown, _line_of(raw, exc.start),
                      f"not UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8")
        return
    yield from reader(text.replace("\r\n", "\n").replace("\r", "\n"), shown, options)


def _line_of(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


# ------------------------------------------------------------------ whole-file formats


def read_text(text: str, shown: str, options: ReadOptions) -> Iterator[Item]:
    yield Document(text)


def read_markdown(text: str, shown: str, options: ReadOptions) -> Iterator[Item]:
    try:
        fields, body, _ = split_front_matter(text)
    except FrontMatterError as exc:
        yield Problem(shown, exc.line, f"front matter: {exc.message.split(': ', 1)[-1]}")
        return
    try:
        doc = _document_from_fields(body, fields, text_key=None)
    except ValueError as exc:
        yield Problem(shown, None, f"front matter: {exc}")
        return
    if "title" not in doc.metadata:
        heading = _HEADING.search(body)
        if heading:
            doc.metadata["title"] = heading[1]
    yield doc


def read_html(text: str, shown: str, options: ReadOptions) -> Iterator[Item]:
    visible, title = html_to_text(text)
    yield Document(visible, metadata={"title": title} if title else {})


# ------------------------------------------------------------------ record formats


def read_jsonl(text: str, shown: str, options: ReadOptions) -> Iterator[Item]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Problem(shown, number, f"malformed JSON: {exc.msg} (column {exc.colno})")
            continue
        yield _record(obj, shown, number, number)


def read_json(text: str, shown: str, options: ReadOptions) -> Iterator[Item]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        yield Problem(shown, exc.lineno, f"malformed JSON: {exc.msg} (column {exc.colno})")
        return
    if isinstance(obj, list):
        for i, item in enumerate(obj, start=1):
            yield _record(item, shown, i, None)
    elif isinstance(obj, dict):
        yield _record(obj, shown, None, None)
    else:
        yield Problem(shown, None, "expected a record object with 'text' or a list of them")


def read_csv(text: str, shown: str, options: ReadOptions) -> Iterator[Item]:
    rows = csv.DictReader(io.StringIO(text))
    columns = rows.fieldnames or []
    if options.text_column not in columns:
        yield Problem(shown, 1, f"no {options.text_column!r} column (columns: "
                                f"{', '.join(columns) or 'none'}); choose one with --text-column")
        return
    number = 0
    try:
        for row in rows:
            number += 1
            if None in row:
                yield Problem(shown, rows.line_num, "more cells than header columns")
                continue
            record: dict[str, Any] = {"metadata": {}}
            for key, value in row.items():
                if key == options.text_column:
                    record["text"] = value or ""
                elif key == "tags":
                    record["tags"] = [t.strip() for t in re.split(r"[;,]", value or "")
                                      if t.strip()]
                elif key in ("id", "created_at"):
                    if value:
                        record[key] = value
                elif value not in (None, ""):
                    record["metadata"][key] = value
            yield _record(record, shown, number, rows.line_num)
    except csv.Error as exc:
        yield Problem(shown, rows.line_num, f"malformed CSV: {exc}")


# ------------------------------------------------------------------ records


def _record(obj: Any, shown: str, record: int | None, line: int | None) -> Item:
    where = line if line is not None else None
    prefix = "" if line is not None or record is None else f"record {record}: "
    if not isinstance(obj, dict):
        return Problem(shown, where, f"{prefix}expected a JSON object, got "
                                     f"{type(obj).__name__}")
    try:
        doc = _document_from_fields(obj.get("text"), obj, text_key="text")
    except ValueError as exc:
        return Problem(shown, where, f"{prefix}{exc}")
    doc.record, doc.line = record, line
    return doc


def _document_from_fields(text: Any, fields: Mapping[str, Any], *,
                          text_key: str | None) -> Document:
    """A document from a record (``text_key="text"``) or from front matter (None): the
    known keys are read, every other key becomes metadata."""
    if not isinstance(text, str):
        raise ValueError("no 'text' string in the record")
    metadata: dict[str, Any] = {}
    given = fields.get("metadata")
    if given is not None:
        if not isinstance(given, dict):
            raise ValueError("'metadata' must be an object")
        metadata.update(given)
    for key, value in fields.items():
        if key not in RECORD_KEYS and key not in ("date",):
            metadata[key] = value
    tags = fields.get("tags")
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    if tags is not None and (not isinstance(tags, list)
                             or not all(isinstance(t, str) and t for t in tags)):
        raise ValueError("'tags' must be a list of non-empty strings")
    when = fields.get("created_at", fields.get("date"))
    fid = fields.get("id")
    if fid is not None and (isinstance(fid, bool) or not isinstance(fid, str | int)
                            or not str(fid) or len(str(fid).encode()) > MAX_ID_BYTES):
        raise ValueError(f"'id' must be a non-empty string (at most {MAX_ID_BYTES} bytes) "
                         "or an integer")
    return Document(text, metadata, list(tags or []),
                    None if when is None else parse_time(when),
                    None if fid is None else str(fid))


def parse_time(value: Any) -> datetime:
    """An event time: ISO 8601 (a date alone is midnight; no offset means UTC) or epoch
    seconds."""
    if isinstance(value, bool):
        raise ValueError(f"created_at {value!r} is not a time")
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"created_at {value!r} is out of range") from None
    if not isinstance(value, str):
        raise ValueError(f"created_at must be an ISO 8601 string, not {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"created_at {value!r} is not an ISO 8601 time "
                         "(e.g. 2024-05-01T09:30:00Z)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


READERS: dict[str, Reader] = {
    ".txt": read_text, ".md": read_markdown, ".markdown": read_markdown,
    ".html": read_html, ".htm": read_html,
    ".json": read_json, ".jsonl": read_jsonl, ".csv": read_csv,
}
