"""Range requests to one object, with every failure turned into a typed ``RemoteError``.

The client is obstore (a small Rust client; see "Object storage" in docs/architecture.md
for why). Its own retries are off: ``retry.py`` retries what may pass, so the retry
budget and the errors are the same whatever the failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import (
    MemvidError,
    NotAMemoryFileError,
    ObjectChangedError,
    RemoteAccessDeniedError,
    RemoteError,
    RemoteNotFoundError,
    RemoteServerError,
    RemoteThrottledError,
    RemoteTimeoutError,
    RemoteTruncatedError,
)
from .stores import open_store, suffix_ranges

_STATUS = re.compile(r"status code: (\d{3})")
_SHORT = re.compile(r"Requested \d+\.\.\d+, got \d+\.\.\d+")  # a shorter range came back


@dataclass(frozen=True, slots=True)
class Fetched:
    """The bytes of one range request, and what they belong to."""

    data: bytes | memoryview
    etag: str
    size: int  # of the whole object
    version: str | None = None  # the store's version id of it (None: no versioning)


class ObjectClient(Protocol):
    """Range reads of one object (the interface ``RemoteConfig.wrap_client`` wraps)."""

    url: str

    def get(self, start: int, end: int, *, if_match: str | None = None,
            if_none_match: str | None = None, version: str | None = None
            ) -> Fetched | None:
        """Bytes ``[start, end)`` (ending at the end of the object if it is shorter).

        ``if_match``: fail with ObjectChangedError unless the object's ETag is this one.
        ``if_none_match``: return None if the ETag is this one (the object is unchanged).
        ``version``: read that version of the object (a versioned bucket keeps it after
        the object is replaced); callers pass it only when the store named one.
        """
        ...

    # Optional: ``tail(size) -> Fetched``, the last ``size`` bytes (all of a shorter
    # object) with no condition; a client with it lets a cold open ask for the TOC in
    # parallel with the header.


class ObstoreClient:
    """``ObjectClient`` over obstore's store of the URL (``stores.py``: S3, GCS or Azure,
    configured from the environment as each cloud's own tools are)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self._obstore, self._store, self.key = open_store(url, timeout)
        if not suffix_ranges(url):  # the TOC is then read after the header
            self.tail = None  # type: ignore[method-assign,assignment]

    def get(self, start: int, end: int, *, if_match: str | None = None,
            if_none_match: str | None = None, version: str | None = None
            ) -> Fetched | None:
        options: dict[str, Any] = {"range": (start, end)}
        if if_match is not None:
            options["if_match"] = if_match
        if if_none_match is not None:
            options["if_none_match"] = if_none_match
        if version is not None:
            options["version"] = version
        try:
            result = self._obstore.get(self._store, self.key, options=options)
            meta = result.meta
            data = result.bytes()
        except Exception as exc:
            if type(exc).__name__ == "NotModifiedError":
                return None
            raise classify(exc, self.url) from None
        return Fetched(memoryview(data), meta["e_tag"] or "", meta["size"], meta.get("version"))

    def tail(self, size: int) -> Fetched:
        """The last ``size`` bytes of the object (a suffix range)."""
        try:
            result = self._obstore.get(self._store, self.key, options={"range": {"suffix": size}})
            meta = result.meta
            data = result.bytes()
        except Exception as exc:
            raise classify(exc, self.url) from None
        return Fetched(memoryview(data), meta["e_tag"] or "", meta["size"], meta.get("version"))


def check_length(got: Fetched, start: int, end: int, url: str) -> Fetched:
    """``got`` if it holds every byte of ``[start, end)`` that the object has (a negative
    ``start``: the last ``-start`` bytes)."""
    first = start if start >= 0 else max(0, got.size + start)
    want = max(0, min(end, got.size) - first)
    if len(got.data) != want:
        raise RemoteTruncatedError(f"{url}: asked for {want} bytes at {start}, got "
                                   f"{len(got.data)}", url)
    return got


def classify(exc: BaseException, url: str) -> MemvidError:
    """The typed error for a failed request (obstore's exception, or any other): a
    ``RemoteError``, or NotAMemoryFileError for an empty object (416 on the first range)."""
    text = str(exc)
    name = type(exc).__name__
    found = _STATUS.search(text)
    status = int(found.group(1)) if found else 0
    first = text.split("\n", 1)[0]
    if isinstance(exc, FileNotFoundError) or status == 404:
        return RemoteNotFoundError(f"no object at {url}", url, 404)
    if name in ("PermissionDeniedError", "UnauthenticatedError") or status in (401, 403):
        return RemoteAccessDeniedError(f"{url}: access denied ({first})", url, status or 403)
    if name == "PreconditionError" or status == 412:
        return ObjectChangedError(f"{url} changed while it was read", url, 412)
    if status == 416:
        return NotAMemoryFileError(f"{url} is empty: not a .mv2 file")
    if status in (429, 503) or "SlowDown" in text:
        return RemoteThrottledError(f"{url}: the store is throttling requests ({first})",
                                    url, status or 503)
    if status >= 500:
        return RemoteServerError(f"{url}: server error {status} ({first})", url, status)
    if status:
        return RemoteError(f"{url}: request failed with HTTP {status} ({first})", url, status)
    if "body" in text.lower() or "Interrupted" in text or _SHORT.search(text):
        return RemoteTruncatedError(f"{url}: the response body was cut short ({first})", url)
    return RemoteTimeoutError(f"{url}: the request timed out or could not connect ({first})",
                              url)


__all__ = ["Fetched", "ObjectClient", "ObstoreClient", "check_length", "classify"]
