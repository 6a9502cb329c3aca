"""Memories in object storage: ``Memory.open("s3://bucket/key", readonly=True)``, and
``gs://bucket/key`` or ``az://container/key`` alike.

Reads go through range requests pinned to one version of the object (its ETag), and the
bytes fetched are kept in a local chunk cache bounded in bytes (``cache.py``), so a warm
instance downloads nothing again. The client (obstore) is imported on the first open of
a URL, never by ``import memvid_store``.

Modules: ``urls.py`` (which paths are URLs), ``stores.py`` (each URL's store, configured
from the environment), ``config.py`` (``RemoteConfig``),
``client.py`` (requests, typed errors), ``retry.py`` (bounded retries with backoff),
``cache.py`` (chunks on disk), ``source.py`` (one version of an object as the engine's
``ByteSource``), ``reader.py`` (the file behind a read-only ``Memory``), ``upload.py``
(``publish``: a sealed local file to a URL with a conditional write).
"""

from __future__ import annotations

import os

from .urls import SCHEMES, is_remote


def publish(local_path: str | os.PathLike[str], url: str, *,
            expected_etag: str | None = None, seal: bool = False, compact: bool = False,
            timeout: float = 300.0) -> str:
    """Upload a sealed local memory to ``url``, creating the object
    (``expected_etag=None``) or replacing the version with that ETag; returns the new
    ETag. See ``upload.publish``."""
    from .upload import publish as upload

    return upload(local_path, url, expected_etag=expected_etag, seal=seal, compact=compact,
                  timeout=timeout)


__all__ = ["SCHEMES", "is_remote", "publish"]
