"""BM25 lexical index on tantivy, one logical index per .mv2 file.

Every stored version is one tantivy document keyed by its gid (a fast u64 field; no stored
fields, texts live in the frames). A commit adds documents with one writer thread, so it
writes one new immutable segment (plus, now and then, a merged one); the engine stores each
new file once as a blob and keeps a :class:`LexManifest` (file name -> blob location, plus
the text of tantivy's ``meta.json``). tantivy cannot open an index from bytes or from a
read-only directory, so readers unpack the manifest's files into a content-addressed cache
directory (:meth:`LexSearcher.open`) and reuse it in later processes.

Text goes through one analyzer everywhere (:func:`tokenize`): NFKC, then words of letters,
digits and marks, with every Han, kana and hangul character as a token of its own, then
lowercase. Plain queries (the default) never fail: words are OR'ed terms over ``text`` and
``title`` (title boosted x2), ``"quoted phrases"`` and runs of CJK characters (and the
adjacent pairs of a longer run) are phrase queries. :class:`DeltaBM25` scores the WAL
delta in memory with tantivy's BM25 so that its scores merge with the index's by value.

This module must not import numpy; tantivy is imported on first use.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from ..errors import (
    CorruptFileError,
    InvalidInputError,
    InvalidTypeError,
    MemvidError,
    MissingDependencyError,
    VersionMismatchError,
)
from .lex_manifest import MANIFEST_VERSION, LexManifest, content_identity

__all__ = [
    "TOKENIZER",
    "DeltaBM25",
    "LexBuilder",
    "LexDoc",
    "LexManifest",
    "LexSearcher",
    "default_cache_root",
    "prune_cache",
    "tokenize",
]

TOKENIZER = "mv_text"
F_TEXT = "text"
F_TITLE = "title"
F_GID = "gid"
TITLE_BOOST = 2.0
FIELDS: tuple[tuple[str, float], ...] = ((F_TEXT, 1.0), (F_TITLE, TITLE_BOOST))
K1 = 1.2
B = 0.75
WRITER_HEAP = 64 << 20

# Han / kana / hangul characters (script extensions, so the prolonged sound mark and the
# iteration marks count) are single-character tokens; other letters, digits and marks form
# words. Rust regex syntax: ``&&`` intersects and ``--`` subtracts character classes.
_CJK_CLASS = (r"[[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Hangul}]"
              r"&&[\p{L}\p{N}\p{M}]]")
TOKEN_PATTERN = _CJK_CLASS + r"|[[\p{L}\p{N}\p{M}]--" + _CJK_CLASS + "]+"

_MARKER = ".memvid-lex.json"
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_SEGMENT_FILE_RE = re.compile(r"([0-9a-f]{32})\..+")


# ------------------------------------------------------------------------ tantivy, analyzer


def _tantivy() -> Any:
    try:
        import tantivy
    except ImportError as exc:
        raise MissingDependencyError(
            "tantivy is required for lexical search: pip install tantivy") from exc
    return tantivy


class _Analyzers(threading.local):
    main: Any = None
    cjk: Any = None


_analyzers = _Analyzers()


def _build_analyzer(pattern: str, lowercase: bool = True) -> Any:
    tv = _tantivy()
    builder = tv.TextAnalyzerBuilder(tv.Tokenizer.regex(pattern))
    if lowercase:
        builder = builder.filter(tv.Filter.lowercase())
    return builder.build()


def _analyzer() -> Any:
    """This thread's instance of the index analyzer (registered as :data:`TOKENIZER`)."""
    if _analyzers.main is None:
        _analyzers.main = _build_analyzer(TOKEN_PATTERN)
    return _analyzers.main


def _cjk_analyzer() -> Any:
    if _analyzers.cjk is None:
        _analyzers.cjk = _build_analyzer(_CJK_CLASS, lowercase=False)
    return _analyzers.cjk


def _norm(text: str) -> str:
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


def tokenize(text: str) -> list[str]:
    """The tokens the index makes of ``text`` (same tantivy analyzer, positions = list index)."""
    return _analyzer().analyze(_norm(text)) if text else []


