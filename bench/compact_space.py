"""Dead space before and after ``compact()``, with the compaction's time and memory.

A writer's commits leave what merges and index rebuilds replaced in the file (older
tables of contents still name it); ``Stats.live_bytes`` counts the bytes the newest
commit reads. This bench copies a file, compacts the copy (keeping all history) in a
fresh process, and reports the file's size and live bytes before and after, the
compaction's time and its process's own peak resident memory. ``--engine DIR`` compacts
with the code of another checkout (the space is always counted by this one's).

Run ``python bench/compact_space.py --file F.mv2`` on a file built from ``bench/corpus.py``
(``bench/peers.py`` builds one the same way), or ``python bench/compact_space.py --n
100000 --dim 384`` to build one first. Results: ``bench/results/compact-space-<stamp>.json``
and ``.md``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parent))

from bench.engine_bench import RESULTS, progress  # noqa: E402
from bench.first_touch import build  # noqa: E402
from bench.report import checkout_rev, heading, new_result, run_in_checkout, save  # noqa: E402

SPACE = """
import json, sys
from memvid_store import Memory

with Memory.open(sys.argv[1], readonly=True) as mem:
    info = mem.stats()
print(json.dumps({"file_mb": info.file_bytes / 2**20, "live_mb": info.live_bytes / 2**20,
                  "runs": info.runs, "frames": info.frames, "versions": info.versions}))
"""

COMPACT = """
import json, sys, time
from bench.machine import own_peak_rss_mb
from memvid_store import Memory

with Memory.open(sys.argv[1]) as mem:
    began = time.perf_counter()
    mem.compact()
    seconds = time.perf_counter() - began
print(json.dumps({"compact_s": seconds, "peak_rss_mb": own_peak_rss_mb()}))
"""


def compact_copy(path: Path, work: Path, engine: Path) -> dict[str, Any]:
    """Compact a copy of ``path`` with the code of the checkout ``engine``; its space
    before and after as this checkout counts it, its time and peak memory."""
    copy = work / "compact.mv2"
    shutil.copyfile(path, copy)
    here = HERE.parent
    before = run_in_checkout(SPACE, [str(copy)], here)
    got = run_in_checkout(COMPACT, [str(copy)], engine)
    after = run_in_checkout(SPACE, [str(copy)], here)
    copy.unlink()
    return {"before": before, "after": after, **got}


def markdown(res: dict[str, Any]) -> str:
    r = res["result"]
    lines = heading("Dead space before and after compact()", res)
    lines += [f"{r['frames']:,} frames, {r['versions']:,} versions; `compact()` keeping all "
              f"history, in a fresh process, by the code of commit {r['engine']}. MiB; dead: "
              "the file's bytes the newest commit does not read.", "",
              "| | file | live | dead | dead share | runs |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name in ("before", "after"):
        s = r[name]
        dead = s["file_mb"] - s["live_mb"]
        lines.append(f"| {name} | {s['file_mb']:,.0f} | {s['live_mb']:,.0f} | {dead:,.0f} | "
                     f"{dead / s['file_mb']:.1%} | {s['runs']} |")
    lines += ["", f"Compaction: {r['compact_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB "
              "(the process's own `VmHWM`).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, help="a .mv2 file (compacted as a copy)")
    parser.add_argument("--n", type=int, default=100_000, help="frames to build without --file")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--work", type=Path, default=None,
                        help="directory for the copy (default: a temporary one)")
    parser.add_argument("--engine", type=Path, default=HERE.parent,
                        help="a checkout whose memvid_store compacts (default: this one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="memvid-space-", dir=args.work) as work:
        path = args.file
        if path is None:
            progress(f"compact space: building {args.n:,} x {args.dim}")
            path = Path(work) / "built.mv2"
            build(path, args.n, args.dim)
        progress(f"compact space: compacting a copy of {path}")
        got = compact_copy(path, Path(work), args.engine.resolve())
    result = {"frames": got["before"]["frames"], "versions": got["before"]["versions"],
              "engine": checkout_rev(args.engine), **got}
    save(new_result("compact_space.py", result=result), args.out, "compact-space", markdown,
         show=True)


if __name__ == "__main__":
    main()
