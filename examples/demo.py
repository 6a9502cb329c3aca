"""`make demo`: build a memory from the bundled notes, read it back, travel in time.

Run: python examples/demo.py [--path FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from memvid_store import FrameNotFoundError, Memory

DATA = Path(__file__).parent / "data" / "notes.jsonl"


def load_notes() -> list[dict]:
    records = []
    with open(DATA, encoding="utf-8") as fh:
        for line in fh:
            note = json.loads(line)
            note["created_at"] = datetime.fromisoformat(note["created_at"])
            records.append(note)
    return records


def show(title: str, frames) -> None:
    print(f"\n== {title}")
    for f in frames:
        print(f"  {f.created_at:%Y-%m-%d}  v{f.version}  {f.id}  {f.text[:78]}")


def show_hits(title: str, hits) -> None:
    print(f"\n== {title}")
    for h in hits:
        print(f"  {h.score:7.3f}  {h.id}  {h.text[:80]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", help="where to write the memory file (default: a temp dir)")
    args = parser.parse_args()
    path = args.path or os.path.join(tempfile.mkdtemp(prefix="memvid-demo-"), "agent.mv2")
    if os.path.exists(path):
        os.unlink(path)

    notes = load_notes()
    started = time.perf_counter()
    with Memory.create(path) as mem:
        mem.put_many(notes)
        print(f"ingested {len(notes)} notes into {path} "
              f"in {(time.perf_counter() - started) * 1000:.1f} ms")
        show("the first three things the agent learned (by event time)", mem.timeline(limit=3))
        march = [datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)]
        show("what happened in March 2024", mem.timeline(since=march[0], until=march[1]))
        show("latest three notes", mem.timeline(limit=3, reverse=True))
        mem.seal()
        show_hits('search "budget approved" (BM25)', mem.find("budget approved", k=3))
        show_hits('search "上海办公室" (Chinese)', mem.find("上海办公室", k=3))
        show_hits('search "launch" among decisions only',
                  mem.find("launch", k=3, filter={"kind": "decision"}))
        show_hits("search \"disk latency\" in Q1 2024 (event-time window)",
                  mem.find("disk latency", k=5, time_range=(datetime(2024, 1, 1, tzinfo=UTC),
                                                        datetime(2024, 4, 1, tzinfo=UTC))))

        # Time travel: the launch date changes; the old answer stays reachable.
        before_update = datetime.now(UTC)
        time.sleep(0.01)
        mem.update("note-020", text="The launch date for the Atlas agent is 13 May 2024 for the "
                                    "European customers (moved from 6 May).")
        mem.delete("note-006")
        print("\n== time travel")
        print("  now      :", mem.get("note-020").text)
        print("  as of before the update:", mem.as_of(before_update).get("note-020").text)
        print('  search "launch date" now:        ', mem.find("launch date", k=1)[0].text[:60])
        print('  search "launch date" as of before:',
              mem.find("launch date", k=1, as_of=before_update)[0].text[:60])
        for version in mem.history("note-020"):
            until = version.valid_to.isoformat(timespec="seconds") if version.valid_to else "now"
            print(f"  history v{version.version}: valid {version.valid_from:%H:%M:%S} -> {until}")
        try:
            mem.get("note-006")
        except FrameNotFoundError:
            print("  note-006 is deleted now, but as of before the update it read:",
                  mem.as_of(before_update).get("note-006").text[:60], "...")

    # A fresh reader, as a serverless function would open it: header + TOC only.
    t0 = time.perf_counter()
    reader = Memory.open(path, readonly=True)
    t_open = time.perf_counter() - t0
    first = reader.get("note-014").text
    t_first = time.perf_counter() - t0
    stats = reader.stats()
    print("\n== cold open of the file")
    print(f"  open {t_open * 1000:.2f} ms, first get {t_first * 1000:.2f} ms: {first[:50]}...")
    print(f"  {stats.frames} frames, {stats.versions} versions, generation {stats.generation}, "
          f"{stats.file_bytes / 1024:.0f} KiB file (WAL region included), "
          f"{stats.payload_bytes} B of text and metadata stored in {stats.stored_bytes} B")
    report = reader.verify()
    print(f"  verify: {'ok' if report.ok else report.problems} {report.checked}")
    reader.close()
    print(f"\nThe memory file is at {path}; try: python -m memvid_store timeline {path} --limit 5")


if __name__ == "__main__":
    main()
