"""Bounded retries with exponential backoff for the failures that may pass."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ..errors import RemoteTransientError
from .client import Fetched, ObjectClient, check_length


class RetryingClient:
    """An ``ObjectClient`` that checks every body's length and retries throttling, 5xx,
    timeouts and truncated bodies up to ``retries`` times, waiting ``backoff * 2**attempt``
    seconds (at most ``max_backoff``, with jitter) in between; the last failure is raised.
    A changed object, a missing one or refused credentials are raised at once."""

    def __init__(self, client: ObjectClient, *, retries: int, backoff: float,
                 max_backoff: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.url = client.url
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.sleep = sleep
        if getattr(client, "tail", None) is not None:
            self.tail = self._tail

    def get(self, start: int, end: int, *, if_match: str | None = None,
            if_none_match: str | None = None, **pinned: str) -> Fetched | None:
        """``pinned``: ``version=`` when the store named one (passed on as given)."""
        return self._retried(lambda: self.client.get(
            start, end, if_match=if_match, if_none_match=if_none_match, **pinned), start, end)

    def _tail(self, size: int) -> Fetched:
        got = self._retried(lambda: self.client.tail(size), -size, 1 << 62)  # type: ignore[attr-defined]
        assert got is not None
        return got

    def _retried(self, request: Callable[[], Fetched | None], start: int,
                 end: int) -> Fetched | None:
        for attempt in range(self.retries + 1):
            try:
                got = request()
                return None if got is None else check_length(got, start, end, self.url)
            except RemoteTransientError:
                if attempt == self.retries:
                    raise
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                self.sleep(delay * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")


__all__ = ["RetryingClient"]
