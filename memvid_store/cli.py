"""``mv2``: the command-line interface to .mv2 memory files.

Read commands open the file read-only. ``--json`` prints one JSON document; without it
the output is plain text and aligned tables. Every engine error is reported as a one-line
message with a non-zero exit code.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime
from typing import Any

import click

from . import CorruptFileError, Memory, MemvidError, __version__
from .types import Frame, Hit, VerifyReport

_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)(?:i?b)?\s*$", re.IGNORECASE)
_MIN_TEXT_WIDTH = 20


# ------------------------------------------------------------------ parameter types


class Timestamp(click.ParamType):
    """An ISO 8601 time with a UTC offset or ``Z``; naive times are refused."""

    name = "ISO8601"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time (e.g. 2024-05-01T09:30:00Z)",
                      param, ctx)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail(f"{value!r} has no timezone: add a UTC offset or 'Z' "
                      f"(e.g. 2024-05-01T09:30:00Z or 2024-05-01T11:30:00+02:00)", param, ctx)
        return parsed


class PointInTime(Timestamp):
    """A commit generation (an integer) or an ISO 8601 time with an offset."""

    name = "ISO8601|GENERATION"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime | int:
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            return int(value)
        return super().convert(value, param, ctx)


class ByteSize(click.ParamType):
    """A byte count such as ``1048576``, ``512KB``, ``4MB`` or ``4MiB`` (units of 1024)."""

    name = "BYTES"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE.match(value)
        if match is None:
            self.fail(f"{value!r} is not a size (e.g. 4194304, 4MB, 512KiB)", param, ctx)
        return int(match[1]) * _SIZE_UNITS[match[2].lower()]


class JsonOf(click.ParamType):
    """A JSON document of one expected type (object or array)."""

    name = "JSON"

    def __init__(self, kind: type, label: str) -> None:
        self.kind = kind
        self.label = label

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, self.kind):
            return value
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            self.fail(f"malformed JSON {value!r}: {exc}", param, ctx)
        if not isinstance(parsed, self.kind):
            self.fail(f"expected a JSON {self.label}, got {value!r}", param, ctx)
        return parsed


TIMESTAMP = Timestamp()
POINT_IN_TIME = PointInTime()
JSON_OBJECT = JsonOf(dict, "object")
JSON_ARRAY = JsonOf(list, "array")
MEMORY_PATH = click.Path(dir_okay=False)


# ------------------------------------------------------------------ helpers


@contextmanager
def _errors() -> Iterator[None]:
    """Report engine and input errors as a one-line message (exit code 1)."""
    try:
        yield
    except (MemvidError, ValueError, TypeError, OSError) as exc:
        raise click.ClickException(str(exc) or type(exc).__name__) from exc


@contextmanager
def _memory(path: str, *, readonly: bool) -> Iterator[Memory]:
    """Open ``path``; errors from opening, using or closing it become click errors."""
    with _errors():
        mem = Memory.open(path, readonly=readonly)
        try:
            yield mem
        finally:
            mem.close()


def _reader(mem: Memory, as_of: datetime | int | None) -> Any:
    """``mem`` itself, or its read-only view at ``as_of``."""
    return mem if as_of is None else mem.as_of(as_of)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _frame_dict(frame: Frame, *, embedding: bool = False) -> dict[str, Any]:
    out = {
        "id": frame.id, "text": frame.text, "metadata": frame.metadata, "tags": frame.tags,
        "created_at": _iso(frame.created_at), "version": frame.version,
        "valid_from": _iso(frame.valid_from), "valid_to": _iso(frame.valid_to),
    }
    if embedding:
        out["embedding"] = frame.embedding
    return out


def _hit_dict(hit: Hit) -> dict[str, Any]:
    return {"id": hit.id, "score": hit.score, "text": hit.text, "metadata": hit.metadata,
            "tags": hit.tags, "created_at": _iso(hit.created_at), "version": hit.version,
            "ranks": hit.ranks, "scores": hit.scores}


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _when(t: datetime | None) -> str:
    """A compact display of a UTC time (``Z`` suffix); ``-`` for none."""
    return "-" if t is None else t.isoformat().replace("+00:00", "Z")


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows under headers with aligned columns; the last column is the text column,
    shortened to fit the terminal."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers[:-1])]
    used = sum(widths) + 2 * len(widths)
    text_width = max(_MIN_TEXT_WIDTH, shutil.get_terminal_size().columns - used)
    for row in [headers, *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, _one_line(row[-1], text_width)]).rstrip())


def _frames_table(frames: Sequence[Frame]) -> None:
    if not frames:
        click.echo("(no frames)")
        return
    _table(["CREATED_AT", "ID", "VER", "TAGS", "TEXT"],
           [[_when(f.created_at), f.id, str(f.version), ",".join(f.tags), f.text]
            for f in frames])


def _fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """Print ``name: value`` lines with the values aligned."""
    width = max(len(name) for name, _ in pairs) + 1
    for name, value in pairs:
        click.echo(f"{name + ':':<{width}} {value}")


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size, units = n / 1024, ["KiB", "MiB", "GiB"]
    while size >= 1024 and len(units) > 1:
        size, units = size / 1024, units[1:]
    return f"{size:.1f} {units[0]}"


def _stats_value(name: str, value: Any) -> str:
    if isinstance(value, datetime | None):
        return _when(value)
    if isinstance(value, int) and not isinstance(value, bool) and (
            name.endswith("_bytes") or name == "wal_size"):
        return _human_bytes(value)
    return str(value)


def _read_text(text: str | None) -> str:
    """TEXT, or stdin when TEXT is ``-`` or omitted and stdin is piped (one trailing
    newline removed)."""
    if text is not None and text != "-":
        return text
    stdin = sys.stdin
    if text is None and stdin.isatty():
        raise click.UsageError("give TEXT, or pipe it on stdin")
    data = stdin.read()
    return data[:-1] if data.endswith("\n") else data


def _json_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def _as_of_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--as-of", type=POINT_IN_TIME,
                        help=f"Show {what} as of this record time or commit generation.")


def _tag_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--tag", "tags", multiple=True, help=help_text)


# ------------------------------------------------------------------ commands


@click.group(name="mv2", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mv2")
def cli() -> None:
    """Inspect and edit .mv2 memory files: crash-safe, single-file memory with time travel."""


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--dim", type=click.IntRange(min=1),
              help="Embedding dimension (default: learned from the first embedding).")
@click.option("--wal-size", type=ByteSize(), default="4MiB", show_default=True,
              help="Size of the embedded write-ahead log, 1MiB..64MiB (e.g. 8MB).")
def create(path: str, dim: int | None, wal_size: int) -> None:
    """Create a new, empty memory file at PATH (it must not exist)."""
    with _errors():
        Memory.create(path, dim=dim, wal_size=wal_size).close()
    click.echo(f"created {path}")


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("text", required=False)
@click.option("--id", "frame_id", help="Frame id (default: a random one). An existing id "
              "gets a new version.")
@click.option("--metadata", type=JSON_OBJECT, help='Metadata as a JSON object, e.g. \'{"k": 1}\'.')
@_tag_option("A tag (repeat for several).")
@click.option("--created-at", type=TIMESTAMP,
              help="Event time with an offset or Z (default: now).")
@click.option("--embedding", type=JSON_ARRAY, help="Embedding as a JSON array of numbers.")
@_json_option('Print {"id": ...} as JSON.')
def put(path: str, text: str | None, frame_id: str | None, metadata: dict[str, Any] | None,
        tags: tuple[str, ...], created_at: datetime | None, embedding: list[Any] | None,
        as_json: bool) -> None:
    """Store TEXT as a new frame and print its id.

    TEXT is read from stdin when it is "-" or omitted and stdin is piped (one trailing
    newline is removed).
    """
    body = _read_text(text)
    with _memory(path, readonly=False) as mem:
        fid = mem.put(body, id=frame_id, metadata=metadata, tags=list(tags) or None,
                      created_at=created_at, embedding=embedding)
    if as_json:
        _echo_json({"id": fid})
    else:
        click.echo(fid)


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("frame_id", metavar="ID")
@_as_of_option("the frame")
@_json_option("Print the frame (with its embedding) as a JSON object.")
def get(path: str, frame_id: str, as_of: datetime | int | None, as_json: bool) -> None:
    """Show the current version of frame ID."""
    with _memory(path, readonly=True) as mem:
        frame = _reader(mem, as_of).get(frame_id)
        if as_json:
            _echo_json(_frame_dict(frame, embedding=True))
            return
    _fields([("id", frame.id), ("version", frame.version),
             ("created_at", _when(frame.created_at)), ("valid_from", _when(frame.valid_from)),
             ("tags", ", ".join(frame.tags) or "-"),
             ("metadata", json.dumps(frame.metadata, ensure_ascii=False))])
    click.echo()
    click.echo(frame.text)


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("frame_id", metavar="ID")
@click.option("--text", help='New text ("-" reads stdin).')
@click.option("--metadata", type=JSON_OBJECT, help="New metadata (JSON object), replacing the old.")
@_tag_option("New tag (repeat for several), replacing the old tags.")
@click.option("--created-at", type=TIMESTAMP, help="New event time with an offset or Z.")
@click.option("--embedding", type=JSON_ARRAY, help="New embedding as a JSON array of numbers.")
@_json_option('Print {"id": ..., "version": ...} as JSON.')
def update(path: str, frame_id: str, text: str | None, metadata: dict[str, Any] | None,
           tags: tuple[str, ...], created_at: datetime | None, embedding: list[Any] | None,
           as_json: bool) -> None:
    """Store a new version of frame ID and print its version number.

    Fields not given are kept from the current version.
    """
    changes: dict[str, Any] = {"text": None if text is None else _read_text(text),
                               "metadata": metadata, "tags": list(tags) or None,
                               "created_at": created_at, "embedding": embedding}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise click.UsageError("nothing to update: give --text, --metadata, --tag, "
                               "--created-at or --embedding")
    with _memory(path, readonly=False) as mem:
        version = mem.update(frame_id, **changes)
    if as_json:
        _echo_json({"id": frame_id, "version": version})
    else:
        click.echo(version)


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("frame_id", metavar="ID")
def delete(path: str, frame_id: str) -> None:
    """Delete frame ID (its history stays readable with --as-of and history)."""
    with _memory(path, readonly=False) as mem:
        mem.delete(frame_id)
    click.echo(f"deleted {frame_id}")


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--since", type=TIMESTAMP, help="Only frames created at or after this time.")
@click.option("--until", type=TIMESTAMP, help="Only frames created before this time.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many frames.")
@click.option("--reverse", is_flag=True, help="Newest first.")
@_as_of_option("the frames")
@_json_option("Print a JSON array of frames.")
def timeline(path: str, since: datetime | None, until: datetime | None, limit: int | None,
             reverse: bool, as_of: datetime | int | None, as_json: bool) -> None:
    """List current frames ordered by creation time."""
    with _memory(path, readonly=True) as mem:
        frames = _reader(mem, as_of).timeline(since=since, until=until, limit=limit,
                                              reverse=reverse)
    if as_json:
        _echo_json([_frame_dict(f) for f in frames])
    else:
        _frames_table(frames)

@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("query", required=False)
@click.option("--vector", type=JSON_ARRAY, help="Query embedding as a JSON array of numbers.")
@click.option("--mode", type=click.Choice(["hybrid", "lexical", "vector"]), default="hybrid",
              show_default=True, help="Search mode (hybrid falls back to the one query given).")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of hits.")
@click.option("--filter", "filter_", type=JSON_OBJECT,
              help='Metadata filter as JSON, e.g. \'{"kind": "fact", "n": {"$gte": 3}}\'.')
@click.option("--since", type=TIMESTAMP, help="Only frames created at or after this time.")
@click.option("--until", type=TIMESTAMP, help="Only frames created before this time.")
@click.option("--syntax", type=click.Choice(["plain", "query"]), default="plain",
              show_default=True, help="'query' enables the full-text query language.")
@_as_of_option("the memory")
@_json_option("Print a JSON array of hits.")
def find(path: str, query: str | None, vector: list[float] | None, mode: str, k: int,
         filter_: dict[str, Any] | None, since: datetime | None, until: datetime | None,
         syntax: str, as_of: datetime | int | None, as_json: bool) -> None:
    """Search frames by text (BM25), by vector, or both (hybrid)."""
    window = (since, until) if since or until else None
    with _memory(path, readonly=True) as mem:
        hits = mem.find(query, vector=vector, k=k, mode=mode, filter=filter_, as_of=as_of,
                        time_range=window, syntax=syntax)
    if as_json:
        _echo_json([_hit_dict(h) for h in hits])
        return
    width = max(_MIN_TEXT_WIDTH, shutil.get_terminal_size((100, 20)).columns - 48)
    _table(["RANK", "SCORE", "ID", "CREATED_AT", "TEXT"],
           [[str(i), f"{h.score:.4f}", h.id, _when(h.created_at), _one_line(h.text, width)]
            for i, h in enumerate(hits, start=1)])


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("frame_id", metavar="ID")
@_as_of_option("the history")
@_json_option("Print a JSON array of versions, oldest first.")
def history(path: str, frame_id: str, as_of: datetime | int | None, as_json: bool) -> None:
    """List every version of frame ID, oldest first, with record-time validity."""
    with _memory(path, readonly=True) as mem:
        versions = _reader(mem, as_of).history(frame_id)
    if as_json:
        _echo_json([_frame_dict(f) for f in versions])
        return
    _table(["VER", "VALID_FROM", "VALID_TO", "TEXT"],
           [[str(f.version), _when(f.valid_from), _when(f.valid_to), f.text] for f in versions])


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@_json_option("Print the statistics as a JSON object.")
def stats(path: str, as_json: bool) -> None:
    """Show counts, sizes and the commit generation of a memory file."""
    with _memory(path, readonly=True) as mem:
        info = mem.stats()
    if as_json:
        _echo_json(info.as_dict())
    else:
        _fields([(name, _stats_value(name, getattr(info, name))) for name in info.as_dict()])


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@_json_option('Print {"ok": ..., "problems": [...], "checked": {...}} as JSON.')
@click.pass_context
def verify(ctx: click.Context, path: str, as_json: bool) -> None:
    """Check every checksum in a memory file; exit code 1 when problems are found."""
    with _errors():
        try:
            mem = Memory.open(path, readonly=True)
        except CorruptFileError as exc:  # too damaged to open: that is the report
            report = VerifyReport(False, [exc.message], {})
        else:
            with closing(mem):
                report = mem.verify()
    if as_json:
        _echo_json({"ok": report.ok, "problems": report.problems, "checked": report.checked})
    elif report.ok:
        click.echo("ok: " + ", ".join(f"{n} {k}" for k, n in report.checked.items()))
    else:
        click.echo(f"{len(report.problems)} problem(s) found:")
        for problem in report.problems:
            click.echo(f"  - {problem}")
    if not report.ok:
        ctx.exit(1)


@cli.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--retain-after", type=TIMESTAMP,
              help="Drop versions replaced at or before this time (default: keep all history).")
def compact(path: str, retain_after: datetime | None) -> None:
    """Rewrite a memory file without dead space, optionally dropping old history."""
    with _memory(path, readonly=False) as mem:
        before = mem.stats().file_bytes
        generation = mem.compact(retain_after=retain_after)
        after = mem.stats().file_bytes
    click.echo(f"compacted {path}: {_human_bytes(before)} -> {_human_bytes(after)}, "
               f"generation {generation}")
