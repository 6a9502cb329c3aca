"""Commands that list frames and describe a file: timeline, history, stats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from ._common import (
    MEMORY_PATH,
    TIMESTAMP,
    as_of_option,
    echo_json,
    fields,
    frame_dict,
    human_bytes,
    json_option,
    open_memory,
    reader,
    table,
    when,
)


def _stats_value(name: str, value: Any) -> str:
    if isinstance(value, datetime | None):
        return when(value)
    if isinstance(value, int) and not isinstance(value, bool) and (
            name.endswith("_bytes") or name == "wal_size"):
        return human_bytes(value)
    return str(value)


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--since", type=TIMESTAMP, help="Only frames created at or after this time.")
@click.option("--until", type=TIMESTAMP, help="Only frames created before this time.")
@click.option("--limit", type=click.IntRange(min=0), help="At most this many frames.")
@click.option("--reverse", is_flag=True, help="Newest first.")
@as_of_option("the frames")
@json_option("Print a JSON array of frames.")
def timeline(path: str, since: datetime | None, until: datetime | None, limit: int | None,
             reverse: bool, as_of: datetime | int | None, as_json: bool) -> None:
    """List current frames ordered by creation time."""
    with open_memory(path, readonly=True) as mem:
        frames = reader(mem, as_of).timeline(since=since, until=until, limit=limit,
                                             reverse=reverse)
    if as_json:
        echo_json([frame_dict(f) for f in frames])
        return
    table(["CREATED_AT", "ID", "VER", "TAGS", "TEXT"],
          [[when(f.created_at), f.id, str(f.version), ",".join(f.tags), f.text]
           for f in frames], empty="(no frames)")


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("frame_id", metavar="ID")
@as_of_option("the history")
@json_option("Print a JSON array of versions, oldest first.")
def history(path: str, frame_id: str, as_of: datetime | int | None, as_json: bool) -> None:
    """List every version of frame ID, oldest first, with record-time validity."""
    with open_memory(path, readonly=True) as mem:
        versions = reader(mem, as_of).history(frame_id)
    if as_json:
        echo_json([frame_dict(f) for f in versions])
        return
    table(["VER", "VALID_FROM", "VALID_TO", "TEXT"],
          [[str(f.version), when(f.valid_from), when(f.valid_to), f.text] for f in versions])


@click.command()
@click.argument("path", type=MEMORY_PATH)
@json_option("Print the statistics as a JSON object.")
def stats(path: str, as_json: bool) -> None:
    """Show counts, sizes and the generation of a memory file."""
    with open_memory(path, readonly=True) as mem:
        info = mem.stats()
    if as_json:
        echo_json(info.as_dict())
    else:
        fields([(name, _stats_value(name, getattr(info, name))) for name in info.as_dict()])


COMMANDS = [timeline, history, stats]
