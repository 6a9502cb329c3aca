"""Vector search without numpy, for the first queries of a fresh process.

Importing numpy costs 60-200 ms, more than scanning a small file's vectors. So while
numpy is not loaded, a file without an HNSW graph is searched here: numkong's SIMD
kernels score the mapped vector blocks (buffers, no copy) and the best candidates are
picked in Python, then accepted like any other (visibility, event time, filter). Once
numpy is loaded (by the application or by a graph search), :mod:`.vector_search` takes
over; both paths give the same hits, their scores agree to float32 rounding. A file with
a usearch int8 graph is walked by :mod:`.graph_walk` instead (:func:`walk`), its
candidates rescored here.

numkong would import numpy when it is imported itself (only to interoperate with it):
:func:`kernel` imports it with numpy hidden from the importing thread alone.
"""

from __future__ import annotations

import heapq
import math
import sys
import threading
import time
from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..engine.format import NO_ROW
from ..errors import CorruptFileError, DimensionMismatchError, InvalidInputError

if TYPE_CHECKING:
    from ..engine.snapshot import RowRef
    from .searcher import Request, Searcher

_kernel: Any = None
_kernel_lock = threading.Lock()
_FLOAT32_MAX = 3.4028234663852886e38


# ------------------------------------------------------------------ query vectors


def prepare_vector(vector: Any, dim: int | None, metric: str) -> array:
    """One query vector as float32 (``array('f')``), unit length for cosine.

    Raises DimensionMismatchError for a wrong length (``dim`` None: any length) and
    InvalidInputError for an empty vector, non-numbers, NaN/infinity, an all-zero cosine
    query or values beyond float32.
    """
    fast = _from_numpy(vector, dim, metric)
    if fast is not None:
        return fast
    values = _floats(vector)
    if not values:
        raise InvalidInputError("the query is empty: pass at least one non-empty vector")
    if dim is not None and len(values) != dim:
        raise DimensionMismatchError(
            f"query vector has {len(values)} dimensions but the stored embeddings have {dim}",
            dim, len(values))
    if not all(map(math.isfinite, values)):
        raise InvalidInputError("query vectors must not contain NaN or infinity")
    if metric == "cosine":
        norm = math.hypot(*values)  # scales internally: no overflow or underflow
        if norm == 0:
            raise InvalidInputError(
                "a cosine query vector is all zeros and has no direction: pass a non-zero vector")
        return array("f", map(norm.__rtruediv__, values))
    if max(map(abs, values)) > _FLOAT32_MAX:
        raise InvalidInputError("query vector values overflow float32: scale the vector down")
    return array("f", values)


def _from_numpy(vector: Any, dim: int | None, metric: str) -> array | None:
    """``prepare_vector`` for a numeric numpy vector, bit for bit, with numpy's loops
    (None: not one; numpy is only looked at when the caller has it loaded)."""
    np = sys.modules.get("numpy")
    if np is None or not isinstance(vector, np.ndarray) or vector.dtype.kind not in "biuf":
        return None
    if vector.ndim == 2 and vector.shape[0] == 1:
        vector = vector[0]  # a batch of one vector
    if vector.ndim != 1 or not vector.size or (dim is not None and vector.size != dim):
        return None  # the general path names the problem
    values = vector.astype(np.float64)
    if not np.isfinite(values).all():
        return None
    if metric == "cosine":
        norm = math.hypot(*values.tolist())
        if norm == 0:
            return None
        values = values / norm
    elif float(np.abs(values).max()) > _FLOAT32_MAX:
        return None
    return array("f", values.astype("<f4").tobytes())


def _floats(vector: Any) -> list[float]:
    if hasattr(vector, "tolist"):  # numpy arrays and friends
        vector = vector.tolist()
    if isinstance(vector, str | bytes) or not hasattr(vector, "__iter__"):
        raise InvalidInputError(
            f"a query vector must be a sequence of numbers, not {type(vector).__name__}")
    items = list(vector)
    if len(items) == 1 and hasattr(items[0], "__iter__") and not isinstance(items[0], str):
        items = list(items[0])  # a batch of one vector
    try:
        return list(map(float, items))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"a query vector must be a sequence of numbers ({exc})") from None


# ------------------------------------------------------------------------ kernel


