"""Time SnapStart's restore hook (memvid_store/snapstart.py) on one memory file.

Runs the hooks the way Lambda does, in one process: register, run the before-snapshot
hooks (warm, close), then the after-restore hooks (reopen, warm, compare versions), with
the file unchanged and replaced by a copy of itself. The first restore in the process
follows the snapshot's warmup, so imports and the unpacked BM25 index are already there,
as in a restored snapshot. Needs ``snapshot-restore-py``.

    python bench/snapstart_restore.py --path /tmp/snapbench/10k.mv2 [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time

from snapshot_restore_py import get_after_restore, get_before_snapshot

from memvid_store.snapstart import register


def run(hooks: list) -> None:
    for func, args, kwargs in hooks:
        func(*args, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--level", default="aggressive")
    opts = parser.parse_args()
    started = time.perf_counter()
    holder = register(opts.path, level=opts.level)
    holder.warm()
    print(f"init (open + warm {opts.level}): {(time.perf_counter() - started) * 1e3:.1f} ms")
    rows: dict[str, list] = {"unchanged": [], "replaced": []}
    for i in range(opts.runs * 2):
        case = "unchanged" if i % 2 == 0 else "replaced"
        run(get_before_snapshot())
        if case == "replaced":
            shutil.copyfile(opts.path, opts.path + ".new")
            shutil.move(opts.path + ".new", opts.path)
        run(get_after_restore())
        report = holder.last_restore
        assert report is not None and report.changed == (case == "replaced")
        rows[case].append(report)
    holder.memory.find("budget", k=5, mode="hybrid")
    print("| file | restore (median) | reopen | warmup | max |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for case, reports in rows.items():
        ms = [r.seconds * 1e3 for r in reports]
        print(f"| {case} | {statistics.median(ms):.1f} ms "
              f"| {statistics.median(r.reopen_seconds * 1e3 for r in reports):.1f} ms "
              f"| {statistics.median(r.warmup_seconds * 1e3 for r in reports):.1f} ms "
              f"| {max(ms):.1f} ms |")
    holder.close()


if __name__ == "__main__":
    main()
