"""Reciprocal rank fusion of ranked result lists (no dependencies)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def rrf(ranked: Mapping[str, Sequence[int]], *, k: int = 60,
        weights: Mapping[str, float] | None = None) -> list[tuple[int, float]]:
    """Fuse lists of keys ranked best-first: score(key) = sum_m w_m / (k + rank_m(key)).

    Ranks are 1-based. Returns (key, fused score) sorted by score descending, then by the
    best rank any list gave the key, then by key.
    """
    fused: dict[int, float] = {}
    best: dict[int, int] = {}
    for mode, keys in ranked.items():
        weight = 1.0 if weights is None else float(weights.get(mode, 1.0))
        for rank, key in enumerate(keys, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (k + rank)
            best[key] = min(best.get(key, rank), rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))
