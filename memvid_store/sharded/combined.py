"""One tantivy index over every shard's BM25 segments: a fan-out lexical search in one call.

Each shard's BM25 index is a tantivy index unpacked in the cache directory. Their segment
files are hard-linked into one more directory whose ``meta.json`` lists every shard's
segments, shard after shard. tantivy searches that directory as one index and scores with
the statistics of all its segments: the scores one file holding every indexed version
gives, so its candidates need no rescoring, and one search replaces one per shard. A
segment's place in the list names its shard (tantivy keeps ``meta.json``'s order).

Nothing here is written into a shard: the directory is derived, keyed by the shards'
unpacked indexes (each named by its file and index checksum), built in a private
temporary directory and renamed into place, and pruned with the rest of the cache. When
it cannot be built (no hard links on this file system, a segment named twice), the
fan-out rescores each shard's candidates instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from typing import Any

from ..index.lexical.cache_dir import touch, usable_root
from ..index.lexical.reader import LexSearcher

META = "meta.json"


class Combined:
    """The shards' BM25 indexes as one: ``owners[segment ordinal]`` is a shard number."""

    def __init__(self, searcher: LexSearcher, owners: list[int]) -> None:
        self.searcher, self.owners = searcher, owners

    def candidates(self, text: str, limit: int) -> list[tuple[int, int, float]]:
        """The ``limit`` best (shard, gid, score) by plain query ``text``, and every match
        tied with the last; scores with the statistics of every shard's index."""
        return [(self.owners[seg], gid, score)
                for seg, gid, score in self.searcher.search_segments(text, limit)]


def combine(indexes: Sequence[tuple[int, LexSearcher]], cache_root: str) -> Combined | None:
    """The indexes of shards ``(shard, index)`` as one (None: it cannot be built here).
    Their positions files are filled first: the links must share whole files, since the
    combined index is searched as it is (DamagedIndexError: one fails its CRC)."""
    for _, index in indexes:
        index.fill_positions()
    metas = [(shard, _read_meta(index.path)) for shard, index in indexes]
    segments = [seg for _, meta in metas for seg in meta["segments"]]
    if len({seg["segment_id"] for seg in segments}) != len(segments) or any(
            meta["schema"] != metas[0][1]["schema"] for _, meta in metas):
        return None
    root = usable_root(cache_root)
    key = hashlib.blake2b("|".join(os.path.basename(index.path) for _, index in indexes)
                          .encode(), digest_size=16).hexdigest()
    path = os.path.join(root, f"shards-{key}")
    owners = [shard for shard, meta in metas for _ in meta["segments"]]
    docs = sum(index.num_docs for _, index in indexes)
    for _ in range(2):  # a damaged or vanished copy is made again, once
        try:
            if os.path.exists(os.path.join(path, META)):
                touch(path)
            else:
                _build(path, indexes, metas)
            searcher = LexSearcher.open_dir(path)
        except (OSError, ValueError):
            shutil.rmtree(path, ignore_errors=True)
            continue
        if searcher.num_docs == docs and searcher.segments == len(owners):
            return Combined(searcher, owners)
        shutil.rmtree(path, ignore_errors=True)
    return None


def _read_meta(path: str) -> dict[str, Any]:
    with open(os.path.join(path, META), encoding="utf-8") as f:
        return json.load(f)


def _build(path: str, indexes: Sequence[tuple[int, LexSearcher]],
           metas: list[tuple[int, dict[str, Any]]]) -> None:
    """Link every segment file of ``indexes`` into ``path`` beside one meta.json."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    os.mkdir(tmp)
    try:
        for (_, index), (_, meta) in zip(indexes, metas, strict=True):
            ids = {seg["segment_id"].replace("-", "") for seg in meta["segments"]}
            for name in os.listdir(index.path):
                if name.split(".", 1)[0] in ids:
                    os.link(os.path.join(index.path, name), os.path.join(tmp, name))
        first = metas[0][1]
        combined = {**first, "segments": [seg for _, meta in metas for seg in meta["segments"]],
                    "opstamp": max(meta.get("opstamp", 0) for _, meta in metas)}
        with open(os.path.join(tmp, META), "w", encoding="utf-8") as f:
            json.dump(combined, f)
        try:
            os.rename(tmp, path)
        except OSError:
            if not os.path.exists(os.path.join(path, META)):  # not a lost race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
