"""tantivy's BM25, one document at a time: scores that merge with the index's by value.

A plain query scores a document as tantivy does (k1=1.2, b=0.75, idf = ln(1 + (N - df +
0.5)/(df + 0.5)), quantized field lengths, title boost x2, a phrase scored with the sum
of its terms' idf), with whatever statistics it is given: a shard's candidates are scored
with every shard's statistics, the WAL delta with the index's and its own.

:class:`Rescorer` fixes a query's weights and length normalisation once; scoring a
document is then a few lookups in its :class:`Analysed` tokens.

This module must not import numpy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from .analyzer import tokenize
from .schema import FIELDS

if TYPE_CHECKING:
    from .query import PlainQuery
    from .schema import LexDoc

K1 = 1.2
B = 0.75

Phrase = tuple[tuple[int, str], ...]


def _fieldnorm_table() -> list[int]:
    """tantivy's fieldnorm codes (fieldnorm/code.rs): exact up to 23, then log buckets."""
    out = []
    for b in range(256):
        if b < 24:
            out.append(b)
            continue
        e = b - 24
        bits, shift = e & 7, e >> 3
        out.append(24 + (bits if shift == 0 else (bits | 8) << (shift - 1)))
    return out


_FIELDNORMS = _fieldnorm_table()


def quantize(length: int) -> int:
    """A field length as tantivy stores it (one byte per document, lossy above 40)."""
    if length <= 40:
        return length
    lo, hi = 0, 255
    while lo < hi:  # largest code whose value <= length
        mid = (lo + hi + 1) // 2
        if _FIELDNORMS[mid] <= length:
            lo = mid
        else:
            hi = mid - 1
    return _FIELDNORMS[lo]


def idf(df: int, n: int) -> float:
    """BM25 inverse document frequency of a term in ``df`` of ``n`` documents."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


class Statistics(Protocol):
    """What BM25 needs of a corpus (LexSearcher, DeltaBM25 and CorpusStats have it)."""

    @property
    def num_docs(self) -> int: ...

    def doc_freq(self, term: str, field: str = ...) -> int: ...

    def total_tokens(self, field: str = ..., hints: Iterable[str] = ...) -> float: ...


class Analysed:
    """A document's tokens per field (in :data:`FIELDS` order, positions = list index) and
    their counts, counted on first use."""

    __slots__ = ("_counts", "tokens")

    def __init__(self, tokens: Sequence[list[str]]) -> None:
        self.tokens = tuple(tokens)
        self._counts: list[dict[str, int] | None] = [None] * len(self.tokens)

    @classmethod
    def of(cls, doc: LexDoc) -> Analysed:
        """``doc``'s text and title as the index analyses them."""
        return cls([tokenize(doc.text), tokenize(doc.title)])

    def counts(self, field: int) -> dict[str, int]:
        found = self._counts[field]
        if found is None:
            found = self._counts[field] = Counter(self.tokens[field])
        return found


class Rescorer:
    """One plain query's BM25 with fixed statistics, applied to one document at a time."""

    def __init__(self, query: PlainQuery, stats: Statistics) -> None:
        self.query = query
        n = stats.num_docs
        # per field with tokens: (index, avgdl, [(term, weight)], [(phrase, weight)])
        self._fields: list[tuple[int, float, list[tuple[str, float]],
                                 list[tuple[Phrase, float]]]] = []
        for i, (fname, boost) in enumerate(FIELDS):
            total = stats.total_tokens(fname, query.terms) if n else 0.0
            if total <= 0:
                continue

            def df(term: str, fname: str = fname) -> int:
                return stats.doc_freq(term, fname)

            terms = [(t, boost * idf(df(t), n) * (1 + K1)) for t in query.terms]
            phrases = [(ph, boost * sum(idf(df(t), n) for _, t in ph) * (1 + K1))
                       for ph in query.phrases]
            self._fields.append((i, total / n, terms, phrases))

    def score(self, doc: Analysed) -> float:
        """``doc``'s score (0.0 when nothing of the query is in it)."""
        score = 0.0
        for i, avgdl, terms, phrases in self._fields:
            counts = doc.counts(i)
            norm = None
            for term, w in terms:
                tf = counts.get(term)
                if tf:
                    if norm is None:
                        norm = length_norm(len(doc.tokens[i]), avgdl)
                    score += w * tf / (tf + norm)
            for phrase, w in phrases:
                if all(t in counts for _, t in phrase):
                    pf = phrase_count(doc.tokens[i], phrase)
                    if pf:
                        if norm is None:
                            norm = length_norm(len(doc.tokens[i]), avgdl)
                        score += w * pf / (pf + norm)
        return score


def length_norm(length: int, avgdl: float) -> float:
    """BM25's ``k1 (1 - b + b dl / avgdl)`` for a field of ``length`` tokens."""
    return K1 * (1 - B + B * quantize(length) / avgdl)


def phrase_count(tokens: list[str], phrase: Phrase) -> int:
    """Start positions where every (offset, term) of ``phrase`` matches."""
    starts: set[int] | None = None
    for off, term in phrase:
        here = {p - off for p, t in enumerate(tokens) if t == term}
        starts = here if starts is None else starts & here
        if not starts:
            return 0
    return len(starts) if starts else 0
