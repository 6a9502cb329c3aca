"""`make demo`: build a memory from the bundled notes, ask it questions, travel in time.

Every ``*.jsonl`` file in examples/data/ is read (fields: id, created_at, text, metadata,
tags). The memory is bound to an embedder, so ``put`` and ``find(text)`` embed by themselves:
the default is all-MiniLM-L6-v2 running on CPU (``pip install memvid-py[embed]``); pass
``--embedder hash`` for the model-free hashing embedder.

Run: python examples/demo.py [--path FILE] [--embedder default|hash|hash:<dim>]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from memvid_store import FrameNotFoundError, Memory
from memvid_store.embeddings import EmbedderUnavailableError, get_embedder

DATA = Path(__file__).parent / "data"


def load_notes() -> list[dict]:
    """Every record of every ``*.jsonl`` file in examples/data/, in file order."""
    records = []
    for path in sorted(DATA.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    note = json.loads(line)
                    note["created_at"] = datetime.fromisoformat(note["created_at"])
                    records.append(note)
    return records


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def show(title: str, frames) -> None:
    print(f"\n== {title}")
    for f in frames:
        print(f"  {f.created_at:%Y-%m-%d}  v{f.version}  {f.id}  {f.text[:72]}")


def show_hits(title: str, hits) -> None:
    print(f"\n== {title}")
    for h in hits:
        print(f"  {h.score:7.3f}  {h.id}  {h.text[:76]}")


def compare_modes(mem: Memory, question: str, k: int = 3) -> None:
    """The same question answered by BM25, by vectors and by both fused."""
    print(f"\n== {question!r}: lexical vs vector vs hybrid")
    for mode in ("lexical", "vector", "hybrid"):
        hits = mem.find(question, mode=mode, k=k)
        print(f"  {mode:8}" + "".join(f"  {h.id}" for h in hits)
              + f"   top: {hits[0].text[:48] if hits else '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", help="where to write the memory file (default: a temp dir)")
    parser.add_argument("--embedder", default="default",
                        help="default (all-MiniLM-L6-v2), hash or hash:<dim> (default: default)")
    args = parser.parse_args()
    path = args.path or os.path.join(tempfile.mkdtemp(prefix="memvid-demo-"), "agent.mv2")
    if os.path.exists(path):
        os.unlink(path)

    try:
        embedder = get_embedder(args.embedder)
        started = time.perf_counter()
        embedder.embed_query("warm up")  # the real model loads here, once per process
    except EmbedderUnavailableError as exc:
        sys.exit(f"{exc}\n(or run: python examples/demo.py --embedder hash)")
    print(f"embedder {embedder.name} ({embedder.dim}-d) ready in "
          f"{ms(time.perf_counter() - started)}")

    notes = load_notes()
    started = time.perf_counter()
    with Memory.create(path, embedder=embedder) as mem:
        mem.put_many(notes)  # texts are embedded in one batch
        print(f"ingested {len(notes)} notes (embedded and fsynced) into {path} "
              f"in {ms(time.perf_counter() - started)}")
        show("the first three things the agent learned (by event time)", mem.timeline(limit=3))
        march = [datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)]
        show("the first five notes of March 2024",
             mem.timeline(since=march[0], until=march[1], limit=5))
        mem.seal()

        # A paraphrase shares few words with the note that answers it: vectors find it,
        # BM25 does not; hybrid keeps the best of both.
        compare_modes(mem, "how much money do we have for the project?")
        compare_modes(mem, "what should I pack for a rainy trip?")
        # Chinese: BM25 matches CJK runs as phrases. MiniLM is English-centric, so on
        # Chinese text its vectors are weaker and the lexical side carries hybrid search.
        compare_modes(mem, "上海办公室每周有多少工单?")
        compare_modes(mem, "去成都要准备什么?")
        show_hits('"budget" among decisions only (filter)',
                  mem.find("budget", k=3, filter={"kind": "decision"}))
        show_hits('"disk latency" in Q1 2024 (event-time window)',
                  mem.find("disk latency", k=3, time_range=(datetime(2024, 1, 1, tzinfo=UTC),
                                                        datetime(2024, 4, 1, tzinfo=UTC))))

        # Time travel: the launch date changes; the old answer stays reachable.
        before_update = datetime.now(UTC)
        time.sleep(0.01)
        mem.update("note-020", text="The launch date for the Atlas agent is 13 May 2024 for the "
                                    "European customers (moved from 6 May).")  # re-embedded
        mem.delete("note-006")
        question = "when does the Atlas agent launch?"
        print("\n== time travel")
        print("  now      :", mem.get("note-020").text)
        print("  as of before the update:", mem.as_of(before_update).get("note-020").text)
        print(f"  {question!r} now:            ", mem.find(question, k=1)[0].text[:64])
        print(f"  {question!r} as of before:   ",
              mem.find(question, k=1, as_of=before_update)[0].text[:64])
        for version in mem.history("note-020"):
            until = f"{version.valid_to:%H:%M:%S}" if version.valid_to else "now"
            print(f"  history v{version.version}: valid {version.valid_from:%H:%M:%S} -> {until}")
        try:
            mem.get("note-006")
        except FrameNotFoundError:
            print("  note-006 is deleted now, but as of before the update it read:",
                  mem.as_of(before_update).get("note-006").text[:60], "...")

    # A fresh reader, as a serverless function would open it: header + TOC only.
    t0 = time.perf_counter()
    reader = Memory.open(path, readonly=True, embedder=embedder)
    t_open = time.perf_counter() - t0
    first = reader.get("note-014").text
    t_get = time.perf_counter() - t0
    hit = reader.find("router factory reset", k=1)[0]
    t_find = time.perf_counter() - t0
    stats = reader.stats()
    print("\n== cold open of the file (the embedder is already loaded in this process)")
    print(f"  open {ms(t_open)}, first get {ms(t_get)}: {first[:50]}...")
    print(f"  first hybrid find {ms(t_find)}: {hit.id} {hit.text[:50]}...")
    print(f"  {stats.frames} frames, {stats.versions} versions, generation {stats.generation}, "
          f"{stats.file_bytes / 1024:.0f} KiB file (WAL region included), "
          f"{stats.payload_bytes} B of text and metadata stored in {stats.stored_bytes} B")
    print(f"  embedder recorded in the file: {reader.embedder_info}")
    print("  a fresh process opening the file and answering one lexical query, its metrics():")
    print("  " + cold_start_report(path))
    report = reader.verify()
    print(f"  verify: {'ok' if report.ok else report.problems} {report.checked}")
    reader.close()
    print(f"\nThe memory file is at {path}; try: python -m memvid_store timeline {path} --limit 5")


COLD_START_CHILD = """
import sys
from memvid_store import Memory
mem = Memory.open(sys.argv[1], readonly=True)
hits = mem.find("when does the launch happen", mode="lexical", k=3)
m = mem.metrics()
loads = ", ".join(f"{k} {v:.1f} ms" for k, v in sorted(m.index_load_ms.items())) or "none"
print(f"process start to first answer {m.cold_start_ms:.0f} ms (interpreter "
      f"{m.runtime_load_ms:.0f} ms, import {m.import_ms:.0f} ms, open {m.file_open_ms:.1f} ms, "
      f"first query {m.first_query_ms:.1f} ms; index loads: {loads}); RSS {m.rss_mb:.0f} MB "
      f"= {m.memory_used_pct:.1f}% of {m.memory_limit_mb:.0f} MB ({m.memory_limit_source}); "
      f"alerts: {[a.message for a in m.alerts] or 'none'}")
"""


def cold_start_report(path: str) -> str:
    """What ``metrics()`` says in a new process that opens ``path`` and answers one query."""
    import subprocess

    run = subprocess.run([sys.executable, "-c", COLD_START_CHILD, path], capture_output=True,
                         text=True, check=True)
    return run.stdout.strip()


if __name__ == "__main__":
    main()
