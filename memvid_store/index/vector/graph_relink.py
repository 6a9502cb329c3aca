"""Linking a built usearch graph's unreachable nodes back in.

HNSW's neighbour selection prunes links: a node whose every incoming level-0 link was
pruned is still in the graph, but no search reaches it, so no query ever returns its
vector, not even the vector itself (measured on graphs built here at 128-d int8: 22
nodes of 100k, 657 of 1M; one of 301 in a small test file). After a graph is saved,
:func:`relink` finds the nodes a level-0 walk from the entry point never reaches and gives
each one an incoming link from a reached node near it: a free place in that node's list
when it has one, else in place of the link to its most-linked neighbour (which stays
reachable through the others). It checks the walk again and repeats, a few rounds at most.

The patched lists are the library's own layout (:mod:`.usearch_layout`): a count and that
many slots, within the list's capacity.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from .usearch_layout import FREE_KEY, NODE_HEAD, Layout, Unsupported, layout
from .usearch_nodes import keys_at, level0_lists, node_offsets

ROUNDS = 4  # walks checked and nodes relinked, at most
BLOCK = 1 << 15  # nodes whose lists are read at a time
_SCALARS = {11: np.float32, 12: np.float16, 23: np.int8}  # usearch scalar kinds of rows


def relink(payload: memoryview, metric: str) -> tuple[int, int]:
    """Give every unreachable node of the usearch graph ``payload`` (writable) an incoming
    link; ``metric``: the graph's distance (``"ip"``, ``"cos"``, ``"l2sq"``...).

    Returns (nodes relinked, nodes still unreachable); (0, 0) for a layout this module
    does not read (the graph is left as it is)."""
    try:
        graph = _Graph(payload, metric)
    except Unsupported:
        return 0, 0
    relinked = 0
    for _ in range(ROUNDS):
        reached = graph.walk()
        lost = graph.present_unreached(reached)
        if not len(lost):
            return relinked, 0
        indegree: list[np.ndarray] = []  # counted when a full list first needs it
        for slot in lost.tolist():
            relinked += graph.link_to(slot, reached, indegree)
    return relinked, len(graph.present_unreached(graph.walk()))


def unreached_keys(payload: memoryview) -> np.ndarray:
    """Keys of the graph's nodes a level-0 walk from the entry point never reaches."""
    graph = _Graph(payload, "ip")
    return keys_at(graph.raw, graph.offsets[graph.present_unreached(graph.walk())])


