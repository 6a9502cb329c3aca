"""Grouped search: the best hit of each group of frames, ranked, with ties in a chosen order.

``find(..., group_by=key)`` ranks *groups*: the frames sharing one value of the metadata
field ``key`` (a frame without it is a group of its own, named by its frame id, so a
chunk holding its parent's id in ``key`` joins its parent's group). A group scores what
its best frame scores, and is returned as that frame's hit. Ties between groups follow
``tie_break`` (fields of each group's best frame: ``created_at``, ``id`` or metadata
keys), then the frame id.

:func:`top_groups` asks the search for ``k`` frames, groups them and grows ``k`` (x4)
until the first ``need`` groups are certain. The search returns frames best first, every
frame it did not return scoring at most the last one returned, so:

* an unseen frame scores at most ``floor = last + eps``, where ``eps`` bounds the error of
  the search's scores against the scores reported (0 when they are the search's own;
  with ``rescore``, the float32 error of a cosine recomputed in float64);
* a group's best score over its returned frames is final once it exceeds ``floor``, and
  every group scoring above ``floor`` has a returned frame;
* only groups within ``2 * eps`` of the ``need``-th best search score can reach the
  first ``need``, so only their frames are rescored.

Once the ``need``-th best group scores above ``floor`` (or the search returned fewer
than ``k`` frames: nothing is unseen), the ranking equals the exhaustive one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace
from datetime import datetime
from operator import mul
from typing import Any

from ..errors import InvalidTypeError
from ..types import Hit, to_us
from .filters import MISSING, metadata_getter

Rescore = Callable[[list[Hit]], list[float]]
"""The exact scores of hits (the same order), replacing the search's own."""


def check_grouping(group_by: Any, tie_break: Any) -> tuple[str | None, tuple[str, ...]]:
    """``group_by`` and ``tie_break`` validated (a metadata key; field names)."""
    if group_by is not None and (not isinstance(group_by, str) or not group_by):
        raise InvalidTypeError(
            f"group_by must be a metadata key (a non-empty str), got {group_by!r}")
    if isinstance(tie_break, str):
        tie_break = (tie_break,)
    if not isinstance(tie_break, Sequence) or not all(
            isinstance(f, str) and f for f in tie_break):
        raise InvalidTypeError(
            "tie_break must be a sequence of field names ('created_at', 'id' or metadata "
            f"keys), got {tie_break!r}")
    return group_by, tuple(tie_break)


def cosine_error(dim: int) -> float:
    """A bound on |float32 cosine - float64 cosine| for vectors of ``dim`` numbers."""
    return 8.0 * (dim + 8) * 2.0 ** -24


def cosines(query: Sequence[float], vectors: list[Sequence[float] | None]) -> list[float]:
    """Cosines in float64 (0 for a zero or missing vector): correctly rounded dot products,
    norms within an ulp (``math.hypot``), in plain Python: a page's few candidates do not
    need numpy, whose import would double a fresh process's first search."""
    q = [float(x) for x in query]
    q_norm = math.hypot(*q)
    out = []
    for vec in vectors:
        norm = math.hypot(*vec) if vec is not None else 0.0
        out.append(math.fsum(map(mul, vec, q)) / (norm * q_norm) if norm and q_norm else 0.0)
    return out


def group_of(hit: Hit, group_by: str | None) -> Hashable:
    """The group a hit's frame belongs to: its ``group_by`` value (a metadata path, read
    as filters read it), else its frame id."""
    value = _field(hit, group_by) if group_by is not None else None
    if value is None:
        return hit.id
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (list, dict)):
        return ("json", json.dumps(value, sort_keys=True))
    return value


def tie_key(hit: Hit, fields: tuple[str, ...]) -> tuple:
    """The order of tied groups: ``fields`` of the best frame (missing ones last; values
    of different kinds by kind), then its frame id."""
    out: list[tuple] = []
    for name in fields:
        value = (hit.created_at if name == "created_at" else hit.id if name == "id"
                 else _field(hit, name))
        out.append(_sortable(value))
    return (*out, hit.id)


def _field(hit: Hit, path: str) -> Any:
    """The value at a metadata path of a hit (None when missing)."""
    value = metadata_getter(path)(hit.metadata)
    return None if value is MISSING else value


def _sortable(value: Any) -> tuple:
    """Numbers, then times, strings, other values (as JSON), missing ones."""
    if value is None:
        return (4,)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, datetime):
        return (1, to_us(value))
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, default=str))


