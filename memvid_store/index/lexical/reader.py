"""Reader side of the BM25 index: a tantivy index unpacked in the cache directory."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ...errors import CorruptFileError, InvalidInputError, MemvidError, VersionMismatchError
from .analyzer import load_tantivy
from .cache_dir import prune_soon, touch, usable_root
from .manifest import MANIFEST_VERSION, LexManifest
from .query import check_syntax, parse_plain, plain_query, run_query_syntax, top_addressed
from .schema import F_TEXT, open_index
from .unpack import KEY_RE, PinnedFiles, discard, unpack

OPEN_ATTEMPTS = 3  # unpacks of a copy that vanishes or changes while it opens


class LexSearcher:
    """Reader side: a tantivy index unpacked in the cache directory."""

    def __init__(self, path: str, docs: int | None = None) -> None:
        self.path = path
        self._positions: tuple[LexManifest, Callable[[str], Any], PinnedFiles] | None = None
        self._reopen: Callable[[], str] | None = None  # a whole copy's path, unpacked
        self._fill_lock = threading.Lock()
        self._load(path)
        self._avgdl: dict[str, float] = {}
        self.unpacked = False
        self.timings: dict[str, float] = {}
        self._check_docs(docs)

    def _load(self, path: str) -> None:
        """Open the index at ``path`` (tantivy maps its files now)."""
        self.path = path
        self._index = open_index(path)
        self._index.config_reader("manual")
        self._searcher = self._index.searcher()
        self._schema = self._index.schema

    def _check_docs(self, docs: int | None) -> None:
        if docs is not None and self._searcher.num_docs != docs:
            raise CorruptFileError(
                f"lexical index holds {self._searcher.num_docs} documents, manifest says "
                f"{docs}", "segment:lex")

    @classmethod
    def open(cls, manifest: LexManifest, read_file: Callable[[str], bytes | memoryview],
             cache_root: str, key: str, *, done: Callable[[str], None] | None = None,
             read_tail: Callable[[str], bytes | memoryview] | None = None) -> LexSearcher:
        """Open the manifest's index from ``<cache_root>/<key>/``, unpacking it there first
        unless a complete copy is already present (``done(name)``: a file was copied).
        ``read_tail``: the positions files are unpacked as their tails alone, and filled
        by the first query that reads them (:meth:`fill_positions`).

        Concurrent processes may race to unpack the same key: each writes a private temp
        dir and renames it into place; the loser drops its copy and uses the winner's.
        """
        if not KEY_RE.fullmatch(key):
            raise InvalidInputError(
                f"cache key must be a plain file name ([A-Za-z0-9._-]), not {key!r}")
        if manifest.version > MANIFEST_VERSION:
            raise VersionMismatchError(
                f"lexical index manifest version {manifest.version} is not supported")
        t0 = time.perf_counter()
        root = usable_root(cache_root)
        for attempt in range(OPEN_ATTEMPTS):
            path, unpacked = unpack(manifest, read_file, root, key, done, read_tail)
            t1 = time.perf_counter()
            try:
                pinned = PinnedFiles(path)
            except OSError:  # the copy vanished: unpack again
                continue
            try:
                self = cls(path, manifest.docs)
            except (ValueError, OSError):  # a damaged or vanished copy: unpack again, once
                if attempt:
                    raise
                discard(path)
                continue
            if pinned.unchanged():
                break
            self.close()  # replaced while the index opened it: open the new copy
        else:
            raise MemvidError(f"the lexical index copy in {root} keeps changing while it "
                              "opens (set MEMVID_CACHE_DIR to a private directory)")
        if pinned.inodes:
            self._positions = (manifest, read_file, pinned)
            self._reopen = lambda: unpack(manifest, read_file, root, key, done)[0]
        if unpacked:
            prune_soon(root)
        else:
            touch(path)
        self.unpacked = unpacked
        self.timings = {"unpack_s": t1 - t0, "open_s": time.perf_counter() - t1}
        return self

    @classmethod
    def open_dir(cls, path: str) -> LexSearcher:
        """Open an index directory as is (e.g. a :class:`~.builder.LexBuilder` workdir)."""
        return cls(path)

    def fill_positions(self) -> None:
        """Write whole the positions files unpacked as their tails (what phrase queries
        read), checked; a no-op once they are (DamagedIndexError: one fails its CRC)."""
        with self._fill_lock:
            if self._positions is not None:
                manifest, read_file, pinned = self._positions
                if not pinned.fill(manifest, read_file):  # its files are gone or replaced
                    self._load(self._reopen())  # a whole copy: nothing left to fill
                    self._check_docs(manifest.docs)
                self._positions = None

    @property
    def num_docs(self) -> int:
        return int(self._searcher.num_docs)

    @property
    def segments(self) -> int:
        """tantivy segments searched."""
        return int(self._searcher.num_segments)

    def doc_freq(self, term: str, field: str = F_TEXT) -> int:
        """Documents whose ``field`` holds ``term`` (a token as
        :func:`~.analyzer.tokenize` makes it)."""
        return int(self._searcher.doc_freq(field, term))

    def avg_field_len(self, field: str = F_TEXT, hints: Iterable[str] = ()) -> float:
        """Average token count of ``field`` over all documents, as tantivy's BM25 uses it.

        ``hints``: terms likely in the index (a query's), tried first to find a matching
        document quickly; without one the term dictionary is scanned once.
        """
        if field not in self._avgdl:
            self._avgdl[field] = self._read_avgdl(field, hints)
        return self._avgdl[field]

    def total_tokens(self, field: str = F_TEXT, hints: Iterable[str] = ()) -> float:
        """Tokens of ``field`` over all documents (avgdl x N)."""
        return self.avg_field_len(field, hints) * self.num_docs

    def _read_avgdl(self, field: str, hints: Iterable[str]) -> float:
        # tantivy-py does not expose per-field token totals; the BM25 explanation of any
        # matching term carries avgdl = total tokens / total docs.
        tv = load_tantivy()
        term = next((t for t in hints if self._searcher.doc_freq(field, t) > 0), None)
        if term is None:
            terms = self._searcher.terms_with_prefix(field, "", limit=1)
            if not terms:
                return 0.0
            term = terms[0][0]
        query = tv.Query.term_query(self._schema, field, term, index_option="freq")
        hits = self._searcher.search(query, 1, count=False).hits
        if not hits:
            return 0.0
        found = _find_explained(json.loads(query.explain(self._searcher, hits[0][1]).to_json()),
                                "avgdl")
        if found is None:
            raise MemvidError("cannot read the average field length from tantivy's BM25 "
                              "explanation (unsupported tantivy version?)")
        return found

    def search(self, query: str, limit: int, *, syntax: str = "plain"
               ) -> list[tuple[int, float]]:
        """(gid, BM25 score) best first, ties by gid. ``syntax="query"``: tantivy's query
        language (ValueError on a bad query); ``"plain"``: any text, never an error."""
        check_syntax(syntax)
        if self._searcher is None:
            raise MemvidError("lexical index is closed")
        if limit <= 0 or not query or not query.strip():
            return []
        if syntax == "query":  # any query of the language may read positions
            self.fill_positions()
            return run_query_syntax(self._index, self._searcher, query, limit, self.num_docs)
        return [(gid, score) for _, gid, score in self.search_segments(query, limit)]

    def search_segments(self, query: str, limit: int) -> list[tuple[int, int, float]]:
        """A plain query's best (segment ordinal, gid, score), as :meth:`search` ranks them
        (an index over several memories' segments tells them apart by segment)."""
        if self._searcher is None:
            raise MemvidError("lexical index is closed")
        pq = parse_plain(query)
        if limit <= 0 or pq.empty:
            return []
        if pq.phrases:
            self.fill_positions()
        return top_addressed(self._searcher, plain_query(self._schema, pq), limit,
                             self.num_docs)

    def close(self) -> None:
        self._searcher = None
        self._index = None


def _find_explained(node: Any, prefix: str) -> float | None:
    if isinstance(node, dict):
        if str(node.get("description", "")).startswith(prefix):
            return float(node["value"])
        for child in node.get("details", ()) or ():
            found = _find_explained(child, prefix)
            if found is not None:
                return found
    return None

