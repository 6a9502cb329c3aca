"""``MemvidChatMessageHistory``: per-session chat history stored as frames of a memory.

Each message is one frame: its text is the message content (so it is searchable), its tags
hold ``session:<id>`` and its metadata the session id and the full message as produced by
``langchain_core.messages.message_to_dict`` (type, tool calls, ids, ...). Messages are read
back in timeline order (``created_at``, then insertion). ``clear()`` deletes the frames, so
``as_of`` a time before the clear still shows them. Chat frames carry no embedding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

from memvid_store import FrameNotFoundError, ReadOnlyError
from memvid_store.errors import InvalidInputError

from .._common import MemoryHolder, MemorySource, in_thread, open_memory

__all__ = ["MemvidChatMessageHistory"]

_KIND = "chat_message"


def session_tag(session_id: str) -> str:
    """The tag that marks a session's message frames."""
    return f"session:{session_id}"


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
        as_of: read the history as it was at this record time (aware datetime) or commit
            generation; such a history is read-only (writes raise ``ReadOnlyError``).
        **options: ``Memory.create``/``Memory.open`` options when a path is given.
    """

    def __init__(self, path: MemorySource, session_id: str, *,
                 as_of: datetime | int | None = None, **options: Any) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError("session_id must be a non-empty string")
        self._hold(*open_memory(path, **options), "default")
        self.session_id = session_id
        self._as_of = as_of

    def _writable(self) -> None:
        if self._as_of is not None:
            raise ReadOnlyError("a chat history opened with as_of is read-only")

    def _reader(self) -> Any:
        return self._memory if self._as_of is None else self._memory.as_of(self._as_of)

    def _frames(self) -> list[Any]:
        tag = session_tag(self.session_id)
        return [f for f in self._reader().iter_timeline()
                if tag in f.tags and f.metadata.get("kind") == _KIND
                and f.metadata.get("session_id") == self.session_id]

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The session's messages, oldest first."""
        return messages_from_dict([f.metadata["message"] for f in self._frames()])

    async def aget_messages(self) -> list[BaseMessage]:
        return await in_thread(lambda: self.messages)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages atomically (one batch, one fsync)."""
        if not messages:
            return
        tag = session_tag(self.session_id)
        records = [{
            "text": _content_text(m),
            "tags": [tag],
            "metadata": {"kind": _KIND, "session_id": self.session_id,
                         "type": m.type, "message": message_to_dict(m)},
        } for m in messages]
        self._writable()
        self._memory.put_many(records)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await in_thread(self.add_messages, messages)

    def clear(self) -> None:
        """Hide the session's messages; ``as_of`` an earlier time still returns them."""
        self._writable()
        for frame in self._frames():
            try:
                self._memory.delete(frame.id)
            except FrameNotFoundError:
                continue

    async def aclear(self) -> None:
        await in_thread(self.clear)