def _schema() -> Any:
    tv = _tantivy()
    sb = tv.SchemaBuilder()
    sb.add_unsigned_field(F_GID, fast=True)
    sb.add_text_field(F_TEXT, tokenizer_name=TOKENIZER, index_option="position")
    sb.add_text_field(F_TITLE, tokenizer_name=TOKENIZER, index_option="position")
    return sb.build()


def _register(index: Any) -> Any:
    index.register_tokenizer(TOKENIZER, _build_analyzer(TOKEN_PATTERN))
    return index


def _open_index(path: str) -> Any:
    return _register(_tantivy().Index.open(path))


def _is_panic(exc: BaseException) -> bool:
    return type(exc).__name__ == "PanicException"


# ------------------------------------------------------------------------------ documents


@dataclass(frozen=True, slots=True)
class LexDoc:
    """One stored version as the index sees it."""

    gid: int
    text: str
    title: str = ""


def _check_docs(docs: Iterable[LexDoc]) -> None:
    for d in docs:
        if not isinstance(d.gid, int) or isinstance(d.gid, bool) or not 0 <= d.gid < 1 << 64:
            raise InvalidInputError(f"LexDoc.gid must be an int in [0, 2**64), got {d.gid!r}")
        if not isinstance(d.text, str) or not isinstance(d.title, str):
            raise InvalidTypeError(f"LexDoc text and title must be str (gid {d.gid})")


def _add_docs(writer: Any, docs: Iterable[LexDoc]) -> int:
    tv = _tantivy()
    count = 0
    for d in docs:
        doc = tv.Document()
        doc.add_unsigned(F_GID, d.gid)
        if d.text:
            doc.add_text(F_TEXT, _norm(d.text))
        if d.title:
            doc.add_text(F_TITLE, _norm(d.title))
        writer.add_document(doc)
        count += 1
    return count


# ------------------------------------------------------------------------------- manifest


def _segment_ids(meta: str) -> set[str]:
    return {s["segment_id"].replace("-", "") for s in json.loads(meta)["segments"]}


def _needed_files(path: str, meta: str) -> list[str]:
    ids = _segment_ids(meta)
    out = []
    for name in os.listdir(path):
        m = _SEGMENT_FILE_RE.fullmatch(name)
        if m and m.group(1) in ids:
            out.append(name)
    return sorted(out)


def _read_marker(path: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(path, _MARKER), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _write_marker(path: str, identity: str, sizes: dict[str, int], kind: str) -> None:
    tmp = os.path.join(path, _MARKER + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"identity": identity, "sizes": sizes, "kind": kind}, fh)
    os.replace(tmp, os.path.join(path, _MARKER))


def _complete(path: str, identity: str, check_owner: bool = False) -> bool:
    """True when ``path`` holds a fully written copy of the index ``identity``."""
    marker = _read_marker(path)
    if marker is None or marker.get("identity") != identity:
        return False
    if check_owner and hasattr(os, "getuid"):
        try:
            if os.stat(path).st_uid != os.getuid():
                return False
        except OSError:
            return False
    try:
        return all(os.path.getsize(os.path.join(path, n)) == size
                   for n, size in marker.get("sizes", {}).items())
    except OSError:
        return False