class _HideNumpy:
    """A meta-path finder that makes ``import numpy`` fail in one thread only."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if threading.get_ident() == self.thread and name.partition(".")[0] == "numpy":
            raise ImportError("numpy is not needed here")


def kernel() -> Any:
    """The numkong module, imported without numpy if numpy is not loaded yet; None when
    numkong is missing."""
    global _kernel
    if _kernel is None:
        with _kernel_lock:
            if _kernel is None:
                hide = _HideNumpy()
                sys.meta_path.insert(0, hide)
                try:
                    import numkong

                    _kernel = numkong
                except ImportError:
                    _kernel = False
                finally:
                    sys.meta_path.remove(hide)
    return _kernel or None


def numpy_loaded() -> bool:
    return "numpy" in sys.modules


def active(searcher: Searcher) -> bool:
    """True when this query should take the numpy-free exact path."""
    return not numpy_loaded() and searcher._graph_ref() is None and kernel() is not None


# ------------------------------------------------------------------------ search


@dataclass(slots=True)
class _Block:
    matrix: memoryview  # (n, dim) float32
    gids: list[int]
    norms: list[float] | None = None


class LightVectors:
    """A snapshot's committed vector blocks as buffers, with their gids and norms."""

    def __init__(self, searcher: Searcher) -> None:
        snap = searcher.snap
        self.snap = snap
        self.metric = searcher.config.distance
        self.dim = snap.dim or 0
        self.blocks: list[_Block] = []
        self._delta: list[_Block] = []
        self._delta_seen = 0
        for run in snap.runs:
            vblocks = run.header["vblocks"]
            if not vblocks:
                continue
            vrow = run.part("vrow")
            order = sorted((v, row) for row, v in enumerate(vrow) if v != NO_ROW)
            start = 0
            for offset, count, _ in vblocks:
                raw = snap.view.read(offset, count * self.dim * 4, "segment:vectors")
                snap.view.prefetch(offset, count * self.dim * 4)
                gids = [run.base + row for _, row in order[start : start + count]]
                self.blocks.append(_Block(_matrix(raw, count, self.dim), gids))
                start += count

    def ranked(self, req: Request, accept: Any, take: Any) -> list[tuple[RowRef, float]]:
        """Accepted (ref, score) best-first: ``req.k`` of them when that many exist."""
        nk = kernel()
        query = _matrix(memoryview(req.vector).cast("B"), 1, self.dim)
        scored: list[tuple[float, int]] = []
        blocks = self.blocks + self._delta_blocks()
        for block in blocks:
            scored.extend(zip(self._scores(nk, query, block), block.gids, strict=True))
        scored = [(s, g) for s, g in scored if s > -math.inf]
        m = min(max(2 * req.k, 32), len(scored))
        while True:
            best = heapq.nsmallest(m, scored, key=_best_first)
            if len(best) < len(scored):  # every candidate tied with the m-th competes on
                cutoff = best[-1][0]  # frame id, as in vector_search.best
                best = sorted((sg for sg in scored if sg[0] >= cutoff), key=_best_first)
            ranked = take([(g, s) for s, g in best], req.k, accept)
            if len(ranked) >= req.k or m >= len(scored):
                return ranked
            m = min(4 * m, len(scored))

    def _delta_blocks(self) -> list[_Block]:
        """The WAL's vectors as one block, joined again only when the delta has grown (a
        writer's snapshot grows in place; versions are never removed from it)."""
        seen = len(self.snap.delta)
        if self._delta_seen != seen:
            delta = [v for v in self.snap.delta if v.embedding]
            raw = memoryview(b"".join(v.embedding for v in delta))
            self._delta = [_Block(_matrix(raw, len(delta), self.dim),
                                  [v.gid for v in delta])] if delta else []
            self._delta_seen = seen
        return self._delta

    def _scores(self, nk: Any, query: memoryview, block: _Block) -> list[float]:
        """Scores of one block, float32-rounded; higher is better (see :mod:`.vec`)."""
        if self.metric == "l2":
            dist = nk.cdist(query, block.matrix, metric="sqeuclidean")
            return _round([-d for d in memoryview(dist).tolist()[0]])
        dots = memoryview(nk.cdist(query, block.matrix, metric="dot")).tolist()[0]
        if self.metric == "ip":
            return _round(dots)
        if block.norms is None:
            block.norms = _round(memoryview(nk.norm(block.matrix, axis=1)).tolist())
        return _round([d / n if n > 0 else 0.0 for d, n in zip(dots, block.norms,
                                                                 strict=True)])


