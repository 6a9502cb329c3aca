"""BM25 over the WAL delta in memory, scoring like tantivy so scores merge by value.

:class:`DeltaBM25` scores the versions the tantivy index does not cover yet with
tantivy's BM25 (k1=1.2, b=0.75, quantized field lengths, title boost x2), combining the
index's statistics with the delta's, so that its scores merge with the index's by value.

This module must not import numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .analyzer import load_tantivy
from .corpus_stats import CorpusStats
from .query import check_syntax, parse_plain, run_query_syntax, with_ties
from .rescore import Analysed, Rescorer
from .schema import F_TEXT, FIELDS, WRITER_HEAP, LexDoc, add_docs, check_docs, register, schema

if TYPE_CHECKING:
    from .reader import LexSearcher

class DeltaBM25:
    """BM25 over a small in-memory set of docs (the WAL delta), scoring like tantivy's BM25
    (:mod:`.rescore`) so that its scores merge with :class:`LexSearcher`'s by value."""

    def __init__(self, docs: Sequence[LexDoc]) -> None:
        self._docs = list(docs)
        check_docs(self._docs)
        self._gids = [d.gid for d in self._docs]
        self._analysed = [Analysed.of(d) for d in self._docs]
        self._postings: list[dict[str, list[int]]] = [{} for _ in FIELDS]  # term -> docs
        self._totals = [0] * len(FIELDS)
        for i, doc in enumerate(self._analysed):
            for f, postings in enumerate(self._postings):
                self._totals[f] += len(doc.tokens[f])
                for term in doc.counts(f):
                    postings.setdefault(term, []).append(i)
        self._ram: Any = None

    def __len__(self) -> int:
        return len(self._docs)

    # the statistics interface of LexSearcher (and CorpusStats): these documents' share

    @property
    def num_docs(self) -> int:
        return len(self._docs)

    def doc_freq(self, term: str, field: str = F_TEXT) -> int:
        """Documents whose ``field`` holds ``term``."""
        return len(self._postings[_FIELD_INDEX[field]].get(term, ()))

    def total_tokens(self, field: str = F_TEXT, hints: Iterable[str] = ()) -> float:
        """Tokens of ``field`` over these documents (``hints`` unused: exact counts)."""
        return float(self._totals[_FIELD_INDEX[field]])

    def search(self, query: str, limit: int, *, index: LexSearcher | None = None,
               syntax: str = "plain", indexed: bool = False) -> list[tuple[int, float]]:
        """(gid, score) best first, ties by gid, and every match tied with the last. With
        ``index``, N, df and avgdl combine the index's statistics with the delta's; with
        ``indexed`` too, these documents are already in ``index`` and are scored with its
        statistics alone, as tantivy scores them. ``syntax="query"`` runs tantivy's query
        language on an in-memory index of the delta (delta statistics only)."""
        check_syntax(syntax)
        if limit <= 0 or not query or not query.strip():
            return []
        if syntax == "query":
            ram, searcher = self._ram_index()
            return run_query_syntax(ram, searcher, query, limit, len(self._docs))
        pq = parse_plain(query)
        if pq.empty:
            return []
        scorer = Rescorer(pq, index if indexed and index is not None
                          else CorpusStats([index, self]))
        words = {*pq.terms, *(t for ph in pq.phrases for _, t in ph)}
        found = {i for postings in self._postings for t in words for i in postings.get(t, ())}
        out = [(self._gids[i], s) for i in found if (s := scorer.score(self._analysed[i])) > 0]
        out.sort(key=lambda gs: (-gs[1], gs[0]))
        return with_ties(out, limit)

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


_FIELD_INDEX = {name: i for i, (name, _) in enumerate(FIELDS)}
