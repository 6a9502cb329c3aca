"""The vector paths of one snapshot, and the one place that chooses which one answers.

Every path implements :class:`VectorPath`: accepted candidates per request, best-first,
or None when it cannot serve the batch (the next path answers). :meth:`VectorPaths.choose`
tries them in this order:

1. :mod:`.numpy_free_scan`, while numpy is not loaded and the file has no graph;
2. :mod:`.numpy_free_walk` of a usearch int8 graph, while numpy is not loaded (within
   its time budget) or while a background warmup is opening the graph (``defer``);
3. :mod:`.hnsw_search`, the HNSW library, once the graph is open or can open now;
4. :mod:`.exact`, the numpy scan, which always serves.

Paths 1-2 never import numpy: a fresh process's first queries stay numpy-free. Modules of
paths 3-4 import numpy and are imported only when those paths are first needed.

Before them, once numpy is loaded, a request whose filter or ``time_range`` admits few
versions is answered by :mod:`.subset_scan` (an exact scan of just those versions), per
request; the rest of the batch goes down the list above.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ...config import IndexConfig
from ...engine.snapshot import Snapshot
from . import kernels
from .hnsw_format import graph_segment
from .numpy_free_scan import NumpyFreeScan
from .numpy_free_walk import NumpyFreeWalk

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request
    from .exact import ExactScan
    from .hnsw_search import HnswSearch
    from .numpy_free_subset import NumpyFreeSubset
    from .subset_scan import SubsetScan


class VectorPath(Protocol):
    """One way to answer vector queries."""

    def ranked(self, reqs: Sequence[Request], accepts: Sequence[Acceptance]
               ) -> list[Ranked] | None:
        """Accepted (ref, score) best-first per request (``accepts[i]`` is what
        ``reqs[i]`` accepts), ``req.k`` of them when that many exist; None when this path
        cannot serve the batch."""
        ...


class VectorPaths:
    """The four vector paths of one snapshot; the numpy ones built on first use, once."""

    def __init__(self, snap: Snapshot, config: IndexConfig,
                 cache_root: Callable[[], str]) -> None:
        self.snap = snap
        self.config = config
        self.scan = NumpyFreeScan(snap, config)
        self.walk = NumpyFreeWalk(snap, config)
        self._cache_root = cache_root
        self._exact: ExactScan | None = None
        self._hnsw: HnswSearch | None = None
        self._subset: SubsetScan | None = None
        self._free_subset: NumpyFreeSubset | None = None
        self._build_lock = threading.Lock()
        self.defer = False  # set while a background warmup will open the graph

    @property
    def exact(self) -> ExactScan:
        if self._exact is None:
            from .exact import ExactScan

            with self._build_lock:
                if self._exact is None:
                    self._exact = ExactScan(self.snap, self.config)
        return self._exact

    @property
    def hnsw(self) -> HnswSearch:
        if self._hnsw is None:
            from .hnsw_search import HnswSearch

            exact = self.exact
            with self._build_lock:
                if self._hnsw is None:
                    self._hnsw = HnswSearch(self.snap, self.config, self._cache_root, exact,
                                            lambda: self.defer)
        return self._hnsw

    def has_graph(self) -> bool:
        return graph_segment(self.snap, self.config) is not None

    def choose(self) -> Iterator[VectorPath]:
        """The paths that may answer now, in the order they are tried."""
        numpy_free = not kernels.numpy_loaded()
        graph = self.has_graph()
        if numpy_free and not graph:
            yield self.scan
        if graph and (self.defer or (numpy_free and self.walk.within_budget())):
            yield self.walk
        if graph:
            yield self.hnsw
        yield self.exact

    @property
    def free_subset(self) -> NumpyFreeSubset:
        if self._free_subset is None:
            from .numpy_free_subset import NumpyFreeSubset

            self._free_subset = NumpyFreeSubset(self.snap, self.config)
        return self._free_subset

    @property
    def subset(self) -> SubsetScan:
        if self._subset is None:
            from .subset_scan import SubsetScan

            stored = self.hnsw.stored()
            with self._build_lock:
                if self._subset is None:
                    self._subset = SubsetScan(self.snap, self.config, stored)
        return self._subset

    def ranked(self, reqs: Sequence[Request], accepts: Sequence[Acceptance]) -> list[Ranked]:
        """Accepted (ref, score) best-first per request: a request whose filter or event-time
        window admits few versions is scored over just those (once numpy is loaded), the
        others by the first path that serves."""
        out: list[Ranked | None] = [None] * len(reqs)
        subset = self.subset if kernels.numpy_loaded() else self.free_subset
        for i, (req, accept) in enumerate(zip(reqs, accepts, strict=True)):
            out[i] = subset.ranked(req, accept)
        rest = [i for i, found in enumerate(out) if found is None]
        if rest:
            for path in self.choose():
                ranked = path.ranked([reqs[i] for i in rest], [accepts[i] for i in rest])
                if ranked is not None:
                    for i, found in zip(rest, ranked, strict=True):
                        out[i] = found
                    break
        return out  # type: ignore[return-value]

    def close(self) -> None:
        if self._hnsw is not None:
            self._hnsw.close()

    def graph(self) -> tuple[Any, int]:
        """The opened HNSW graph and the first gid it does not cover, not waiting while a
        warmup opens it; (None, 0) if none."""
        if not self.has_graph():
            return None, 0
        return self.hnsw.graph()
