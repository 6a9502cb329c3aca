"""BM25 statistics of a corpus split over several indexes, and how far they move a score.

A memory split into shards scores text as one file would: with the document count,
document frequencies and field lengths of every shard together. :class:`CorpusStats`
sums them; :class:`~.rescore.Rescorer` scores documents with them.

Each shard's own index still ranks its candidates, with its local statistics. How far a
local score can move under the global ones is bounded per query term and field:

* the idf changes by the factor ``idf_global / idf_local``;
* the length normalisation ``tf / (tf + k1 (1 - b + b dl / avgdl))`` changes by a factor
  between 1 (``dl = 0``) and ``avgdl_global / avgdl_local`` (``dl`` large).

So a document's global score lies within :func:`score_range` times its local score: a
shard's documents not yet fetched (local score at most the last one fetched) cannot beat a
global score above the upper factor times the last local score, and a candidate whose
upper bound is below the lower bounds of enough others need not be rescored.

This module must not import numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from .rescore import Statistics, idf
from .schema import FIELDS

# local scores are tantivy's float32: a bound a little wider covers their rounding
ROUNDING_MARGIN = 1e-4


class CorpusStats:
    """The sum of several corpora's BM25 statistics (``None`` parts are skipped), each
    figure read once: the parts must not change while it is used (one query's life)."""

    def __init__(self, parts: Iterable[Statistics | None]) -> None:
        self.parts = [p for p in parts if p is not None]
        self.num_docs = sum(p.num_docs for p in self.parts)
        self._freqs: dict[tuple[str, str], int] = {}
        self._totals: dict[str, float] = {}

    def doc_freq(self, term: str, field: str = "text") -> int:
        key = (term, field)
        found = self._freqs.get(key)
        if found is None:
            found = self._freqs[key] = sum(p.doc_freq(term, field) for p in self.parts)
        return found

    def total_tokens(self, field: str = "text", hints: Iterable[str] = ()) -> float:
        found = self._totals.get(field)
        if found is None:
            hints = list(hints)
            found = self._totals[field] = sum(p.total_tokens(field, hints)
                                              for p in self.parts if p.num_docs)
        return found


class FixedStats:
    """Statistics of a corpus for a set of terms, as plain figures (sent between
    processes: a shard reads its own, a coordinator sums them)."""

    def __init__(self, num_docs: int, freqs: dict[tuple[str, str], int],
                 totals: dict[str, float]) -> None:
        self.num_docs, self.freqs, self.totals = num_docs, freqs, totals

    @classmethod
    def read(cls, stats: Statistics, terms: Iterable[str]) -> FixedStats:
        """``stats``' figures for ``terms`` in every field."""
        terms = list(dict.fromkeys(terms))
        fields = [f for f, _ in FIELDS]
        return cls(stats.num_docs, {(t, f): stats.doc_freq(t, f) for t in terms for f in fields},
                   {f: stats.total_tokens(f, terms) if stats.num_docs else 0.0 for f in fields})

    @classmethod
    def total(cls, parts: Sequence[FixedStats]) -> FixedStats:
        freqs: dict[tuple[str, str], int] = {}
        totals: dict[str, float] = {}
        for p in parts:
            for key, df in p.freqs.items():
                freqs[key] = freqs.get(key, 0) + df
            for field, n in p.totals.items():
                totals[field] = totals.get(field, 0.0) + n
        return cls(sum(p.num_docs for p in parts), freqs, totals)

    def doc_freq(self, term: str, field: str = "text") -> int:
        return self.freqs.get((term, field), 0)

    def total_tokens(self, field: str = "text", hints: Iterable[str] = ()) -> float:
        return self.totals.get(field, 0.0)


class BM25Stats(NamedTuple):
    """The statistics a memory's versions are scored with, as one file scores them: an
    indexed version with its BM25 indexes' (tantivy's own scoring), a version the index
    does not cover yet with the indexes' and the WAL deltas' together."""

    indexed: Statistics
    unindexed: Statistics


def score_range(pairs: Sequence[tuple[Statistics, Statistics]], terms: Iterable[str]
                ) -> tuple[float, float]:
    """The smallest and largest factors by which a score can change from the first
    statistics of a ``(local, global)`` pair to the second, for any pair and a query of
    ``terms`` (phrases score with the sum of their terms' idf, so the per-term factors
    bound them too)."""
    terms = list(dict.fromkeys(terms))
    low, high = 1.0, 1.0
    for stats, glob in pairs:
        n_local, n_glob = stats.num_docs, glob.num_docs
        if n_local <= 0:
            continue
        for field, _ in FIELDS:
            local_total = stats.total_tokens(field, terms)
            if local_total <= 0:
                continue
            lengths = _avg(glob.total_tokens(field, terms), n_glob) / (local_total / n_local)
            for term in terms:
                df = stats.doc_freq(term, field)
                if df:
                    ratio = idf(glob.doc_freq(term, field), n_glob) / idf(df, n_local)
                    low = min(low, ratio * min(1.0, lengths))
                    high = max(high, ratio * max(1.0, lengths))
    return low * (1.0 - ROUNDING_MARGIN), high * (1.0 + ROUNDING_MARGIN)


def _avg(total: float, n: int) -> float:
    return total / n if n else 0.0

