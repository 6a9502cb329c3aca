"""Exact fan-out search over shards: the hits one file holding every frame would give.

Each shard answers its part with the engine's own search paths, and the lists merge by
the order one file uses: score descending, ties by frame id.

* **Vector.** Every shard returns its best ``k`` (``HYBRID_DEPTH`` for hybrid) plus ties;
  the best of their union are the best overall, with the same scores.
* **Lexical.** BM25 depends on corpus statistics (document count, document frequencies,
  average field lengths), so a shard's own scores are not the file's. The statistics of
  every shard are summed (:class:`~memvid_store.index.lexical.corpus_stats.CorpusStats`)
  and each shard's candidates are rescored with them. A shard's index still fetches the
  candidates, by its local scores, a few at a time: the merged list is final once no
  shard's next candidate can reach its ``k``-th global score, the bound being
  :func:`~memvid_store.index.lexical.corpus_stats.score_bound` times the shard's last
  local score. A selective filter scores just the versions it admits, as in one file.
* **Hybrid** fuses the two merged lists with reciprocal rank fusion, as one file does.

Scores agree with one sealed file's to float32 rounding: tantivy scores in float32, the
rescoring in float64.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from ..engine.keys import split_key
from ..index.acceptance import Acceptance
from ..index.admitted import admitted_gids, score_admitted
from ..index.coverage import covered_gid
from ..index.hybrid import rrf
from ..index.lexical.corpus_stats import BM25Stats, CorpusStats, FixedStats, score_range
from ..index.lexical.query import parse_plain
from ..index.lexical.rescore import Analysed, Rescorer
from ..index.lexical.schema import doc_of
from ..index.searcher import HYBRID_DEPTH
from ..index.vector.hnsw_format import graph_depth
from ..lazy import numpy as np
from ..reads import search_scope
from ..types import Hit, from_us

if TYPE_CHECKING:
    from ..engine.snapshot import RowRef, Snapshot
    from ..index.requests import Request
    from ..reads import Reads
    from .combined import Combined

Entry = tuple[int, "RowRef", float]
"""A candidate of the fan-out: (shard, row, score)."""

Records = Callable[[int, list[Any]], list[tuple]]
"""Reads rows of a shard: (key, version, created_at µs, text, metadata, tags) each."""

TOKEN_CACHE = 4096  # analysed versions kept per shard snapshot (a few MB)
FETCH_MARGIN = 4  # candidates a shard fetches beyond its even share of the k best, at first
ONE_PASS_BATCH = 16  # batches with fewer vector requests score every shard's round at once


class Part:
    """One shard's share of a batch of requests: its snapshot, searcher and Requests."""

    def __init__(self, shard: int, reads: Reads, raw: list[dict[str, Any]],
                 like: Part | None = None) -> None:
        """``like``: another shard's part of the same requests (its Requests are reused)."""
        self.shard = shard
        self.snap, self.searcher, self.reqs = search_scope(
            reads, raw, None if like is None else (like.snap, like.searcher, like.reqs))

    def entries(self, ranked: Sequence[tuple[RowRef, float]]) -> list[Entry]:
        return [(self.shard, ref, score) for ref, score in ranked]


def find_batch(parts: Sequence[Part], routes: Sequence[set[int] | None],
               rrf_k: int) -> list[list[Hit]]:
    """Hits of each request (request ``j`` is ``part.reqs[j]`` of every part); ``routes[j]``
    names the shards request ``j`` can match (None: all of them)."""
    count = len(parts[0].reqs)
    searched = [[p for p in parts if routes[j] is None or p.shard in routes[j]]
                for j in range(count)]
    vectors = _vector_lists(parts, searched)
    out = []
    for j in range(count):
        req = parts[0].reqs[j]
        lists: dict[str, list[Entry]] = {}
        if req.mode in ("lexical", "hybrid") and req.text is not None:
            lists["lexical"] = _lexical_list(parts, searched[j], j, depth(req))
        if j in vectors:
            lists["vector"] = vectors[j]
        out.append(hits(fuse(lists, req, rrf_k), lists, _local_records(parts)))
    return out


