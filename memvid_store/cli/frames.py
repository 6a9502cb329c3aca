"""Commands that write or read single frames: create, put, get, update, delete."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from . import _embedders
from ._common import (
    JSON_ARRAY,
    JSON_OBJECT,
    MEMORY_PATH,
    TIMESTAMP,
    ByteSize,
    as_of_option,
    echo_json,
    embedder_option,
    fields,
    frame_dict,
    json_option,
    open_memory,
    reader,
    reported_errors,
    tag_option,
    when,
)

_EMBEDDER_HELP = ("Embed the text with SPEC (default, hash, hash:DIM); default: the file's "
                  "own embedder, if it has one; 'none' stores no vector.")


@contextmanager
def _writer(path: str, spec: str | None, *, embeds: bool) -> Iterator[Any]:
    """``path`` opened for writing, with the embedder that embeds new texts when ``embeds``
    (the file's own unless ``--embedder`` says otherwise)."""
    embedder = None
    if embeds and spec != _embedders.NONE:
        embedder = _embedders.for_edits(_embedders.recorded_in(path), spec)
    with open_memory(path, readonly=False, embedder=embedder) as mem:
        yield mem


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


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--dim", type=click.IntRange(min=1),
              help="Embedding dimension (default: learned from the first embedding).")
@click.option("--wal-size", type=ByteSize(), default="4MiB", show_default=True,
              help="Size of the embedded write-ahead log, 1MiB..64MiB (e.g. 8MB).")
def create(path: str, dim: int | None, wal_size: int) -> None:
    """Create a new, empty memory file at PATH (it must not exist)."""
    from ..memory import Memory

    with reported_errors():
        Memory.create(path, dim=dim, wal_size=wal_size).close()
    click.echo(f"created {path}")


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("text", required=False)
@click.option("--id", "frame_id", help="Frame id (default: a random one). An existing id "
              "gets a new version.")
@click.option("--metadata", type=JSON_OBJECT, help='Metadata as a JSON object, e.g. \'{"k": 1}\'.')
@tag_option("A tag (repeat for several).")
@click.option("--created-at", type=TIMESTAMP,
              help="Event time with an offset or Z (default: now).")
@click.option("--embedding", type=JSON_ARRAY, help="Embedding as a JSON array of numbers.")
@embedder_option(_EMBEDDER_HELP)
@json_option('Print {"id": ...} as JSON.')
def put(path: str, text: str | None, frame_id: str | None, metadata: dict[str, Any] | None,
        tags: tuple[str, ...], created_at: datetime | None, embedding: list[Any] | None,
        embedder_spec: str | None, as_json: bool) -> None:
    """Store TEXT as a new frame and print its id.

    TEXT is read from stdin when it is "-" or omitted and stdin is piped (one trailing
    newline is removed).
    """
    body = _read_text(text)
    with _writer(path, embedder_spec, embeds=embedding is None) as mem:
        fid = mem.put(body, id=frame_id, metadata=metadata, tags=list(tags) or None,
                      created_at=created_at, embedding=embedding)
    if as_json:
        echo_json({"id": fid})
    else:
        click.echo(fid)


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("frame_id", metavar="ID")
@as_of_option("the frame")
@json_option("Print the frame (with its embedding) as a JSON object.")
def get(path: str, frame_id: str, as_of: datetime | int | None, as_json: bool) -> None:
    """Show the current version of frame ID."""
    with open_memory(path, readonly=True) as mem:
        frame = reader(mem, as_of).get(frame_id)
        if as_json:
            echo_json(frame_dict(frame, embedding=True))
            return
    fields([("id", frame.id), ("version", frame.version),
            ("created_at", when(frame.created_at)), ("valid_from", when(frame.valid_from)),
            ("tags", ", ".join(frame.tags) or "-"),
            ("metadata", json.dumps(frame.metadata, ensure_ascii=False))])
    click.echo()
    click.echo(frame.text)


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("frame_id", metavar="ID")
@click.option("--text", help='New text ("-" reads stdin).')
@click.option("--metadata", type=JSON_OBJECT, help="New metadata (JSON object), replacing the old.")
@tag_option("New tag (repeat for several), replacing the old tags.")
@click.option("--created-at", type=TIMESTAMP, help="New event time with an offset or Z.")
@click.option("--embedding", type=JSON_ARRAY, help="New embedding as a JSON array of numbers.")
@embedder_option(_EMBEDDER_HELP.replace("the text", "a new --text"))
@json_option('Print {"id": ..., "version": ...} as JSON.')
def update(path: str, frame_id: str, text: str | None, metadata: dict[str, Any] | None,
           tags: tuple[str, ...], created_at: datetime | None, embedding: list[Any] | None,
           embedder_spec: str | None, as_json: bool) -> None:
    """Store a new version of frame ID and print its version number.

    Fields not given are kept from the current version; a new --text is embedded again
    when the file has an embedder (unless --embedding is given).
    """
    changes: dict[str, Any] = {"text": None if text is None else _read_text(text),
                               "metadata": metadata, "tags": list(tags) or None,
                               "created_at": created_at, "embedding": embedding}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise click.UsageError("nothing to update: give --text, --metadata, --tag, "
                               "--created-at or --embedding")
    embeds = "text" in changes and embedding is None
    with _writer(path, embedder_spec, embeds=embeds) as mem:
        version = mem.update(frame_id, **changes)
    if as_json:
        echo_json({"id": frame_id, "version": version})
    else:
        click.echo(version)


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("frame_id", metavar="ID")
def delete(path: str, frame_id: str) -> None:
    """Delete frame ID (its history stays readable with --as-of and history)."""
    with open_memory(path, readonly=False) as mem:
        mem.delete(frame_id)
    click.echo(f"deleted {frame_id}")


COMMANDS = [create, put, get, update, delete]