def _write_files(path: str, manifest: LexManifest,
                 read_file: Callable[[str], bytes | memoryview],
                 done: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write every manifest file (length and crc checked) and meta.json into ``path``;
    ``done(name)`` is told when a file's bytes are no longer needed."""
    sizes = {}
    for name, (_off, length, crc) in sorted(manifest.files.items()):
        if not _SEGMENT_FILE_RE.fullmatch(name):
            raise CorruptFileError(f"lexical index manifest names a bad file {name!r}",
                                   "segment:lex")
        data = read_file(name)
        if len(data) != length or (zlib.crc32(data) & 0xFFFFFFFF) != crc:
            raise CorruptFileError(
                f"lexical index file {name} does not match its manifest entry "
                f"(length {len(data)} vs {length})", "segment:lex", _off)
        with open(os.path.join(path, name), "wb") as fh:
            fh.write(data)
        del data
        if done is not None:
            done(name)
        sizes[name] = length
    with open(os.path.join(path, "meta.json"), "w", encoding="utf-8") as fh:
        fh.write(manifest.meta)
    return sizes


def _rmtree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -------------------------------------------------------------------------------- builder


class LexBuilder:
    """Writer side. Keeps a working directory in sync with the file's manifest and adds docs.

    ``workdir`` is private to one writer of one file. When it does not hold exactly the
    manifest's index (checked by a marker holding the manifest's identity) it is rebuilt
    from ``read_file(name)`` for each manifest file. ``add`` is relative to the state after
    the previous ``add`` (or the constructor's manifest): if a commit that carried its files
    fails, make a new builder from the manifest that is actually in the file.
    """

    def __init__(self, workdir: str, manifest: LexManifest | None,
                 read_file: Callable[[str], bytes | memoryview]) -> None:
        self.workdir = os.path.abspath(workdir)
        self.rebuilt = False
        if manifest is not None and manifest.version > MANIFEST_VERSION:
            raise VersionMismatchError(
                f"lexical index manifest version {manifest.version} is not supported")
        if manifest is None:
            self._reset()
            self._files: set[str] = set()
            self.docs = 0
            return
        self._files = set(manifest.files)
        self.docs = manifest.docs
        self._identity = manifest.identity()
        if not _complete(self.workdir, self._identity):
            self.rebuilt = True
            _rmtree(self.workdir)
            os.makedirs(self.workdir, exist_ok=True)
            sizes = _write_files(self.workdir, manifest, read_file)
            _write_marker(self.workdir, manifest.identity(), sizes, "workdir")

    def _reset(self) -> None:
        self.rebuilt = True
        _rmtree(self.workdir)
        os.makedirs(self.workdir, exist_ok=True)
        _tantivy().Index(_schema(), path=self.workdir, reuse=False)
        meta = self._meta()
        self._identity = content_identity(meta, ())
        _write_marker(self.workdir, self._identity, {}, "workdir")

    def in_sync(self) -> bool:
        """True while the workdir still holds the index this builder last wrote (a cache
        cleaner may have removed it: then make a new builder from the file's manifest)."""
        return _complete(self.workdir, self._identity)

    def _meta(self) -> str:
        with open(os.path.join(self.workdir, "meta.json"), encoding="utf-8") as fh:
            return fh.read()

    def add(self, docs: Sequence[LexDoc]) -> tuple[str, dict[str, bytes], list[str]]:
        """Index ``docs``; return (meta_json, new files {name: bytes}, names of all files)."""
        if not self.in_sync():
            raise MemvidError(f"lexical index workdir {self.workdir} changed under the builder; "
                              "create a new LexBuilder from the file's manifest")
        if not docs:
            return self._meta(), {}, sorted(self._files)
        _check_docs(docs)
        with contextlib.suppress(FileNotFoundError):  # dirty until the add completes
            os.unlink(os.path.join(self.workdir, _MARKER))
        index = _open_index(self.workdir)
        writer = index.writer(heap_size=WRITER_HEAP, num_threads=1)
        try:
            added = _add_docs(writer, docs)
            writer.commit()
            writer.garbage_collect_files()
        except BaseException:
            try:
                writer.rollback()
            finally:
                writer.wait_merging_threads()
            raise
        writer.wait_merging_threads()
        del writer, index
        meta = self._meta()
        needed = _needed_files(self.workdir, meta)
        for name in os.listdir(self.workdir):  # segments merged away
            if _SEGMENT_FILE_RE.fullmatch(name) and name not in needed:
                os.unlink(os.path.join(self.workdir, name))
        new_files = {}
        for name in needed:
            if name not in self._files:
                with open(os.path.join(self.workdir, name), "rb") as fh:
                    new_files[name] = fh.read()
        sizes = {n: os.path.getsize(os.path.join(self.workdir, n)) for n in needed}
        self._identity = content_identity(meta, needed)
        _write_marker(self.workdir, self._identity, sizes, "workdir")
        self._files = set(needed)
        self.docs += added
        return meta, new_files, needed


# ---------------------------------------------------------------------------- plain query


@dataclass(frozen=True, slots=True)
class PlainQuery:
    """A plain-text query: OR'ed terms and phrases (each a tuple of (offset, term))."""

    terms: tuple[str, ...]
    phrases: tuple[tuple[tuple[int, str], ...], ...]

    @property
    def empty(self) -> bool:
        return not self.terms and not self.phrases


def parse_plain(query: str) -> PlainQuery:
    """Plain text to terms and phrases; never fails.

    Text between two double quotes is a phrase (an unbalanced quote is ignored); outside
    quotes every token is a term, each run of adjacent CJK characters is also a phrase and,
    when it has three or more characters, so is each adjacent pair in it.
    Every other character is just text: the tokenizer drops what is not a letter or digit.
    """
    text = _norm(query)
    parts = text.split('"')
    terms: dict[str, None] = {}
    phrases: dict[tuple[tuple[int, str], ...], None] = {}
    an = _analyzer()
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
        cjk_at = {t.char_offset_from for t in _cjk_analyzer().pre_tokenize(part).tokens}
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


# ------------------------------------------------------------------------------- searcher


def _top(searcher: Any, query: Any, limit: int, total: int) -> list[tuple[int, float]]:
    """Top ``limit`` (gid, score): score desc, gid asc; ties at the cut are resolved by gid."""
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
    out = [(int(g), float(s)) for (s, _), g in zip(hits, gids, strict=True)]
    out.sort(key=lambda gs: (-gs[1], gs[0]))
    return out[:limit]


def _plain_query(schema: Any, pq: PlainQuery) -> Any:
    tv = _tantivy()
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


def _run_query_syntax(index: Any, searcher: Any, query: str, limit: int,
                      total: int) -> list[tuple[int, float]]:
    """Parse and run a query in tantivy's query language; any failure is a ValueError."""
    try:
        parsed = index.parse_query(_norm(query), [F_TEXT, F_TITLE],
                                   field_boosts={F_TITLE: TITLE_BOOST})
        return _top(searcher, parsed, limit, total)
    except BaseException as exc:
        if not isinstance(exc, ValueError) and not _is_panic(exc):
            raise
        raise InvalidInputError(f"invalid lexical query {query!r}: {exc} (fix the query or search "
                         "with syntax='plain', which takes any text)") from None


def _check_syntax(syntax: str) -> None:
    if syntax not in ("plain", "query"):
        raise InvalidInputError(f"syntax must be 'plain' or 'query', not {syntax!r}")


class LexSearcher:
    """Reader side: a tantivy index unpacked in the cache directory."""

    def __init__(self, path: str, docs: int | None = None) -> None:
        self.path = path
        self._index = _open_index(path)
        self._index.config_reader("manual")
        self._searcher = self._index.searcher()
        self._schema = self._index.schema
        self._avgdl: dict[str, float] = {}
        self.unpacked = False
        self.timings: dict[str, float] = {}
        if docs is not None and self._searcher.num_docs != docs:
            raise CorruptFileError(
                f"lexical index holds {self._searcher.num_docs} documents, manifest says "
                f"{docs}", "segment:lex")

    @classmethod
    def open(cls, manifest: LexManifest, read_file: Callable[[str], bytes | memoryview],
             cache_root: str, key: str, *,
             done: Callable[[str], None] | None = None) -> LexSearcher:
        """Open the manifest's index from ``<cache_root>/<key>/``, unpacking it there first
        unless a complete copy is already present (``done(name)``: a file was copied).

        Concurrent processes may race to unpack the same key: each writes a private temp
        dir and renames it into place; the loser drops its copy and uses the winner's.
        """
        if not _KEY_RE.fullmatch(key):
            raise InvalidInputError(
                f"cache key must be a plain file name ([A-Za-z0-9._-]), not {key!r}")
        if manifest.version > MANIFEST_VERSION:
            raise VersionMismatchError(
                f"lexical index manifest version {manifest.version} is not supported")
        t0 = time.perf_counter()
        path, unpacked = _unpack(manifest, read_file, cache_root, key, done)
        t1 = time.perf_counter()
        try:
            self = cls(path, manifest.docs)
        except (ValueError, OSError):  # a damaged or vanished cache copy: unpack again, once
            _discard(path)
            path, unpacked = _unpack(manifest, read_file, cache_root, key, done)
            t1 = time.perf_counter()
            self = cls(path, manifest.docs)
        self.unpacked = unpacked
        self.timings = {"unpack_s": t1 - t0, "open_s": time.perf_counter() - t1}
        return self

    @classmethod
    def open_dir(cls, path: str) -> LexSearcher:
        """Open an index directory as is (e.g. a :class:`LexBuilder` workdir)."""
        return cls(path)

    @property
    def num_docs(self) -> int:
        return int(self._searcher.num_docs)

    def doc_freq(self, term: str, field: str = F_TEXT) -> int:
        """Documents whose ``field`` holds ``term`` (a token as :func:`tokenize` makes it)."""
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
        tv = _tantivy()
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
        _check_syntax(syntax)
        if self._searcher is None:
            raise MemvidError("lexical index is closed")
        if limit <= 0 or not query or not query.strip():
            return []
        if syntax == "query":
            return _run_query_syntax(self._index, self._searcher, query, limit, self.num_docs)
        pq = parse_plain(query)
        if pq.empty:
            return []
        return _top(self._searcher, _plain_query(self._schema, pq), limit, self.num_docs)

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


def default_cache_root() -> str:
    """``$MEMVID_CACHE_DIR``, else ``<system temp>/memvid-cache``."""
    return os.environ.get("MEMVID_CACHE_DIR") or os.path.join(tempfile.gettempdir(),
                                                              "memvid-cache")


def prune_cache(cache_root: str, prefix: str, keep: str | None = None,
                min_age_s: float = 300.0) -> list[str]:
    """Delete unpacked copies (and abandoned temp dirs) in ``cache_root`` whose name starts
    with ``prefix``, except ``keep`` and any touched in the last ``min_age_s`` seconds (other
    processes may be about to open them). Writer workdirs are never touched. Processes that
    already opened a deleted copy keep working (POSIX); returns the names deleted."""
    removed: list[str] = []
    now = time.time()
    try:
        names = os.listdir(cache_root)
    except OSError:
        return removed
    for name in names:
        if name == keep or not (name.startswith(prefix) or name.startswith("." + prefix)):
            continue
        path = os.path.join(cache_root, name)
        try:
            if now - os.stat(path).st_mtime < min_age_s or not os.path.isdir(path):
                continue
        except OSError:
            continue
        temp = name.startswith(".") and name.endswith(".tmp")
        marker = _read_marker(path)
        if temp or (marker is not None and marker.get("kind") == "cache"):
            _discard(path)
            removed.append(name)
    return removed


def _discard(path: str) -> None:
    """Move ``path`` aside atomically, then delete it (other processes may hold it open)."""
    trash = f"{path}.stale-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
    try:
        os.rename(path, trash)
    except OSError:
        return
    _rmtree(trash)


def _unpack(manifest: LexManifest, read_file: Callable[[str], bytes | memoryview],
            cache_root: str, key: str,
            done: Callable[[str], None] | None = None) -> tuple[str, bool]:
    """Ensure ``<cache_root>/<key>`` holds the manifest's index; return (path, unpacked)."""
    final = os.path.join(cache_root, key)
    identity = manifest.identity()
    if _complete(final, identity, check_owner=True):
        return final, False
    try:
        os.makedirs(cache_root, mode=0o700, exist_ok=True)
        for _attempt in range(5):
            tmp = tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=cache_root)
            try:
                sizes = _write_files(tmp, manifest, read_file, done)
                _write_marker(tmp, identity, sizes, "cache")  # last: marks the copy complete
                try:
                    os.rename(tmp, final)
                    return final, True
                except OSError:
                    if _complete(final, identity, check_owner=True):
                        return final, True  # another process won the race
                    _discard(final)  # a stale or foreign copy under this key
            finally:
                if os.path.isdir(tmp):
                    _rmtree(tmp)
    except OSError as exc:
        raise MemvidError(f"cannot unpack the lexical index into {final}: {exc} (free some "
                          "space or set MEMVID_CACHE_DIR to a writable directory)") from exc
    raise MemvidError(f"could not unpack the lexical index into {final} (another process "
                      "keeps replacing it? set MEMVID_CACHE_DIR to a private directory)")


