"""The nodes of a serialized usearch graph as numpy arrays: where each lies, its key, its
level-0 neighbour list (the layout is in :mod:`.usearch_layout`)."""

from __future__ import annotations

import numpy as np

from .usearch_layout import NODE_HEAD, Layout, Unsupported

KEY_BYTES = np.arange(8)
_U32_BYTES = np.arange(4)


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
    first ``count`` columns of each row are the node's level-0 neighbours)."""
    base = offsets + NODE_HEAD
    counts = raw[base[:, None] + _U32_BYTES].view("<u4").ravel().astype(np.int64)
    width = at.connectivity_base
    starts = base[:, None] + 4 + 4 * np.arange(width, dtype=np.int64)
    slots = raw[(starts[:, :, None] + _U32_BYTES).reshape(len(base), -1)]
    slots = slots.view("<u4").reshape(len(base), width).astype(np.int64)
    if len(counts) and int(counts.max()) > width:
        raise Unsupported("a node lists more neighbours than the graph allows")
    return counts, slots
