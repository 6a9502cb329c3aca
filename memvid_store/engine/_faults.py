"""Named crash points for fault-injection tests. No-ops unless a test arms them.

A test process sets ``MEMVID_FAULT=<point>[:<n>]``; the n-th time (default 1st) the
engine reaches that point the process exits at once with ``os._exit(137)``, as if killed,
leaving whatever bytes were written so far. Points:

* ``wal.torn_record``   half of a WAL record written, then death
* ``wal.before_fsync``  WAL record written, not yet fsynced
* ``commit.after_segments``  segments written, TOC not yet written
* ``commit.after_toc``       TOC written and fsynced, header not yet written
* ``commit.torn_header``     half of the new header slot written
* ``commit.after_header``    header written, before the WAL restarts
* ``compact.before_rename``  compacted file complete, not yet renamed over the original
* ``graph.child``            the background graph builder's child dies before building
* ``graph.stall``            (with ``stall``) the child stops before building

``stall(point)`` instead stops there until the process is killed (a build that runs
until the test decides).
"""

from __future__ import annotations

import os

_spec = os.environ.get("MEMVID_FAULT", "")
_point, _, _count = _spec.partition(":")
_remaining = int(_count) if _count.isdigit() else 1


def reached(point: str) -> bool:
    """Count a visit of ``point``; True on the visit the test armed (the n-th)."""
    global _remaining
    if not _point or _point != point:
        return False
    _remaining -= 1
    return _remaining == 0


def die() -> None:
    os._exit(137)


def stall(point: str) -> None:
    """Wait here until killed on the armed visit of ``point``."""
    if reached(point):
        import time

        while True:
            time.sleep(60)


def hit(point: str) -> None:
    """Die here on the armed visit of ``point``."""
    if reached(point):
        die()
