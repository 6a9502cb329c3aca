"""Ingesting files into a memory: read, chunk, skip what is unchanged, write in batches.

Resumable by construction: frame ids come from the source name and the chunk index (or
the record's own ``id``) and each frame keeps a content hash, so running the same ingest
again writes nothing, a changed file writes new versions of the chunks that changed, and
chunks that disappeared from a file are deleted. Each batch is one atomic ``put_many``;
an interrupted run leaves a valid file and the next run finishes the work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..errors import MemvidError
from ..validate import check_metadata
from .chunking import check_chunking, chunk_text
from .manifest import HASH_KEY, PATH_KEY, Manifest, content_hash
from .readers import MAX_ID_BYTES, READERS, Document, Problem, ReadOptions, read_file
from .sources import Scope, Source, discover


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How files become frames.

    ``tags`` are added to every frame; ``globs`` filter files found in directories;
    ``prune`` deletes frames of files that are gone from an ingested directory.
    """

    chunk_size: int = 1200
    chunk_overlap: int = 150
    tags: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    text_column: str = "text"
    batch_size: int = 128
    prune: bool = False

    def __post_init__(self) -> None:
        check_chunking(self.chunk_size, self.chunk_overlap)
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")


@dataclass(slots=True)
class IngestReport:
    """What an ingest did. ``problems`` lists skipped input; the rest was stored."""

    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    problems: list[Problem] = field(default_factory=list)
    embedder: str | None = None
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return self.added + self.updated + self.deleted

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "added": self.added, "updated": self.updated,
                "unchanged": self.unchanged, "deleted": self.deleted,
                "problems": [p.as_dict() for p in self.problems], "embedder": self.embedder,
                "seconds": round(self.seconds, 3)}


class _Run:
    """The state of one ingest: planned writes, ids produced, sources with problems."""

    def __init__(self, mem: Any, options: IngestOptions, embedder: Any,
                 embedding: Embedding | None) -> None:
        self.mem = mem
        self.options = options
        self.embedder = embedder
        self.embedding = embedding or (None if embedder is None else Inline(embedder))
        self.queue_size = max(options.batch_size, getattr(self.embedding, "queue_size", 0))
        self.embedder_name = None if embedder is None else embedder.name
        self.read_options = ReadOptions(text_column=options.text_column)
        self.previous = Manifest.of_frames(mem.iter_timeline())
        self.produced: dict[str, str] = {}  # frame id -> where it came from (for messages)
        self.failed: set[str] = set()       # sources with problems: nothing of theirs deleted
        self.queue: list[dict[str, Any]] = []
        self.report = IngestReport(embedder=self.embedder_name)

    def problem(self, problem: Problem, source: str | None = None) -> None:
        self.report.problems.append(problem)
        if source is not None:
            self.failed.add(source)

    def source(self, source: Source) -> None:
        self.report.files += source.path.suffix.lower() in READERS  # others: a problem
        mtime = None
        for item in read_file(source.path, source.name, self.read_options):
            if isinstance(item, Problem):
                self.problem(item, source.name)
                continue
            if mtime is None:
                mtime = _mtime(source)
            self.document(source, item, mtime)

    def document(self, source: Source, doc: Document, mtime: datetime) -> None:
        where = source.name if doc.line is None else f"{source.name}:{doc.line}"
        try:
            chunks = chunk_text(doc.text, self.options.chunk_size, self.options.chunk_overlap)
            user_meta = check_metadata(doc.metadata) or {}
        except (MemvidError, ValueError) as exc:
            self.problem(Problem(source.name, doc.line, str(exc)), source.name)
            return
        ids = _frame_ids(source.name, doc, len(chunks))
        if any(len(fid.encode()) > MAX_ID_BYTES + 24 for fid in ids):
            self.problem(Problem(source.name, doc.line, "the frame id would be longer than "
                                 "1 KiB; give the record a shorter 'id'"), source.name)
            return
        tags = list(dict.fromkeys([*doc.tags, *self.options.tags]))
        for i, (fid, text) in enumerate(zip(ids, chunks, strict=True)):
            if fid in self.produced:
                self.problem(Problem(source.name, doc.line, f"duplicate frame id {fid!r} "
                                     f"(already read from {self.produced[fid]}); skipped"),
                             source.name)
                continue
            self.produced[fid] = where
            meta = {**user_meta, PATH_KEY: source.name, "ext": source.ext,
                    "folders": source.folders}
            if len(chunks) > 1:
                meta.update(chunk=i, chunks=len(chunks))
            digest = content_hash(text, meta, tags, doc.created_at, self.embedder_name)
            if self.previous.hashes.get(fid) == digest:
                self.report.unchanged += 1
                continue
            meta[HASH_KEY] = digest
            if fid in self.previous.ids:
                self.report.updated += 1
            else:
                self.report.added += 1
            self.queue.append({"id": fid, "text": text, "metadata": meta, "tags": tags,
                               "created_at": doc.created_at or mtime})
            if len(self.queue) >= self.queue_size:
                self.flush()

    def flush(self) -> None:
        """Write the queued frames (embedded first, if an embedder) in atomic batches of
        ``batch_size``."""
        if not self.queue:
            return
        batch, self.queue = self.queue, []
        size = self.options.batch_size
        for done in ([batch] if self.embedding is None else self.embedding.embed(batch)):
            for start in range(0, len(done), size):
                self.mem.put_many(done[start:start + size])

    def delete_stale(self, discovered: set[str], scopes: list[Scope]) -> None:
        """Delete frames of chunks that disappeared from files read without problems (and,
        with ``prune``, of files gone from an ingested directory)."""
        stale: list[str] = []
        for source, ids in sorted(self.previous.by_source.items()):
            if source in self.failed:
                continue
            gone = source not in discovered
            if gone and not (self.options.prune and any(s.is_dir and s.covers(source)
                                                        for s in scopes)):
                continue
            stale.extend(sorted(fid for fid in ids if fid not in self.produced))
        for start in range(0, len(stale), self.options.batch_size):
            self.report.deleted += self.mem.delete_many(
                stale[start:start + self.options.batch_size], missing_ok=True)


