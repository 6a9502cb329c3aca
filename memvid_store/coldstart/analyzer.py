"""Predict which frames the next reads will touch, from the reads seen so far.

``AccessPatternAnalyzer`` learns from a stream of ``Access`` records (the frames a
``find`` or ``get`` returned, their event times and the query vector) and ranks frame ids
for prefetching with three signals, each normalized to [0, 1] and then summed with
``weights``:

* temporal: frames next to recently hit frames in event time (``created_at``), read from
  the time-sorted catalog given with ``set_catalog`` (an agent reading a conversation reads
  around what it found);
* semantic: the frames earlier queries with a similar vector hit. Query vectors are
  grouped online into at most ``max_clusters`` clusters (nearest mean above
  ``similarity`` cosine, else a new cluster); each remembers the frames its queries hit.
  The clusters of the recent queries vote for their frames;
* frequency: exponentially decayed hit counts (``half_life`` seconds of ``Access.at``).

Recent accesses weigh more: an access ``half_life`` seconds older than the newest one
counts half. Besides the catalog (two arrays of the caller's size) memory is bounded
(``window`` recent accesses, ``max_clusters`` clusters of at most ``cluster_hits`` ids,
``max_tracked`` counted ids); ``observe`` costs O(hits × radius + clusters × dim) and
``predict_next_access`` O(window × hits × radius + cluster hits + tracked ids). Numpy is
imported only when a query vector is observed.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError

__all__ = ["Access", "AccessPatternAnalyzer", "AnalyzerStats"]

SIGNALS = ("temporal", "semantic", "frequency")
_MAX_EXPONENT = 500.0  # rescale stored weights before 2 ** exponent overflows
_COVERAGE_ALPHA = 0.1  # smoothing of the coverage estimate
_MEAN_MEMORY = 32  # a cluster mean follows roughly its last 32 queries


@dataclass(frozen=True, slots=True)
class Access:
    """One read: the frames it returned and what asked for them.

    Attributes:
        frame_ids: ids of the frames returned, best first.
        times: their ``created_at`` in µs since the epoch (same order; may be empty, then
            the temporal signal ignores this access).
        query_vector: the query embedding of a vector or hybrid ``find``; None otherwise.
        at: when the read happened, in seconds (``time.time()`` by default); only
            differences matter, so a replay may use its own clock.
    """

    frame_ids: tuple[str, ...]
    times: tuple[int, ...] = ()
    query_vector: Sequence[float] | None = None
    at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if isinstance(self.frame_ids, str):
            raise InvalidInputError("frame_ids must be a sequence of ids, not one string")
        object.__setattr__(self, "frame_ids", tuple(self.frame_ids))
        object.__setattr__(self, "times", tuple(int(t) for t in self.times))
        if self.times and len(self.times) != len(self.frame_ids):
            raise InvalidInputError(f"times must give one created_at per frame id "
                                    f"({len(self.frame_ids)}), got {len(self.times)}")


@dataclass(frozen=True, slots=True)
class AnalyzerStats:
    """What the analyzer holds and how well its predictions did.

    ``coverage`` is a running average of the share of an access's frames that the
    prediction made just before it contained (None until one was checked).
    """

    observed: int
    predictions: int
    coverage: float | None
    clusters: int
    tracked_ids: int
    catalog: int


@dataclass(slots=True)
class _Cluster:
    mean: Any  # float32 numpy vector, not normalized
    count: int
    last_at: float
    hits: dict[str, float]
    alive: bool = True


@dataclass(slots=True)
class _Seen:
    at: float
    near: list[tuple[str, float]]  # catalog neighbours of the hits and their closeness
    cluster: _Cluster | None


class AccessPatternAnalyzer:
    """Learns access patterns and predicts the frames the next reads will need.

    Thread-safe: one thread may observe while another predicts.

    Args:
        time_based, semantic_based, frequency_based: which signals to use.
        window: recent accesses kept for the temporal and semantic signals.
        radius: catalog neighbours on each side of a hit that the temporal signal scores.
        half_life: seconds (of ``Access.at``) after which an access counts half.
        similarity: cosine above which a query joins an existing cluster.
        max_clusters, cluster_hits, max_tracked: memory bounds (see the module doc).
        weights: weight of each signal in the combined score
            (``{"temporal": 1, "semantic": 1, "frequency": 1}`` by default).
    """

    def __init__(self, time_based: bool = True, semantic_based: bool = True,
                 frequency_based: bool = True, *, window: int = 16, radius: int = 4,
                 half_life: float = 300.0, similarity: float = 0.5, max_clusters: int = 64,
                 cluster_hits: int = 256, max_tracked: int = 4096,
                 weights: Mapping[str, float] | None = None) -> None:
        if not (time_based or semantic_based or frequency_based):
            raise InvalidInputError("enable at least one of time_based, semantic_based or "
                                    "frequency_based")
        for name, value in (("window", window), ("max_clusters", max_clusters),
                            ("cluster_hits", cluster_hits), ("max_tracked", max_tracked)):
            _check_int(name, value, 1)
        _check_int("radius", radius, 0)
        if not half_life > 0:
            raise InvalidInputError(f"half_life must be > 0 seconds, got {half_life!r}")
        if not -1.0 <= similarity <= 1.0:
            raise InvalidInputError(f"similarity must be a cosine in [-1, 1], got "
                                    f"{similarity!r}")
        self.weights = {name: 1.0 for name in SIGNALS}
        for name, value in (weights or {}).items():
            if name not in SIGNALS or not value >= 0:
                raise InvalidInputError(f"weights takes {', '.join(SIGNALS)} with values >= 0, "
                                        f"got {name}={value!r}")
            self.weights[name] = float(value)
        self.time_based = time_based
        self.semantic_based = semantic_based
        self.frequency_based = frequency_based
        self.window = window
        self.radius = radius
        self.half_life = float(half_life)
        self.similarity = similarity
        self.max_clusters = max_clusters
        self.cluster_hits = cluster_hits
        self.max_tracked = max_tracked
        self._lock = threading.Lock()
        self._recent: deque[_Seen] = deque(maxlen=window)
        self._clusters: list[_Cluster] = []
        self._means: Any = None  # numpy matrix of the cluster means, rows normalized
        self._counts: dict[str, float] = {}
        self._origin: float | None = None  # Access.at at which a new hit weighs 1
        self._now = -math.inf
        self._cat_times = array("q")
        self._cat_ids: list[str] = []
        self._observed = 0
        self._predictions = 0
        self._last_prediction: frozenset[str] | None = None
        self._coverage: float | None = None

    # ------------------------------------------------------------------ inputs

    def set_catalog(self, ids: Sequence[str], times: Sequence[int]) -> None:
        """The frames that can be predicted and their ``created_at`` (µs), in any order.

        The temporal signal looks up the neighbours of an access when it is observed: call
        this first, and again when frames are added.
        """
        if len(ids) != len(times):
            raise InvalidInputError(f"set_catalog needs one time per id: {len(ids)} ids, "
                                    f"{len(times)} times")
        order = sorted(range(len(ids)), key=lambda i: (times[i], ids[i]))
        cat_times = array("q", (int(times[i]) for i in order))
        cat_ids = [ids[i] for i in order]
        with self._lock:
            self._cat_times, self._cat_ids = cat_times, cat_ids

    def observe(self, access: Access) -> None:
        """Learn from one read."""
        vector = None
        if self.semantic_based and access.query_vector is not None:
            vector = _unit(access.query_vector)
        with self._lock:
            self._observed += 1
            self._check_prediction(access.frame_ids)
            self._now = max(self._now, access.at)
            gain = self._gain(access.at)
            cluster = None
            if vector is not None:
                cluster = self._cluster_for(vector, access.at)
                _add_capped(cluster.hits, access.frame_ids, gain, self.cluster_hits)
            if self.frequency_based:
                _add_capped(self._counts, access.frame_ids, gain, self.max_tracked)
            near = self._neighbours(access.times) if self.time_based else []
            self._recent.append(_Seen(access.at, near, cluster))

    def train(self, history: Iterable[Access]) -> None:
        """Observe past reads in the order they happened."""
        for access in history:
            self.observe(access)

    # ----------------------------------------------------------------- outputs

    def predict_next_access(self, n: int) -> list[str]:
        """Up to ``n`` frame ids, most likely next first (ties by id)."""
        _check_int("n", n, 0)
        with self._lock:
            combined: dict[str, float] = {}
            signals = (("temporal", self._temporal), ("semantic", self._semantic),
                       ("frequency", lambda: self._frequency(n)))
            for name, signal in signals:
                weight = self.weights[name]
                scores = signal() if weight > 0 else {}
                top = max(scores.values(), default=0.0)
                if top <= 0:
                    continue
                scale = weight / top
                for fid, score in scores.items():
                    combined[fid] = combined.get(fid, 0.0) + score * scale
            result = _top(combined, n)
            self._predictions += 1
            self._last_prediction = frozenset(result)
            return result

    def prefetch_budget(self, window: int) -> int:
        """How many frames to prefetch out of ``window``, given how useful predictions were.

        The full window until predictions have been checked and while they cover at least
        half of what the next read returns; proportionally less below that, down to
        ``window // 16`` (at least 1 when ``window`` > 0).
        """
        _check_int("window", window, 0)
        with self._lock:
            coverage = self._coverage
        if coverage is None or window == 0:
            return window
        floor = max(1, window // 16)
        return max(floor, min(window, round(window * coverage / 0.5)))

    def stats(self) -> AnalyzerStats:
        with self._lock:
            return AnalyzerStats(self._observed, self._predictions, self._coverage,
                                 sum(c.alive for c in self._clusters), len(self._counts),
                                 len(self._cat_ids))

    # ----------------------------------------------------------------- signals

    def _decay(self, at: float) -> float:
        """Weight of an access made at ``at``, relative to the newest one."""
        return 2.0 ** ((at - self._now) / self.half_life)

    def _temporal(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        for seen in self._recent:
            if seen.near:
                weight = self._decay(seen.at)
                for fid, closeness in seen.near:
                    scores[fid] = scores.get(fid, 0.0) + weight * closeness
        return scores

    def _neighbours(self, times: tuple[int, ...]) -> list[tuple[str, float]]:
        """Catalog frames within ``radius`` positions of each time, closeness 1 down to 1/(r+1)."""
        cat_times, cat_ids, r = self._cat_times, self._cat_ids, self.radius
        if not cat_ids:
            return []
        last = len(cat_ids) - 1
        near = []
        for t in times:
            p = min(bisect_left(cat_times, t), last)
            for i in range(max(0, p - r), min(last, p + r) + 1):
                near.append((cat_ids[i], (r + 1 - abs(i - p)) / (r + 1)))
        return near

    def _semantic(self) -> dict[str, float]:
        scores: dict[str, float] = {}
        if not self.semantic_based:
            return scores
        votes: dict[int, tuple[_Cluster, float]] = {}
        for seen in self._recent:
            c = seen.cluster
            if c is not None and c.alive:
                prev = votes.get(id(c), (c, 0.0))[1]
                votes[id(c)] = (c, prev + self._decay(seen.at))
        for cluster, vote in votes.values():
            top = max(cluster.hits.values(), default=0.0)
            if top <= 0:
                continue
            scale = vote / top
            for fid, weight in cluster.hits.items():
                scores[fid] = scores.get(fid, 0.0) + weight * scale
        return scores

    def _frequency(self, n: int) -> dict[str, float]:
        if not self.frequency_based or n == 0:
            return {}
        counts = self._counts
        return {fid: counts[fid] for fid in _top(counts, n)}

    # ----------------------------------------------------------------- internals

    def _gain(self, at: float) -> float:
        """Weight of a new hit at ``at``: growing with time, so old hits decay relatively."""
        if self._origin is None:
            self._origin = at
        exponent = (at - self._origin) / self.half_life
        if exponent > _MAX_EXPONENT:
            shrink = 2.0 ** -exponent
            for table in [self._counts, *(c.hits for c in self._clusters)]:
                for key in table:
                    table[key] *= shrink
            self._origin, exponent = at, 0.0
        return 2.0 ** exponent

    def _cluster_for(self, vector: Any, at: float) -> _Cluster:
        import numpy as np

        live = self._clusters
        if live and self._means.shape[1] != vector.shape[0]:
            raise InvalidInputError(f"query vectors have {self._means.shape[1]} dimensions, "
                                    f"this one {vector.shape[0]}")
        if live:
            sims = self._means[: len(live)] @ vector
            j = int(np.argmax(sims))
            if sims[j] >= self.similarity:
                c = live[j]
                c.count += 1
                c.mean += (vector - c.mean) / min(c.count, _MEAN_MEMORY)
                c.last_at = max(c.last_at, at)
                self._means[j] = _unit(c.mean)
                return c
        c = _Cluster(vector.copy(), 1, at, {})
        if self._means is None:
            self._means = np.zeros((self.max_clusters, vector.shape[0]), dtype=np.float32)
        if len(live) < self.max_clusters:
            live.append(c)
            self._means[len(live) - 1] = vector
        else:  # replace the cluster used least recently
            j = min(range(len(live)), key=lambda i: live[i].last_at)
            live[j].alive = False
            live[j] = c
            self._means[j] = vector
        return c

    def _check_prediction(self, hits: tuple[str, ...]) -> None:
        predicted, self._last_prediction = self._last_prediction, None
        if predicted is None or not hits:
            return
        share = sum(fid in predicted for fid in hits) / len(hits)
        prev = self._coverage
        self._coverage = share if prev is None else prev + _COVERAGE_ALPHA * (share - prev)


def _add_capped(table: dict[str, float], ids: Iterable[str], gain: float, cap: int) -> None:
    """Add ``gain`` to each id; past twice ``cap`` entries keep the ``cap`` heaviest."""
    for fid in ids:
        table[fid] = table.get(fid, 0.0) + gain
    if len(table) > 2 * cap:
        keep = heapq.nlargest(cap, table.items(), key=lambda kv: kv[1])
        table.clear()
        table.update(keep)


def _top(scores: dict[str, float], n: int) -> list[str]:
    """The ``n`` best-scored keys, best first, ties by key (exact, without sorting all)."""
    if n <= 0 or not scores:
        return []
    if len(scores) > n:
        cut = heapq.nlargest(n, scores.values())[-1]
        above = [fid for fid, s in scores.items() if s > cut]
        tied = sorted(fid for fid, s in scores.items() if s == cut)
        chosen = above + tied[: n - len(above)]
    else:
        chosen = list(scores)
    chosen.sort(key=lambda fid: (-scores[fid], fid))
    return chosen


def _unit(vector: Any) -> Any:
    import numpy as np

    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm):
        raise InvalidInputError("query_vector contains NaN or infinite values")
    return v / norm if norm > 0 else v.copy()


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an int >= {minimum}, got {value!r}")