# --------------------------------------------------------------------------------- delta


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


def _idf(df: int, n: int) -> float:
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

    def __init__(self, docs: Sequence[LexDoc]) -> None:
        self._docs = list(docs)
        _check_docs(self._docs)
        self._gids = [d.gid for d in self._docs]
        self._fields = {F_TEXT: _Field(), F_TITLE: _Field()}
        self._ram: Any = None
        an = _analyzer()
        for i, d in enumerate(self._docs):
            for fname, value in ((F_TEXT, d.text), (F_TITLE, d.title)):
                fd = self._fields[fname]
                toks = an.analyze(_norm(value)) if value else []
                fd.tokens.append(toks)
                fd.total += len(toks)
                counts: dict[str, int] = {}
                for t in toks:
                    counts[t] = counts.get(t, 0) + 1
                for t, c in counts.items():
                    fd.postings.setdefault(t, {})[i] = c

    def __len__(self) -> int:
        return len(self._docs)

    def search(self, query: str, limit: int, *, index: LexSearcher | None = None,
               syntax: str = "plain") -> list[tuple[int, float]]:
        """(gid, score) best first, ties by gid. With ``index``, N, df and avgdl combine the
        index's statistics with the delta's. ``syntax="query"`` runs tantivy's query language
        on an in-memory index of the delta (delta statistics only)."""
        _check_syntax(syntax)
        if limit <= 0 or not query or not query.strip():
            return []
        if syntax == "query":
            ram, searcher = self._ram_index()
            return _run_query_syntax(ram, searcher, query, limit, len(self._docs))
        pq = parse_plain(query)
        if pq.empty:
            return []
        n = len(self._docs) + (index.num_docs if index is not None else 0)
        scores: dict[int, float] = {}
        for fname, boost in FIELDS:
            fd = self._fields[fname]
            total = fd.total + (index.total_tokens(fname, pq.terms) if index is not None
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
                local = len(fd.postings.get(term, ()))
                return local + (index.doc_freq(term, fname) if index is not None else 0)

            for term in pq.terms:
                posting = fd.postings.get(term)
                if not posting:
                    continue
                w = boost * _idf(df(term), n) * (1 + K1)
                for i, tf in posting.items():
                    scores[i] = scores.get(i, 0.0) + w * tf / (tf + norm(i))
            for phrase in pq.phrases:
                posts = [fd.postings.get(t) for _, t in phrase]
                if not all(posts):
                    continue
                cands = set.intersection(*(set(p) for p in posts))  # type: ignore[arg-type]
                if not cands:
                    continue
                w = boost * sum(_idf(df(t), n) for _, t in phrase) * (1 + K1)
                for i in cands:
                    pf = _phrase_count(fd.tokens[i], phrase)
                    if pf:
                        scores[i] = scores.get(i, 0.0) + w * pf / (pf + norm(i))
        out = [(self._gids[i], s) for i, s in scores.items()]
        out.sort(key=lambda gs: (-gs[1], gs[0]))
        return out[:limit]

    def _ram_index(self) -> tuple[Any, Any]:
        if self._ram is None:
            tv = _tantivy()
            ram = _register(tv.Index(_schema()))
            writer = ram.writer(heap_size=WRITER_HEAP, num_threads=1)
            _add_docs(writer, self._docs)
            writer.commit()
            writer.wait_merging_threads()
            ram.config_reader("manual")
            ram.reload()
            self._ram = (ram, ram.searcher())
        return self._ram


def _phrase_count(toks: list[str], phrase: tuple[tuple[int, str], ...]) -> int:
    """Start positions where every (offset, term) of ``phrase`` matches."""
    starts: set[int] | None = None
    for off, term in phrase:
        here = {p - off for p, t in enumerate(toks) if t == term}
        starts = here if starts is None else starts & here
        if not starts:
            return 0
    return len(starts) if starts else 0
