"""One memory over several files: the bundled notes spread over shards by tenant.

Every note of examples/data/*.jsonl goes to one of 3 shards by its ``kind`` metadata (the
routing key, standing in for a tenant or agent id). The same notes go into one ordinary
file, and the same questions are asked of both: the answers are the same (BM25 with the
statistics of every shard together). Then a filter on the key reads one shard, and
``as_of`` reads one consistent cut across the shards. With ``--ray`` (the ``ray`` extra),
the Markdown documents of examples/data/docs are also ingested on 2 Ray workers.

Run: python examples/sharded_memory.py [--path FILE] [--embedder default|hash] [--ray]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from demo import DATA, load_notes

from memvid_store import Memory, ShardedMemory
from memvid_store.embeddings import get_embedder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="where the manifest goes (its shards beside it)")
    parser.add_argument("--embedder", default="hash")
    parser.add_argument("--ray", action="store_true", help="also ingest on 2 Ray workers")
    args = parser.parse_args()
    folder = Path(os.path.dirname(args.path) if args.path else tempfile.mkdtemp())
    manifest = folder / "notes.mv2s"
    embedder = get_embedder(args.embedder)
    notes = load_notes()

    with ShardedMemory.create(manifest, 3, route="kind", embedder=embedder) as mem, \
            Memory.create(folder / "one.mv2", embedder=embedder) as one:
        mem.put_many(notes)
        one.put_many(notes)
        print(f"{len(mem)} notes over {mem.shard_count} shards: "
              f"{[len(s) for s in mem.shards]} frames each")
        for question in ("budget for the project", "launch date of the agent"):
            sharded = [h.id for h in mem.find(question, k=3)]
            single = [h.id for h in one.find(question, k=3)]
            print(f"{question!r}: sharded {sharded} | one file {single} | "
                  f"{'same' if sharded == single else 'DIFFERENT'}")
        meetings = mem.find("team", k=5, filter={"kind": "meeting"})
        print(f"meetings only (one shard read): {[h.id for h in meetings]}")
        before = mem.generation
        first = notes[0]["id"]
        mem.update(first, text="Kickoff moved to the harbor office.")
        print(f"generation {before} -> {mem.generation}; as of {before}: "
              f"{mem.as_of(before).get(first).text[:40]!r}; now: {mem.get(first).text!r}")

    if args.ray:
        from memvid_store.cluster.ray_ingest import ingest_on_ray

        report = ingest_on_ray(folder / "docs.mv2s", [str(DATA / "docs")],
                               embedder=args.embedder, workers=2, shards=2)
        print(f"ingested on Ray: {report.added} chunks from {report.files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
