"""Value types returned by the engine. No heavy imports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import InvalidInputError, InvalidTypeError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MAX = 2**63 - 1


def to_us(t: datetime, name: str = "time") -> int:
    """Aware datetime -> µs since the epoch. Naive datetimes are refused (ambiguous)."""
    if not isinstance(t, datetime):
        raise InvalidTypeError(f"{name} must be a datetime, not {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise InvalidInputError(f"{name} must be timezone-aware, e.g. datetime.now(timezone.utc)")
    delta = t - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class Frame:
    """One version of a memory frame.

    ``collection`` is the collection the frame belongs to (its ``id`` is unique there).
    ``created_at`` is event time (given by the caller). ``valid_from``/``valid_to`` are
    *record time*: when the memory learned this version and when a later update or
    delete replaced it (``None`` while current). They say nothing about real-world
    validity.
    """

    id: str
    text: str
    metadata: dict[str, Any]
    tags: list[str]
    created_at: datetime
    version: int
    valid_from: datetime
    valid_to: datetime | None
    _embedding: Callable[[], list[float] | None] = field(repr=False, compare=False,
                                                          default=lambda: None)
    collection: str = "default"

    @property
    def embedding(self) -> list[float] | None:
        """The frame's embedding (float32 values), read on demand; None if it has none."""
        return self._embedding()


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result.

    ``score`` is the fused score in hybrid mode (reciprocal rank fusion), the BM25 score in
    lexical mode and the similarity in vector mode (cosine or inner product; negative
    squared distance for ``l2``). ``ranks``/``scores`` give each mode's 1-based rank and raw
    score for the hit (a mode that did not return it is absent).
    """

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    tags: list[str]
    created_at: datetime
    version: int
    ranks: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    collection: str = "default"