def depth(req: Request) -> int:
    """How deep a mode's list goes: ``k``, or ``HYBRID_DEPTH`` for the fusion."""
    return req.k if req.mode != "hybrid" else max(req.k, HYBRID_DEPTH)


def _local_records(parts: Sequence[Part]) -> Records:
    snaps = {p.shard: p.snap for p in parts}

    def records(shard: int, refs: list[Any]) -> list[tuple]:
        snaps[shard].fetch_frames(refs)
        return [snaps[shard].record(ref) for ref in refs]

    return records


def _vector_lists(parts: Sequence[Part], searched: list[list[Part]]) -> dict[int, list[Entry]]:
    """The merged vector list of every request with a vector, by request index.

    Vector scores need no rescoring, so a shard first returns its even share of a list's
    depth (plus :data:`FETCH_MARGIN`); a shard whose share could hide more of the merged
    list (its last score reaches the merged list's last) is then asked for the whole
    depth.
    """
    wanted = {j: depth(req) for j, req in enumerate(parts[0].reqs)
              if req.mode in ("vector", "hybrid") and any(p.reqs[j].vector is not None
                                                          for p in parts)}
    found: dict[tuple[int, int], list[Entry]] = {}  # (request, shard) -> its list
    asked: dict[tuple[int, int], int] = {}

    def search(jobs: dict[int, list[tuple[int, int]]]) -> None:
        for part in parts:
            mine = jobs.get(part.shard, [])
            reqs = [replace(part.reqs[j], k=k, mode="vector") for j, k in mine]
            ranked = part.searcher.vector_ranked_batch(reqs)
            for (j, k), req in zip(mine, reqs, strict=True):
                found[j, part.shard] = part.entries(ranked[id(req)])
                asked[j, part.shard] = k

    def merged(j: int) -> list[Entry]:
        return cut(ordered([e for p in searched[j] for e in found.get((j, p.shard), [])]),
                   wanted[j])

    first: dict[int, list[tuple[int, int]]] = {}
    joined: dict[int, list[Entry]] = {}  # requests answered by one pass over every shard
    for j, need in wanted.items():
        mine = [p for p in searched[j] if p.reqs[j].vector is not None]
        share = need if len(mine) <= 1 else min(need, -(-need // len(mine)) + FETCH_MARGIN)
        union = (_graph_union(mine, j, share, need)
                 if len(mine) > 1 and len(wanted) < ONE_PASS_BATCH else None)
        if union is not None:
            joined[j] = union
            continue
        for part in mine:
            first.setdefault(part.shard, []).append((j, share))
    if not first:
        return joined
    search(first)
    more: dict[int, list[tuple[int, int]]] = {}
    for j, need in wanted.items():
        if j in joined:
            continue
        best = merged(j)
        floor = best[need - 1][2] if len(best) >= need else -math.inf
        for (jj, shard), got in found.items():
            if jj == j and asked[j, shard] < need and len(got) >= asked[j, shard] and (
                    got[-1][2] >= floor):
                more.setdefault(shard, []).append((j, need))
    if more:
        search(more)
    return {j: joined[j] if j in joined else merged(j) for j in wanted}


def _graph_union(mine: Sequence[Part], j: int, share: int, need: int) -> list[Entry] | None:
    """Request ``j``'s merged vector list from one pass over the first graph round of
    every shard in ``mine`` (of its cluster lists when it has them): their candidates
    scored together (one product), ordered, and accepted best-first until ``need`` (plus
    ties) are found; None when the shards' own searches are needed: a shard without an
    opened graph answering alone, a filter or
    window (a selective one scans its admitted versions), a shard whose candidates ran
    out before the list was full, or one holding more of the list than its share whose
    deeper round (``graph_depth(need)``) would see other candidates.

    The result is the list the shards' own searches merge to: each takes its best
    accepted candidates of the same first round, and the merged list keeps the best; a
    shard with fewer than its share accepted in that round would search a wider one, so
    that is checked too (for shards whose versions are not all accepted).
    """
    req = mine[0].reqs[j]
    if req.filter is not None or req.time_range is not None:
        return None
    metric = mine[0].searcher.vectors.hnsw.metric
    rounds, dtypes, used = [], set(), []
    for part in mine:
        if not part.snap.counters().get("vectors"):
            continue  # a shard without vectors adds nothing
        vectors = part.searcher.vectors
        if not vectors.has_graph() or part.reqs[j].vector != req.vector:
            return None
        graph = vectors.lists if vectors.reads_lists() else vectors.hnsw
        if (graph is vectors.hnsw and vectors.defer) or graph.metric != metric:
            return None
        got = graph.first_round(req.vector, share)
        if got is None:
            return None
        rounds.append(got)
        used.append(part)
        dtypes.add(graph.graph()[0].dtype)
    if not rounds:
        return None
    # a shard holding more than its share would search a deeper round of its own
    deeper = any(graph_depth(need, dtype) != graph_depth(share, dtype) for dtype in dtypes)
    from ..index.vector import scoring

    shard = np.concatenate([np.full(len(g), i, "<i8") for i, (g, _, _) in enumerate(rounds)])
    gids = np.concatenate([g for g, _, _ in rounds])
    scores = np.concatenate([s.astype("<f4") for _, _, s in rounds])
    rescore = [i for i, (_, rows, _) in enumerate(rounds) if rows is not None]
    if rescore:
        at = np.concatenate([np.flatnonzero(shard == i) for i in rescore])
        exact = scoring.score_block(np.concatenate([rounds[i][1] for i in rescore]),
                                    np.frombuffer(req.vector, "<f4")[None, :], metric)[0]
        scores[at] = exact
    order = np.lexsort((gids, shard, -scores))
    left = [len(g) for g, _, _ in rounds]  # candidates of each shard not yet looked at
    taken = [0] * len(used)
    accepts: dict[int, Acceptance] = {}
    out: list[Entry] = []
    for i, gid, score in zip(shard[order].tolist(), gids[order].tolist(),
                             scores[order].astype(float).tolist(), strict=True):
        if len(out) >= need and score < out[-1][2]:
            break
        left[i] -= 1
        accept = accepts.get(i)
        if accept is None:
            accept = accepts[i] = Acceptance.of(used[i].snap, used[i].reqs[j])
        ref = accept.accept(gid)
        if ref is not None:
            out.append((used[i].shard, ref, score))
            taken[i] += 1
        if left[i] == 0:
            return None  # the shard may hold more below its last candidate
    if deeper and any(t >= share for t in taken):
        return None
    for i, part in enumerate(used):  # a shard's own search widens its round when fewer
        if taken[i] >= share or _accepts_every(part, j):  # than its share are accepted
            continue
        ranked = order[shard[order] == i][len(rounds[i][0]) - left[i]:]
        more = (accepts[i] if i in accepts else Acceptance.of(part.snap, part.reqs[j]))
        for gid in gids[ranked].tolist():
            taken[i] += more.accept(gid) is not None
            if taken[i] >= share:
                break
        else:
            return None
    return cut(ordered(out), need)


def _accepts_every(part: Part, j: int) -> bool:
    """Whether request ``j`` accepts every version of ``part``'s shard: current reads of a
    shard with one version per frame, none deleted, all in the request's collection."""
    req, snap = part.reqs[j], part.snap
    counters = snap.counters()
    return (req.at is None and snap.member_test(req.collection) is None
            and counters["versions"] == counters["live"])


def _lexical_list(parts: Sequence[Part], searched: Sequence[Part], j: int,
                  need: int) -> list[Entry]:
    """The ``need`` best versions (plus ties) by BM25 with every shard's statistics: from
    one index over every shard's segments (:mod:`.combined`) when it can be built and no
    filter is selective enough to score its versions whole, else by rescoring each shard's
    candidates (:func:`best_of`)."""
    stats = BM25Stats(CorpusStats(p.searcher.lexical_index() for p in parts),
                      CorpusStats(s for p in parts for s in (p.searcher.lexical_index(),
                                                             p.searcher.delta_index())))
    query = GlobalQuery(parts[0].reqs[j].text or "", stats)
    shards = [_ShardLexical(part, part.reqs[j], query, need) for part in searched]
    combined = None
    if not any(shard.admitted_gids is not None for shard in shards):
        combined = _combined(parts)
    if combined is None:
        return best_of(shards, need)
    return _combined_best(combined, shards, need)


def _combined(parts: Sequence[Part]) -> Combined | None:
    """One index over the shards' BM25 segments, kept with the first shard's snapshot
    (the same shards' indexes give the same one); None when there is none to make."""
    indexes = [(p.shard, lex) for p in parts if (lex := p.searcher.lexical_index()) is not None]
    if not indexes:
        return None
    key = ("combined_lex", *(lex.path for _, lex in indexes))
    extras = parts[0].snap.extras
    if key not in extras:
        from .combined import combine

        extras[key] = combine(indexes, parts[0].searcher.cache_root)
    return extras[key]


def _combined_best(combined: Combined, shards: Sequence[_ShardLexical], need: int
                   ) -> list[Entry]:
    """The ``need`` best of ``shards`` (plus ties): the combined index's candidates scored
    as one file's index scores them, the WAL deltas' scored with every shard's statistics;
    widened, as one file widens, until ``need`` are accepted."""
    owner = {shard.part.shard: shard for shard in shards}
    query = shards[0].query
    limit = max(2 * need, 32)
    while True:
        indexed = combined.candidates(query.text, limit)
        found = [c for c in indexed if c[0] in owner and owner[c[0]].admits(c[1])]
        complete = len(indexed) < limit
        for shard in shards:
            delta = shard.part.searcher.delta_index()
            if delta is not None:
                scored = delta.search(query.text, limit, index=query.stats.unindexed,
                                      indexed=True)
                complete = complete and len(scored) < limit
                found += [(shard.part.shard, g, s) for g, s in scored if shard.admits(g)]
        found.sort(key=lambda c: -c[2])
        ranked: list[Entry] = []
        for shard_no, gid, score in found:
            if len(ranked) >= need and score < ranked[-1][2]:
                break
            ref = owner[shard_no].accept.accept(gid)
            if ref is not None:
                ranked.append((shard_no, ref, score))
        if len(ranked) >= need or complete:
            return cut(ordered(ranked), need)
        limit *= 4


def best_of(shards: Sequence[_ShardLexical], need: int) -> list[Entry]:
    """The ``need`` best of ``shards``' matches by global score, plus ties.

    Each shard fetches candidates by its local scores, a few at a time. A candidate's
    global score lies within the shard's :func:`score_range` of its local one: only those
    whose upper bound reaches the ``need``-th best lower bound are rescored, and the list
    is final once no shard's next candidate can reach it either.
    """
    limit = -(-need // max(len(shards), 1)) + FETCH_MARGIN
    for shard in shards:
        shard.fetch(limit)
    while True:
        cands = [(shard, ref, lo, hi) for shard in shards for ref, lo, hi in shard.ranges()]
        lows = sorted((c[2] for c in cands), reverse=True)
        floor = lows[need - 1] if len(lows) >= need else -math.inf
        live = [c for c in cands if c[3] >= floor]
        if any(lo != hi for _, _, lo, hi in live):
            for shard in shards:
                shard.rescore([ref for owner, ref, lo, hi in live if owner is shard and lo != hi])
            continue  # the floor may rise
        behind = [shard for shard in shards if shard.ceiling >= floor and not shard.done]
        if not behind:
            return cut(ordered([(shard.part.shard, ref, score)
                                for shard, ref, score, _ in live if score > 0.0]), need)
        for shard in behind:
            shard.fetch(shard.limit * 2)


class GlobalQuery:
    """A plain query with the statistics of every shard: how each version is rescored."""

    def __init__(self, text: str, stats: BM25Stats) -> None:
        self.text, self.stats = text, stats
        self.parsed = parse_plain(text)
        self.terms = list(dict.fromkeys([*self.parsed.terms,
                                         *(t for ph in self.parsed.phrases for _, t in ph)]))
        self._scorers: dict[bool, Rescorer] = {}

    def scorer(self, indexed: bool) -> Rescorer:
        """The scorer of versions the BM25 index covers (``indexed``), or of the others."""
        found = self._scorers.get(indexed)
        if found is None:
            found = self._scorers[indexed] = Rescorer(
                self.parsed, self.stats.indexed if indexed else self.stats.unindexed)
        return found


class _ShardLexical:
    """One shard's candidates for one query, rescored with the global statistics as needed.

    ``ceiling``: the highest global score a candidate not fetched yet can have; ``done``:
    every match of the shard is fetched.
    """

    def __init__(self, part: Part, req: Request, query: GlobalQuery, need: int) -> None:
        self.part, self.req, self.query = part, req, query
        self.covered = covered_gid(part.snap.toc.find("lex"))  # versions indexed below
        self.accept = Acceptance.of(part.snap, req)
        gids = admitted_gids(part.snap, req)
        self.inside = None if gids is None else set(gids)
        # a small admitted set is scored whole (:mod:`memvid_store.index.admitted`)
        self.admitted_gids = gids if gids is not None and score_admitted(
            len(gids), need, query.stats.unindexed.num_docs) else None
        self.local: list[tuple[RowRef, float]] = []  # accepted candidates, local score
        self.exact: dict[int, float] = {}  # global scores of the candidates rescored
        self.ceiling = math.inf
        self.done = False
        self.limit = 0
        self.admitted = False
        self._range: tuple[float, float] | None = None

    def fetch(self, limit: int) -> None:
        """The shard's best ``limit`` candidates by local score (all the versions a
        selective filter admits, at once)."""
        self.limit = limit
        searcher = self.part.searcher
        if self.admitted_gids is not None:
            refs = [ref for ref in map(self.accept.accept, self.admitted_gids) if ref is not None]
            self.local = [(ref, math.inf) for ref in refs]  # no local score: rescore all
            self.admitted, self.ceiling, self.done = True, -math.inf, True
            return
        cands = searcher.lexical_candidates(self.query.text, limit, "plain")
        kept = cands if self.inside is None else [gs for gs in cands if gs[0] in self.inside]
        self.local = self.accept.take(kept, len(kept))
        if len(cands) < limit:  # every match of the shard is here
            self.ceiling, self.done = -math.inf, True
            return
        self.ceiling = self._factors()[1] * cands[-1][1]

    def admits(self, gid: int) -> bool:
        """Whether a filter's admitted set (if any) holds ``gid`` (cheap; see ``accept``)."""
        return self.inside is None or gid in self.inside

    def ranges(self) -> list[tuple[RowRef, float, float]]:
        """Each candidate with the range of its global score (the score, once rescored)."""
        exact = self.exact
        if self.admitted:  # no local scores
            return [(ref, exact[ref.gid], exact[ref.gid]) if ref.gid in exact
                    else (ref, 0.0, math.inf) for ref, _ in self.local]
        low, high = self._factors()
        return [(ref, exact[ref.gid], exact[ref.gid]) if ref.gid in exact
                else (ref, low * local, high * local) for ref, local in self.local]

    def rescore(self, refs: list[RowRef]) -> None:
        """Compute the global scores of ``refs`` (candidates of this shard)."""
        todo = [ref for ref in refs if ref.gid not in self.exact]
        for ref, analysed in zip(todo, _analysed(self.part.snap, todo), strict=True):
            self.exact[ref.gid] = self.query.scorer(ref.gid < self.covered).score(analysed)

    def top(self, need: int) -> list[Entry]:
        """The shard's ``need`` best by global score, plus ties (this shard alone)."""
        return best_of([self], need)

    def _factors(self) -> tuple[float, float]:
        """How far a local score can move under the global statistics (low, high)."""
        if self._range is None:
            searcher, stats = self.part.searcher, self.query.stats
            lex, delta = searcher.lexical_index(), searcher.delta_index()
            pairs = [(lex, stats.indexed)] if lex is not None else []
            if delta is not None:
                pairs.append((CorpusStats([lex, delta]), stats.unindexed))
            self._range = score_range(pairs, self.query.terms)
        return self._range


class _TokenCache:
    """Analysed versions of one snapshot, most recently used last (bounded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.docs: OrderedDict[int, Analysed] = OrderedDict()


def _analysed(snap: Snapshot, refs: list[RowRef]) -> list[Analysed]:
    """The analysed text and title of ``refs``, through the snapshot's token cache (a
    version is analysed once, not once per query)."""
    cache = snap.extras.get("lex_tokens")
    if not isinstance(cache, _TokenCache):
        cache = snap.extras.setdefault("lex_tokens", _TokenCache())
    assert isinstance(cache, _TokenCache)
    out = []
    for ref in refs:
        with cache.lock:
            found = cache.docs.get(ref.gid)
            if found is not None:
                cache.docs.move_to_end(ref.gid)
        if found is None:
            _, _, _, text, metadata, _ = snap.record(ref)
            found = Analysed.of(doc_of(ref.gid, text, metadata))
            with cache.lock:
                cache.docs[ref.gid] = found
                while len(cache.docs) > TOKEN_CACHE:
                    cache.docs.popitem(last=False)
        out.append(found)
    return out


def ordered(entries: list[Entry]) -> list[Entry]:
    """Score descending, ties by frame id (the order one file gives; frame ids are looked
    up only when scores tie)."""
    entries = sorted(entries, key=lambda e: -e[2])
    if all(a[2] != b[2] for a, b in pairwise(entries)):
        return entries
    return sorted(entries, key=lambda e: (-e[2], e[1].frame_id()))


def cut(entries: list[Entry], need: int) -> list[Entry]:
    """The first ``need`` of ordered ``entries`` and every later one tied with the last."""
    if len(entries) <= need:
        return entries
    last = entries[need - 1][2]
    end = need
    while end < len(entries) and entries[end][2] == last:
        end += 1
    return entries[:end]


def fuse(lists: Mapping[str, list[Entry]], req: Request, rrf_k: int) -> list[Entry]:
    """The request's ``k`` best: one mode's list, or both fused."""
    if len(lists) == 1:
        (ranked,) = lists.values()
        return ranked[: req.k]
    if not lists:
        return []
    by_key = {(e[0], e[1].gid): e for ranked in lists.values() for e in ranked}
    fused = rrf({m: [(e[0], e[1].gid) for e in ranked] for m, ranked in lists.items()},
                k=rrf_k, weights=dict(req.weights) or None)
    return ordered([(key[0], by_key[key][1], score) for key, score in fused])[: req.k]


def hits(chosen: list[Entry], lists: Mapping[str, list[Entry]], records: Records
         ) -> list[Hit]:
    """The Hits of ``chosen``, with each mode's rank and score from ``lists``; ``records``
    reads a shard's (key, version, created_at, text, metadata, tags) of rows."""
    positions = {m: {(e[0], e[1].gid): (i + 1, e[2]) for i, e in enumerate(ranked)}
                 for m, ranked in lists.items()}
    by_shard: dict[int, list[Any]] = {}
    for shard, ref, _ in chosen:
        by_shard.setdefault(shard, []).append(ref)
    found_records = {shard: iter(records(shard, refs)) for shard, refs in by_shard.items()}
    out = []
    for shard, ref, score in chosen:
        key, version, created, text, meta, tags = next(found_records[shard])
        collection, frame_id = split_key(key)
        found = {m: pos[(shard, ref.gid)] for m, pos in positions.items()
                 if (shard, ref.gid) in pos}
        out.append(Hit(frame_id, float(score), text, dict(meta), list(tags),
                       from_us(created), version, {m: r for m, (r, _) in found.items()},
                       {m: s for m, (_, s) in found.items()}, collection))
    return out


# ------------------------------------------------------------- shards in other processes
# A shard served elsewhere (a Ray actor) answers in plain data: its statistics for the
# query terms, then its own exact lists under the summed statistics, then the records of
# the rows chosen. The coordinator merges exactly as find_batch does.

Listed = tuple[int, str, float]
"""A candidate sent by a shard: (gid, frame key, score)."""


class Candidate:
    """A row of a shard in another process: what merging reads of a RowRef."""

    __slots__ = ("gid", "key")

    def __init__(self, gid: int, key: str) -> None:
        self.gid, self.key = gid, key

    def frame_id(self) -> str:
        return self.key


def shard_statistics(part: Part) -> list[BM25Stats | None]:
    """This shard's BM25 statistics for each request's terms (None: no lexical list)."""
    lex, delta = part.searcher.lexical_index(), part.searcher.delta_index()
    indexed, every = CorpusStats([lex]), CorpusStats([lex, delta])
    out: list[BM25Stats | None] = []
    for req in part.reqs:
        if req.mode in ("lexical", "hybrid") and req.text is not None:
            pq = parse_plain(req.text)
            terms = [*pq.terms, *(t for ph in pq.phrases for _, t in ph)]
            out.append(BM25Stats(FixedStats.read(indexed, terms),
                                 FixedStats.read(every, terms)))
        else:
            out.append(None)
    return out


def total_statistics(per_shard: Sequence[BM25Stats]) -> BM25Stats:
    """Every shard's statistics summed (what each shard then scores with)."""
    return BM25Stats(FixedStats.total([s.indexed for s in per_shard]),  # type: ignore[misc]
                     FixedStats.total([s.unindexed for s in per_shard]))  # type: ignore[misc]


def shard_lists(part: Part, stats: Sequence[BM25Stats | None], searched: Sequence[bool]
                ) -> list[dict[str, list[Listed]]]:
    """This shard's lists for each request: ``vector`` when it holds vectors to compare
    (its ``k`` best plus ties), ``lexical`` by the summed statistics ``stats[j]`` (its
    exact ``k`` best plus ties); a request not ``searched`` here gets empty ones."""
    vector_reqs = [j for j, req in enumerate(part.reqs) if searched[j]
                   and req.mode in ("vector", "hybrid") and req.vector is not None]
    found = part.searcher.vector_ranked_batch([part.reqs[j] for j in vector_reqs])
    out: list[dict[str, list[Listed]]] = []
    for j, req in enumerate(part.reqs):
        lists: dict[str, list[Entry]] = {}
        if req.mode in ("vector", "hybrid") and req.vector is not None:
            lists["vector"] = (cut(ordered(part.entries(found[id(req)])), depth(req))
                               if searched[j] else [])
        if stats[j] is not None:
            lists["lexical"] = (_ShardLexical(part, req, GlobalQuery(req.text or "", stats[j]),
                                              depth(req)).top(depth(req))
                                if searched[j] else [])
        out.append({m: [(ref.gid, ref.frame_id(), score) for _, ref, score in ranked]
                    for m, ranked in lists.items()})
    return out


def shard_records(part: Part, gids: Sequence[int]) -> list[tuple]:
    """(key, version, created_at µs, text, metadata, tags) of this shard's rows ``gids``."""
    refs = [part.snap.locate(gid) for gid in gids]
    part.snap.fetch_frames(refs)
    return [part.snap.record(ref) for ref in refs]


def merge_remote(req: Request, per_shard: Sequence[dict[str, list[Listed]]], rrf_k: int
                 ) -> tuple[list[Entry], dict[str, list[Entry]]]:
    """One request's chosen rows and mode lists from every shard's ``shard_lists``."""
    lists: dict[str, list[Entry]] = {}
    for shard, found in enumerate(per_shard):
        for mode, listed in found.items():
            lists.setdefault(mode, []).extend(
                (shard, Candidate(gid, key), score) for gid, key, score in listed)
    lists = {m: cut(ordered(entries), depth(req)) for m, entries in lists.items()}
    return fuse(lists, req, rrf_k), lists
