"""Queries: plain text (never fails) and tantivy's query language, run for the top hits.

Plain queries (the default) never fail: words are OR'ed terms over ``text`` and ``title``
(title boosted x2), ``"quoted phrases"`` and runs of CJK characters (and the adjacent
pairs of a longer run) are phrase queries. Results are (gid, score), score descending,
ties by gid, also at the cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any, TypeVar

from ...errors import InvalidInputError
from .analyzer import analyzer, cjk_analyzer, load_tantivy, normalize
from .schema import F_GID, F_TEXT, F_TITLE, FIELDS, TITLE_BOOST

PARSED_CACHE = 512  # plain queries whose parse is kept

_Scored = TypeVar("_Scored", bound=tuple)


@dataclass(frozen=True, slots=True)
class PlainQuery:
    """A plain-text query: OR'ed terms and phrases (each a tuple of (offset, term))."""

    terms: tuple[str, ...]
    phrases: tuple[tuple[tuple[int, str], ...], ...]

    @property
    def empty(self) -> bool:
        return not self.terms and not self.phrases


@lru_cache(maxsize=PARSED_CACHE)
def parse_plain(query: str) -> PlainQuery:
    """Plain text to terms and phrases; never fails (the latest are remembered: a query
    searched in several indexes is parsed once).

    Text between two double quotes is a phrase (an unbalanced quote is ignored); outside
    quotes every token is a term, each run of adjacent CJK characters is also a phrase and,
    when it has three or more characters, so is each adjacent pair in it.
    Every other character is just text: the tokenizer drops what is not a letter or digit.
    """
    text = normalize(query)
    parts = text.split('"')
    terms: dict[str, None] = {}
    phrases: dict[tuple[tuple[int, str], ...], None] = {}
    an = analyzer()
    for i, part in enumerate(parts):
        if not part:
            continue
        if i % 2 == 1 and i + 1 < len(parts):  # between two quotes
            toks = an.analyze(part)
            if len(toks) == 1:
                terms[toks[0]] = None
            elif toks:
                phrases[tuple(enumerate(toks))] = None
            continue
        cjk_at = {t.char_offset_from for t in cjk_analyzer().pre_tokenize(part).tokens}
        run: list[str] = []
        end = -1
        for tok in an.pre_tokenize(part).tokens:
            terms[tok.text] = None
            if tok.char_offset_from in cjk_at:
                if run and tok.char_offset_from != end:
                    _add_run(run, phrases)
                    run = []
                run.append(tok.text)
                end = tok.char_offset_to
            elif run:
                _add_run(run, phrases)
                run = []
        _add_run(run, phrases)
    return PlainQuery(tuple(terms), tuple(phrases))


def _add_run(run: list[str], phrases: dict[tuple[tuple[int, str], ...], None]) -> None:
    """A CJK run is a phrase; a longer one also each adjacent pair (bigram-like matching
    when the whole run is not in a document, without a bigram index)."""
    if len(run) >= 2:
        phrases[tuple(enumerate(run))] = None
    if len(run) >= 3:
        for a, b in pairwise(run):
            phrases[((0, a), (1, b))] = None


def top_addressed(searcher: Any, query: Any, limit: int, total: int
                  ) -> list[tuple[int, int, float]]:
    """Top ``limit`` (segment ordinal, gid, score), score desc, gid asc, and every match
    tied with the last (which of the tied a caller keeps is its choice: by frame id, not
    by gid)."""
    if limit <= 0 or total <= 0:
        return []
    fetch = min(limit + 1, total)
    while True:
        hits = searcher.search(query, fetch, count=False).hits
        if len(hits) <= limit or fetch >= total or hits[-1][0] < hits[limit - 1][0]:
            break
        fetch = min(fetch * 2, total)
    if not hits:
        return []
    gids = searcher.fast_field_values(F_GID, [addr for _, addr in hits])
    out = [(addr.segment_ord, int(g), float(s))
           for (s, addr), g in zip(hits, gids, strict=True)]
    out.sort(key=lambda sgs: (-sgs[2], sgs[1]))
    return with_ties(out, limit)


def with_ties(ranked: list[_Scored], limit: int) -> list[_Scored]:
    """The first ``limit`` of best-first tuples whose last item is the score, and every
    later one tied with the last."""
    if len(ranked) <= limit:
        return ranked
    end = limit
    while end < len(ranked) and ranked[end][-1] == ranked[limit - 1][-1]:
        end += 1
    return ranked[:end]


def plain_query(schema: Any, pq: PlainQuery) -> Any:
    tv = load_tantivy()
    Q = tv.Query
    subs = []
    for fname, boost in FIELDS:
        for term in pq.terms:
            q = Q.term_query(schema, fname, term, index_option="freq")
            subs.append(q if boost == 1.0 else Q.boost_query(q, boost))
        for phrase in pq.phrases:
            q = Q.phrase_query(schema, fname, list(phrase))
            subs.append(q if boost == 1.0 else Q.boost_query(q, boost))
    return Q.boolean_query([(tv.Occur.Should, q) for q in subs])


def run_query_syntax(index: Any, searcher: Any, query: str, limit: int,
                      total: int) -> list[tuple[int, float]]:
    """Parse and run a query in tantivy's query language; any failure is a ValueError."""
    try:
        parsed = index.parse_query(normalize(query), [F_TEXT, F_TITLE],
                                   field_boosts={F_TITLE: TITLE_BOOST})
        return [(gid, score) for _, gid, score in top_addressed(searcher, parsed, limit, total)]
    except BaseException as exc:
        if not isinstance(exc, ValueError) and not _is_panic(exc):
            raise
        raise InvalidInputError(f"invalid lexical query {query!r}: {exc} (fix the query or search "
                         "with syntax='plain', which takes any text)") from None


def check_syntax(syntax: str) -> None:
    if syntax not in ("plain", "query"):
        raise InvalidInputError(f"syntax must be 'plain' or 'query', not {syntax!r}")


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"

