"""``MemvidChatStore``: LlamaIndex chat history per key, stored as frames of a memory.

Each message is one frame: its text is the message content (so it is searchable), its tags
hold ``session:<key>`` and its metadata the key, the role and the full message
(``ChatMessage.model_dump(mode="json")``). Messages are read back in timeline order
(``created_at``, then insertion). Deleting messages writes tombstones, so a store opened
with ``as_of`` (or ``get_messages(key, as_of=...)``) still returns them. Chat frames carry
no embedding and are invisible to ``MemvidVectorStore``.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.llms import ChatMessage
from llama_index.core.storage.chat_store.base import BaseChatStore

from memvid_store import Frame, Memory, ReadOnlyError
from memvid_store.errors import InvalidInputError, InvalidTypeError

from .._common import MemoryHolder, opened_memory

__all__ = ["MemvidChatStore"]

KIND = "llamaindex_chat_message"


def session_tag(key: str) -> str:
    """The tag that marks a key's (session's) message frames."""
    return f"session:{key}"


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"a chat store key must be a non-empty str, got {key!r}")
    return key


class MemvidChatStore(BaseChatStore, MemoryHolder):
    """Chat messages per key in a ``.mv2`` memory; usable by ``ChatMemoryBuffer``.

    Args:
        path: the memory file (created if missing) or an open Memory to share.
        as_of: read every key as it was at this record time (aware datetime) or commit
            generation; such a store is read-only (writes raise ``ReadOnlyError``).
        **options: ``Memory.create``/``Memory.open`` options when a path is given.

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

    def __init__(self, path: str | os.PathLike[str] | Memory, *,
                 as_of: datetime | int | None = None, **options: Any) -> None:
        with opened_memory(path, **options) as (memory, owned):
            super().__init__(path=memory.path, as_of=as_of)
        self._hold(memory, owned, "default")

    @classmethod
    def class_name(cls) -> str:
        return "MemvidChatStore"

    # ----------------------------------------------------------------------- helpers

    def _writable(self) -> None:
        if self.as_of is not None:
            raise ReadOnlyError("a chat store opened with as_of is read-only")

    def _frames(self, key: str | None, as_of: datetime | int | None = None) -> list[Frame]:
        at = self.as_of if as_of is None else as_of
        reader = self._memory if at is None else self._memory.as_of(at)
        tag = None if key is None else session_tag(key)
        out = []
        for frame in reader.iter_timeline():
            if frame.metadata.get("kind") != KIND:
                continue
            if tag is None or (tag in frame.tags and frame.metadata.get("session_id") == key):
                out.append(frame)
        return out

    @staticmethod
    def _message(frame: Frame) -> ChatMessage:
        return ChatMessage.model_validate(frame.metadata["message"])

    @staticmethod
    def _record(key: str, message: ChatMessage) -> dict[str, Any]:
        if not isinstance(message, ChatMessage):
            raise InvalidTypeError(f"messages must be ChatMessage, not {type(message).__name__}")
        role = message.role.value if hasattr(message.role, "value") else str(message.role)
        return {
            "text": message.content or "",
            "tags": [session_tag(key)],
            "metadata": {"kind": KIND, "session_id": key, "role": role,
                         "message": message.model_dump(mode="json")},
        }

    def _delete(self, frames: list[Frame]) -> None:
        for frame in frames:
            self._memory.delete(frame.id)

    # --------------------------------------------------------------------------- API

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the key's messages (the old ones stay reachable with ``as_of``)."""
        _check_key(key)
        self._writable()
        records = [self._record(key, m) for m in messages]
        self._delete(self._frames(key))
        if records:
            self._memory.put_many(records)

    def get_messages(self, key: str, *, as_of: datetime | int | None = None
                     ) -> list[ChatMessage]:
        """The key's messages, oldest first; ``as_of`` reads them as they were then."""
        return [self._message(f) for f in self._frames(_check_key(key), as_of)]

    def add_message(self, key: str, message: ChatMessage) -> None:
        """Append one message (durable when this returns)."""
        _check_key(key)
        self._writable()
        self._memory.put_many([self._record(key, message)])

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete the key's messages; returns them (``None`` if there were none)."""
        _check_key(key)
        self._writable()
        frames = self._frames(key)
        if not frames:
            return None
        self._delete(frames)
        return [self._message(f) for f in frames]

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the key's ``idx``-th message; returns it (``None`` if out of range)."""
        _check_key(key)
        self._writable()
        frames = self._frames(key)
        if not 0 <= idx < len(frames):
            return None
        self._delete([frames[idx]])
        return self._message(frames[idx])

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Delete the key's newest message; returns it (``None`` if there is none)."""
        _check_key(key)
        self._writable()
        frames = self._frames(key)
        if not frames:
            return None
        self._delete([frames[-1]])
        return self._message(frames[-1])

    def get_keys(self) -> list[str]:
        """Keys that currently have messages, sorted."""
        return sorted({f.metadata["session_id"] for f in self._frames(None)})
