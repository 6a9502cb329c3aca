"""Approximate nearest-neighbour search (HNSW) behind one interface, two libraries.

``build`` returns a self-contained blob: a 64-byte header (magic, backend, metric, dtype,
dim, count, graph parameters) followed by the library's graph. ``open`` reads it back:

* usearch: zero-copy. ``Index.restore(view=True)`` maps the graph straight from the
  caller's buffer (e.g. a slice of an mmap of the .mv2 file at any offset); the
  returned index keeps a memoryview of that buffer until ``close()``, so an mmap under
  it cannot be closed first (``mmap.close()`` raises BufferError instead of crashing).
* hnswlib: it only loads from a file path, starting at offset 0. The blob therefore
  stores hnswlib's own state arrays (the ones its pickle support uses) and ``open``
  passes read-only numpy views of them to ``hnswlib.Index(params)``: one memcpy into
  hnswlib's memory, no file written (``scratch_dir`` is unused), 2-3x faster
  than writing a scratch file and calling ``load_index``.

Search returns the caller's labels (u64 gids, below 2**63) and scores in the convention
of :mod:`.scoring`: higher is better, equal to the exact scores up to
float error (libraries' distances converted: ``1 - d`` for cosine and ip, ``-d`` for
squared l2). Rows are ordered by score descending, then label ascending.

Builds are deterministic with ``AnnParams.build_threads == 1`` (the default): same
vectors, labels and parameters give the same bytes. With more threads the graph depends
on thread timing (on 2 cores, 2 threads built 20k x 384 vectors only ~15% faster).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ...cpus import usable_cpus
from ...engine.distinct import distinct
from ...errors import (
    ClosedError,
    DimensionMismatchError,
    InvalidInputError,
    InvalidTypeError,
    MissingDependencyError,
)
from .hnsw_format import (
    DTYPES,
    GraphHeader,
    corrupt,
    expect_graph,
    graph_header,
    pack_graph,
    unpack_graph,
)
from .scoring import check_metric

__all__ = ["BACKENDS", "AnnBackend", "AnnIndex", "AnnParams", "get_backend"]

_MAX_LABEL = (1 << 63) - 1

_ALIGN = 64

_HNSW_SPACES = {"cosine": "cosine", "ip": "ip", "l2": "l2"}
_USEARCH_METRICS = {"cosine": "cos", "ip": "ip", "l2": "l2sq"}
_HNSW_ARRAYS = ("label_lookup_external", "label_lookup_internal", "element_levels",
                "data_level0", "link_lists")
_HNSW_ARRAY_DTYPES = {"<u8", "<u4", "<i4", "|i1"}


@dataclass(frozen=True, slots=True)
class AnnParams:
    """HNSW parameters.

    ``M``: graph degree; ``ef_construction``: search width while inserting;
    ``ef_search``: default search width (raised to k when k is larger); ``dtype``:
    stored scalar type (usearch only besides ``"f32"``): ``"f16"`` halves the vectors'
    size, ``"i8"`` quarters it and needs the cosine metric (vectors are normalised and
    scaled into int8, so scores are coarse: rescore the candidates exactly);
    ``build_threads``: threads for build/extend, 1 = deterministic, 0 = all cores.
    """

    M: int = 16
    ef_construction: int = 100
    ef_search: int = 96
    dtype: str = "f32"
    build_threads: int = 1

    def __post_init__(self) -> None:
        for name, low in (("M", 2), ("ef_construction", 1), ("ef_search", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidInputError(
                    f"AnnParams.{name} must be an integer >= {low}, got {value!r}")
        if self.M > 4096:
            raise InvalidInputError(f"AnnParams.M must be <= 4096, got {self.M}")
        if self.dtype not in DTYPES:
            raise InvalidInputError(f"AnnParams.dtype must be one of {DTYPES}, got {self.dtype!r}")
        if not isinstance(self.build_threads, int) or self.build_threads < 0:
            raise InvalidInputError(
                f"AnnParams.build_threads must be an integer >= 0, got {self.build_threads!r}"
            )


@runtime_checkable
class AnnIndex(Protocol):
    """An opened graph. ``search`` is thread-safe; ``close`` is idempotent."""

    backend: str
    count: int
    dim: int
    metric: str

    def search(
        self, queries: np.ndarray, k: int, *, ef: int | None = None, ordered: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels (nq, k) int64 (-1 where fewer than k results) and float32 scores
        (nq, k) (-inf where the label is -1), best first (ties by label; ``ordered=False``:
        in the library's order, for a caller that sorts anyway); k may exceed ``count``."""
        ...

    def close(self) -> None:
        ...