class Embedding(Protocol):
    """How queued frames get their vectors: ``embed(records)`` yields them in batches with
    ``"embedding"`` set (any order); ``queue_size`` frames are queued per call."""

    queue_size: int

    def embed(self, records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]: ...


class Inline:
    """Embeds in this process, one queue (``batch_size`` frames) at a time."""

    queue_size = 0  # the ingest's batch size

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder

    def embed(self, records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        vectors = self.embedder.embed_documents([r["text"] for r in records])
        for record, vector in zip(records, vectors, strict=True):
            record["embedding"] = vector
        yield records


def ingest(mem: Any, paths: Iterable[str], options: IngestOptions | None = None, *,
           embedder: Any = None, on_source: Callable[[Source], None] | None = None,
           on_plan: Callable[[int], None] | None = None,
           embedding: Embedding | None = None) -> IngestReport:
    """Ingest files and directories into an open, writable memory.

    Args:
        mem: a writable ``Memory`` or ``ShardedMemory``.
        paths: files and directories (searched recursively).
        options: chunking, tags, filters.
        embedder: an object with ``name`` and ``embed_documents(texts)``; None stores
            frames without vectors.
        embedding: where the embedder runs (default: in this process, see
            :class:`Inline`; ``memvid_store.cluster`` runs it on Ray workers).
        on_plan: called once with the number of files found.
        on_source: called after each file (progress display).

    Returns:
        The counts of frames added, updated, unchanged and deleted, and every problem.
    """
    started = time.perf_counter()
    options = options or IngestOptions()
    sources, scopes, missing = discover(paths, options.globs)
    if on_plan is not None:
        on_plan(len(sources))
    run = _Run(mem, options, embedder, embedding)
    for problem in missing:
        run.problem(problem)
    for source in sources:
        run.source(source)
        if on_source is not None:
            on_source(source)
    run.flush()
    run.delete_stale({s.name for s in sources}, scopes)
    run.report.seconds = time.perf_counter() - started
    return run.report


def _frame_ids(source: str, doc: Document, n: int) -> list[str]:
    """``id`` (one chunk) or ``id#i`` for records with an id; ``source#i`` for whole
    files; ``source:record#i`` for records without one."""
    if doc.id is not None:
        return [doc.id] if n == 1 else [f"{doc.id}#{i}" for i in range(n)]
    base = source if doc.record is None else f"{source}:{doc.record}"
    return [f"{base}#{i}" for i in range(n)]


def _mtime(source: Source) -> datetime:
    try:
        return datetime.fromtimestamp(source.path.stat().st_mtime, UTC)
    except OSError:
        return datetime.now(UTC)
