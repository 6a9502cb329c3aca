"""``MemvidChatMessageHistory``: per-session chat history stored as frames of a memory.

Messages live in the history's collection (``"langchain-chat"`` unless ``collection=`` says
otherwise), one frame per message: its text is the message content (so it is searchable),
its metadata the session id and the full message as produced by
``langchain_core.messages.message_to_dict`` (type, tool calls, ids, ...). A session is read
with one indexed ``select`` on ``session_id``, so reading it costs the size of the session,
not of the file; messages come back in timeline order (``created_at``, then insertion).
Adding messages is one ``put_many`` and ``clear()`` one ``delete_many``, each one atomic
write. ``clear()`` deletes the frames, so ``as_of`` a time before the clear still shows
them. Chat frames carry no embedding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from memvid_store import ReadOnlyError
from memvid_store.errors import InvalidInputError
from memvid_store.types import Frame

from .._common import MemoryHolder, MemorySource, in_thread, open_memory

__all__ = ["MemvidChatMessageHistory"]

DEFAULT_COLLECTION = "langchain-chat"


def _content_text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "\n".join(parts) if parts else json.dumps(content, sort_keys=True, default=str)


class MemvidChatMessageHistory(BaseChatMessageHistory, MemoryHolder):
    """Chat history of one session in a ``.mv2`` memory.

    Args:
        path: the memory file (created if missing) or an open Memory to share.
        session_id: the conversation's id.
        collection: the collection of the file holding chat messages (default
            ``"langchain-chat"``); every session of the history shares it.
        as_of: read the history as it was at this record time (aware datetime) or commit
            generation; such a history is read-only (writes raise ``ReadOnlyError``).
        **options: ``Memory.create``/``Memory.open`` options when a path is given;
            ``readonly=True`` on a path follows another process's writer (each read sees
            its acknowledged writes, no refresh needed).
    """

    def __init__(self, path: MemorySource, session_id: str, *,
                 collection: str = DEFAULT_COLLECTION,
                 as_of: datetime | int | None = None, **options: Any) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError("session_id must be a non-empty string")
        self._hold(*open_memory(path, **options), collection)
        self.session_id = session_id
        self._as_of = as_of

    def _writable(self) -> None:
        if self._as_of is not None:
            raise ReadOnlyError("a chat history opened with as_of is read-only")

    def _frames(self) -> list[Frame]:
        """The session's message frames, oldest first (one indexed select)."""
        return self._collection.select({"session_id": self.session_id}, as_of=self._as_of)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's messages, oldest first."""
        return messages_from_dict([f.metadata["message"] for f in self._frames()])

    async def aget_messages(self) -> list[BaseMessage]:
        return await in_thread(lambda: self.messages)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages atomically (one write, one fsync)."""
        if not messages:
            return
        self._writable()
        self._collection.put_many([{
            "text": _content_text(m),
            "metadata": {"session_id": self.session_id, "type": m.type,
                         "message": message_to_dict(m)},
        } for m in messages])

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await in_thread(self.add_messages, messages)

    def clear(self) -> None:
        """Delete the session's messages in one write; ``as_of`` an earlier time still
        returns them."""
        self._writable()
        ids = self._collection.select_ids({"session_id": self.session_id})  # no frame read
        if ids:
            self._collection.delete_many(ids, missing_ok=True)

    async def aclear(self) -> None:
        await in_thread(self.clear)