@runtime_checkable
class AnnBackend(Protocol):
    """Builds, extends and opens serialized graphs of one library."""

    name: str

    def build(self, vectors: Any, labels: Any, *, metric: str, params: AnnParams) -> bytes:
        ...

    def extend(self, data: Any, vectors: Any, labels: Any, *, metric: str,
               params: AnnParams) -> bytes:
        ...

    def open(self, data: memoryview | bytes, *, dim: int, metric: str, params: AnnParams,
             scratch_dir: str) -> AnnIndex:
        ...


# --------------------------------------------------------------------------- helpers


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise MissingDependencyError(
            f"{package} is required for approximate vector search: pip install {package}"
        ) from exc


def _threads(params: AnnParams) -> int:
    return params.build_threads or usable_cpus()


def _check_vectors(vectors: Any, dim: int | None = None) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 (n, dim) array of finite values."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise InvalidInputError(f"vectors must be a 2-D array (n, dim), got {arr.ndim} dimensions")
    if arr.shape[1] == 0:
        raise InvalidInputError("vectors must have at least one dimension")
    if dim is not None and arr.shape[1] != dim:
        raise DimensionMismatchError(
            f"vectors have {arr.shape[1]} dimensions but the graph has {dim}", dim,
            int(arr.shape[1]),
        )
    if not np.isfinite(arr).all():
        raise InvalidInputError("vectors must not contain NaN or infinity")
    return arr


