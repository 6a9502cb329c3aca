"""Commands that search: find (hits) and ask (context with citations for a question)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from . import _embedders
from ._common import (
    JSON_ARRAY,
    MEMORY_PATH,
    TIMESTAMP,
    CliError,
    as_of_option,
    echo_json,
    embedder_option,
    filter_option,
    iso,
    json_option,
    one_line,
    open_memory,
    table,
    terminal_width,
    when,
)

_EMBEDDER_HELP = ("Embed text queries with SPEC (default, hash, hash:DIM) for hybrid search; "
                  "'auto' (default) uses the file's own embedder when it has vectors; 'none' "
                  "searches text only.")


def hit_dict(hit: Any) -> dict[str, Any]:
    return {"id": hit.id, "score": hit.score, "text": hit.text, "metadata": hit.metadata,
            "tags": hit.tags, "created_at": iso(hit.created_at), "version": hit.version,
            "ranks": hit.ranks, "scores": hit.scores}


def search(mem: Any, query: str | None, *, vector: list[float] | None, mode: str,
           embedder_spec: str | None, **find_args: Any) -> list[Any]:
    """``mem.find`` with text queries embedded when the file has vectors and an embedder
    is available (hybrid), so the caller needs no vector of its own."""
    if query is not None and vector is None and mode != "lexical":
        embedder = _embedders.for_search(mem, embedder_spec)
        if embedder is not None:
            vector = embedder.embed_query(query)
        elif mode == "vector":
            raise CliError("vector search of a text query needs an embedder: give "
                           "--embedder SPEC, or --vector")
    return mem.find(query, vector=vector, mode=mode, **find_args)


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("query", required=False)
@click.option("--vector", type=JSON_ARRAY, help="Query embedding as a JSON array of numbers.")
@click.option("--mode", type=click.Choice(["hybrid", "lexical", "vector"]), default="hybrid",
              show_default=True, help="Search mode (hybrid falls back to the one query given).")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of hits.")
@filter_option()
@click.option("--since", type=TIMESTAMP, help="Only frames created at or after this time.")
@click.option("--until", type=TIMESTAMP, help="Only frames created before this time.")
@click.option("--syntax", type=click.Choice(["plain", "query"]), default="plain",
              show_default=True, help="'query' enables the full-text query language.")
@click.option("--group-by", "group_by", metavar="KEY",
              help="Best hit of each of the k best groups of frames sharing this metadata "
                   "key's value (a frame without it is its own group).")
@click.option("--tie-break", "tie_break", metavar="FIELD", multiple=True,
              help="Order tied hits by this field first (created_at, id or a metadata key; "
                   "repeatable), then by frame id.")
@embedder_option(_EMBEDDER_HELP)
@as_of_option("the memory")
@json_option("Print a JSON array of hits.")
def find(path: str, query: str | None, vector: list[float] | None, mode: str, k: int,
         filter_: dict[str, Any] | None, since: datetime | None, until: datetime | None,
         syntax: str, group_by: str | None, tie_break: tuple[str, ...],
         embedder_spec: str | None,
         as_of: datetime | int | None, as_json: bool) -> None:
    """Search frames by text (BM25), by vector, or both (hybrid). PATH may be a sharded
    memory's manifest: every shard is searched and the hits merged exactly."""
    from ..index.grouping import with_grouping

    if query is None and vector is None:
        raise click.UsageError("give a QUERY text, --vector, or both")
    window = (since, until) if since or until else None
    with open_memory(path, readonly=True, sharded=True) as mem:
        hits = search(mem, query, vector=vector, mode=mode, embedder_spec=embedder_spec, k=k,
                      filter=filter_, as_of=as_of, time_range=window, syntax=syntax,
                      **with_grouping({}, group_by, tie_break))
    if as_json:
        echo_json([hit_dict(h) for h in hits])
        return
    width = max(20, terminal_width() - 48)
    table(["RANK", "SCORE", "ID", "CREATED_AT", "TEXT"],
          [[str(i), f"{h.score:.4f}", h.id, when(h.created_at), one_line(h.text, width)]
           for i, h in enumerate(hits, start=1)], empty="(no hits)")


# ------------------------------------------------------------------ ask


def source_of(metadata: dict[str, Any]) -> str | None:
    """Where a frame came from: its ingested file, else its ``source`` metadata."""
    for key in ("path", "source"):
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def citations(hits: list[Any], max_chars: int) -> list[dict[str, Any]]:
    """Numbered citations whose texts fit in ``max_chars`` together (the last one shortened;
    hits that would get fewer than 80 characters are left out)."""
    out: list[dict[str, Any]] = []
    budget = max_chars
    for hit in hits:
        text = " ".join(hit.text.split())
        if budget < min(len(text), 80):
            break
        shown = text if len(text) <= budget else text[: budget - 1].rstrip() + "…"
        budget -= len(shown)
        out.append({"n": len(out) + 1, "id": hit.id, "source": source_of(hit.metadata),
                    "created_at": iso(hit.created_at), "score": hit.score, "text": shown,
                    "truncated": shown != text, "version": hit.version})
    return out


def context_block(cites: list[dict[str, Any]]) -> str:
    """The citations as one text, ready to paste into a prompt."""
    parts = []
    for c in cites:
        where = "; ".join(x for x in (f"id {c['id']}", c["source"],
                                      c["created_at"] and c["created_at"][:10]) if x)
        parts.append(f"[{c['n']}] ({where}) {c['text']}")
    return "\n\n".join(parts)


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.argument("question")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Number of passages to cite.")
@click.option("--max-chars", type=click.IntRange(min=80), default=4000, show_default=True,
              help="Budget for the cited texts together (characters).")
@filter_option()
@embedder_option(_EMBEDDER_HELP)
@as_of_option("what the memory knew")
@json_option('Print {"question", "context", "citations": [...]} as JSON.')
def ask(path: str, question: str, k: int, max_chars: int, filter_: dict[str, Any] | None,
        embedder_spec: str | None, as_of: datetime | int | None, as_json: bool) -> None:
    """Gather the passages that answer QUESTION, numbered [1]..[k] with citations.

    No language model is involved: the output is the context (id, source, date and text of
    each passage) to hand to one, or to read.
    """
    with open_memory(path, readonly=True) as mem:
        hits = search(mem, question, vector=None, mode="hybrid", embedder_spec=embedder_spec,
                      k=k, filter=filter_, as_of=as_of)
    cites = citations(hits, max_chars)
    context = context_block(cites)
    if as_json:
        echo_json({"question": question, "context": context, "citations": cites})
        return
    if not cites:
        click.echo("(nothing in the memory matches the question)")
        return
    click.echo(f"Question: {question}\n")
    click.echo(context)


COMMANDS = [find, ask]
