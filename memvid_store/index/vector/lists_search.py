"""Vector search over the ``lists`` segment: the vector index of cosine and ip memories,
local or read from object storage (where a query downloads a few lists, not a graph).

:class:`ListsIndex` answers the graph library's ``search`` call from the cluster lists
(:mod:`.lists_format`): a query's nearest centroids name the lists it reads, downloaded
together (one round of requests for the whole batch), each list's CRC checked before its
rows are used; its best rows by their int8 codes are the candidates.
:class:`ListsSearch` is the graph search (:class:`.hnsw_search.HnswSearch`) over that
index, so everything else is the graph's: candidates rescored with their stored float32
vectors (every score equals the exact path's), newer vectors scanned exactly, visibility
and filters applied, a round widened x4 when too few pass (reading proportionally more
lists).

A query reads the number of lists calibrated when the lists were built (``nprobe``, for
the recall target) at the first round's depth (:data:`DEPTH`), more for a deeper round
(``lists_format.probes``). A query farther from every centroid than the calibration's
rows (``lists_format.far_from_lists``: a topic the memory does not hold, whose nearest
rows are weak matches spread over many lists) reads more lists, as many again at a time,
until the last batch changed none of its candidates. When the header, the directory or a
list fails its checksum the lists are not used again (the graph beside them answers, or
the exact scan when they are the whole index, with a warning naming ``mv2 doctor
--repair``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import CorruptFileError
from ..damage import warn_damaged
from .graph_walk import SLOW_READ_S
from .hnsw_format import LISTS_ONLY, graph_segment, holds_graph
from .hnsw_search import HnswSearch
from .lists_build import list_arrays
from .lists_format import (
    DEPTH,
    far_from_lists,
    fetch_lists,
    lists_segment,
    probes,
    read_head,
    widenings,
)
from .lists_rank import merged_rows, nearest_lists, top_rows

if TYPE_CHECKING:
    from ..acceptance import Acceptance, Ranked
    from ..requests import Request


class ListsIndex:
    """The cluster lists of one ``lists`` segment, searched like a quantized graph."""

    dtype = LISTS_ONLY  # candidates are rescored exactly (hnsw_format.QUANTIZED)

    def __init__(self, snap: Any, ref: Any, metric: str, dim: int | None) -> None:
        self.snap, self.view = snap, snap.view
        self.head = head = read_head(snap.view, ref, metric, dim, snap.runs)
        self.header = head.header
        self.sizes = np.array([rows for _, rows, _ in head.directory], np.int64)
        self.centroids = np.frombuffer(head.centroids, "<f4").reshape(self.header.nlist, -1)
        self.count = self.header.count
        self.covered = self.header.covered
        self.nprobe = head.nprobe
        self._checked: dict[int, tuple[np.ndarray, ...]] = {}  # list -> columns, checked
        self._lock = threading.Lock()

    def search(self, queries: np.ndarray, k: int, *, ef: int, ordered: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
        """(gids, approximate scores) of the ``k`` best rows per query, -1 / -inf padded,
        from the lists of the ``probes(nprobe, ef)`` nearest centroids (``ef``: the round's
        depth, as ``ListsSearch`` asks)."""
        probe = probes(self.nprobe, ef, self.header.nlist)
        units = queries / np.maximum(np.linalg.norm(queries, axis=1), 1e-30)[:, None]
        centroid_scores = units @ self.centroids.T
        near = nearest_lists(centroid_scores, probe)
        self._fetch(sorted(set(near.ravel().tolist())))
        labels = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        for i, query in enumerate(queries):
            probed = [j for j in near[i].tolist() if self.sizes[j]]
            self._read_ahead(probed)
            found = top_rows(query, [self._rows(j) for j in probed], k)
            if far_from_lists(float(centroid_scores[i].max()), self.head.floor):
                found = self._widened(query, centroid_scores[i], near[i], found, k)
            gids, approx = found
            labels[i, : len(gids)] = gids
            scores[i, : len(gids)] = approx
        return labels, scores

    def _widened(self, query: np.ndarray, centroid_scores: np.ndarray, first: np.ndarray,
                 found: tuple[np.ndarray, np.ndarray], depth: int
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``found`` (the ranking of lists ``first``) for a query far from the lists: the
        other lists read in batches by their centroids' scores (``widenings``) until a
        batch changes none of the ``depth`` best."""
        read = set(first.tolist())
        rest = [j for j in np.argsort(-centroid_scores, kind="stable").tolist()
                if j not in read]
        for start, end in widenings(len(read), self.header.nlist):
            batch = [j for j in rest[start:end] if self.sizes[j]]
            if not batch:
                continue
            self._fetch(batch)
            self._read_ahead(batch)
            wider = merged_rows(found, top_rows(query, [self._rows(j) for j in batch], depth),
                                depth)
            if set(wider[0].tolist()) == set(found[0].tolist()):
                return wider
            found = wider
        return found

    def _fetch(self, lists: list[int]) -> None:
        """Download the lists not held yet, in one round."""
        fetch_lists(self.snap, [self.head.span(j) for j in lists
                                if j not in self._checked and self.sizes[j]])

    def _read_ahead(self, lists: list[int]) -> None:
        """From a mapped file: when the first of a query's lists is not in memory (its
        first read takes as long as a read from disk: the system reclaimed its pages, or
        they were never read), tell the kernel the others' pages before they are scored,
        so they are read together instead of one fault after another."""
        if not self.view.mmapped or len(lists) < 2:
            return
        offset, _ = self.head.span(lists[0])
        began = time.perf_counter()
        _ = self.view.read(offset, 1, "segment:lists")[0]
        if time.perf_counter() - began > SLOW_READ_S:
            for j in lists[1:]:
                self.view.prefetch(*self.head.span(j))

    def _rows(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(gids, scales, codes) of list ``j``, its CRC checked on first use."""
        rows = self._checked.get(j)
        if rows is None:
            rows = list_arrays(self.head.read_list(self.view, j), int(self.sizes[j]),
                               self.header.dim)
            with self._lock:
                self._checked[j] = rows
        return rows

    def load(self) -> bool:
        """Read and check every list (downloaded in one round from object storage)."""
        everything = list(range(self.header.nlist))
        self._fetch(everything)
        for j in everything:
            if self.sizes[j]:
                self._rows(j)
        return True

    def close(self) -> None:
        self._checked.clear()


class ListsSearch(HnswSearch):
    """:class:`HnswSearch` over the snapshot's cluster lists instead of its graph."""

    @property
    def usable(self) -> bool:
        """False once the lists were found damaged (the graph or the exact scan answers)."""
        return not self._opened or self._graph is not None

    def _fallback(self) -> str:
        """What answers when the lists are damaged: the HNSW graph beside them, if any."""
        ref = graph_segment(self.snap, self.config)
        return "the vector graph" if ref is not None and holds_graph(ref) else "the exact scan"

    def graph(self) -> tuple[Any, int]:
        """The opened lists (a query waits while another thread opens them: one read,
        unlike a graph's open, which a query does not wait for)."""
        if self._opened:
            return self._graph or (None, 0)
        return self.open()

    def open(self) -> tuple[Any, int]:
        with self._lock:
            if not self._opened:
                ref = lists_segment(self.snap, self.config)
                if ref is not None:
                    try:
                        index = ListsIndex(self.snap, ref, self.metric, self.snap.dim)
                    except CorruptFileError:
                        warn_damaged("segment:lists", self._fallback())
                    else:
                        self.ef_search = DEPTH
                        self._graph = (index, index.covered)
                self._opened = True
        return self._graph or (None, 0)

    def load(self) -> bool:
        """Open the lists and check every one of them; False when they are damaged."""
        index, _ = self.open()
        return index is not None and self._unless_damaged(index.load) is not None

    def ranked(self, reqs: Sequence[Request], accepts: Sequence[Acceptance]
               ) -> list[Ranked] | None:
        """The graph search's ranking over the lists; None (the next path answers) when the
        lists are absent or damaged, or a list read fails its checksum."""
        return self._unless_damaged(lambda: super(ListsSearch, self).ranked(reqs, accepts))

    def first_round(self, vector: Any, k: int) -> Any:
        """The graph search's first round over the lists; None when a list is damaged."""
        return self._unless_damaged(lambda: super(ListsSearch, self).first_round(vector, k))

    def _unless_damaged(self, call: Callable[[], Any]) -> Any:
        """``call()``; None, with a warning and the lists dropped, when a list read
        fails its checksum."""
        try:
            return call()
        except CorruptFileError as exc:
            if exc.region != "segment:lists":
                raise
            warn_damaged("segment:lists", self._fallback())
            self._graph = None
            return None


__all__ = ["ListsIndex", "ListsSearch"]
