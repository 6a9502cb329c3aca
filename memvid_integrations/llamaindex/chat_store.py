"""``MemvidChatStore``: LlamaIndex chat history per key, stored as frames of a memory.

The store keeps its frames in its own collection of the file (``"llamaindex-chat"`` unless
``collection=`` names another). Each message is one frame: its text is the message content
(so it is searchable) and its metadata the key (``chat_key``), the role and the full message
(``ChatMessage.model_dump(mode="json")``). A key's messages are read with one indexed
``select`` on ``chat_key``, in timeline order (``created_at``, then insertion), so reading a
key costs about its number of messages, whatever the size of the file. Each key with
messages also has one small marker frame (metadata ``chat_store_key``), which is what
``get_keys`` lists.

Every mutation is one atomic write (``set_messages`` deletes the old messages and stores
the new ones together). Deleting writes tombstones, so a store opened with ``as_of`` (or
``get_messages(key, as_of=...)``) still returns what was there. A store opened
``readonly=True`` on a path follows the writer in another process.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms import ChatMessage
from llama_index.core.storage.chat_store.base import BaseChatStore

from memvid_store import Collection, Frame, Memory, ReadOnlyError
from memvid_store.errors import InvalidInputError, InvalidTypeError

from .._common import MemoryHolder, opened_memory

__all__ = ["DEFAULT_COLLECTION", "MemvidChatStore"]

DEFAULT_COLLECTION = "llamaindex-chat"
MESSAGE_KEY = "chat_key"  # metadata of a message frame: the key it belongs to
MARKER_KEY = "chat_store_key"  # metadata of a key's marker frame


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"a chat store key must be a non-empty str, got {key!r}")
    return key


def marker_id(key: str) -> str:
    """The id of the frame that marks ``key`` as having messages."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _marker(key: str) -> dict[str, Any]:
    return {"id": marker_id(key), "text": "", "metadata": {MARKER_KEY: key}}


def _record(key: str, message: ChatMessage) -> dict[str, Any]:
    if not isinstance(message, ChatMessage):
        raise InvalidTypeError(f"messages must be ChatMessage, not {type(message).__name__}")
    role = message.role.value if hasattr(message.role, "value") else str(message.role)
    return {"text": message.content or "",
            "metadata": {MESSAGE_KEY: key, "role": role,
                         "message": message.model_dump(mode="json")}}


def _message(frame: Frame) -> ChatMessage:
    return ChatMessage.model_validate(frame.metadata["message"])


class MemvidChatStore(BaseChatStore, MemoryHolder):
    """Chat messages per key in a ``.mv2`` memory; usable by ``ChatMemoryBuffer``.

    Args:
        path: the memory file (created if missing) or an open Memory to share.
        collection: the collection of the file holding the messages (default
            ``"llamaindex-chat"``).
        as_of: read every key as it was at this record time (aware datetime) or commit
            generation; such a store is read-only (writes raise ``ReadOnlyError``).
        **options: ``Memory.create``/``Memory.open`` options when a path is given
            (``readonly=True`` follows the writer in another process).

    Example:
        >>> from llama_index.core.memory import ChatMemoryBuffer
        >>> store = MemvidChatStore("agent.mv2")  # doctest: +SKIP
        >>> memory = ChatMemoryBuffer.from_defaults(chat_store=store,
        ...                                         chat_store_key="user-1")  # doctest: +SKIP
    """

    path: str
    as_of: datetime | int | None = None

    _memory: Memory = PrivateAttr()
    _owned: bool = PrivateAttr(default=True)
    _collection: Collection = PrivateAttr()

    def __init__(self, path: str | os.PathLike[str] | Memory, *,
                 collection: str = DEFAULT_COLLECTION, as_of: datetime | int | None = None,
                 **options: Any) -> None:
        with opened_memory(path, **options) as (memory, owned):
            super().__init__(path=memory.path, as_of=as_of)
        self._hold(memory, owned, collection)

    @classmethod
    def class_name(cls) -> str:
        return "MemvidChatStore"

    # ----------------------------------------------------------------------- helpers

    def _writable(self) -> None:
        if self.as_of is not None:
            raise ReadOnlyError("a chat store opened with as_of is read-only")

    def _frames(self, key: str, as_of: datetime | int | None = None, *,
                reverse: bool = False, limit: int | None = None) -> list[Frame]:
        """The key's message frames, oldest first (``reverse``: newest first)."""
        at = self.as_of if as_of is None else as_of
        return self._collection.select({MESSAGE_KEY: key}, as_of=at, reverse=reverse,
                                       limit=limit)

    def _put(self, key: str, records: list[dict[str, Any]], delete: Sequence[str] = ()
             ) -> None:
        """Store ``records`` of ``key`` (with its marker if new) and delete ``delete``."""
        if marker_id(key) not in self._collection:
            records = [*records, _marker(key)]
        self._collection.put_many(records, delete=delete)

    def _delete(self, key: str, ids: list[str], *, last: bool) -> None:
        """Delete messages ``ids`` of ``key`` (and its marker when ``last``) in one write."""
        ids = list(ids)
        if last:
            ids.append(marker_id(key))
        self._collection.delete_many(ids, missing_ok=True)

    # --------------------------------------------------------------------------- API

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the key's messages in one write (the old ones stay reachable with
        ``as_of``)."""
        _check_key(key)
        self._writable()
        records = [_record(key, m) for m in messages]
        old = self._collection.select_ids({MESSAGE_KEY: key})  # no frame read
        if records:
            self._put(key, records, delete=old)
        else:
            self._delete(key, old, last=True)

    def get_messages(self, key: str, *, as_of: datetime | int | None = None
                     ) -> list[ChatMessage]:
        """The key's messages, oldest first; ``as_of`` reads them as they were then."""
        return [_message(f) for f in self._frames(_check_key(key), as_of)]

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Append one message (durable when this returns)."""
        _check_key(key)
        self._writable()
        self._put(key, [_record(key, message)])

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete the key's messages; returns them (``None`` if there were none)."""
        _check_key(key)
        self._writable()
        frames = self._frames(key)
        if not frames:
            return None
        self._delete(key, [f.id for f in frames], last=True)
        return [_message(f) for f in frames]

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the key's ``idx``-th message; returns it (``None`` if out of range)."""
        _check_key(key)
        self._writable()
        frames = self._frames(key)
        if not 0 <= idx < len(frames):
            return None
        self._delete(key, [frames[idx].id], last=len(frames) == 1)
        return _message(frames[idx])

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Delete the key's newest message; returns it (``None`` if there is none)."""
        _check_key(key)
        self._writable()
        newest = self._frames(key, reverse=True, limit=2)
        if not newest:
            return None
        self._delete(key, [newest[0].id], last=len(newest) == 1)
        return _message(newest[0])

    def get_keys(self) -> list[str]:
        """Keys that have messages, sorted (as of the store's ``as_of``, if set)."""
        markers = self._collection.select({MARKER_KEY: {"$exists": True}}, as_of=self.as_of)
        return sorted(f.metadata[MARKER_KEY] for f in markers)
