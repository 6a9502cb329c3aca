"""The nodes of a serialized usearch graph as numpy arrays: where each lies, its key, its
level-0 neighbour list (the layout is in :mod:`.usearch_layout`)."""

from __future__ import annotations

import numpy as np

from .usearch_layout import NODE_HEAD, Layout, Unsupported

KEY_BYTES = np.arange(8)


def node_offsets(payload: memoryview, at: Layout) -> tuple[np.ndarray, int]:
    """Each node's offset in ``payload``, and the end of the last node."""
    levels = np.frombuffer(payload, "<i2", at.size, at.levels).astype(np.int64)
    if at.size and (int(levels.min()) < 0 or int(levels.max()) > at.max_level):
        raise Unsupported("node levels out of range")
    sizes = NODE_HEAD + at.base_bytes + levels * at.level_bytes
    offsets = np.empty(at.size, np.int64)
    offsets[:1] = at.nodes
    np.cumsum(sizes[:-1], out=offsets[1:])
    offsets[1:] += at.nodes
    end = at.nodes + int(sizes.sum())
    if end > len(payload):
        raise Unsupported("nodes exceed the graph")
    return offsets, end


def keys_at(raw: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The keys of the nodes at ``offsets`` (``raw``: the payload's bytes)."""
    return raw[offsets[:, None] + KEY_BYTES].view("<u8").ravel()


def level0_lists(raw: np.ndarray, offsets: np.ndarray, at: Layout
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(neighbour counts, a ``len(offsets) x connectivity_base`` matrix of slots whose
    first ``count`` columns of each row are the node's level-0 neighbours).

    A list is a count and ``connectivity_base`` slots, u32 each, at a node's offset plus
    :data:`NODE_HEAD` (not 4-aligned: nodes are 10 bytes plus their lists); they are read
    as words of the payload viewed from each of the four byte shifts, a fourth of the
    indexing of reading them byte by byte."""
    base = offsets + NODE_HEAD
    words = np.empty((len(base), at.connectivity_base + 1), np.int64)
    columns = np.arange(at.connectivity_base + 1, dtype=np.int64)
    for shift in range(4):
        pick = np.flatnonzero(base % 4 == shift)
        if len(pick):
            view = raw[shift : shift + 4 * ((len(raw) - shift) // 4)].view("<u4")
            words[pick] = view[((base[pick] - shift) // 4)[:, None] + columns]
    counts, slots = words[:, 0], words[:, 1:]
    if len(counts) and int(counts.max()) > at.connectivity_base:
        raise Unsupported("a node lists more neighbours than the graph allows")
    return counts, slots
