"""Sorted distinct values of a numpy array, by a sort.

``np.unique`` of numpy 2.3+ hashes integer arrays before sorting them: on 100k int64 gids
it took 17 ms where a sort and a neighbour comparison take 0.9 ms (numpy 2.4, 2 cores).
Posting lists and gid sets are integer arrays, mostly sorted already.
"""

from __future__ import annotations

from typing import Any

from ..lazy import numpy as np


def distinct(values: Any) -> Any:
    """The distinct values of a 1-d numpy array, ascending (as ``np.unique(values)``)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
