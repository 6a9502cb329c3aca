"""One logical memory over several ``.mv2`` files: routing, pinned versions, exact fan-out.

``from memvid_store import ShardedMemory`` (see :mod:`.memory`).
"""