# Walks serve until they have cost about what loading numpy and usearch costs (60-90 ms
# here), then the library takes over: never more than about twice the better choice made
# in hindsight, whether the process answers one query or thousands.
WALK_BUDGET_S = 0.1


def walk(searcher: Searcher, reqs: list[Request]) -> dict[int, list[tuple[RowRef, float]]] | None:
    """Accepted vector candidates per request (keyed by id) from a numpy-free walk of the
    file's usearch int8 graph; None when the library path must answer instead.

    While a background warmup is opening the graph (``defer_vectors``), the walk serves
    whatever is loaded: the library's alternative meanwhile is an exact scan.
    """
    loading = searcher.defer_vectors
    if not loading and (numpy_loaded() or searcher._walk_seconds >= WALK_BUDGET_S):
        return None
    graph = searcher._walker
    if graph is None:
        graph = searcher._walker = LightGraph.of(searcher) or False
    if not graph:
        return None
    started = time.perf_counter()
    try:
        out = {}
        for req in reqs:
            ranked = graph.ranked(req, searcher._acceptor(req), searcher._take)
            if ranked is None:
                return None
            out[id(req)] = ranked
        return out
    finally:
        searcher._walk_seconds += time.perf_counter() - started


class LightGraph:
    """Graph candidates from :mod:`.graph_walk`, rescored in float32 with numkong."""

    def __init__(self, searcher: Searcher, graph: Any, nk: Any) -> None:
        self.searcher = searcher
        self.graph = graph
        self.nk = nk

    @classmethod
    def of(cls, searcher: Searcher) -> LightGraph | None:
        """The walker for ``searcher``'s graph, or None when it cannot serve: no usearch
        int8 graph, committed versions it does not cover, no numkong."""
        from .graph_walk import Unsupported, UsearchGraph

        snap = searcher.snap
        ref = searcher._graph_ref()
        nk = kernel()
        if (ref is None or nk is None or ref.meta.get("backend") != "usearch"
                or ref.meta.get("dtype") != "i8" or searcher.config.distance != "cosine"
                or int(ref.meta["covered"]) < snap.toc.next_gid):
            return None
        try:
            graph = UsearchGraph(snap.view.read(ref.offset, ref.length, "segment:ann"),
                                 snap.dim or 0)
        except Unsupported:
            return None
        return cls(searcher, graph, nk)

    def ranked(self, req: Request, accept: Any, take: Any) -> list[tuple[RowRef, float]] | None:
        """Accepted (ref, score) best-first, or None when ``req.k`` were not accepted among
        the first candidates (the library path widens the search) or the WAL holds vectors
        (a writer's snapshot grows; the library path merges them)."""
        from .ann_format import graph_depth
        from .graph_walk import Unsupported

        if any(v.embedding for v in self.searcher.snap.delta):
            return None
        depth = graph_depth(req.k, "i8")
        try:
            keys = self.graph.search(self.nk.dot, req.vector, depth,
                                     self.searcher.config.ann_ef_search)
        except Unsupported:
            self.searcher._walker = False
            return None
        scored = sorted(((self._score(req.vector, gid), gid) for gid in keys), key=_best_first)
        ranked = take([(g, s) for s, g in scored], req.k, accept)
        return ranked if len(ranked) >= req.k or len(keys) >= self.graph.count else None

    def _score(self, query: array, gid: int) -> float:
        """Cosine of ``query`` (unit) and the stored float32 row of ``gid``."""
        ref = self.searcher.snap.locate(gid)
        view = ref.run.vector_view(ref.row) if ref.run is not None else None
        if view is None:
            raise CorruptFileError("the ANN graph refers to a version without a vector",
                                   "segment:ann")
        row = view.cast("f")
        norm = math.sqrt(self.nk.dot(row, row))
        return _round([self.nk.dot(query, row) / norm if norm > 0 else 0.0])[0]


def _best_first(scored: tuple[float, int]) -> tuple[float, int]:
    return -scored[0], scored[1]


def _matrix(raw: memoryview, rows: int, dim: int) -> memoryview:
    return raw.cast("B").cast("f", (rows, dim))


def _round(values: list[float]) -> list[float]:
    """Values rounded to float32, as the numpy path scores."""
    return array("f", values).tolist()
