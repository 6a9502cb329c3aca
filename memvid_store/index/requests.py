"""Validation of ``find`` arguments into a Request (typed errors that say what to do).

A request is built from values: the snapshot (its dimension and WAL size), the index
configuration (the metric) and the record time the caller resolved. Its ``key`` names
everything its result depends on (the record time and the WAL size included), so equal
keys can share a cached result within a snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from ..config import IndexConfig
from ..engine.keys import DEFAULT
from ..engine.snapshot import Snapshot
from ..errors import InvalidInputError, InvalidTypeError
from ..types import to_us
from ..validate import plain_str
from .filters import FrameFilter, compile_filter

MODES = ("hybrid", "vector", "lexical")
SYNTAXES = ("plain", "query")
_KEYS = frozenset({"text", "vector", "k", "mode", "filter", "as_of", "time_range", "syntax",
                   "weights"})  # as_of: resolved by the caller into ``at``


@dataclass(frozen=True, slots=True)
class Request:
    """A validated query (built by :func:`build_request`)."""

    text: str | None
    vector: Any  # float32 array('f') of dim values, prepared for the metric, or None
    k: int
    mode: str  # "hybrid" | "vector" | "lexical"
    filter: FrameFilter | None
    at: int | None  # record time; None = current
    time_range: tuple[int | None, int | None] | None
    syntax: str = "plain"
    weights: tuple[tuple[str, float], ...] = ()
    key: Any = field(default=(), compare=False)  # RequestKey
    collection: str = DEFAULT


def check_k(k: Any) -> int:
    """``k`` if it is a number of hits (an int >= 1), else InvalidInputError."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be an int >= 1, got {k!r}")
    return k


def build_request(args: Mapping[str, Any], *, snap: Snapshot, config: IndexConfig,
                  at: int | None, collection: str = DEFAULT) -> Request:
    """The Request of ``find`` arguments ``args`` against ``snap``; ``at`` is the record
    time the caller resolved (from its view and ``args["as_of"]``; None = current)."""
    unknown = set(args) - _KEYS
    if unknown:
        raise InvalidTypeError(
            f"unknown find argument(s) {sorted(unknown)}; valid: {sorted(_KEYS)}")
    text, vector = args.get("text"), args.get("vector")
    k, mode = args.get("k", 10), args.get("mode", "hybrid")
    syntax = args.get("syntax", "plain")
    check_k(k)
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if syntax not in SYNTAXES:
        raise InvalidInputError(f"syntax must be 'plain' or 'query', got {syntax!r}")
    if text is not None:
        text = plain_str(text, "query text")
    if mode == "vector" and vector is None:
        raise InvalidInputError("mode='vector' needs a query vector")
    if mode == "lexical" and text is None:
        raise InvalidInputError("mode='lexical' needs a query text")
    if text is None and vector is None:
        raise InvalidInputError("find needs a query text, a query vector, or both")
    if mode == "hybrid" and (text is None or vector is None):
        mode = "lexical" if vector is None else "vector"
    prepared = None
    if vector is not None and mode != "lexical":
        from .vector.prepare import prepare_vector  # only vector queries need it

        prepared = prepare_vector(vector, snap.dim, config.distance)
        if snap.dim is None:
            prepared = None  # validated; nothing stored to compare with
    window = event_window(args.get("time_range"))
    flt = compile_filter(args.get("filter"))
    weights = _weights(args.get("weights"))
    text = text if mode != "vector" else None
    key = RequestKey(text, None if prepared is None else prepared.tobytes(), k, mode,
                     "null" if flt is None else flt.canonical, at, window, syntax, weights,
                     len(snap.delta), collection)
    return Request(text, prepared, k, mode, flt, at, window, syntax, weights, key, collection)


def rebind(req: Request, snap: Snapshot, at: int | None) -> Request:
    """``req``, built against a snapshot of the same dimension and metric as ``snap``,
    against ``snap`` read at ``at`` (the same validation would give the same request)."""
    return replace(req, at=at, key=req.key._replace(at=at, wal=len(snap.delta)))


class RequestKey(NamedTuple):
    """What a request's result depends on (the WAL size of its snapshot included)."""

    text: str | None
    vector: bytes | None
    k: int
    mode: str
    filter: str
    at: int | None
    window: tuple[int | None, int | None] | None
    syntax: str
    weights: tuple[tuple[str, float], ...]
    wal: int
    collection: str


def event_window(time_range: Any) -> tuple[int | None, int | None] | None:
    if time_range is None:
        return None
    if not isinstance(time_range, tuple | list) or len(time_range) != 2:
        raise InvalidInputError("time_range must be a (since, until) pair of datetimes or None")
    lo, hi = (None if t is None else to_us(t, "time_range") for t in time_range)
    if lo is not None and hi is not None and lo > hi:
        raise InvalidInputError("time_range: since is after until")
    return lo, hi


def _weights(weights: Mapping[str, float] | None) -> tuple[tuple[str, float], ...]:
    if weights is None:
        return ()
    if not isinstance(weights, Mapping) or set(weights) - {"lexical", "vector"}:
        raise InvalidInputError("weights must be a dict with keys 'lexical' and/or 'vector'")
    out = []
    for mode, w in sorted(weights.items()):
        if isinstance(w, bool) or not isinstance(w, int | float) or not w >= 0:
            raise InvalidInputError(f"weight for {mode!r} must be a number >= 0, got {w!r}")
        out.append((mode, float(w)))
    return tuple(out)
