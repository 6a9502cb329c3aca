"""Publish a sealed local ``.mv2`` file to an object URL with a conditional write.

The upload is one ``PUT`` that the store accepts only if its condition holds:
``If-None-Match: *`` (create: no object at the key yet) or ``If-Match: <etag>`` (replace
the version the publisher last saw). Of two publishers racing from the same version, one
wins and the other gets ``PublishConflictError``; readers move to the new version on
``refresh()``. obstore sends conditional writes as a single request, never a multipart
upload, so a file is published whole and is at most what the store takes in one
``PUT`` (``stores.MAX_PUT_BYTES``: 5 GiB on S3, 5000 MiB on Azure). ``gs://`` is read,
not published to (``stores.check_publishable``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import (
    InvalidInputError,
    MemoryNotFoundError,
    MemvidError,
    NotSealedError,
    PublishConflictError,
    storage_errors,
)
from .client import classify
from .stores import check_publishable, open_store

_LOST = ("AlreadyExistsError", "PreconditionError")  # obstore's names for a failed condition


def publish(local_path: str | os.PathLike[str], url: str, *,
            expected_etag: str | None = None, seal: bool = False, compact: bool = False,
            timeout: float = 300.0) -> str:
    """Upload the sealed, closed memory at ``local_path`` to ``url`` (``s3://bucket/key``
    or ``az://container/key``) and return the new object's ETag.

    ``expected_etag=None`` creates the object and fails if one exists; an ETag replaces
    the object only while it still has that ETag (pass the ETag the last ``publish``
    returned). The loser of a race gets ``PublishConflictError`` with the object's current
    ETag. The file must have no open writer (``MemoryLockedError``) and no WAL records
    left unsealed (``NotSealedError``); ``seal=True`` seals them first. ``compact=True``
    rewrites the file without dead space before it is read (``compact()``, keeping all
    history): a smaller object, whose first answers take fewer requests.
    """
    path = os.fspath(local_path)
    limit = check_publishable(url)
    if expected_etag is not None and (not isinstance(expected_etag, str) or not expected_etag):
        raise InvalidInputError(f"expected_etag must be a non-empty ETag or None, got "
                                f"{expected_etag!r}")
    if seal or compact:
        _prepare(path, seal=seal, compact=compact)
    data = read_sealed(path, limit)
    obstore, store, key = open_store(url, timeout)
    return put_conditional(obstore, store, key, data, url, expected_etag)


def put_conditional(obstore: Any, store: Any, key: str, data: bytes, url: str,
                    expected_etag: str | None) -> str:
    """One PUT of ``data`` at ``key`` that creates the object (``expected_etag=None``) or
    replaces the version with that ETag; returns the new ETag.

    Raises:
        PublishConflictError: the condition failed (with the object's ETag now).
        RemoteError: the request failed (a typed subclass).
    """
    mode: Any = "create" if expected_etag is None else {"e_tag": expected_etag}
    try:
        result = obstore.put(store, key, data, mode=mode, use_multipart=False)
    except Exception as exc:
        if type(exc).__name__ not in _LOST:
            raise classify(exc, url) from None
        current = _current_etag(obstore, store, key, url)
        lost = "already exists" if expected_etag is None else \
            f"no longer has ETag {expected_etag}"
        raise PublishConflictError(f"{url} {lost} (now: {current or 'no object'})", url, 412,
                                   current) from None
    return result["e_tag"] or ""


def read_sealed(path: str, limit: int) -> bytes:
    """The bytes of the memory at ``path``, read under its writer lock (see
    :func:`sealed`)."""
    with sealed(path, limit) as fd:
        return read_all(fd)


@contextmanager
def sealed(path: str, limit: int) -> Iterator[int]:
    """A descriptor of the memory at ``path`` that holds its writer lock, after checking
    it has no open writer (``MemoryLockedError``), no unsealed WAL records
    (``NotSealedError``) and fits one PUT (``limit`` bytes): no writer changes the file
    while it is held."""
    from ..engine.lock import acquire, release
    from ..engine.store import read_state

    if not os.path.isfile(path):
        raise MemoryNotFoundError(f"no memory file at {path}")
    with storage_errors("reading the file to publish"):
        fd = os.open(path, os.O_RDONLY)
        try:
            acquire(fd, path, 0.0)
            try:
                state = read_state(fd)
                if state.delta:
                    raise NotSealedError(f"{path} has {len(state.delta)} WAL record(s) not "
                                         "sealed: readers of the object would replay them")
                size = os.fstat(fd).st_size
                if size > limit:
                    raise InvalidInputError(f"{path} is {size} bytes: a conditional upload is "
                                            f"one PUT, at most {limit} bytes here")
                yield fd
            finally:
                release(fd)
        finally:
            os.close(fd)


def read_all(fd: int) -> bytes:
    """Every byte of the file behind ``fd``, from its start."""
    with open(fd, "rb", closefd=False) as f:  # fresh descriptor: reads from offset 0
        return f.read()


def _prepare(path: str, *, seal: bool, compact: bool) -> None:
    """Seal the file (with its whole vector index: readers of the object search it, never
    a long exact-scanned tail) and compact it, as asked."""
    from ..memory import Memory

    with Memory.open(path, lock_timeout=0.0) as mem:
        if seal:
            mem.build_index()
        if compact:
            mem.compact()


def etag_of(obstore: Any, store: Any, key: str, url: str) -> str | None:
    """The object's ETag now; None when there is no object.

    Raises:
        RemoteError: the request failed (a typed subclass).
    """
    try:
        return obstore.head(store, key)["e_tag"]
    except Exception as exc:
        if isinstance(exc, FileNotFoundError):
            return None
        raise classify(exc, url) from None


def _current_etag(obstore: Any, store: Any, key: str, url: str) -> str | None:
    """The object's ETag now, or None if there is none or it cannot be read."""
    try:
        return etag_of(obstore, store, key, url)
    except MemvidError:
        return None


__all__ = ["etag_of", "publish", "put_conditional", "read_all", "read_sealed",
           "sealed"]
