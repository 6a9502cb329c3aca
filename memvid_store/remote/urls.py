"""Which paths name objects in storage rather than local files."""

from __future__ import annotations

SCHEMES = ("s3://", "gs://", "az://")


def is_remote(path: str) -> bool:
    """True for a URL the remote package opens (``s3://bucket/key``, ``gs://bucket/key``,
    ``az://container/key``)."""
    return path.startswith(SCHEMES)
