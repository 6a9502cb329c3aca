"""The ``ann`` segment's envelope (a 64-byte header, then the library's own graph bytes;
nothing after it for backend ``lists``: no graph, the cluster lists answer) and what a
graph's scalar type means for a search.

Numpy-free, so a graph can be inspected (and walked, :mod:`.graph_walk`) before numpy is
imported. Layout (little-endian): magic ``MV2ANN``, version u16, backend, metric and dtype
codes u8, dim u32, count u64, M u32, ef_construction u32, meta_len u32, payload_len u64.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import CorruptFileError
from .lists_format import DEPTH

if TYPE_CHECKING:
    from ...config import IndexConfig
    from ...engine.format import SegmentRef
    from ...engine.snapshot import Snapshot

DTYPES = ("f32", "f16", "i8")
LISTS_ONLY = "lists"  # the backend of an ``ann`` segment that holds no graph (the header
# alone): its cluster lists answer (graph_update.lists_only)
# indexes whose scores are approximate: callers rescore candidates (``LISTS_ONLY``: the
# cluster lists' int8 codes, searched as a graph, lists_search.py)
QUANTIZED = ("f16", "i8", LISTS_ONLY)

_MAGIC = b"MV2ANN\x00\x00"
_VERSION = 1
# magic, version, backend, metric, dtype, dim, count, M, ef_construction, meta_len, payload_len
_HEADER = struct.Struct("<8sHBBB3xIQIII4xQ12x")
assert _HEADER.size == 64
_BACKEND_CODES = {"hnswlib": 1, "usearch": 2, LISTS_ONLY: 3}
_METRIC_CODES = {"cosine": 0, "ip": 1, "l2": 2}
_DTYPE_CODES = {"f32": 0, "f16": 1, "i8": 2}


def pack_graph(backend: str, metric: str, dtype: str, dim: int, count: int, params: Any,
          meta_len: int, payload: list[Any]) -> bytes:
    payload_len = sum(memoryview(p).nbytes for p in payload)
    return b"".join([graph_header(backend, metric, dtype, dim, count, params, meta_len,
                                  payload_len), *payload])


def graph_header(backend: str, metric: str, dtype: str, dim: int, count: int, params: Any,
                 meta_len: int, payload_len: int) -> bytes:
    """The 64-byte header that precedes a graph's payload of ``payload_len`` bytes."""
    return _HEADER.pack(_MAGIC, _VERSION, _BACKEND_CODES[backend], _METRIC_CODES[metric],
                        _DTYPE_CODES[dtype], dim, count, params.M, params.ef_construction,
                        meta_len, payload_len)


