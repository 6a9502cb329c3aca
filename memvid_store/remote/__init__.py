"""Memories in object storage: ``Memory.open("s3://bucket/key", readonly=True)``.

Reads go through range requests pinned to one version of the object (its ETag), and the
bytes fetched are kept in a local chunk cache bounded in bytes (``cache.py``), so a warm
instance downloads nothing again. The S3 client (obstore) is imported on the first open
of a URL, never by ``import memvid_store``.

Modules: ``config.py`` (``RemoteConfig``), ``client.py`` (requests, typed errors),
``retry.py`` (bounded retries with backoff), ``cache.py`` (chunks on disk),
``source.py`` (one version of an object as the engine's ``ByteSource``), ``reader.py``
(the file behind a read-only ``Memory``).
"""

from __future__ import annotations

SCHEMES = ("s3://",)


def is_remote(path: str) -> bool:
    """True for a URL this package opens (``s3://bucket/key``)."""
    return path.startswith(SCHEMES)


__all__ = ["SCHEMES", "is_remote"]
