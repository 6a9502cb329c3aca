"""Serving a sharded memory on Ray: one actor per shard keeps it open and warm.

``RayShardedMemory.open(manifest)`` starts an actor per shard (:class:`ShardServer`), each
opening its file read-only at the generation the manifest pins. ``find_batch`` fans out in
three rounds of actor calls, all shards in parallel: the shards' BM25 statistics for the
query terms (summed here; skipped when no request searches text), each shard's own exact
lists under those statistics, and the records of the rows chosen. The merge is the one
``ShardedMemory`` uses in-process (``sharded/search.py``), so both give the same hits.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..autoembed import fill_query_vectors
from ..errors import InvalidInputError
from ..index.grouping import answer_requests, grouped_find, with_grouping
from ..index.lexical.corpus_stats import BM25Stats
from ..index.requests import Request
from ..memory import Memory
from ..reads import find_requests
from ..sharded.manifest import PinLog, read_manifest
from ..sharded.routing import Router
from ..sharded.search import (
    Part,
    hits,
    merge_remote,
    shard_lists,
    shard_records,
    shard_statistics,
    total_statistics,
)
from ..types import Hit
from .ray_ingest import require_ray


class ShardServer:
    """One shard, open read-only at its pinned generation (the body of a Ray actor)."""

    def __init__(self, shard: int, path: str, generation: int, options: Mapping[str, Any]
                 ) -> None:
        self.shard = shard
        self.mem = Memory.open(path, readonly=True, **options)
        self.reads = self.mem if self.mem.generation == generation else self.mem.as_of(
            generation)
        self.mem.warmup("aggressive")
        self.parts: dict[str, Part] = {}  # by query token: coordinators may interleave

    def statistics(self, token: str, raw: list[dict[str, Any]]
                   ) -> tuple[list[BM25Stats | None], list[tuple[str, int, tuple]]]:
        """Round 1: validate the requests here; this shard's statistics, and each
        request's (mode, k, weights) as validated."""
        part = self.parts[token] = Part(self.shard, self.reads, raw)
        return shard_statistics(part), [(r.mode, r.k, r.weights) for r in part.reqs]

    def lists(self, token: str, stats: list[BM25Stats | None], searched: list[bool],
              raw: list[dict[str, Any]] | None = None
              ) -> tuple[list[Any], list[tuple[str, int, tuple]]]:
        """Round 2: this shard's exact lists under the summed statistics, and each
        request's (mode, k, weights); the first round when no request needs statistics
        (``raw`` given)."""
        part = self.parts.get(token)
        if part is None:
            part = self.parts[token] = Part(self.shard, self.reads, raw or [])
        return shard_lists(part, stats, searched), [(r.mode, r.k, r.weights)
                                                    for r in part.reqs]

    def records(self, token: str, gids: list[int]) -> list[tuple]:
        """Round 3: the records of the rows chosen here (the query is then done)."""
        return shard_records(self.parts.pop(token), gids)

    def forget(self, token: str) -> None:
        self.parts.pop(token, None)

    def rrf_k(self) -> int:
        return self.reads.index_config.rrf_k

    def vector_settings(self) -> tuple[int | None, str]:
        """(dimension, distance) of this shard's vectors."""
        return self.reads.dim, self.reads.index_config.distance

    def stored_vectors(self, ids: list[str]) -> list[list[float] | None]:
        """The stored embeddings of frames (at the pinned state; None: not here)."""
        return [None if frame is None else frame.embedding
                for frame in self.reads.get_many(ids)]

    def close(self) -> None:
        self.mem.close()


