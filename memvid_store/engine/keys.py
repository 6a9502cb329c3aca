"""Collections: a frame's key is its collection and its id.

One file holds several collections (documents, chat, checkpoints...), and ids are unique
per collection. Inside the engine a frame is known by its *key*: the id itself in the
default collection, ``<collection> NUL <id>`` in any other. Every lookup by id (the hash
column of runs, the WAL delta's index, history) works on keys unchanged, and a file
written before collections existed reads as the default collection. Ids and collection
names therefore never contain NUL (``validate.check_id`` refuses it).
"""

from __future__ import annotations

from collections.abc import Callable

DEFAULT = "default"
"""The collection of plain ``Memory`` calls (its keys are the bare ids)."""

SEP = "\x00"


def key_of(collection: str, frame_id: str) -> str:
    """The key of ``frame_id`` in ``collection``."""
    return frame_id if collection == DEFAULT else f"{collection}{SEP}{frame_id}"


def split_key(key: str) -> tuple[str, str]:
    """``(collection, id)`` of a key."""
    collection, sep, frame_id = key.partition(SEP)
    return (collection, frame_id) if sep else (DEFAULT, key)


def collection_of(key: str) -> str:
    return split_key(key)[0]


def member_test(collection: str) -> Callable[[str], bool]:
    """A test of whether a key belongs to ``collection``."""
    if collection == DEFAULT:
        return lambda key: SEP not in key
    prefix = collection + SEP
    return lambda key: key.startswith(prefix)