def lists_only_header(metric: str, dim: int, count: int) -> bytes:
    """The whole ``ann`` segment of an index that is cluster lists alone: a header of
    backend ``lists`` (M and ef_construction 0) with no payload."""
    return _HEADER.pack(_MAGIC, _VERSION, _BACKEND_CODES[LISTS_ONLY], _METRIC_CODES[metric],
                        _DTYPE_CODES["i8"], dim, count, 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class GraphHeader:
    backend: str
    metric: str
    dtype: str
    dim: int
    count: int
    M: int
    ef_construction: int
    meta_len: int
    payload: memoryview


def unpack_graph(data: Any, backend: str) -> GraphHeader:
    """Parse and check the header of a blob of ``backend``; CorruptFileError if malformed."""
    view = memoryview(data)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    if view.nbytes < _HEADER.size:
        raise corrupt(f"ANN graph is truncated ({view.nbytes} bytes)")
    (magic, version, b_code, m_code, d_code, dim, count, m, efc, meta_len,
     payload_len) = _HEADER.unpack_from(view, 0)
    if magic != _MAGIC:
        raise corrupt("not an ANN graph (bad magic)")
    if version != _VERSION:
        raise corrupt(f"unsupported ANN graph version {version}")
    names = {code: name for name, code in _BACKEND_CODES.items()}
    if names.get(b_code) != backend:
        raise corrupt(f"ANN graph was built by {names.get(b_code, b_code)!r}, not {backend!r}")
    metric = {c: n for n, c in _METRIC_CODES.items()}.get(m_code)
    dtype = {c: n for n, c in _DTYPE_CODES.items()}.get(d_code)
    if metric is None or dtype is None:
        raise corrupt("ANN graph header has an unknown metric or dtype")
    if view.nbytes != _HEADER.size + payload_len or meta_len > payload_len:
        raise corrupt(
            f"ANN graph length {view.nbytes} does not match its header "
            f"({_HEADER.size + payload_len})"
        )
    return GraphHeader(backend, metric, dtype, dim, count, m, efc, meta_len, view[_HEADER.size:])


def corrupt(message: str) -> CorruptFileError:
    return CorruptFileError(message, "segment:ann")


def expect_graph(header: GraphHeader, *, dim: int | None, metric: str) -> None:
    if header.metric != metric:
        raise corrupt(f"ANN graph uses metric {header.metric!r}, expected {metric!r}")
    if dim is not None and header.dim != dim:
        raise corrupt(f"ANN graph has {header.dim} dimensions, expected {dim}")


def holds_graph(ref: SegmentRef) -> bool:
    """Whether the ``ann`` segment ``ref`` holds an HNSW graph (not backend ``lists``)."""
    return ref.meta.get("backend") != LISTS_ONLY


def graph_segment(snap: Snapshot, config: IndexConfig) -> SegmentRef | None:
    """The snapshot's ``ann`` segment, or None without one or with ``ann_backend="none"``."""
    ref = snap.toc.find("ann")
    return ref if ref is not None and config.ann_backend != "none" else None


def fetch_graph(snap: Snapshot, ref: SegmentRef) -> None:
    """Remote bytes: download the graph segment ``ref`` and, in the same round, the
    columns that place its candidates' vectors (``vrow``, ``vcrc``) and the row columns
    of every run, those a lexical query reads by the page included: beside the graph
    they cost bytes (12 % more at 1M) but not the round a query's rows take by the page
    (a 1M first vector answer: 1.29 s whole, 1.50 s by the page)."""
    if snap.view.batches:
        from ...engine.runs import ROW_PARTS, part_spans

        snap.view.fetch([(ref.offset, ref.length), *part_spans(snap.runs, "vrow"),
                         *part_spans(snap.runs, ROW_PARTS[0])], "segment:ann")


DEFAULT_EF_SEARCH = 160  # graphs built before calibration (calibrate.py) record none


def search_width(ref: SegmentRef, config: IndexConfig) -> int:
    """The search width (ef) for the graph of ``ref``: ``ann_ef_search`` when set, else
    the width calibrated for the recall target when the graph was built."""
    if config.ann_ef_search is not None:
        return config.ann_ef_search
    recorded = ref.meta.get("ef_search")
    if isinstance(recorded, int) and not isinstance(recorded, bool) and 1 <= recorded <= 1 << 16:
        return recorded
    return DEFAULT_EF_SEARCH


def round_width(ef: int, depth: int, first_depth: int) -> int:
    """The search width of a graph round asking for ``depth`` candidates, when the first
    round of the query asked for ``first_depth`` at width ``ef`` (the calibrated one).

    A round is widened when too few of its candidates were accepted (a filter, a window,
    deleted versions): the accepted results then come from deeper in the graph's ranking,
    where the calibrated width finds fewer of the true neighbours. The width grows with
    the square root of the depth ratio (twice as wide for four times the candidates):
    docs/scale.md, *Filtered recall*, has what it recovers and costs. Never narrower
    than the depth asked for."""
    if depth <= first_depth:
        return max(ef, depth)
    return max(math.ceil(ef * math.sqrt(depth / first_depth)), depth)


def graph_depth(k: int, dtype: str) -> int:
    """Candidates the first round asks for: more from a quantized graph, whose coarse
    distances misorder near neighbours until they are rescored; twice ``k`` from the
    cluster lists (dtype ``lists``)."""
    if dtype == LISTS_ONLY:
        return max(2 * k, DEPTH)
    return max(4 * k, 40) if dtype in QUANTIZED else max(2 * k, 32)