def with_grouping(request: dict[str, Any], group_by: str | None,
                  tie_break: Sequence[str]) -> dict[str, Any]:
    """A ``find`` request dict with ``group_by`` / ``tie_break`` when either is given
    (else it stays a plain request, answered in a batch)."""
    if group_by is not None or tie_break:
        request.update(group_by=group_by, tie_break=tie_break)
    return request


def answer_requests(raw: list[dict[str, Any]],
                    plain: Callable[[list[dict[str, Any]]], list[list[Hit]]],
                    grouped: Callable[[dict[str, Any]], list[Hit]]) -> list[list[Hit]]:
    """The hits of each request: those with ``group_by`` / ``tie_break`` one by one
    (``grouped``), the others as one batch (``plain``)."""
    ones = {i: r for i, r in enumerate(raw) if "group_by" in r or "tie_break" in r}
    rest = [r for i, r in enumerate(raw) if i not in ones]
    found = iter(plain(rest) if rest else [])
    return [grouped(ones[i]) if i in ones else next(found) for i in range(len(raw))]


def grouped_find(request: dict[str, Any], search: Callable[[dict[str, Any]], list[Hit]],
                 stored_vectors: Callable[[list[Hit]], list[Sequence[float] | None]],
                 dim: int | None, metric: str) -> list[Hit]:
    """One ``find`` request with ``group_by`` / ``tie_break`` (popped from it, its query
    vector filled in): ``search`` runs the plain request with another ``k``;
    ``stored_vectors``: the hits' stored embeddings, for the float64 rescoring of cosines."""
    from .requests import check_k

    group_by, tie_break = check_grouping(request.pop("group_by", None),
                                         request.pop("tie_break", ()))
    need = check_k(request.get("k", 10))
    vector = request.get("vector")

    def ranked(k: int) -> list[Hit]:
        return search({**request, "k": k})

    mode = request.get("mode", "hybrid")
    if mode == "hybrid" and request.get("text") is None:
        mode = "vector"
    if mode != "vector" or vector is None or dim is None or metric != "cosine":
        return top_groups(ranked, need, group_by=group_by, tie_break=tie_break)

    def rescore(hits: list[Hit]) -> list[float]:
        return cosines(vector, stored_vectors(hits))

    return top_groups(ranked, need, group_by=group_by, tie_break=tie_break, rescore=rescore,
                      eps=cosine_error(dim))


def top_groups(search: Callable[[int], list[Hit]], need: int, *, group_by: str | None,
               tie_break: tuple[str, ...] = (), rescore: Rescore | None = None,
               eps: float = 0.0) -> list[Hit]:
    """The best hit of each of the first ``need`` groups, best first (fewer only when
    fewer groups match). ``search(k)``: the search's ``k`` best frames, best first;
    ``rescore``/``eps``: exact scores and the bound on the search's error against them."""
    if rescore is None:
        eps = 0.0
    k = 2 * need + 8
    while True:
        hits = search(k)
        exhausted = len(hits) < k
        floor = -math.inf if exhausted else hits[-1].score + eps
        first: dict[Hashable, float] = {}
        members: dict[Hashable, list[Hit]] = {}
        for hit in hits:
            group = group_of(hit, group_by)
            if group not in first:
                first[group], members[group] = hit.score, []
            members[group].append(hit)
        ranked = sorted(first.values(), reverse=True)
        cut = ranked[need - 1] - 2 * eps if len(ranked) >= need else -math.inf
        near = [g for g, s in first.items() if s >= cut]
        best = _best_of(near, members, rescore, eps)
        top = sorted(near, key=lambda g: (-best[g].score, tie_key(best[g], tie_break)))[:need]
        if exhausted or (len(top) == need and best[top[-1]].score > floor):
            return [best[g] for g in top]
        k *= 4


def _best_of(groups: list[Hashable], members: dict[Hashable, list[Hit]],
             rescore: Rescore | None, eps: float) -> dict[Hashable, Hit]:
    """Each group's best hit, with its exact score when ``rescore`` is given (only the
    frames within ``2 * eps`` of their group's best search score can be its best)."""
    if rescore is None:
        return {g: members[g][0] for g in groups}
    for g in groups:
        top = members[g][0].score - 2 * eps
        members[g] = [hit for hit in members[g] if hit.score >= top]
    frames = [hit for g in groups for hit in members[g]]
    scores = iter(rescore(frames) if frames else [])
    best: dict[Hashable, Hit] = {}
    for g in groups:
        for hit in members[g]:
            score = next(scores)
            if g not in best or score > best[g].score:
                best[g] = replace(hit, score=score)
    return best

