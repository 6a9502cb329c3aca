"""Query execution over one snapshot: lexical, vector and hybrid search with exact filters.

Each mode produces accepted candidates best-first (see :mod:`.acceptance`: visibility at
the query's record time, the ``time_range`` of event time, the metadata filter), asking
its index for more until it has ``need`` of them or the index is exhausted, so a filter
never silently returns fewer hits than exist. Vector candidates come from the path
:mod:`.vector.paths` chooses; hybrid fuses both lists by reciprocal rank.

Ordering is deterministic: score descending, ties by frame id. One Searcher per snapshot
(:func:`searcher_for`) caches opened indexes and up to ``RESULT_CACHE`` results.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..config import IndexConfig
from ..engine.keys import split_key
from ..engine.snapshot import Record, Snapshot
from ..errors import DamagedIndexError
from ..types import Hit, from_us
from .acceptance import Acceptance, Ranked, order_head
from .admitted import admitted_gids, score_admitted
from .hybrid import rrf

if TYPE_CHECKING:
    from .requests import Request
    from .vector.paths import VectorPaths

SUBSET_CACHE = 8  # in-memory BM25s of recent selective filters, per snapshot
SUBSET_REPEATS = 3  # lexical queries with one filter after which its BM25 is built anyway
HYBRID_DEPTH = 50  # candidates each mode contributes to the fusion (at least k)
RESULT_CACHE = 256
# a hit's event time from its microseconds: datetimes are immutable, so hits of one frame
# (and frames of one instant) share one, built once (0.55 us each time otherwise)
_event_time = lru_cache(maxsize=1 << 14)(from_us)


def searcher_for(snap: Snapshot, config: IndexConfig,
                 cache_root: str | Callable[[], str]) -> Searcher:
    """The Searcher of ``snap`` (made once, then kept in ``snap.extras["searcher"]``)."""
    searcher = snap.extras.get("searcher")
    if searcher is None:
        searcher = snap.extras["searcher"] = Searcher(snap, config, cache_root)
    return searcher


def existing_searcher(snap: Snapshot) -> Searcher | None:
    """The Searcher of ``snap`` if one was made, without making one."""
    return snap.extras.get("searcher")


class Searcher:
    """Search state of one snapshot: opened indexes, decoded payloads, cached results."""

    def __init__(self, snap: Snapshot, config: IndexConfig,
                 cache_root: str | Callable[[], str]) -> None:
        self.snap = snap
        self.config = config
        self._cache_root = cache_root  # resolved on first need: the default imports tempfile
        self._results: OrderedDict[tuple, list[Hit]] = OrderedDict()
        self._result_hits = self._result_misses = 0
        self._lex: Any = None
        self._lex_opened = False
        self._delta_lex: Any = None
        self._subsets: OrderedDict[tuple, Any] = OrderedDict()
        self._subset_asks: OrderedDict[tuple, int] = OrderedDict()  # queries per filter
        self._lex_lock = threading.Lock()
        self._vectors: Any = None  # the vector paths, made on first vector need
        self._vectors_lock = threading.Lock()
        self._defer = False

    @property
    def cache_root(self) -> str:
        """Directory for unpacked index files (the handle's ``cache_dir``)."""
        if callable(self._cache_root):
            self._cache_root = self._cache_root()
        return self._cache_root

    @property
    def vectors(self) -> VectorPaths:
        """The snapshot's vector paths, made on first use: an open that answers lexical
        queries, or none yet, does not import them (about 1.5 ms here)."""
        paths = self._vectors
        if paths is not None:
            return paths
        with self._vectors_lock:
            if self._vectors is None:
                from .vector.paths import VectorPaths

                self._vectors = VectorPaths(self.snap, self.config, lambda: self.cache_root)
                self._vectors.defer = self._defer
            return self._vectors

    @property
    def defer_vectors(self) -> bool:
        """Set while a background warmup will load the graph: queries do not wait for it
        (they walk the graph without numpy, or scan exactly)."""
        return self._defer

    @defer_vectors.setter
    def defer_vectors(self, value: bool) -> None:
        with self._vectors_lock:
            self._defer = value
            if self._vectors is not None:
                self._vectors.defer = value

    # ------------------------------------------------------------------ public

    def find(self, req: Request) -> list[Hit]:
        return self.find_batch([req])[0]

    def find_batch(self, reqs: Sequence[Request]) -> list[list[Hit]]:
        """Run queries; identical ones run once, repeated ones come from the result cache."""
        out: list[list[Hit] | None] = [None] * len(reqs)
        todo: dict[tuple, list[int]] = {}
        for i, req in enumerate(reqs):
            cached = self._results.get(req.key) if req.key else None
            if cached is not None:
                self._result_hits += 1
                self._results.move_to_end(req.key)
                out[i] = list(cached)
            else:
                self._result_misses += 1
                todo.setdefault(req.key or ("#", i), []).append(i)
        firsts = [reqs[idx[0]] for idx in todo.values()]
        vector_reqs = [r for r in firsts if r.mode in ("vector", "hybrid") and r.vector is not None]
        if vector_reqs and any(r.mode == "hybrid" and r.text is not None for r in firsts):
            self._open_lexical_meanwhile()
        vector_lists = self.vector_ranked_batch(vector_reqs)
        for (key, idx), req in zip(todo.items(), firsts, strict=True):
            hits = self._run(req, vector_lists.get(id(req)))
            if req.key:
                self._results[key] = hits
                if len(self._results) > RESULT_CACHE:
                    self._results.popitem(last=False)
            for i in idx:
                out[i] = list(hits)
        return out  # type: ignore[return-value]

    def _open_lexical_meanwhile(self) -> None:
        """Open the tantivy index in a thread while the vector half of a hybrid query runs
        (a new container copies and checks the index files first: both halves then wait
        on the disk together instead of one after the other). A failure is left to the
        lexical half, which opens it again and raises."""
        if self._lex_opened or self._lex_lock.locked():
            return

        def open_quietly() -> None:
            with contextlib.suppress(Exception):
                self.lexical_index()

        threading.Thread(target=open_quietly, name="memvid-lexical-open", daemon=True).start()

    def result_stats(self) -> Any:
        """Counters of the per-snapshot query result cache."""
        from ..coldstart.cache import CacheStats

        return CacheStats(name="results", hits=self._result_hits, misses=self._result_misses,
                          evictions=0, items=len(self._results), bytes=0,
                          capacity=RESULT_CACHE)

    # ------------------------------------------------------------------ modes

    def _run(self, req: Request, vector_ranked: Ranked | None) -> list[Hit]:
        lists: dict[str, Ranked] = {}
        need = req.k if req.mode != "hybrid" else max(req.k, HYBRID_DEPTH)
        if req.mode in ("lexical", "hybrid") and req.text is not None:
            lists["lexical"] = self._lexical_ranked(req, need)
        if vector_ranked is not None:
            lists["vector"] = vector_ranked
        if len(lists) == 1:
            (mode, ranked), = lists.items()
            return self._hits(ranked[: min(req.k, len(ranked))], {mode: ranked})
        fused = rrf({m: [ref.gid for ref, _ in ranked] for m, ranked in lists.items()},
                    k=self.config.rrf_k, weights=dict(req.weights) or None)
        refs = {ref.gid: ref for ranked in lists.values() for ref, _ in ranked}
        return self._hits(order_head([(refs[gid], score) for gid, score in fused], req.k),
                          lists)

    def _hits(self, ranked: Ranked, lists: dict[str, Ranked]) -> list[Hit]:
        """The Hits of ``ranked``, with each mode's rank and score of them in ``lists``
        (one mode: ``ranked`` is the head of its list)."""
        refs = [ref for ref, _ in ranked]
        self.snap.fetch_frames(refs)
        records = self.snap.records(refs)
        if len(lists) == 1:
            mode = next(iter(lists))
            return [_hit(record, score, {mode: rank}, {mode: score})
                    for rank, (record, (_, score)) in enumerate(zip(records, ranked,
                                                                    strict=True), 1)]
        positions = {m: {ref.gid: (i + 1, s) for i, (ref, s) in enumerate(lst)}
                     for m, lst in lists.items()}
        hits = []
        for record, (ref, score) in zip(records, ranked, strict=True):
            found = [(m, pos[ref.gid]) for m, pos in positions.items() if ref.gid in pos]
            hits.append(_hit(record, score, {m: rank for m, (rank, _) in found},
                             {m: s for m, (_, s) in found}))
        return hits

    # ----------------------------------------------------------------- lexical

    def _lexical_ranked(self, req: Request, need: int) -> Ranked:
        accept = Acceptance.of(self.snap, req)
        gids = admitted_gids(self.snap, req)
        total = 0 if gids is None else self._lexical_total()
        if gids is not None and req.syntax == "plain" and (
                score_admitted(len(gids), need, total) or self._subset_repeats(req)):
            return accept.take(self._lexical_subset(req, gids), need)
        inside = None if gids is None else set(gids)
        limit = max(2 * need, 32)
        if inside:  # a filter independent of the text keeps len/total of the candidates
            limit = max(limit, need * total // len(inside))
        while True:
            cands = self.lexical_candidates(req.text, limit, req.syntax)
            kept = cands if inside is None else [gs for gs in cands if gs[0] in inside]
            ranked = accept.take(kept, need)
            if len(ranked) >= need or len(cands) < limit:
                return ranked
            limit = widened(limit, len(ranked), need)

    def _lexical_total(self) -> int:
        """Documents a lexical search ranks: the index's and the delta's."""
        lex, delta = self._lexical_index(), self.delta_index()
        return (0 if lex is None else lex.num_docs) + (0 if delta is None else len(delta))

    def _lexical_subset(self, req: Request, gids: list[int]) -> list[tuple[int, float]]:
        """BM25 (gid, score) best-first of just the versions ``gids`` a selective filter,
        collection or ``time_range`` admits, instead of widening the index's candidates
        until enough pass (:mod:`.admitted`). Indexed versions are scored with the index's
        statistics, as tantivy scores them; the others come from the delta's BM25, as in
        every lexical search."""
        lex = self._lexical_index()
        covered = self._subset_docs(req, gids, lex)
        found = covered.search(req.text, len(covered), index=lex, indexed=True) if len(
            covered) else []
        delta = self.delta_index()
        if delta is not None:
            admitted = set(gids)
            found += [gs for gs in delta.search(req.text, len(delta), index=lex)
                      if gs[0] in admitted]
        found.sort(key=lambda gs: (-gs[1], gs[0]))
        return found

    def _subset_docs(self, req: Request, gids: list[int], lex: Any) -> Any:
        """The indexed versions among ``gids`` that ``req`` accepts, as an in-memory BM25
        (kept for the next query with the same filter, window and time)."""
        from .coverage import covered_gid
        from .lexical.delta import DeltaBM25
        from .lexical.schema import doc_of

        key = self._subset_key(req)
        cached = self._subsets.get(key)
        if cached is not None:
            self._subsets.move_to_end(key)
            return cached
        end = covered_gid(self.snap.toc.find("lex")) if lex is not None else 0
        accept = Acceptance.of(self.snap, req)
        refs = [ref for ref in (accept.accept(gid) if gid < end else None for gid in gids)
                if ref is not None]
        self.snap.fetch_frames(refs)  # read together (remote: one round)
        scorer = DeltaBM25([doc_of(ref.gid, text, meta) for ref, (_, _, _, text, meta, _)
                            in zip(refs, self.snap.records(refs), strict=True)])
        self._subsets[key] = scorer
        if len(self._subsets) > SUBSET_CACHE:
            self._subsets.popitem(last=False)
        return scorer

    def _subset_key(self, req: Request) -> tuple:
        spec = None if req.filter is None else req.filter.canonical
        return (req.collection, spec, req.at, req.time_range, len(self.snap.delta))

    def _subset_repeats(self, req: Request) -> bool:
        """Whether the admitted versions of ``req``'s filter are scored in memory though
        widening the index costs less once: their BM25 is kept, or the filter came back
        ``SUBSET_REPEATS`` times (building it costs about 15 widened queries: 100 ms for
        1,250 versions, then 0.6 ms a query against 8)."""
        key = self._subset_key(req)
        if key in self._subsets:
            return True
        asks = self._subset_asks.pop(key, 0) + 1
        self._subset_asks[key] = asks
        while len(self._subset_asks) > 4 * SUBSET_CACHE:
            self._subset_asks.popitem(last=False)
        return asks >= SUBSET_REPEATS

    def lexical_candidates(self, text: str, limit: int, syntax: str) -> list[tuple[int, float]]:
        """The ``limit`` best (gid, score) of the index and the delta, and every match tied
        with the last."""
        from .lexical.query import with_ties

        lex = self._lexical_index()
        found = lex.search(text, limit, syntax=syntax) if lex is not None else []
        delta = self.delta_index()
        if delta is None:
            return found  # the index's own order, ties included
        found = found + delta.search(text, limit, index=lex, syntax=syntax)
        found.sort(key=lambda gs: (-gs[1], gs[0]))
        return with_ties(found, limit)

    def _lexical_index(self) -> Any:
        return self._lex if self._lex_opened else self.lexical_index()

    def _lex_manifest(self) -> Any:
        """The BM25 index's manifest (None without one).

        Raises:
            DamagedIndexError: it fails its checksum or cannot be parsed.
        """
        from .lexical.manifest import read_manifest

        return read_manifest(self.snap)

    def lex_bytes(self) -> int:
        """Bytes of the tantivy files the BM25 index loads (0 without one or when it is
        damaged: its loading tier has nothing to load)."""
        try:
            manifest = self._lex_manifest()
        except DamagedIndexError:
            return 0
        return 0 if manifest is None else sum(f[1] for f in manifest.files.values())

    def lexical_index(self) -> Any:
        """The opened tantivy index (None without one); loads it once, thread-safely."""
        with self._lex_lock:
            if not self._lex_opened:
                manifest = self._lex_manifest()
                if manifest is not None:
                    from .lexical.files import ManifestFiles
                    from .lexical.reader import LexSearcher

                    files = ManifestFiles(self.snap.view, manifest)
                    ref = self.snap.toc.find("lex")
                    key = f"{self.snap.header.uuid.hex()}-{ref.crc:08x}"
                    self._lex = LexSearcher.open(manifest, files.read, self.cache_root, key,
                                                 done=files.release, read_tail=files.read_tail)
                self._lex_opened = True
        return self._lex

    def delta_index(self) -> Any:
        """In-memory BM25 over the versions the tantivy index does not cover yet."""
        docs_key = len(self.snap.delta)
        if self._delta_lex is None or self._delta_lex[0] != docs_key:
            from .coverage import covered_gid, tail_versions
            from .lexical.delta import DeltaBM25
            from .lexical.schema import lex_doc

            covered = covered_gid(self.snap.toc.find("lex"))
            docs = [lex_doc(v) for v in tail_versions(self.snap, covered) if not v.tombstone]
            self._delta_lex = (docs_key, DeltaBM25(docs) if docs else None)
        return self._delta_lex[1]

    # ------------------------------------------------------------------ vector

    def vector_ranked_batch(self, reqs: list[Request]) -> dict[int, Ranked]:
        """Accepted vector candidates per request (keyed by id(request)), best-first."""
        if not reqs:
            return {}
        # hybrid fuses as deep a vector list as a lexical one (HYBRID_DEPTH), so that
        # find(q, k=3) is find(q, k=50)[:3]
        deep = [replace(r, k=max(r.k, HYBRID_DEPTH)) if r.mode == "hybrid" else r
                for r in reqs]
        accepts = [Acceptance.of(self.snap, r) for r in deep]
        ranked = self.vectors.ranked(deep, accepts)
        return {id(r): found for r, found in zip(reqs, ranked, strict=True)}

    def load_vectors(self) -> bool:
        """Load the vector tier: the graph's cluster lists (every list read and checked)
        or, without them, the HNSW graph if the file has one, else the exact table."""
        if self.vectors.has_graph():
            self.defer_vectors = False
            if self.vectors.reads_lists() and self.vectors.lists.load():
                return True
            return self.vectors.hnsw.open()[0] is not None
        return self.vectors.exact.load()

    def ann(self) -> tuple[Any, int]:
        """The opened HNSW graph and the first gid it does not cover; (None, 0) if none.

        While a background warmup is loading the graph this does not wait: (None, 0), and
        the query scans exactly.
        """
        return self.vectors.graph()

    def close(self) -> None:
        if self._lex is not None:
            self._lex.close()
        if self._vectors is not None:
            self._vectors.close()


def _hit(record: Record, score: float,
         ranks: dict[str, int], scores: dict[str, float]) -> Hit:
    key, version, created, text, meta, tags = record
    collection, frame_id = split_key(key)
    return Hit(frame_id, float(score), text, dict(meta), list(tags), _event_time(created),
               version, ranks, scores, collection)


def widened(limit: int, found: int, need: int) -> int:
    """The next candidate limit of a search that found ``found`` of ``need`` in ``limit``
    candidates: as many more as the yield so far says it takes (plus a quarter), at least
    twice and at most 16 times as many."""
    wanted = limit * need * 5 // (4 * max(found, 1))
    return min(16 * limit, max(2 * limit, wanted))
