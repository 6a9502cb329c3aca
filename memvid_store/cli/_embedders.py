"""Choosing the embedder a command uses: an explicit spec, the file's own, or none.

Specs are those of ``memvid_store.embeddings.get_embedder`` (``default``, ``hash``,
``hash:<dim>``, ...) plus ``auto`` (the embedder recorded in the file, when it can be
loaded here) and ``none``.
"""

from __future__ import annotations

import re
from typing import Any

import click

from ._common import CliError, open_memory, reported_errors

AUTO = "auto"
NONE = "none"
_HASH_NAME = re.compile(r"^hash-(\d+)$")


def load(spec: str) -> Any:
    """The embedder for ``spec``; a clear error when it is unknown or not installed."""
    try:
        from ..embeddings import get_embedder
    except ImportError as exc:
        raise CliError(f"embedders are not available ({exc}); use --embedder none") from exc
    with reported_errors():
        return get_embedder(spec)


def for_name(name: str) -> Any:
    """The embedder whose ``name`` a file recorded (``hash-384`` -> ``hash:384``)."""
    match = _HASH_NAME.match(name)
    if match:
        return load(f"hash:{match[1]}")
    try:
        return load(name)
    except CliError:
        default = load("default")
        if default.name != name:
            raise CliError(f"the file was embedded with {name!r}, which this installation "
                           f"does not provide (default: {default.name!r})") from None
        return default


def recorded_name(mem: Any) -> str | None:
    info = getattr(mem, "embedder_info", None)
    return info.get("name") if info else None


def for_search(mem: Any, spec: str | None) -> Any:
    """The embedder to turn text queries into vectors, or None for text-only search.

    ``auto`` (the default) uses the file's recorded embedder when the file has vectors;
    if it cannot be loaded here a note goes to stderr and search stays lexical.
    """
    spec = spec or AUTO
    if spec == NONE or (spec == AUTO and mem.dim is None):
        return None
    if spec == AUTO:
        name = recorded_name(mem)
        if name is None:
            return None
        try:
            return for_name(name)
        except CliError as exc:
            click.echo(f"note: text queries are not embedded: {exc.message}", err=True)
            return None
    embedder = load(spec)
    check_dim(mem, embedder)
    recorded = recorded_name(mem)
    if recorded and recorded != embedder.name:
        raise CliError(f"the file's vectors come from {recorded!r}, not {embedder.name!r}: "
                       "leave out --embedder to use the file's own")
    return embedder


def recorded_in(path: str) -> str | None:
    """The name of the embedder recorded in the file at ``path`` (opened read-only)."""
    with open_memory(path, readonly=True) as probe:
        return recorded_name(probe)


def for_edits(recorded: str | None, spec: str | None) -> Any:
    """The embedder for ``put``/``update`` texts: ``spec``, else the file's own, else none."""
    if spec in (None, AUTO):
        return for_name(recorded) if recorded else None
    return None if spec == NONE else load(spec)


def for_writing(recorded: str | None, spec: str | None) -> Any:
    """The embedder for ingested frames: ``spec``, else the file's own, else ``default``.

    A file whose vectors come from an embedder must keep using it: ``none`` is refused.
    """
    if spec in (None, AUTO):
        return for_name(recorded) if recorded else load("default")
    if spec == NONE:
        if recorded:
            raise CliError(f"the file's vectors come from {recorded!r}: frames without "
                           "vectors would be invisible to vector search; leave out "
                           "--embedder to use it")
        return None
    return load(spec)


def check_dim(mem: Any, embedder: Any) -> None:
    if mem.dim is not None and embedder.dim != mem.dim:
        raise CliError(f"the embedder {embedder.name!r} makes {embedder.dim}-d vectors but "
                       f"the file holds {mem.dim}-d ones")
