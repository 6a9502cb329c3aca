"""What ``verify`` notices about a snapshot's vector graph that is not damage (numpy-free
until there is a graph to look at)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...engine.format import crc32
from .hnsw_format import unpack_graph
from .usearch_layout import Unsupported

if TYPE_CHECKING:
    from ...engine.snapshot import Snapshot


def graph_notices(snap: Snapshot, path: str) -> list[str]:
    """What ``verify`` notices about the snapshot's graph: the vectors it holds but no
    search reaches, if any (graphs written before they were linked back in)."""
    notice = unreached_notice(snap, path)
    return [notice] if notice else []


def unreached_notice(snap: Snapshot, path: str) -> str | None:
    """What to do about the vectors the snapshot's usearch graph holds but no search
    reaches, or None: none, no such graph, or a graph that fails its checksum
    (``verify`` reports that)."""
    ref = snap.toc.find("ann")
    if ref is None or ref.meta.get("backend") != "usearch":
        return None
    data = snap.view.read(ref.offset, ref.length, "segment:ann")
    if crc32(data) != ref.crc:
        return None
    from .graph_relink import unreached_keys  # numpy: only for a file with a graph

    try:
        lost = len(unreached_keys(unpack_graph(data, "usearch").payload))
    except Unsupported:
        return None
    finally:
        snap.view.release(ref.offset, ref.length)
    if not lost:
        return None
    return (f"{lost} vector(s) of the vector graph cannot be reached by a search (the graph "
            f"was built before unreachable nodes were linked back in): vector search never "
            f"returns them. `mv2 doctor {path} --repair NEW.mv2` writes a copy with a new "
            f"graph")
