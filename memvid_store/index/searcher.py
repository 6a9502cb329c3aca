"""Query execution over one snapshot: lexical, vector and hybrid search with exact filters.

Indexes cover every stored version; a candidate (a gid) is *accepted* when it is visible
at the query's record time, lies in the ``time_range`` of event time and matches the
metadata filter. Each mode produces accepted candidates best-first, asking its index for
more (x4 each round) until it has ``need`` of them or the index is exhausted, so a filter
never silently returns fewer hits than exist.

Ordering is deterministic: score descending, ties by frame id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ..config import IndexConfig
from ..engine.snapshot import RowRef, Snapshot
from ..types import Hit, from_us
from .filters import FrameFilter
from .hybrid import rrf

HYBRID_DEPTH = 50  # candidates each mode contributes to the fusion (at least k)
RESULT_CACHE = 256


@dataclass(frozen=True, slots=True)
class Request:
    """A validated query (built by Memory.find)."""

    text: str | None
    vector: Any  # float32 array('f') of dim values, prepared for the metric, or None
    k: int
    mode: str  # "hybrid" | "vector" | "lexical"
    filter: FrameFilter | None
    at: int | None  # record time; None = current
    time_range: tuple[int | None, int | None] | None
    syntax: str = "plain"
    weights: tuple[tuple[str, float], ...] = ()
    key: tuple = field(default=(), compare=False)


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
        self._table: Any = None
        self._stored: Any = None
        self._light: Any = None
        self._walker: Any = None  # light.LightGraph, or False when it cannot serve
        self._walk_seconds = 0.0
        self._ann: Any = None
        self._ann_opened = False
        self._lex_lock = threading.Lock()
        self._ann_lock = threading.Lock()
        self._table_lock = threading.Lock()
        # set while a background warmup will load the graph: queries scan exactly meanwhile
        self.defer_vectors = False

    @property
    def cache_root(self) -> str:
        """Directory for unpacked index files (the handle's ``cache_dir``)."""
        if callable(self._cache_root):
            self._cache_root = self._cache_root()
        return self._cache_root

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
        vector_lists = self._vector_ranked_batch(
            [r for r in firsts if r.mode in ("vector", "hybrid") and r.vector is not None])
        for (key, idx), req in zip(todo.items(), firsts, strict=True):
            hits = self._run(req, vector_lists.get(id(req)))
            if req.key:
                self._results[key] = hits
                if len(self._results) > RESULT_CACHE:
                    self._results.popitem(last=False)
            for i in idx:
                out[i] = list(hits)
        return out  # type: ignore[return-value]

    def result_stats(self) -> Any:
        """Counters of the per-snapshot query result cache."""
        from ..cache import CacheStats

        return CacheStats(name="results", hits=self._result_hits, misses=self._result_misses,
                          evictions=0, items=len(self._results), bytes=0,
                          capacity=RESULT_CACHE)

    # ------------------------------------------------------------------ modes

    def _run(self, req: Request,
             vector_ranked: list[tuple[RowRef, float]] | None) -> list[Hit]:
        lists: dict[str, list[tuple[RowRef, float]]] = {}
        need = req.k if req.mode != "hybrid" else max(req.k, HYBRID_DEPTH)
        if req.mode in ("lexical", "hybrid") and req.text is not None:
            lists["lexical"] = self._lexical_ranked(req, need)
        if vector_ranked is not None:
            lists["vector"] = vector_ranked
        if len(lists) == 1:
            (mode, ranked), = lists.items()
            return self._hits(ranked[: self._cut(ranked, req.k)], {mode: ranked})
        fused = rrf({m: [ref.gid for ref, _ in ranked] for m, ranked in lists.items()},
                    k=self.config.rrf_k, weights=dict(req.weights) or None)
        refs = {ref.gid: ref for ranked in lists.values() for ref, _ in ranked}
        ordered = self._order([(refs[gid], score) for gid, score in fused])
        return self._hits(ordered[: req.k], lists)

    @staticmethod
    def _cut(ranked: list[tuple[RowRef, float]], k: int) -> int:
        return min(k, len(ranked))

    def _hits(self, ranked: list[tuple[RowRef, float]],
              lists: dict[str, list[tuple[RowRef, float]]]) -> list[Hit]:
        positions = {m: {ref.gid: (i + 1, s) for i, (ref, s) in enumerate(lst)}
                     for m, lst in lists.items()}
        hits = []
        for ref, score in ranked:
            frame_id, version, created, text, meta, tags = self.snap.record(ref)
            ranks = {m: pos[ref.gid][0] for m, pos in positions.items() if ref.gid in pos}
            scores = {m: pos[ref.gid][1] for m, pos in positions.items() if ref.gid in pos}
            hits.append(Hit(frame_id, float(score), text, dict(meta), list(tags),
                            from_us(created), version, ranks, scores))
        return hits

    def _order(self, ranked: list[tuple[RowRef, float]]) -> list[tuple[RowRef, float]]:
        """Score descending, ties by frame id (looked up only when scores tie)."""
        ranked = sorted(ranked, key=lambda rs: -rs[1])
        if all(a[1] != b[1] for a, b in pairwise(ranked)):
            return ranked
        return sorted(ranked, key=lambda rs: (-rs[1], self._frame_id(rs[0])))

    def _frame_id(self, ref: RowRef) -> str:
        return ref.version.id if ref.version is not None else ref.run.frame_id(ref.row)

    # ---------------------------------------------------------------- accepting

    def _payload(self, ref: RowRef) -> tuple[str, dict, list[str]]:
        # decoded payloads are cached by the snapshot's frame cache
        _, _, _, text, meta, tags = self.snap.record(ref)
        return text, meta, tags

    def _acceptor(self, req: Request, *, visible_checked: bool = False
                  ) -> Callable[[int], RowRef | None]:
        snap, flt, at, window = self.snap, req.filter, req.at, req.time_range

        def accept(gid: int) -> RowRef | None:
            ref = snap.locate(gid)
            if not visible_checked:
                if not snap.visible(ref, at):
                    return None
                if window is not None:
                    created = (ref.version.created_at if ref.version is not None
                               else ref.run.part("created")[ref.row])
                    lo, hi = window
                    if (lo is not None and created < lo) or (hi is not None and created >= hi):
                        return None
            if flt is not None:
                _, meta, tags = self._payload(ref)
                if not flt(meta, tags):
                    return None
            return ref

        return accept

    def _take(self, candidates: list[tuple[int, float]], need: int,
              accept: Callable[[int], RowRef | None]) -> list[tuple[RowRef, float]]:
        """Accepted candidates best-first: ``need`` of them plus any tied with the last."""
        out: list[tuple[RowRef, float]] = []
        for gid, score in candidates:
            if len(out) >= need and score < out[-1][1]:
                break
            ref = accept(gid)
            if ref is not None:
                out.append((ref, score))
        return self._order(out)

    # ----------------------------------------------------------------- lexical

    def _lexical_ranked(self, req: Request, need: int) -> list[tuple[RowRef, float]]:
        accept = self._acceptor(req)
        limit = max(2 * need, 32)
        while True:
            cands = self._lexical_candidates(req.text, limit, req.syntax)
            ranked = self._take(cands, need, accept)
            if len(ranked) >= need or len(cands) < limit:
                return ranked
            limit *= 4

    def _lexical_candidates(self, text: str, limit: int, syntax: str) -> list[tuple[int, float]]:
        lex = self._lexical_index()
        found = lex.search(text, limit, syntax=syntax) if lex is not None else []
        delta = self._delta_index()
        if delta is not None:
            found = found + delta.search(text, limit, index=lex, syntax=syntax)
        found.sort(key=lambda gs: (-gs[1], gs[0]))
        return found[:limit]

    def _lexical_index(self) -> Any:
        return self._lex if self._lex_opened else self.lexical_index()

    def _lex_manifest(self) -> Any:
        ref = self.snap.toc.find("lex")
        if ref is None:
            return None
        from .lexical.manifest import LexManifest

        return LexManifest.from_json(bytes(self.snap.view.read(ref.offset, ref.length,
                                                               "segment:lex")))

    def lex_bytes(self) -> int:
        """Bytes of the tantivy files the BM25 index loads (0 without one)."""
        manifest = self._lex_manifest()
        return 0 if manifest is None else sum(f[1] for f in manifest.files.values())

    def lexical_index(self) -> Any:
        """The opened tantivy index (None without one); loads it once, thread-safely."""
        with self._lex_lock:
            if not self._lex_opened:
                manifest = self._lex_manifest()
                if manifest is not None:
                    from .lexical.reader import LexSearcher

                    view = self.snap.view

                    def read_file(name: str) -> memoryview:
                        off, length, _ = manifest.files[name]
                        return view.read(off, length, "segment:lex")

                    def copied(name: str) -> None:
                        off, length, _ = manifest.files[name]
                        view.release(off, length)

                    ref = self.snap.toc.find("lex")
                    key = f"{self.snap.header.uuid.hex()}-{ref.crc:08x}"
                    self._lex = LexSearcher.open(manifest, read_file, self.cache_root, key,
                                                 done=copied)
                self._lex_opened = True
        return self._lex

    def _delta_index(self) -> Any:
        """In-memory BM25 over the versions the tantivy index does not cover yet."""
        docs_key = len(self.snap.delta)
        if self._delta_lex is None or self._delta_lex[0] != docs_key:
            from .lexical.delta import DeltaBM25
            from .lexical.schema import lex_doc
            from .maintain import covered_gid, tail_versions

            covered = covered_gid(self.snap.toc.find("lex"))
            docs = [lex_doc(v) for v in tail_versions(self.snap, covered) if not v.tombstone]
            self._delta_lex = (docs_key, DeltaBM25(docs) if docs else None)
        return self._delta_lex[1]

    # ------------------------------------------------------------------ vector

    def _vector_ranked_batch(self, reqs: list[Request]) -> dict[int, list[tuple[RowRef, float]]]:
        """Accepted vector candidates per request (keyed by id(request)), best-first."""
        if not reqs:
            return {}
        from . import light

        if light.active(self):
            if self._light is None:
                self._light = light.LightVectors(self)
            return {id(r): self._light.ranked(r, self._acceptor(r), self._take) for r in reqs}
        walked = light.walk(self, reqs)
        if walked is not None:
            return walked
        from .vector_search import VectorSearch

        engine = VectorSearch(self)
        return {id(r): ranked for r, ranked in zip(reqs, engine.run(reqs), strict=True)}

    def table(self) -> Any:
        from .table import VectorTable

        with self._table_lock:
            if self._table is None:
                self._table = VectorTable(self.snap)
            self._table.refresh()
            return self._table

    def stored_vectors(self) -> Any:
        """Committed vectors gathered by gid (graph candidates to rescore)."""
        if self._stored is None:
            from .table import StoredVectors

            self._stored = StoredVectors(self.snap)
        return self._stored

    def load_vectors(self) -> bool:
        """Load the vector tier: the HNSW graph if the file has one, else the exact table."""
        if self._graph_ref() is not None:
            self.defer_vectors = False
            return self._open_ann()[0] is not None
        table = self.table()
        for block in table.blocks:
            block.prepare(self.config.distance, self.snap.view)
        return bool(table.blocks)

    def _graph_ref(self) -> Any:
        ref = self.snap.toc.find("ann")
        return ref if ref is not None and self.config.ann_backend != "none" else None

    def ann(self) -> tuple[Any, int]:
        """The opened HNSW graph and the first gid it does not cover; (None, 0) if none.

        While a background warmup is loading the graph this does not wait: (None, 0), and
        the query scans exactly.
        """
        if self._ann_opened:
            return self._ann or (None, 0)
        if self.defer_vectors or not self._ann_lock.acquire(blocking=False):
            return None, 0
        self._ann_lock.release()
        return self._open_ann()

    def _open_ann(self) -> tuple[Any, int]:
        with self._ann_lock:
            if not self._ann_opened:
                ref = self._graph_ref()
                if ref is not None:
                    from .ann import AnnParams, get_backend

                    meta = ref.meta
                    backend = get_backend(meta["backend"])
                    params = AnnParams(M=meta["M"], ef_construction=meta["ef_construction"],
                                       ef_search=self.config.ann_ef_search,
                                       dtype=meta.get("dtype", "f32"))
                    data = self.snap.view.read(ref.offset, ref.length, "segment:ann")
                    index = backend.open(data, dim=self.snap.dim, metric=self.config.distance,
                                         params=params, scratch_dir=self.cache_root)
                    # loading walked every node (usearch) or copied the graph (hnswlib):
                    # searches fault back only the pages they visit
                    self.snap.view.release(ref.offset, ref.length)
                    self._ann = (index, int(meta["covered"]))
                self._ann_opened = True  # after _ann: readers never see a half-open graph
        return self._ann or (None, 0)

    def close(self) -> None:
        if self._lex is not None:
            self._lex.close()
        if self._ann is not None:
            self._ann[0].close()
