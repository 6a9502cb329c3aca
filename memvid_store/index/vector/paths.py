"""The vector paths of one snapshot, and the one place that chooses which one answers.

Every path implements :class:`VectorPath`: accepted candidates per request, best-first,
or None when it cannot serve the batch (the next path answers). :meth:`VectorPaths.choose`
tries them in this order:

0. when the index has cluster lists (the whole index of cosine and ip memories, or
   beside a graph built before): :mod:`.numpy_free_lists` while numpy is not loaded,
   else :mod:`.lists_search` (a query scores a few lists' int8 codes: 2.4 against 5.5 ms
   a query at 1M x 128, 1.0 against 1.2 ms at 100k x 384, recall higher, and from object
   storage a query downloads a few lists, not the graph: docs/architecture.md);
1. :mod:`.numpy_free_scan`, while numpy is not loaded and the file has no graph;
2. :mod:`.numpy_free_walk` of a usearch int8 graph, while numpy is not loaded (within
   its time budget), while a background warmup is opening the graph (``defer``), or
   while the graph opens in the background (below);
3. :mod:`.hnsw_search`, the HNSW library, once the graph is open or can open now;
4. :mod:`.exact`, the numpy scan, which always serves.

Paths 1-2 and the numpy-free lists never import numpy: a fresh process's first queries
stay numpy-free. Modules of the other paths import numpy and are imported only when those
paths are first needed.

Opening a graph for the library costs what its size costs: its checksum reads every byte
(seconds for a graph of hundreds of MB out of the page cache) and usearch visits every
node. So a graph of :data:`BACKGROUND_OPEN_BYTES` or more opens in a background thread
once the library would take over (numpy is loaded, or the walks have spent their budget),
and walks answer until it is open: the first answer does not wait for the whole graph. A
query the walk cannot serve waits for the open (scanning every vector exactly would cost
more).

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
from .lists_format import lists_segment
from .numpy_free_scan import NumpyFreeScan
from .numpy_free_walk import NumpyFreeWalk

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request
    from .exact import ExactScan
    from .hnsw_search import HnswSearch
    from .lists_search import ListsSearch
    from .numpy_free_lists import NumpyFreeLists
    from .numpy_free_subset import NumpyFreeSubset
    from .subset_scan import SubsetScan

# Graphs at least this large open in the background while walks answer: below it, the
# library's open costs about what one walk costs (a few ms).
BACKGROUND_OPEN_BYTES = 1 << 20


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
        self._lists: ListsSearch | None = None
        self._free_lists: NumpyFreeLists | None = None
        self._subset: SubsetScan | None = None
        self._free_subset: NumpyFreeSubset | None = None
        self._build_lock = threading.Lock()
        self.defer = False  # set while a background warmup will open the graph
        self._opener: threading.Thread | None = None  # opens the graph in the background
        self._opener_lock = threading.Lock()
        self._opener_busy = False  # until the opener is done (it closes what close() left)
        self._closed = False

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
                                            lambda: self.defer, self._wide_subset)
        return self._hnsw

    @property
    def lists(self) -> ListsSearch:
        if self._lists is None:
            from .lists_search import ListsSearch

            exact = self.exact
            with self._build_lock:
                if self._lists is None:
                    self._lists = ListsSearch(self.snap, self.config, self._cache_root,
                                              exact, lambda: False, self._wide_subset)
        return self._lists

    @property
    def free_lists(self) -> NumpyFreeLists:
        if self._free_lists is None:
            from .numpy_free_lists import NumpyFreeLists

            self._free_lists = NumpyFreeLists(self.snap, self.config)
        return self._free_lists

    def reads_lists(self) -> bool:
        """Whether the cluster lists answer: the index has them, not found damaged."""
        return (lists_segment(self.snap, self.config) is not None
                and (self._lists is None or self._lists.usable))

    def _wide_subset(self, req: Request, accept: Acceptance) -> Ranked | None:
        from .hnsw_search import WIDE_SUBSET_MAX

        return self.subset.ranked(req, accept, WIDE_SUBSET_MAX)

    def has_graph(self) -> bool:
        return graph_segment(self.snap, self.config) is not None

    def choose(self) -> Iterator[VectorPath]:
        """The paths that may answer now, in the order they are tried."""
        numpy_free = not kernels.numpy_loaded()
        graph = self.has_graph()
        if graph and self.reads_lists():
            if numpy_free:
                yield self.free_lists
            yield self.lists
        if numpy_free and not graph:
            yield self.scan
        if graph:
            if self.defer or (numpy_free and self.walk.within_budget()):
                yield self.walk
            elif self._opening():
                yield self.walk
                self.wait_for_graph()  # the walk could not serve: the graph is worth the wait
            yield self.hnsw
        yield self.exact

    def _opening(self) -> bool:
        """Whether the graph is being opened in the background, starting that when the
        graph is large, not open yet, and walkable (a walk answers meanwhile)."""
        with self._opener_lock:
            if self._opener is not None:
                return self._opener_busy
            ref = graph_segment(self.snap, self.config)
            if (ref is None or ref.length < BACKGROUND_OPEN_BYTES or self._closed
                    or not self.walk.walkable()):
                return False
            hnsw = self.hnsw
            if hnsw.opened:
                return False
            self._opener = threading.Thread(target=self._open_graph, args=(hnsw,),
                                            name="memvid-graph-open", daemon=True)
            self._opener_busy = True
            self._opener.start()
            return True

    def _open_graph(self, hnsw: HnswSearch) -> None:
        try:
            hnsw.open()
        except Exception:  # the next query that needs the graph opens it again, and raises
            pass
        finally:
            with self._opener_lock:
                self._opener_busy = False
                if self._closed:  # closed while opening: the graph is this thread's to close
                    hnsw.close()

    def wait_for_graph(self) -> None:
        """Return once a background open of the graph (if any) has finished."""
        opener = self._opener
        if opener is not None:
            opener.join()

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

            hnsw = self.hnsw
            with self._build_lock:
                if self._subset is None:
                    self._subset = SubsetScan(self.snap, self.config, hnsw.stored)
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
        with self._opener_lock:
            self._closed = True
            if self._opener_busy:
                return  # the opener closes the graph once it is open
        if self._hnsw is not None:
            self._hnsw.close()
        if self._lists is not None:
            self._lists.close()

    def graph(self) -> tuple[Any, int]:
        """The opened HNSW graph and the first gid it does not cover, not waiting while a
        warmup opens it; (None, 0) if none."""
        if not self.has_graph():
            return None, 0
        return self.hnsw.graph()
