"""``mv2 ingest``: files and directories into a memory, resumably."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack, redirect_stdout
from typing import Any

import click

from . import _embedders
from ._common import (
    MEMORY_PATH,
    CliError,
    ExitCode,
    echo_json,
    embedder_option,
    json_option,
    reported_errors,
    stderr_is_terminal,
    tag_option,
)


def _open_for_ingest(path: str, spec: str | None) -> tuple[Any, Any]:
    """``(memory, embedder)``: the file opened for writing (created if missing) with the
    embedder its frames are embedded with."""
    from ..memory import Memory

    with reported_errors():
        if not os.path.exists(path):
            embedder = _embedders.for_writing(None, spec)
            return Memory.create(path, embedder=embedder), embedder
        embedder = _embedders.for_writing(_embedders.recorded_in(path), spec)
        return Memory.open(path, embedder=embedder), embedder


class _Progress:
    """A progress bar over files on a terminal (stderr); silent otherwise."""

    def __init__(self, stack: ExitStack, enabled: bool) -> None:
        self._stack = stack
        self._enabled = enabled
        self._bar: Any = None

    def plan(self, files: int) -> None:
        if self._enabled and files:
            self._bar = self._stack.enter_context(click.progressbar(
                length=files, label="ingesting", file=sys.stderr, show_pos=True,
                item_show_func=lambda name: name))

    def advance(self, source: Any) -> None:
        if self._bar is not None:
            self._bar.update(1, source.name)


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--chunk-size", type=click.IntRange(min=20), default=1200, show_default=True,
              help="Largest chunk, in characters; longer texts are split.")
@click.option("--chunk-overlap", type=click.IntRange(min=0), default=150, show_default=True,
              help="Characters a chunk repeats from the end of the previous one.")
@embedder_option("Embed frames with SPEC: default, hash, hash:DIM, or none (no vectors). "
                 "Default: the file's own embedder, else 'default'.")
@tag_option("A tag for every frame (repeat for several).")
@click.option("--glob", "globs", multiple=True,
              help="In directories, only files matching this pattern (e.g. '*.md'; repeat).")
@click.option("--text-column", default="text", show_default=True,
              help="The CSV column holding the text; other columns become metadata.")
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Frames per atomic write.")
@click.option("--prune", is_flag=True,
              help="Also delete frames of files that are gone from an ingested directory.")
@click.option("--ray", "on_ray", is_flag=True,
              help="Embed on Ray workers into a sharded memory: PATH is its manifest, "
                   "created with --shards shards if missing (needs memvid-py[ray]).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="With --ray: embedding workers.")
@click.option("--shards", type=click.IntRange(min=1, max=4096), default=4, show_default=True,
              help="With --ray: shards of a new sharded memory.")
@json_option("Print the summary as JSON (no progress bar).")
def ingest(path: str, inputs: tuple[str, ...], chunk_size: int, chunk_overlap: int,
           embedder_spec: str | None, tags: tuple[str, ...], globs: tuple[str, ...],
           text_column: str, batch_size: int, prune: bool, on_ray: bool, workers: int,
           shards: int, as_json: bool) -> None:
    """Ingest files and directories (recursively) into PATH, created if missing.

    Reads .txt .md .html .json .jsonl .csv. Frame ids come from file paths and chunk
    numbers (or a record's own "id"), so ingesting again stores only what changed and
    deletes chunks that disappeared. Unreadable input is reported and skipped; the exit
    code is then 3.
    """
    from ..ingest import IngestOptions
    from ..ingest import ingest as run_ingest

    with reported_errors():  # checked before a file is created
        options = IngestOptions(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tags=tags,
                                globs=globs, text_column=text_column, batch_size=batch_size,
                                prune=prune)
    missing = [i for i in inputs if not os.path.exists(i)]
    if inputs and len(missing) == len(inputs):
        raise CliError(f"nothing to ingest: no such file or directory: {', '.join(missing)}",
                       ExitCode.NOT_FOUND)
    if on_ray:
        from ..cluster.ray_ingest import ingest_on_ray

        if embedder_spec in ("none", "auto"):
            raise CliError("--ray embeds on workers: give --embedder default, hash:DIM...",
                           ExitCode.USAGE)
        # Ray's own messages (a worker restarted...) go to stderr: stdout is the summary
        with reported_errors(), redirect_stdout(sys.stderr):
            report = ingest_on_ray(path, inputs, embedder=embedder_spec or "default",
                                   workers=workers, shards=shards, options=options)
        _summary(path, report, as_json)
        return
    with ExitStack() as stack:
        mem, embedder = _open_for_ingest(path, embedder_spec)
        stack.callback(mem.close)
        progress = _Progress(stack, enabled=not as_json and stderr_is_terminal())
        with reported_errors():
            report = run_ingest(mem, inputs, options, embedder=embedder,
                                on_plan=progress.plan, on_source=progress.advance)
            mem.build_index(complete=False)  # searched through a graph once this exits
    _summary(path, report, as_json)


def _summary(path: str, report: Any, as_json: bool) -> None:
    if as_json:
        echo_json({"path": path, **report.as_dict()})
    else:
        click.echo(f"ingested {report.files} file(s) into {path} in {report.seconds:.2f} s "
                   f"(embedder: {report.embedder or 'none'})")
        click.echo(f"frames: {report.added} added, {report.updated} updated, "
                   f"{report.deleted} deleted, {report.unchanged} unchanged")
        if report.problems:
            click.echo(f"{len(report.problems)} problem(s); skipped:", err=True)
            for problem in report.problems:
                click.echo(f"  {problem}", err=True)
    if report.problems:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


COMMANDS = [ingest]
