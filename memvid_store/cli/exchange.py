"""``mv2 export`` and ``mv2 import``: a file's full history as JSON Lines and back;
``mv2 publish``: a sealed file (or a sharded memory) to object storage, safely."""

from __future__ import annotations

import os
import sys

import click

from ._common import (
    MEMORY_PATH,
    echo_json,
    is_sharded_manifest,
    json_option,
    open_memory,
    reported_errors,
)


@click.command(name="export")
@click.argument("path", type=MEMORY_PATH)
@click.argument("out", metavar="OUT.jsonl")
@click.option("--vectors", type=click.Choice(["base64", "list"]), default="base64",
              show_default=True,
              help="Embeddings as base64 of little-endian float32, or as JSON number lists.")
@json_option('Print {"changes", "puts", "deletes"} as JSON.')
def export_command(path: str, out: str, vectors: str, as_json: bool) -> None:
    """Write every version of every frame (puts, updates, deletes, with record times) to
    OUT.jsonl ("-" for stdout); `mv2 import` rebuilds the file from it."""
    from ..transfer import export_jsonl

    with open_memory(path, readonly=True) as mem:
        if out == "-":
            summary = export_jsonl(mem, sys.stdout, vectors=vectors)
            return
        with reported_errors():
            partial = f"{out}.partial"
            try:
                with open(partial, "w", encoding="utf-8") as fh:
                    summary = export_jsonl(mem, fh, vectors=vectors)
                os.replace(partial, out)
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)
    if as_json:
        echo_json({"path": path, "out": out, **summary.as_dict()})
    else:
        click.echo(f"exported {summary.changes} changes ({summary.puts} versions, "
                   f"{summary.deletes} deletes) to {out}")


@click.command(name="import")
@click.argument("source", metavar="IN.jsonl")
@click.argument("path", type=MEMORY_PATH)
@json_option('Print {"changes", "puts", "deletes"} as JSON.')
def import_command(source: str, path: str, as_json: bool) -> None:
    """Rebuild a memory from an export into the new file PATH, replaying every write at
    its original record time (so --as-of answers as in the exported file)."""
    from ..transfer import import_jsonl, import_writes, read_export

    with reported_errors():
        if source == "-":
            header, writes = read_export(sys.stdin)
            summary = import_writes(header, writes, path)
        else:
            summary = import_jsonl(source, path)
    if as_json:
        echo_json({"path": path, "source": source, **summary.as_dict()})
    else:
        click.echo(f"imported {summary.changes} changes ({summary.puts} versions, "
                   f"{summary.deletes} deletes) into {path}")


@click.command(name="publish")
@click.argument("path", type=MEMORY_PATH)
@click.argument("url", metavar="s3://BUCKET/KEY|az://CONTAINER/KEY")
@click.option("--etag", help="Replace the object only while it still has this ETag (the one "
                             "the last publish printed); without it, create the object and "
                             "fail if one exists.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False),
              help="A sharded memory (PATH is its manifest): the file that keeps what the "
                   "last publish left (read if it exists, written after a publish); without "
                   "it, the first publish.")
@click.option("--seal", is_flag=True, help="Seal the file's WAL records first.")
@click.option("--compact", is_flag=True,
              help="Rewrite the file without dead space first, keeping all history (a "
                   "single memory file).")
@json_option('Print {"path", "url", "etag"} as JSON (a sharded memory: "etags").')
def publish_command(path: str, url: str, etag: str | None, state_path: str | None,
                    seal: bool, compact: bool, as_json: bool) -> None:
    """Upload PATH (sealed, with no open writer) to object storage with a conditional
    write, and print the new ETag; a concurrent publisher's loss is an error, never a
    lost update. PATH may be a sharded memory's manifest: its shards, manifest and pins
    are published (``ShardedMemory.publish``)."""
    if is_sharded_manifest(path):
        if compact:
            raise click.UsageError("--compact publishes a single memory file: compact the "
                                   "shards with ShardedMemory.compact() first")
        _publish_sharded(path, url, state_path, seal, as_json)
        return
    from ..remote import publish

    with reported_errors():
        new_etag = publish(path, url, expected_etag=etag, seal=seal, compact=compact)
    if as_json:
        echo_json({"path": path, "url": url, "etag": new_etag})
    else:
        click.echo(f"published {path} to {url}, ETag {new_etag}")


def _publish_sharded(path: str, url: str, state_path: str | None, seal: bool,
                     as_json: bool) -> None:
    from ..atomic_write import write_atomic
    from ..sharded.memory import ShardedMemory
    from ..sharded.publish import Published

    with reported_errors():
        expected = None
        if state_path is not None and os.path.exists(state_path):
            with open(state_path, encoding="utf-8") as f:
                expected = Published.from_json(f.read())
        done = ShardedMemory.publish(path, url, expected=expected, seal=seal)
        if state_path is not None:  # replaced whole: a crash never leaves half of it
            write_atomic(state_path, done.to_json())
    if as_json:
        echo_json({"path": path, "url": url, "etags": dict(done.etags)})
    else:
        click.echo(f"published {path} to {url} ({len(done.etags)} objects)")


COMMANDS = [export_command, import_command, publish_command]
