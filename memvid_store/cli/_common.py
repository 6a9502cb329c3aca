"""Shared pieces of the ``mv2`` commands: parameter types, exit codes, error reporting,
opening files and printing tables or JSON.

Only this package turns engine errors into click errors; commands never print a traceback
for a user error.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import click

from ..config import parse_size
from ..errors import ConfigError, FormatError, MemoryLockedError, MemvidError, NotFoundError

if TYPE_CHECKING:
    from ..memory import Memory
    from ..types import Frame

MIN_TEXT_WIDTH = 20


class ExitCode(IntEnum):
    """Exit statuses of ``mv2`` (documented in docs/cli.md)."""

    OK = 0
    ERROR = 1        # the command failed (bad value, I/O error, other engine error)
    USAGE = 2        # bad options or arguments (click's own code)
    PARTIAL = 3      # done, but some inputs were skipped (each one reported)
    NOT_FOUND = 4    # no such memory file or frame id
    LOCKED = 5       # another process holds the writer lock: retry later
    DAMAGED = 6      # not a .mv2 file, a newer format version, or damage found


class CliError(click.ClickException):
    """A one-line ``Error: ...`` message with a chosen exit status."""

    def __init__(self, message: str, exit_code: int = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.exit_code = int(exit_code)


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit status that describes an exception raised by the engine or the OS."""
    if isinstance(exc, MemoryLockedError):
        return ExitCode.LOCKED
    if isinstance(exc, FormatError):
        return ExitCode.DAMAGED
    if isinstance(exc, NotFoundError | FileNotFoundError):
        return ExitCode.NOT_FOUND
    return ExitCode.ERROR


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
    """A generation (an integer) or an ISO 8601 time with an offset."""

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
        try:
            return parse_size(value, param.name if param else "size")
        except ConfigError:
            self.fail(f"{value!r} is not a size (e.g. 4194304, 4MB, 512KiB)", param, ctx)


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

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def json_option(help_text: str) -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def as_of_option(what: str) -> Decorator:
    return click.option("--as-of", type=POINT_IN_TIME,
                        help=f"Show {what} as of this record time or generation.")


def tag_option(help_text: str) -> Decorator:
    return click.option("--tag", "tags", multiple=True, help=help_text)


def filter_option() -> Decorator:
    return click.option("--filter", "filter_", type=JSON_OBJECT,
                        help='Metadata filter as JSON, e.g. \'{"kind": "fact", '
                             '"n": {"$gte": 3}}\'.')


def embedder_option(help_text: str, default: str | None = None) -> Decorator:
    return click.option("--embedder", "embedder_spec", default=default, metavar="SPEC",
                        help=help_text)


# ------------------------------------------------------------------ errors and files


@contextmanager
def reported_errors() -> Iterator[None]:
    """Report engine and input errors as a one-line message with a meaningful exit code."""
    try:
        yield
    except (MemvidError, ValueError, TypeError, OSError) as exc:
        raise CliError(str(exc) or type(exc).__name__, exit_code_for(exc)) from exc


@contextmanager
def open_memory(path: str, *, readonly: bool, sharded: bool = False,
                **options: Any) -> Iterator[Memory]:
    """Open ``path`` (``sharded``: a sharded memory's manifest too, for commands that
    only search); errors from opening, using or closing it become click errors."""
    from ..memory import Memory

    with reported_errors():
        if sharded and is_sharded_manifest(path):
            from ..sharded.memory import ShardedMemory

            mem: Any = ShardedMemory.open(path, readonly=readonly, **options)
        else:
            mem = Memory.open(path, readonly=readonly, **options)
        try:
            yield mem
        finally:
            mem.close()


def is_sharded_manifest(path: str) -> bool:
    """Whether ``path`` is a local sharded memory's manifest (JSON naming its format)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and b'"memvid-sharded"' in head


def reader(mem: Memory, as_of: datetime | int | None) -> Any:
    """``mem`` itself, or its read-only view at ``as_of``."""
    return mem if as_of is None else mem.as_of(as_of)


# ------------------------------------------------------------------ output


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def frame_dict(frame: Frame, *, embedding: bool = False) -> dict[str, Any]:
    out = {
        "id": frame.id, "text": frame.text, "metadata": frame.metadata, "tags": frame.tags,
        "created_at": iso(frame.created_at), "version": frame.version,
        "valid_from": iso(frame.valid_from), "valid_to": iso(frame.valid_to),
    }
    if embedding:
        out["embedding"] = frame.embedding
    return out


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def when(t: datetime | None) -> str:
    """A compact display of a UTC time (``Z`` suffix); ``-`` for none."""
    return "-" if t is None else t.isoformat().replace("+00:00", "Z")


def one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 20)).columns


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
          empty: str | None = None) -> None:
    """Print rows under headers with aligned columns; the last column is the text column,
    shortened to fit the terminal."""
    if not rows and empty is not None:
        click.echo(empty)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers[:-1])]
    used = sum(widths) + 2 * len(widths)
    text_width = max(MIN_TEXT_WIDTH, shutil.get_terminal_size().columns - used)
    for row in [headers, *rows]:
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, one_line(row[-1], text_width)]).rstrip())


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """Print ``name: value`` lines with the values aligned."""
    width = max(len(name) for name, _ in pairs) + 1
    for name, value in pairs:
        click.echo(f"{name + ':':<{width}} {value}")


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size, units = n / 1024, ["KiB", "MiB", "GiB"]
    while size >= 1024 and len(units) > 1:
        size, units = size / 1024, units[1:]
    return f"{size:.1f} {units[0]}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