def _check_labels(labels: Any, n: int) -> np.ndarray:
    """``labels`` as unique uint64 values in [0, 2**63)."""
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise InvalidInputError(f"need one label per vector ({n}), got shape {arr.shape}")
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if arr.dtype.kind not in "iu":
        raise InvalidTypeError(f"labels must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise InvalidInputError("labels must be >= 0")
    if int(arr.max()) > _MAX_LABEL:
        raise InvalidInputError("labels must be < 2**63")
    out = arr.astype(np.uint64)
    if distinct(out).size != n:
        raise InvalidInputError("labels must be unique")
    return out


def _graph_args(backend: str, data: Any, dim: int | None, metric: str,
                params: AnnParams | None) -> tuple[AnnParams, Any]:
    """Validated (params, graph header) of a stored graph about to be opened or extended."""
    check_metric(metric)
    params = _check_params(params)
    header = unpack_graph(data, backend)
    expect_graph(header, dim=dim, metric=metric)
    return params, header


def _extend_args(backend: str, data: Any, vectors: Any, labels: Any, metric: str,
                 params: AnnParams | None) -> tuple[AnnParams, Any, np.ndarray, np.ndarray]:
    """Validated (params, graph header, new vectors, new labels) for ``extend``."""
    params, header = _graph_args(backend, data, None, metric, params)
    x = _check_vectors(vectors, header.dim)
    return params, header, x, _check_labels(labels, x.shape[0])


def _check_params(params: AnnParams | None) -> AnnParams:
    if params is None:
        return AnnParams()
    if not isinstance(params, AnnParams):
        raise InvalidTypeError(f"params must be an AnnParams, got {type(params).__name__}")
    return params


def _search_threads(nq: int) -> int:
    """Threads for a batch of ``nq`` queries: the libraries' own default (0) would use
    every CPU of the machine, not the ones this process may run on."""
    return 1 if nq < 16 else usable_cpus()


def _prepare_search(queries: Any, k: int, dim: int) -> tuple[np.ndarray, int]:
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    if q.ndim != 2:
        raise InvalidInputError(f"queries must be a 2-D array (nq, dim), got {q.ndim} dimensions")
    if q.shape[1] != dim:
        raise DimensionMismatchError(
            f"query vectors have {q.shape[1]} dimensions but the graph has {dim}", dim,
            int(q.shape[1]),
        )
    k = int(k)
    if k < 0:
        raise InvalidInputError(f"k must be >= 0, got {k}")
    return q, k


def _finish(labels: np.ndarray, scores: np.ndarray, k: int, ordered: bool = True
            ) -> tuple[np.ndarray, np.ndarray]:
    """Pad rows to k columns; ``ordered``: order each row by score desc then label asc."""
    nq, got = labels.shape
    if got < k:
        labels = np.concatenate([labels, np.full((nq, k - got), -1, np.int64)], axis=1)
        scores = np.concatenate([scores, np.full((nq, k - got), -np.inf, np.float32)], axis=1)
    if not ordered or k < 2 or (scores[:, :-1] > scores[:, 1:]).all():
        return labels, scores  # the library's order, with no tie to break
    order = np.lexsort((labels, -scores), axis=-1)
    rows = np.arange(nq)[:, None]
    return labels[rows, order], scores[rows, order]


def _to_scores(distances: np.ndarray, metric: str) -> np.ndarray:
    d = np.asarray(distances, dtype=np.float32)
    return (np.float32(0.0) if metric == "l2" else np.float32(1.0)) - d


class _BaseIndex:
    backend = ""

    def __init__(self, header: GraphHeader, params: AnnParams) -> None:
        self.count = header.count
        self.dim = header.dim
        self.metric = header.metric
        self.dtype = header.dtype
        self.ef_search = params.ef_search
        self._lock = threading.Lock()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"the {self.backend} ANN index is closed")

    def search(
        self, queries: np.ndarray, k: int, *, ef: int | None = None, ordered: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :class:`AnnIndex`. ``ef`` overrides the search width of this call."""
        q, k = _prepare_search(queries, k, self.dim)
        if ef is not None and (not isinstance(ef, int) or ef < 1):
            raise InvalidInputError(f"ef must be an integer >= 1, got {ef!r}")
        nq = q.shape[0]
        kk = min(k, self.count)
        with self._lock:
            self._check_open()
            if kk == 0 or nq == 0:
                labels = np.full((nq, 0), -1, np.int64)
                scores = np.full((nq, 0), -np.inf, np.float32)
            else:
                labels, scores = self._search(q, kk, max(ef or self.ef_search, kk))
        return _finish(labels, scores, k, ordered)

    def _search(self, q: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    def _release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _BaseIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.count} vectors"
        return f"<{self.backend} ANN index {self.metric} dim={self.dim} {self.dtype}, {state}>"


# --------------------------------------------------------------------------- hnswlib


class _HnswlibIndex(_BaseIndex):
    backend = "hnswlib"

    def __init__(self, header: GraphHeader, params: AnnParams, index: Any) -> None:
        super().__init__(header, params)
        self._index = index

    def _search(self, q: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
        index = self._index
        index.set_ef(ef)
        threads = 1 if q.shape[0] < 16 else -1
        try:
            labels, dist = index.knn_query(q, k=k, num_threads=threads)
        except RuntimeError:  # some query reached fewer than k vectors
            labels = np.full((q.shape[0], k), -1, np.int64)
            dist = np.full((q.shape[0], k), np.inf, np.float32)
            for i in range(q.shape[0]):
                got_labels, got_dist = _hnsw_longest(index, q[i:i + 1], k)
                labels[i, : got_labels.size] = got_labels
                dist[i, : got_dist.size] = got_dist
            scores = _to_scores(dist, self.metric)
            scores[labels < 0] = -np.inf
            return labels, scores
        return labels.astype(np.int64), _to_scores(dist, self.metric)

    def _release(self) -> None:
        self._index = None


def _hnsw_longest(index: Any, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The longest result list (<= k) hnswlib returns for one query."""
    best = (np.zeros(0, np.int64), np.zeros(0, np.float32))
    lo, hi = 0, k  # lo: known to succeed, hi: known to fail
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            labels, dist = index.knn_query(q, k=mid, num_threads=1)
        except RuntimeError:
            hi = mid
        else:
            lo = mid
            best = (labels[0].astype(np.int64), dist[0])
    return best


class _HnswlibBackend:
    """hnswlib (float32 only)."""

    name = "hnswlib"

    def _check_dtype(self, params: AnnParams) -> None:
        if params.dtype != "f32":
            raise InvalidInputError(
                "hnswlib stores float32 vectors only: use dtype='f32' or the usearch backend"
            )

    def build(self, vectors: Any, labels: Any, *, metric: str,
              params: AnnParams | None = None) -> bytes:
        hnswlib = _import("hnswlib")
        check_metric(metric)
        params = _check_params(params)
        self._check_dtype(params)
        x = _check_vectors(vectors)
        keys = _check_labels(labels, x.shape[0])
        index = hnswlib.Index(space=_HNSW_SPACES[metric], dim=x.shape[1])
        index.init_index(max_elements=x.shape[0], M=params.M,
                         ef_construction=params.ef_construction, random_seed=100)
        if x.shape[0]:
            index.add_items(x, keys, num_threads=_threads(params))
        return self._serialize(index, metric, x.shape[1], params)

    def extend(self, data: Any, vectors: Any, labels: Any, *, metric: str,
               params: AnnParams | None = None) -> bytes:
        params, header, x, keys = _extend_args(self.name, data, vectors, labels, metric, params)
        state = _hnsw_state(header)
        if np.isin(keys, state["label_lookup_external"]).any():
            raise InvalidInputError("some labels are already in the ANN graph")
        if x.shape[0] == 0:
            return bytes(memoryview(data).cast("B"))
        index = _hnsw_index(header, state)
        index.resize_index(header.count + x.shape[0])
        index.add_items(x, keys, num_threads=_threads(params))
        graph_params = AnnParams(M=header.M, ef_construction=header.ef_construction,
                                 ef_search=params.ef_search)
        return self._serialize(index, metric, header.dim, graph_params)

    def open(self, data: memoryview | bytes, *, dim: int, metric: str,
             params: AnnParams | None = None, scratch_dir: str = "") -> _HnswlibIndex:
        params, header = _graph_args(self.name, data, dim, metric, params)
        state = _hnsw_state(header)
        state["ef"] = params.ef_search
        index = _hnsw_index(header, state)
        return _HnswlibIndex(header, params, index)

    def _serialize(self, index: Any, metric: str, dim: int, params: AnnParams) -> bytes:
        state = dict(index.__getstate__()[0])
        state.update(num_threads=1, ef=params.ef_search)  # machine-independent bytes
        arrays = []
        offset = 0
        chunks: list[Any] = []
        for name in _HNSW_ARRAYS:
            arr = np.ascontiguousarray(state.pop(name))
            arrays.append([name, arr.dtype.str, offset, int(arr.size)])
            chunks.append(arr)
            offset += _aligned(arr.nbytes)
        meta = json.dumps({"state": state, "arrays": arrays}, sort_keys=True).encode()
        base = _aligned(len(meta))
        payload: list[Any] = [meta, bytes(base - len(meta))]
        for arr in chunks:
            payload.append(arr.view(np.uint8).reshape(-1))
            payload.append(bytes(_aligned(arr.nbytes) - arr.nbytes))
        # array offsets are relative to the end of the (aligned) JSON meta
        count = int(state["cur_element_count"])
        return pack_graph(self.name, metric, "f32", dim, count, params, base, payload)


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _hnsw_state(header: GraphHeader) -> dict[str, Any]:
    """hnswlib's state dict with numpy views of the arrays in the blob (no copy)."""
    payload = header.payload
    try:
        meta = json.loads(bytes(payload[: header.meta_len]).decode().rstrip("\x00"))
        state = dict(meta["state"])
        arrays = meta["arrays"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise corrupt(f"hnswlib graph metadata is unreadable ({exc})") from None
    body = payload[header.meta_len:]
    for entry in arrays:
        try:
            name, dtype, offset, count = entry
            dt = np.dtype(dtype)
        except (ValueError, TypeError) as exc:
            raise corrupt(f"hnswlib graph array entry is malformed ({exc})") from None
        if dtype not in _HNSW_ARRAY_DTYPES or offset < 0 or count < 0 \
                or offset + count * dt.itemsize > body.nbytes:
            raise corrupt(f"hnswlib graph array {name!r} is out of bounds")
        state[name] = np.frombuffer(body, dtype=dt, count=count, offset=offset)
    missing = [n for n in _HNSW_ARRAYS if n not in state]
    if missing or state.get("cur_element_count") != header.count:
        raise corrupt("hnswlib graph metadata does not match its header")
    return state


def _hnsw_index(header: GraphHeader, state: dict[str, Any]) -> Any:
    hnswlib = _import("hnswlib")
    state["max_elements"] = header.count
    try:
        index = hnswlib.Index(state)
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise corrupt(
            f"hnswlib could not load the graph ({exc}); rebuild the vector index"
        ) from None
    if index.get_current_count() != header.count or index.dim != header.dim:
        raise corrupt("hnswlib graph does not match its header")
    return index


# --------------------------------------------------------------------------- usearch


class _UsearchIndex(_BaseIndex):
    backend = "usearch"

    def __init__(self, header: GraphHeader, params: AnnParams, index: Any,
                 buffer: memoryview) -> None:
        super().__init__(header, params)
        self._index = index
        self._buffer = buffer  # the viewed bytes must outlive the index

    def _search(self, q: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
        index = self._index
        if index.expansion_search != ef:
            index.expansion_search = ef
        threads = _search_threads(q.shape[0])
        if hasattr(index, "search_many"):  # the compiled index (see _usearch_restore)
            keys, dist, counts = index.search_many(q, k, False, threads)[:3]
        else:
            found = index.search(q, k, threads=threads)
            keys, dist = found.keys, found.distances
            counts = getattr(found, "counts", [np.asarray(keys).reshape(q.shape[0], -1).shape[1]])
        keys = np.asarray(keys).reshape(q.shape[0], -1)[:, :k]
        dist = np.asarray(dist).reshape(q.shape[0], -1)[:, :k]
        counts = np.asarray(counts).reshape(-1)
        if keys.shape[1] == k and (counts >= k).all():  # every row full: nothing to mask
            return keys.astype(np.int64), _to_scores(dist, self.metric)
        labels = np.full((q.shape[0], k), -1, np.int64)
        scores = np.full((q.shape[0], k), -np.inf, np.float32)
        valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
        labels[:, : keys.shape[1]] = np.where(valid, keys.astype(np.int64), -1)
        scores[:, : keys.shape[1]] = np.where(valid, _to_scores(dist, self.metric), -np.inf)
        return labels, scores

    def _release(self) -> None:
        self._index.reset()
        self._index = None
        self._buffer.release()


class _UsearchBackend:
    """usearch (float32 or float16 storage)."""

    name = "usearch"

    def build(self, vectors: Any, labels: Any, *, metric: str,
              params: AnnParams | None = None) -> bytes:
        _import("usearch.index")  # a missing library is said before the inputs are checked
        check_metric(metric)
        params = _check_params(params)
        x = _check_vectors(vectors)
        keys = _check_labels(labels, x.shape[0])
        _check_quantization(params.dtype, metric)
        index = _new_usearch_graph(x.shape[1], metric, params)
        if x.shape[0]:
            index.add(keys, _for_graph(x, params.dtype), threads=params.build_threads)
        return self._serialize(index, metric, params.dtype, x.shape[1], params)

    def extend(self, data: Any, vectors: Any, labels: Any, *, metric: str,
               params: AnnParams | None = None) -> bytes:
        params, header, x, keys = _extend_args(self.name, data, vectors, labels, metric, params)
        if x.shape[0] == 0:
            return bytes(memoryview(data).cast("B"))
        index = _usearch_restore(header, view=False, key_lookups=True)
        if np.asarray(index.contains(keys)).any():
            raise InvalidInputError("some labels are already in the ANN graph")
        index.expansion_add = header.ef_construction
        index.add(keys, _for_graph(x, header.dtype), threads=params.build_threads)
        graph_params = AnnParams(M=header.M, ef_construction=header.ef_construction,
                                 ef_search=params.ef_search, dtype=header.dtype)
        return self._serialize(index, metric, header.dtype, header.dim, graph_params)

    def open(self, data: memoryview | bytes, *, dim: int, metric: str,
             params: AnnParams | None = None, scratch_dir: str = "") -> _UsearchIndex:
        params, header = _graph_args(self.name, data, dim, metric, params)
        index = _usearch_restore(header, view=True, key_lookups=False)
        index.expansion_search = params.ef_search
        return _UsearchIndex(header, params, index, header.payload)

    def _serialize(self, index: Any, metric: str, dtype: str, dim: int,
                   params: AnnParams) -> bytes:
        blob = index.save()
        return pack_graph(self.name, metric, dtype, dim, len(index), params, 0, [blob])

    def add_streamed(self, data: Any | None, batches: Iterable[tuple[np.ndarray, np.ndarray]],
                     *, metric: str, dim: int, params: AnnParams) -> StreamedGraph:
        """A graph in memory: ``data``'s (None: a new one) with the ``(vectors, labels)``
        batches added one at a time (never a copy of them all), searchable for measuring
        before ``StreamedGraph.save`` writes it out."""
        params = _check_params(params)
        if data is None:
            check_metric(metric)
            _check_quantization(params.dtype, metric)
            index = _new_usearch_graph(dim, metric, params)
            graph_params = params
        else:
            _, header = _graph_args(self.name, data, dim, metric, params)
            index = _usearch_restore(header, view=False, key_lookups=True)
            index.expansion_add = header.ef_construction
            graph_params = AnnParams(M=header.M, ef_construction=header.ef_construction,
                                     ef_search=params.ef_search, dtype=header.dtype)
        header = GraphHeader(self.name, metric, graph_params.dtype, dim, len(index),
                             graph_params.M, graph_params.ef_construction, 0, memoryview(b""))
        graph = StreamedGraph(index, _UsearchIndex(header, graph_params, index,
                                                   memoryview(b"")), header, graph_params,
                              params.build_threads, check=data is not None)
        graph.add(batches)
        return graph


@dataclass(slots=True)
class StreamedGraph:
    """A usearch graph built in memory by ``add_streamed``: ``view`` searches it."""

    index: Any
    view: _UsearchIndex
    header: GraphHeader
    params: AnnParams
    threads: int
    check: bool  # whether added labels may already be in the graph (an extended one)

    def add(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """Add ``(vectors, labels)`` batches, one at a time."""
        index, dim = self.index, self.header.dim
        for vectors, labels in batches:
            x = _check_vectors(vectors, dim)
            keys = _check_labels(labels, x.shape[0])
            if self.check and np.asarray(index.contains(keys)).any():
                raise InvalidInputError("some labels are already in the ANN graph")
            index.add(keys, _for_graph(x, self.params.dtype), threads=self.threads)
        self.header = replace(self.header, count=len(index))
        self.view.count = len(index)

    def save(self, path: str | None = None) -> tuple[bytes, memoryview | int]:
        """Write the payload to ``path`` (None: into memory) and free the graph; return
        the header that precedes the payload in the file, and the payload's length (or
        the payload itself when saved into memory)."""
        payload = self.index.save(path)
        self.index.reset()
        size = os.path.getsize(path) if path is not None else len(payload)
        h = self.header
        header = graph_header("usearch", h.metric, h.dtype, h.dim, h.count, self.params, 0,
                              size)
        return header, (size if path is not None else memoryview(payload))


def _new_usearch_graph(dim: int, metric: str, params: AnnParams) -> Any:
    """An empty usearch graph to build: without the key -> node table (16+ bytes a vector,
    about 32 MB at 1M) where usearch allows it, as a new graph's labels are unique gids
    and nothing looks them up until it is extended (a restored copy has the table)."""
    new = _import("usearch.index").Index
    options = {"ndim": dim, "metric": _usearch_metric(metric, params.dtype),
               "dtype": params.dtype, "connectivity": params.M,
               "expansion_add": params.ef_construction, "expansion_search": params.ef_search}
    try:
        return new(**options, enable_key_lookups=False)
    except TypeError:  # older usearch: always with the table
        return new(**options)


def _check_quantization(dtype: str, metric: str) -> None:
    if dtype == "i8" and metric != "cosine":
        raise InvalidInputError(
            f"int8 graphs need the cosine metric (got {metric!r}): use dtype 'f32' or 'f16'")


def _usearch_metric(metric: str, dtype: str) -> str:
    """usearch's metric for a graph: an int8 graph holds unit rows (see ``_for_graph``), so
    its cosine is an inner product, which skips two norms per distance."""
    return "ip" if dtype == "i8" else _USEARCH_METRICS[metric]


def _for_graph(x: np.ndarray, dtype: str) -> np.ndarray:
    """Rows as the graph stores them: unit length for int8, whose range is [-1, 1]."""
    if dtype != "i8":
        return x
    from .scoring import row_norms

    norms = row_norms(x)
    return x / np.where(norms > 0, norms, np.float32(1.0))[:, None]


def _usearch_restore(header: GraphHeader, *, view: bool, key_lookups: bool) -> Any:
    """The graph as usearch's compiled index (a view of ``header.payload`` or a copy).

    A view for search skips the usearch package's Python layer when it can
    (:mod:`.usearch_view`); building and extending go through ``usearch.index``.
    """
    from .usearch_view import compiled

    native = compiled() if view and not key_lookups else None
    if native is not None:
        meta = _check_usearch_meta(header, native.index_dense_metadata_from_buffer)
        try:
            index = native.Index(ndim=header.dim, dtype=meta["kind_scalar"],
                                 connectivity=header.M, metric_kind=meta["kind_metric"],
                                 enable_key_lookups=False)
            index.view_index_from_buffer(header.payload)
        except (RuntimeError, ValueError) as exc:
            raise corrupt(f"usearch could not load the graph ({exc})") from None
    else:
        usearch_index = _import("usearch.index")
        _check_usearch_meta(header, usearch_index.Index.metadata)
        try:
            try:
                index = usearch_index.Index.restore(header.payload, view=view,
                                                    enable_key_lookups=key_lookups)
            except TypeError:  # older usearch: no enable_key_lookups
                index = usearch_index.Index.restore(header.payload, view=view)
        except (RuntimeError, ValueError) as exc:
            raise corrupt(f"usearch could not load the graph ({exc})") from None
    if index is None or len(index) != header.count:
        raise corrupt("usearch graph does not match its header")
    return index


def _check_usearch_meta(header: GraphHeader, read: Callable[[Any], Any]) -> dict[str, Any]:
    """usearch's metadata of the graph (``read(buffer)``), checked against our header."""
    try:
        meta = read(header.payload)
    except (RuntimeError, ValueError) as exc:
        raise corrupt(f"usearch graph is unreadable ({exc})") from None
    expected_metric = _usearch_metric(header.metric, header.dtype)
    if (not meta or meta["dimensions"] != header.dim or meta["count_present"] != header.count
            or str(meta["kind_scalar"].name).lower() != header.dtype
            or str(meta["kind_metric"].name).lower() != expected_metric):
        raise corrupt("usearch graph does not match its header")
    return meta


# --------------------------------------------------------------------------- registry


BACKENDS: dict[str, AnnBackend] = {"hnswlib": _HnswlibBackend(), "usearch": _UsearchBackend()}
_MODULES = {"hnswlib": "hnswlib", "usearch": "usearch.index"}


def get_backend(name: str) -> AnnBackend:
    """The backend called ``name``; ValueError if unknown, MissingDependencyError if its
    library is not installed."""
    backend = BACKENDS.get(name) if isinstance(name, str) else None
    if backend is None:
        raise InvalidInputError(
            f"unknown ANN backend {name!r}: use one of {', '.join(map(repr, BACKENDS))}"
        )
    if not _installed(_MODULES[name]):
        _import(_MODULES[name])  # raises MissingDependencyError
    return backend


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (usearch's package layer
    costs ~50 ms that a search through :mod:`.usearch_view` does not need)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False
