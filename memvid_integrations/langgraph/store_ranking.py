"""Max pooling of an item's vectors over the engine's vector candidates, exactly.

An item's score is the best cosine over its vectors (LangGraph's convention), computed in
float64 from the stored float32 vectors as LangGraph does; ties keep iteration order.
The engine ranks vector *frames* by float32 cosine, best first, every frame scoring at
least as well as the last one returned included. :func:`max_pooled` asks it for ``k``
frames, pools them by item and pages, growing ``k`` (x4) until the page is certain:

* every frame the engine did not return scores at most ``last`` in float32, so at most
  ``floor = last + eps`` in float64 (``eps`` bounds the float32 error of a cosine);
* an item's pooled float64 score over its returned frames is exact once it exceeds
  ``floor`` (no unseen vector can beat it), and every item scoring above ``floor`` has
  a returned frame;
* only items within ``2 * eps`` (float32) of the ``offset + limit``-th best can reach the
  page, so only their returned frames are rescored in float64.

So once the ``offset + limit``-th best rescored item scores above ``floor`` (or the
engine returned fewer than ``k`` frames: nothing is unseen), the page equals the one an
exhaustive max-pooled ranking gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol


class Candidate(Protocol):
    """A vector frame the engine returned (``memvid_store.Hit``)."""

    id: str
    score: float


def cosine_error(dim: int) -> float:
    """A bound on |float32 cosine - float64 cosine| for vectors of ``dim`` numbers."""
    return 8.0 * (dim + 8) * 2.0 ** -24


def max_pooled(search: Callable[[int], Sequence[Candidate]],
               owner: Callable[[Candidate], str],
               order: Callable[[Candidate], Any],
               vectors: Callable[[list[str]], list[list[float]]],
               query: Sequence[float], offset: int, limit: int) -> list[tuple[str, float]]:
    """The page of ``(item, score)``, best first (shorter than ``limit`` only when fewer
    items have vectors).

    Args:
        search: the engine's best ``k`` vector frames for the query (``k`` given).
        owner: the item a frame belongs to.
        order: the tie-break key of a frame's item (iteration order).
        vectors: the stored vectors of frames, by id.
        query: the query vector (not all zeros).
    """
    need = offset + limit
    q = [float(x) for x in query]
    eps = cosine_error(len(q))
    k = 2 * need + 8
    while True:
        hits = search(k)
        exhausted = len(hits) < k
        floor = -math.inf if exhausted else hits[-1].score + eps
        best32: dict[str, float] = {}
        frames: dict[str, list[str]] = {}
        keys: dict[str, Any] = {}
        for hit in hits:
            item = owner(hit)
            if item not in best32:
                best32[item], frames[item], keys[item] = hit.score, [], order(hit)
            frames[item].append(hit.id)
        ranked = sorted(best32.values(), reverse=True)
        cut = ranked[need - 1] - 2 * eps if len(ranked) >= need else -math.inf
        near = [item for item, s in best32.items() if s >= cut]
        ids = [fid for item in near for fid in frames[item]]
        sims = iter(_cosines(q, vectors(ids)) if ids else [])
        score = {item: max(next(sims) for _ in frames[item]) for item in near}
        top = sorted(near, key=lambda it: (-score[it], keys[it]))[:need]
        if exhausted or (len(top) == need and score[top[-1]] > floor):
            return [(item, score[item]) for item in top[offset:]]
        k *= 4


def _cosines(q: list[float], vectors: list[list[float]]) -> list[float]:
    """LangGraph's cosine (0 for a zero vector), in float64, in plain Python: a page's few
    candidates do not need numpy (whose import would double a fresh process's first search)."""
    q_norm = math.sqrt(math.fsum(x * x for x in q))
    out = []
    for vec in vectors:
        norm = math.sqrt(math.fsum(x * x for x in vec))
        out.append(math.fsum(a * b for a, b in zip(vec, q, strict=True)) / (norm * q_norm)
                   if norm and q_norm else 0.0)
    return out
