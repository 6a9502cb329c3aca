"""The cluster lists searched without numpy: a remote memory's first vector answers.

Importing numpy costs 60-200 ms, about a third of a first vector answer from object
storage. While numpy is not loaded, a remote memory whose graph has cluster lists
(:mod:`.lists_format`) is searched here as :mod:`.lists_search` searches it with numpy:
numkong scores the query against the centroids, picks the calibrated number of nearest
lists, downloads those not held (one round), checks each one's CRC, scores its int8 codes
against the query quantized to int8 (a ranking only), and rescores the best candidates
from their float32 rows (:func:`.numpy_free_walk.rescored`). A query far from the lists
reads more of them, in the same batches.

It cannot serve (None: the numpy path answers) without numkong, when the lists do not
cover every committed version or the WAL holds vectors, when they are damaged (the numpy
path finds it again and warns), or when ``k`` candidates were not accepted after one
widening.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...config import IndexConfig
from ...engine.snapshot import Snapshot
from ...errors import CorruptFileError
from . import kernels
from .hnsw_format import LISTS_ONLY, graph_depth
from .lists_format import (
    ListsHead,
    far_from_lists,
    fetch_lists,
    lists_segment,
    probes,
    read_head,
    widenings,
)
from .numpy_free_walk import rescored

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request

WIDENINGS = 1  # rounds of 4x the candidates tried before the numpy path takes over


class NumpyFreeLists:
    """One snapshot's cluster lists, searched with numkong."""

    def __init__(self, snap: Snapshot, config: IndexConfig) -> None:
        self.snap, self.config = snap, config
        self.metric = config.distance
        self._opened: Any = None  # (header, directory, centroids), or False: cannot serve
        self._lists: dict[int, tuple[memoryview, memoryview, memoryview]] = {}

    def ranked(self, reqs: Sequence[Request], accepts: Sequence[Acceptance]
               ) -> list[Ranked] | None:
        """Accepted (ref, score) best-first per request, or None when this path cannot
        serve one of them."""
        nk = kernels.kernel()
        snap = self.snap
        if nk is None or any(v.embedding for v in snap.delta) or not self._open():
            return None
        out = []
        try:
            for req, accept in zip(reqs, accepts, strict=True):
                ranked = self._ranked(nk, req, accept)
                if ranked is None:
                    return None
                out.append(ranked)
        except CorruptFileError:
            self._opened = False
            return None
        return out

    def _open(self) -> bool:
        if self._opened is None:
            try:
                self._opened = self._read_head() or False
            except CorruptFileError:
                self._opened = False
        return bool(self._opened)

    def _read_head(self) -> ListsHead | None:
        snap = self.snap
        ref = lists_segment(snap, self.config)
        if ref is None or int(ref.meta.get("covered", -1)) < snap.toc.next_gid:
            return None
        return read_head(snap.view, ref, self.metric, snap.dim, snap.runs)

    def _ranked(self, nk: Any, req: Request, accept: Acceptance) -> Ranked | None:
        head: ListsHead = self._opened
        header = head.header
        query = memoryview(req.vector).cast("B").cast("f", (1, header.dim))
        near = memoryview(nk.cdist(query, head.centroids, metric="dot")).tolist()[0]
        quantized = _quantized(req.vector, header.dim)
        far = far_from_lists(max(near) / (math.hypot(*req.vector) or 1.0), head.floor)
        depth = graph_depth(req.k, LISTS_ONLY)
        for _ in range(WIDENINGS + 1):
            probe = probes(head.nprobe, depth, header.nlist)
            picked = heapq.nlargest(probe, range(header.nlist), key=near.__getitem__)
            self._fetch(head, picked)
            best = heapq.nlargest(depth, self._approx(nk, head, quantized, picked))
            if far:
                best = self._widened(nk, head, quantized, near, picked, best, depth)
            keys = [g for _, g in best]
            scored = rescored(self.snap, nk, self.metric, req.vector, keys, "segment:lists")
            ranked = accept.take([(g, s) for s, g in scored], req.k)
            if len(ranked) >= req.k or probe >= header.nlist:
                return ranked
            depth *= 4
        return None

    def _approx(self, nk: Any, head: ListsHead, quantized: memoryview, picked: list[int]
                ) -> list[tuple[float, int]]:
        """(approximate score, gid) of every row of lists ``picked``."""
        approx: list[tuple[float, int]] = []
        for j in picked:
            if head.directory[j][1]:
                gids, scales, codes = self._list(head, j)
                dots = memoryview(nk.cdist(quantized, codes, metric="dot")).tolist()[0]
                approx.extend(zip([s * d for s, d in zip(scales, dots, strict=True)], gids,
                                  strict=True))
        return approx

    def _widened(self, nk: Any, head: ListsHead, quantized: memoryview, near: list[float],
                 picked: list[int], best: list[tuple[float, int]], depth: int
                 ) -> list[tuple[float, int]]:
        """``best`` (of lists ``picked``) for a query far from the lists, as
        ``ListsIndex`` widens it: the other lists in batches by their centroids' scores
        until a batch changes none of the ``depth`` best."""
        read = set(picked)
        rest = sorted((j for j in range(head.header.nlist) if j not in read),
                      key=near.__getitem__, reverse=True)
        for start, end in widenings(len(read), head.header.nlist):
            batch = [j for j in rest[start:end] if head.directory[j][1]]
            if not batch:
                continue
            self._fetch(head, batch)
            wider = heapq.nlargest(depth, best + self._approx(nk, head, quantized, batch))
            if {g for _, g in wider} == {g for _, g in best}:
                return wider
            best = wider
        return best

    def _fetch(self, head: ListsHead, picked: list[int]) -> None:
        """Download the picked lists not held yet, in one round."""
        fetch_lists(self.snap, [head.span(j) for j in picked
                                if j not in self._lists and head.directory[j][1]])

    def _list(self, head: ListsHead, j: int) -> tuple[memoryview, memoryview, memoryview]:
        """(gids, scales, codes) of list ``j``, its CRC checked on first use."""
        held = self._lists.get(j)
        if held is None:
            data = head.read_list(self.snap.view, j)
            rows = head.directory[j][1]
            held = (data[: 8 * rows].cast("q"), data[8 * rows : 12 * rows].cast("f"),
                    data[12 * rows :].cast("b", (rows, head.header.dim)))
            self._lists[j] = held
        return held


def _quantized(vector: array, dim: int) -> memoryview:
    """The query as int8 codes (1, dim), for ranking rows by their codes."""
    peak = max((abs(x) for x in vector), default=0.0) or 1.0
    codes = array("b", [max(-127, min(127, round(x * 127 / peak))) for x in vector])
    return memoryview(codes).cast("B").cast("b", (1, dim))


__all__ = ["NumpyFreeLists"]