class RayShardedMemory:
    """Search a sharded memory through Ray actors holding its shards warm."""

    def __init__(self, actors: list[Any], router: Router, embedder: Any, rrf_k: int) -> None:
        self._actors, self._router, self._embedder, self._rrf_k = (actors, router, embedder,
                                                                   rrf_k)

    @classmethod
    def open(cls, manifest_path: str | os.PathLike[str], *, embedder: Any = None,
             **options: Any) -> RayShardedMemory:
        """Start one actor per shard (on the running Ray, or a local one) at the state the
        manifest pins (a path or an object URL, as ``ShardedMemory.open``); ``options``
        go to each shard's ``Memory.open``."""
        ray = require_ray()
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        remote = options.get("remote")
        manifest = read_manifest(os.fspath(manifest_path), remote)
        pin, _ = PinLog(manifest.pins_path, len(manifest.shards), remote).latest()
        server = ray.remote(num_cpus=0)(ShardServer)  # waits on I/O and numpy mostly
        actors = [server.remote(i, manifest.shard_path(i), pin.shards[i], options)
                  for i in range(len(manifest.shards))]
        rrf = ray.get([a.rrf_k.remote() for a in actors])  # every shard opened
        return cls(actors, Router(len(manifest.shards), manifest.route), embedder, rrf[0])

    def find(self, text: str | None = None, *, vector: Sequence[float] | None = None,
             k: int = 10, mode: str = "hybrid", filter: Mapping[str, Any] | None = None,
             time_range: Any = None, weights: Mapping[str, float] | None = None,
             group_by: str | None = None, tie_break: Sequence[str] = ()) -> list[Hit]:
        """``ShardedMemory.find`` (at the pinned state; plain query syntax)."""
        return self.find_batch([with_grouping({
            "text": text, "vector": vector, "k": k, "mode": mode, "filter": filter,
            "time_range": time_range, "weights": weights}, group_by, tie_break)])[0]

    def find_batch(self, requests: Iterable[Mapping[str, Any]]) -> list[list[Hit]]:
        """Several ``find`` requests, fanned out to every shard's actor (grouped ones
        one by one)."""
        require_ray()
        raw = [dict(r) for r in find_requests(requests)]
        for r in raw:
            if r.pop("syntax", "plain") != "plain" or r.get("as_of") is not None:
                raise InvalidInputError("served shards answer plain-syntax queries at their "
                                        "pinned state (no syntax='query', no as_of)")
        if not raw:
            return []
        if self._embedder is not None:
            raw = fill_query_vectors(self._embedder, raw)
        raw = [{k: _plain(v) for k, v in r.items()} for r in raw]
        return answer_requests(raw, self._find_plain, self._find_grouped)

    def _find_plain(self, raw: list[dict[str, Any]]) -> list[list[Hit]]:
        """``find_batch`` of requests without grouping, fanned out once."""
        ray = require_ray()
        token = uuid.uuid4().hex
        try:
            return self._fan_out(ray, token, raw)
        finally:
            for a in self._actors:
                a.forget.remote(token)

    def _find_grouped(self, request: dict[str, Any]) -> list[Hit]:
        """One ``find`` with ``group_by`` / ``tie_break`` (:mod:`..index.grouping`); the
        float64 rescoring reads the hits' vectors from the shards holding them."""
        ray = require_ray()
        settings = ray.get([a.vector_settings.remote() for a in self._actors])
        dim = next((d for d, _ in settings if d is not None), None)
        return grouped_find(request, lambda r: self._find_plain([r])[0],
                            self._stored_vectors, dim, settings[0][1])

    def _stored_vectors(self, found: list[Hit]) -> list[list[float] | None]:
        """The stored embeddings of hits, one actor call per shard asked."""
        ray = require_ray()
        ids = [h.id for h in found]
        if self._router.by_id:
            homes: dict[int, list[int]] = {}
            for i, fid in enumerate(ids):
                homes.setdefault(self._router.of_id(fid), []).append(i)
        else:
            homes = {s: list(range(len(ids))) for s in range(len(self._actors))}
        answers = ray.get([self._actors[s].stored_vectors.remote([ids[i] for i in idx])
                           for s, idx in homes.items()])
        out: list[list[float] | None] = [None] * len(ids)
        for idx, vectors in zip(homes.values(), answers, strict=True):
            for i, vector in zip(idx, vectors, strict=True):
                if vector is not None:
                    out[i] = vector
        return out

    def _fan_out(self, ray: Any, token: str, raw: list[dict[str, Any]]) -> list[list[Hit]]:
        totals: list[BM25Stats | None] = [None] * len(raw)
        if any(isinstance(r.get("text"), str) and r.get("mode", "hybrid") != "vector"
               for r in raw):  # BM25 needs every shard's statistics first
            first = ray.get([a.statistics.remote(token, raw) for a in self._actors])
            totals = [None if first[0][0][j] is None
                      else total_statistics([stats[j] for stats, _ in first])
                      for j in range(len(raw))]
        routes = [self._router.of_filter(r.get("filter")) for r in raw]
        answers = ray.get([a.lists.remote(token, totals, [routes[j] in (None, i)
                                                          for j in range(len(raw))], raw)
                           for i, a in enumerate(self._actors)])
        found = [lists for lists, _ in answers]
        shapes = [Request(None, None, k, mode, None, None, None, weights=weights)
                  for mode, k, weights in answers[0][1]]
        chosen = [merge_remote(shapes[j], [f[j] for f in found], self._rrf_k)
                  for j in range(len(raw))]
        wanted: dict[int, list[int]] = {}
        for rows, _ in chosen:
            for shard, ref, _ in rows:
                wanted.setdefault(shard, []).append(ref.gid)
        records = dict(zip(wanted, ray.get([self._actors[s].records.remote(token, gids)
                                            for s, gids in wanted.items()]), strict=True))
        taken = {shard: iter(found_records) for shard, found_records in records.items()}
        return [hits(rows, lists, lambda shard, refs: [next(taken[shard]) for _ in refs])
                for rows, lists in chosen]

    def close(self) -> None:
        """Close every shard and stop the actors."""
        ray = require_ray()
        ray.get([a.close.remote() for a in self._actors])
        for a in self._actors:
            ray.kill(a)
        self._actors = []

    def __enter__(self) -> RayShardedMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(value: Any) -> Any:
    """A query vector as a list (numpy arrays travel too, but lists pickle smaller)."""
    return value.tolist() if hasattr(value, "tolist") else value
