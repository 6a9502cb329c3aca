"""Damaged derived indexes: they cost one search path, never the file.

The frames are the truth; the BM25 index and the vector graph are derived from them. When
one fails its checksum, searches that can be answered another way are (the exact vector
scan instead of the graph), and the caller is warned once with the command that rebuilds
the index (``mv2 doctor FILE --repair NEW.mv2``).
"""

from __future__ import annotations

import warnings

WHAT = {"segment:ann": "vector graph", "segment:lex": "full-text index",
        "segment:lists": "cluster lists"}


class DamagedIndexWarning(RuntimeWarning):
    """A derived index failed its checksum and is not used; ``mv2 doctor --repair``
    copies the frames into a new file with fresh indexes."""


def warn_damaged(region: str, fallback: str) -> None:
    """Warn that the index stored in ``region`` is damaged and ``fallback`` answers."""
    warnings.warn(f"this memory file's {WHAT.get(region, region)} fails its checksum and is "
                  f"not used ({fallback} answers instead); `mv2 doctor FILE --repair NEW.mv2` "
                  f"copies the frames into a new file with fresh indexes",
                  DamagedIndexWarning, stacklevel=3)
