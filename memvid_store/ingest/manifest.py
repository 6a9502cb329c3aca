"""What earlier ingests left in a memory, read back from the frames themselves.

The memory file is the manifest: every ingested frame carries ``path`` (its source name)
and ``content_hash`` in its metadata, so a copied or moved .mv2 file resumes correctly
without any side file. Reading it scans the current frames once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PATH_KEY = "path"
HASH_KEY = "content_hash"


@dataclass(slots=True)
class Manifest:
    """Current frame ids, and for ingested ones their source name and content hash."""

    ids: set[str] = field(default_factory=set)
    hashes: dict[str, str] = field(default_factory=dict)
    by_source: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of_frames(cls, frames: Iterable[Any]) -> Manifest:
        """Build from frames (``.id`` and ``.metadata``), e.g. ``mem.iter_timeline()``."""
        out = cls()
        for frame in frames:
            out.ids.add(frame.id)
            source, digest = frame.metadata.get(PATH_KEY), frame.metadata.get(HASH_KEY)
            if isinstance(source, str) and isinstance(digest, str):
                out.hashes[frame.id] = digest
                out.by_source.setdefault(source, set()).add(frame.id)
        return out


def content_hash(text: str, metadata: dict[str, Any], tags: list[str],
                 created_at: datetime | None, embedder: str | None) -> str:
    """A digest of everything a frame is made of (and of the model that embeds it)."""
    blob = json.dumps([text, metadata, tags, None if created_at is None else
                       created_at.isoformat(), embedder], sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]
