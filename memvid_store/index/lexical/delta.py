"""BM25 over the WAL delta in memory, scoring like tantivy so scores merge by value.

:class:`DeltaBM25` scores the versions the tantivy index does not cover yet with
tantivy's BM25 (k1=1.2, b=0.75, quantized field lengths, title boost x2), combining the
index's statistics with the delta's, so that its scores merge with the index's by value.

This module must not import numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .analyzer import analyzer, load_tantivy, normalize
from .query import check_syntax, parse_plain, run_query_syntax
from .schema import (
    F_TEXT,
    F_TITLE,
    FIELDS,
    WRITER_HEAP,
    LexDoc,
    add_docs,
    check_docs,
    register,
    schema,
)

if TYPE_CHECKING:
    from .reader import LexSearcher

K1 = 1.2
B = 0.75


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


def _quantize(length: int) -> int:
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


@dataclass(slots=True)
class _Field:
    tokens: list[list[str]] = field(default_factory=list)
    postings: dict[str, dict[int, int]] = field(default_factory=dict)  # term -> {doc: tf}
    total: int = 0


class DeltaBM25:
    """BM25 over a small in-memory set of docs (the WAL delta), scoring like tantivy's BM25
    (k1=1.2, b=0.75, idf = ln(1 + (N - df + 0.5)/(df + 0.5)), quantized field lengths,
    title boost x2, a phrase scored with the sum of its terms' idf) so that its scores merge
    with :class:`LexSearcher`'s by value."""

    def __init__(self, docs: Sequence[LexDoc], terms: Iterable[str] | None = None, *,
                 tokens: Sequence[tuple[list[str], list[str]]] | None = None) -> None:
        """``terms``: index just these (a scorer of one query's terms: much less work);
        None indexes every term. ``tokens``: each document's (text, title) tokens, as
        :func:`analyze_doc` gives them, when the caller has them already."""
        self._docs = list(docs)
        check_docs(self._docs)
        self._gids = [d.gid for d in self._docs]
        self._fields = {F_TEXT: _Field(), F_TITLE: _Field()}
        self._ram: Any = None
        wanted = None if terms is None else set(terms)
        for i, d in enumerate(self._docs):
            analysed = analyze_doc(d) if tokens is None else tokens[i]
            for fname, toks in zip((F_TEXT, F_TITLE), analysed, strict=True):
                fd = self._fields[fname]
                fd.tokens.append(toks)
                fd.total += len(toks)
                if wanted is None:
                    counts: dict[str, int] = {}
                    for t in toks:
                        counts[t] = counts.get(t, 0) + 1
                else:
                    counts = {t: c for t in wanted if (c := toks.count(t))}
                for t, c in counts.items():
                    fd.postings.setdefault(t, {})[i] = c

    def __len__(self) -> int:
        return len(self._docs)

    # the statistics interface of LexSearcher (and CorpusStats): these documents' share

    @property
    def num_docs(self) -> int:
        return len(self._docs)

    def doc_freq(self, term: str, field: str = F_TEXT) -> int:
        """Documents whose ``field`` holds ``term``."""
        return len(self._fields[field].postings.get(term, ()))

    def total_tokens(self, field: str = F_TEXT, hints: Iterable[str] = ()) -> float:
        """Tokens of ``field`` over these documents (``hints`` unused: exact counts)."""
        return float(self._fields[field].total)

    def search(self, query: str, limit: int, *, index: LexSearcher | None = None,
               syntax: str = "plain", indexed: bool = False) -> list[tuple[int, float]]:
        """(gid, score) best first, ties by gid. With ``index``, N, df and avgdl combine the
        index's statistics with the delta's; with ``indexed`` too, these documents are
        already in ``index`` and are scored with its statistics alone, as tantivy scores
        them. ``syntax="query"`` runs tantivy's query language on an in-memory index of the
        delta (delta statistics only)."""
        check_syntax(syntax)
        if limit <= 0 or not query or not query.strip():
            return []
        if syntax == "query":
            ram, searcher = self._ram_index()
            return run_query_syntax(ram, searcher, query, limit, len(self._docs))
        pq = parse_plain(query)
        if pq.empty:
            return []
        own = 0 if indexed and index is not None else 1  # count these documents' statistics
        n = own * len(self._docs) + (index.num_docs if index is not None else 0)
        scores: dict[int, float] = {}
        for fname, boost in FIELDS:
            fd = self._fields[fname]
            total = own * fd.total + (index.total_tokens(fname, pq.terms) if index is not None
                                      else 0.0)
            if total <= 0:
                continue
            avgdl = total / n
            norms: dict[int, float] = {}

            def norm(i: int, fd: _Field = fd, avgdl: float = avgdl,
                     norms: dict[int, float] = norms) -> float:
                v = norms.get(i)
                if v is None:
                    v = norms[i] = K1 * (1 - B + B * _quantize(len(fd.tokens[i])) / avgdl)
                return v

            def df(term: str, fd: _Field = fd, fname: str = fname) -> int:
                local = own * len(fd.postings.get(term, ()))
                return local + (index.doc_freq(term, fname) if index is not None else 0)

            for term in pq.terms:
                posting = fd.postings.get(term)
                if not posting:
                    continue
                w = boost * idf(df(term), n) * (1 + K1)
                for i, tf in posting.items():
                    scores[i] = scores.get(i, 0.0) + w * tf / (tf + norm(i))
            for phrase in pq.phrases:
                posts = [fd.postings.get(t) for _, t in phrase]
                if not all(posts):
                    continue
                cands = set.intersection(*(set(p) for p in posts))  # type: ignore[arg-type]
                if not cands:
                    continue
                w = boost * sum(idf(df(t), n) for _, t in phrase) * (1 + K1)
                for i in cands:
                    pf = _phrase_count(fd.tokens[i], phrase)
                    if pf:
                        scores[i] = scores.get(i, 0.0) + w * pf / (pf + norm(i))
        out = [(self._gids[i], s) for i, s in scores.items()]
        out.sort(key=lambda gs: (-gs[1], gs[0]))
        return out[:limit]

    def _ram_index(self) -> tuple[Any, Any]:
        if self._ram is None:
            tv = load_tantivy()
            ram = register(tv.Index(schema()))
            writer = ram.writer(heap_size=WRITER_HEAP, num_threads=1)
            add_docs(writer, self._docs)
            writer.commit()
            writer.wait_merging_threads()
            ram.config_reader("manual")
            ram.reload()
            self._ram = (ram, ram.searcher())
        return self._ram


def analyze_doc(doc: LexDoc) -> tuple[list[str], list[str]]:
    """A document's (text, title) tokens, as the index makes them."""
    an = analyzer()
    return (an.analyze(normalize(doc.text)) if doc.text else [],
            an.analyze(normalize(doc.title)) if doc.title else [])


def _phrase_count(toks: list[str], phrase: tuple[tuple[int, str], ...]) -> int:
    """Start positions where every (offset, term) of ``phrase`` matches."""
    starts: set[int] | None = None
    for off, term in phrase:
        here = {p - off for p, t in enumerate(toks) if t == term}
        starts = here if starts is None else starts & here
        if not starts:
            return 0
    return len(starts) if starts else 0
