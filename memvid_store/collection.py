"""A collection: the read/write API of a ``Memory``, restricted to one named collection.

One file holds several collections side by side (documents, chat history, checkpoints,
store items); ids are unique per collection, and every read of a collection (``get``,
``find``, ``select``, ``timeline``...) sees only its frames. A ``Collection`` shares
its memory's writer, snapshot and caches: it is a view of the same open file, valid
while the memory is open.

>>> import os, tempfile
>>> from memvid_store import Memory
>>> with Memory.create(os.path.join(tempfile.mkdtemp(), "m.mv2")) as mem:
...     chat = mem.collection("chat")
...     _ = chat.put("hello", id="m1")
...     _ = mem.put("a document", id="m1")   # the default collection: another frame
...     chat.get("m1").text, mem.get("m1").text, mem.collections()
('hello', 'a document', {'chat': 1, 'default': 1})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .reads import ReadContext, Reads
from .writes import WriteAccess, Writes

if TYPE_CHECKING:
    from .engine.snapshot import Snapshot


class Collection(Reads, Writes):
    """The frames of one collection of an open memory (from ``Memory.collection``)."""

    def __init__(self, name: str, ctx: ReadContext, writes: WriteAccess,
                 current: Callable[[], Snapshot]) -> None:
        self._scope = name
        self._ctx = ctx
        self._writes = writes
        self._current = current  # the memory's snapshot (a following reader catches up)

    @property
    def name(self) -> str:
        return self._scope

    def _snap(self) -> Snapshot:
        return self._current()

    def __repr__(self) -> str:
        return f"<Collection {self._scope!r} of {self._ctx.path!r}>"