class _Graph:
    """One serialized graph's nodes, rows and level-0 lists."""

    def __init__(self, payload: memoryview, metric: str) -> None:
        at: Layout = layout(payload)
        scalar = _SCALARS.get(at.scalar)
        if scalar is None or at.rows != at.size or at.row_bytes % np.dtype(scalar).itemsize:
            raise Unsupported("rows of a kind the relinking does not read")
        self.at, self.payload, self.metric = at, payload, metric
        self.raw = np.frombuffer(payload, np.uint8)
        self.offsets, _ = node_offsets(payload, at)
        dim = at.row_bytes // np.dtype(scalar).itemsize
        self.rows = np.frombuffer(payload, scalar, at.rows * dim, 8).reshape(at.rows, dim)

    def walk(self) -> np.ndarray:
        """Which nodes a level-0 walk from the entry reaches."""
        size = self.at.size
        reached = np.zeros(size, bool)
        if not size:
            return reached
        reached[self.at.entry] = True
        frontier = np.array([self.at.entry], np.int64)
        last = np.empty(size, np.int64)  # scratch: where a slot was last seen in a block
        while len(frontier):
            found = []
            for linked in self._linked(frontier):
                new = linked[~reached[linked]]
                last[new] = np.arange(len(new))
                fresh = new[last[new] == np.arange(len(new))]  # each slot once
                reached[fresh] = True
                found.append(fresh)
            frontier = np.concatenate(found)
        return reached

    def indegree(self, reached: np.ndarray) -> np.ndarray:
        """How many level-0 links from reached nodes point at each node."""
        counts = np.zeros(self.at.size, np.int64)
        for linked in self._linked(np.flatnonzero(reached)):
            counts += np.bincount(linked, minlength=self.at.size)
        return counts

    def _linked(self, slots: np.ndarray) -> Iterator[np.ndarray]:
        """The level-0 neighbours of ``slots``, a block of nodes at a time."""
        for start in range(0, len(slots), BLOCK):
            counts, listed = level0_lists(self.raw, self.offsets[slots[start:start + BLOCK]],
                                          self.at)
            linked = listed[np.arange(listed.shape[1]) < counts[:, None]]
            if len(linked) and int(linked.max()) >= self.at.size:
                raise Unsupported("a node links to a missing node")
            yield linked

    def present_unreached(self, reached: np.ndarray) -> np.ndarray:
        """Slots of the unreached nodes that hold a key (removed nodes are never
        returned, reached or not)."""
        lost = np.flatnonzero(~reached)
        if not len(lost):
            return lost
        return lost[keys_at(self.raw, self.offsets[lost]) != np.uint64(FREE_KEY)]

    def link_to(self, slot: int, reached: np.ndarray, indegree: list[np.ndarray]) -> int:
        """Link ``slot`` from a reached node near it; 1 when linked, else 0.
        ``indegree``: empty, or the links to each node (counted here when first needed,
        kept up to date)."""
        near = self._near(slot, reached)
        if not len(near):
            return 0
        counts, slots = level0_lists(self.raw, self.offsets[near], self.at)
        room = np.flatnonzero(counts < self.at.connectivity_base)
        if len(room):
            i = int(room[0])
            self._write(int(near[i]), int(counts[i]), slot, add=True)
            return 1
        if not indegree:
            indegree.append(self.indegree(reached))
        listed = slots[0, : counts[0]]
        spare = indegree[0][listed]
        if not len(listed) or int(spare.max()) < 2:
            return 0
        place = int(np.argmax(spare))
        indegree[0][listed[place]] -= 1
        self._write(int(near[0]), place, slot, add=False)
        return 1

    def _near(self, slot: int, reached: np.ndarray) -> np.ndarray:
        """Reached nodes near ``slot``, nearest first: where a greedy level-0 descent from
        the entry towards its row ends, and that node's reached neighbours."""
        target = self.rows[slot].astype(np.float32)
        current = self.at.entry
        best = self._similarity(np.array([current]), target)[0]
        while True:
            counts, slots = level0_lists(self.raw, self.offsets[[current]], self.at)
            listed = slots[0, : counts[0]]
            listed = listed[reached[listed]]
            if not len(listed):
                break
            scores = self._similarity(listed, target)
            i = int(np.argmax(scores))
            if scores[i] <= best:
                break
            current, best = int(listed[i]), scores[i]
        counts, slots = level0_lists(self.raw, self.offsets[[current]], self.at)
        around = slots[0, : counts[0]]
        near = np.concatenate([[current], around[reached[around] & (around != slot)]])
        return near[np.argsort(-self._similarity(near, target), kind="stable")]

    def _similarity(self, slots: np.ndarray, target: np.ndarray) -> np.ndarray:
        rows = self.rows[slots].astype(np.float32)
        if self.metric.startswith("l2"):
            return -((rows - target) ** 2).sum(axis=1)
        dots = rows @ target
        if self.metric.startswith("cos"):
            norms = np.linalg.norm(rows, axis=1) * (np.linalg.norm(target) or 1.0)
            return dots / np.where(norms > 0, norms, 1.0)
        return dots

    def _write(self, node: int, place: int, slot: int, *, add: bool) -> None:
        """Put ``slot`` at ``place`` of ``node``'s level-0 list (``add``: one past its
        end, counting it)."""
        at = int(self.offsets[node]) + NODE_HEAD
        struct.pack_into("<I", self.payload, at + 4 + 4 * place, slot)
        if add:
            struct.pack_into("<I", self.payload, at, place + 1)
