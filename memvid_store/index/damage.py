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
    _warn(region, f"is not used ({fallback} answers instead)")


def warn_not_maintained(region: str) -> None:
    """Warn a writer that the index stored in ``region`` is damaged and is left as it is:
    writes go on without updating it."""
    _warn(region, "is left as it is: writes go on without updating it, and its searches "
                  "raise DamagedIndexError")


def _warn(region: str, consequence: str) -> None:
    warnings.warn(f"this memory file's {WHAT.get(region, region)} fails its checksum and "
                  f"{consequence}; `mv2 doctor FILE --repair NEW.mv2` copies the frames "
                  f"into a new file with fresh indexes", DamagedIndexWarning, stacklevel=4)
