"""``ShardedMemory``: one logical memory over several ``.mv2`` files.

Frames are routed to a shard by their id or by a metadata key (manifest.py, routing.py).
Reads fan out and merge exactly (search.py): ``find``, ``select``, ``count`` and ``get``
answer as one file holding every frame would. Each shard is an ordinary ``Memory``.

Consistency comes from the pins (manifest.py): after every write the writer appends the
shards' generations, and readers read each shard as of its pinned generation, so a
``put_many`` spanning shards appears to readers whole or not at all, and one ``as_of``
is one cut across the shards. A crash between two shards' writes leaves the first one
written but unpinned; the next writer to open pins it (the batch is then partly stored).

>>> import os, tempfile
>>> from memvid_store import ShardedMemory
>>> path = os.path.join(tempfile.mkdtemp(), "agents.mv2s")
>>> with ShardedMemory.create(path, 4, route="agent") as mem:
...     _ = mem.put("the budget meeting moved to friday", metadata={"agent": "ada"})
...     [hit.text for hit in mem.find("budget", k=1)]
['the budget meeting moved to friday']
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from ..autoembed import fill_embeddings, fill_query_vectors
from ..engine.records import KEEP
from ..engine.store import now_us
from ..engine.writer import check_record
from ..errors import (
    AlreadyExistsError,
    ClosedError,
    CorruptFileError,
    FrameNotFoundError,
    InvalidInputError,
    InvalidTypeError,
    ReadOnlyError,
    RemoteReadOnlyError,
)
from ..index.grouping import answer_requests, grouped_find, with_grouping
from ..memory import Memory
from ..reads import find_requests, pinned_reads
from ..remote.urls import is_remote
from ..types import from_us
from ..validate import check_embedding, check_id, check_page, check_records
from .manifest import Manifest, Pin, PinLog, read_manifest, write_manifest
from .routing import Router
from .search import Part, find_batch

if TYPE_CHECKING:
    from ..reads import Reads
    from ..reports import Stats, VerifyReport
    from ..types import Frame, Hit
    from .publish import Published

MAX_SHARDS = 4096

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _serialized(method: _Method) -> _Method:
    """Run ``method`` under the handle's lock: a write and the pin after it are one step."""

    @functools.wraps(method)
    def locked(self: ShardedMemory, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class ShardedStats:
    """``ShardedMemory.stats()``: totals, and each shard's ``Stats`` in manifest order."""

    path: str
    generation: int
    frames: int
    versions: int
    file_bytes: int
    shards: list[Stats]
    live_bytes: int = 0  # the shards' ``Stats.live_bytes``: the rest is dead space


class ShardedReads:
    """The read API over the shards, each seen through a ``Reads`` (a ``Memory`` or one of
    its ``as_of`` views)."""

    _manifest: Manifest
    _router: Router
    _pins: PinLog
    _embedder: Any

    def _shard_reads(self) -> list[Reads]:
        raise NotImplementedError

    def _handles(self) -> list[Memory]:
        """The open shard files (what ``as_of(generation)`` resolves against)."""
        raise NotImplementedError

    @property
    def shard_count(self) -> int:
        return len(self._manifest.shards)

    @property
    def embedder_info(self) -> dict[str, Any] | None:
        """``{"name", "dim"}`` of the embedder the shards were created with, if any."""
        return self._shard_reads()[0].embedder_info

    @property
    def dim(self) -> int | None:
        """Dimension of the stored embeddings (None until the first one)."""
        return self._manifest.dim or next(
            (r.dim for r in self._shard_reads() if r.dim is not None), None)

    # ----------------------------------------------------------------- frames

    def get(self, id: str) -> Frame:
        """The current version of a frame (from the shard that holds it).

        Raises:
            FrameNotFoundError: no frame has this id, or it was deleted.
        """
        shard = self._home(check_id(id))
        if shard is None:
            raise FrameNotFoundError(f"no current frame has id {id!r}", id)
        return self._shard_reads()[shard].get(id)

    def get_many(self, ids: Iterable[str]) -> list[Frame | None]:
        """The current version of each frame (None for an id with none), in the given
        order, each from the shard that holds it."""
        reads = self._shard_reads()
        out: list[Frame | None] = []
        for fid in check_records(ids, "ids"):
            shard = self._home(check_id(fid))
            out.append(None if shard is None else reads[shard].get(fid))
        return out

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and self._home(id) is not None

    def __len__(self) -> int:
        return sum(len(r) for r in self._shard_reads())

    def _home(self, id: str) -> int | None:
        """The shard holding a current frame ``id`` (None: none does)."""
        reads = self._shard_reads()
        if self._router.by_id:
            shard = self._router.of_id(id)
            return shard if id in reads[shard] else None
        return next((i for i, r in enumerate(reads) if id in r), None)

    # ---------------------------------------------------------------- listing

    def select(self, filter: Mapping[str, Any] | None = None, *, order_by: str = "created_at",
               reverse: bool = False, limit: int | None = None, offset: int = 0,
               as_of: datetime | int | None = None,
               time_range: tuple[datetime | None, datetime | None] | None = None
               ) -> list[Frame]:
        """``Memory.select`` over every shard, merged in the same order (ties by record
        time)."""
        check_page(limit, offset)
        want = None if limit is None else offset + limit
        lists = [self._shard_reads()[i].select(
            filter, order_by=order_by, reverse=reverse, limit=want,
            as_of=self._shard_as_of(as_of, i), time_range=time_range)
            for i in self._routed(filter)]
        merged = heapq.merge(*lists, reverse=reverse,
                             key=lambda f: (getattr(f, order_by), f.valid_from))
        return list(islice(merged, offset, want))

    def iter_timeline(self, since: datetime | None = None, until: datetime | None = None, *,
                      limit: int | None = None, reverse: bool = False) -> Iterator[Frame]:
        """``Memory.iter_timeline`` over every shard, merged by created_at (ties by record
        time)."""
        merged = heapq.merge(*(r.iter_timeline(since, until, limit=limit, reverse=reverse)
                               for r in self._shard_reads()),
                             key=lambda f: (f.created_at, f.valid_from), reverse=reverse)
        return islice(merged, limit)

    def count(self, filter: Mapping[str, Any] | None = None, *,
              as_of: datetime | int | None = None,
              time_range: tuple[datetime | None, datetime | None] | None = None) -> int:
        """How many current frames match ``filter``, over every shard."""
        return sum(self._shard_reads()[i].count(filter, as_of=self._shard_as_of(as_of, i),
                                                time_range=time_range)
                   for i in self._routed(filter))

    def _routed(self, spec: Mapping[str, Any] | None) -> list[int]:
        """The shards a filter can match frames in."""
        shard = self._router.of_filter(spec)
        return list(range(self.shard_count)) if shard is None else [shard]

    # ----------------------------------------------------------------- search

    def find(self, text: str | None = None, *, vector: Sequence[float] | None = None,
             k: int = 10, mode: str = "hybrid", filter: Mapping[str, Any] | None = None,
             as_of: datetime | int | None = None,
             time_range: tuple[datetime | None, datetime | None] | None = None,
             syntax: str = "plain", weights: Mapping[str, float] | None = None,
             group_by: str | None = None, tie_break: Sequence[str] = ()) -> list[Hit]:
        """``Memory.find`` over every shard: the hits, scores and order one file holding
        every frame gives (plain query syntax only: ``syntax="query"`` is refused)."""
        return self.find_batch([with_grouping({
            "text": text, "vector": vector, "k": k, "mode": mode, "filter": filter,
            "as_of": as_of, "time_range": time_range, "syntax": syntax, "weights": weights,
        }, group_by, tie_break)])[0]

    def find_batch(self, requests: Iterable[Mapping[str, Any]]) -> list[list[Hit]]:
        """Several ``find`` requests; each shard answers its part of all of them at once."""
        raw = [dict(r) for r in find_requests(requests)]
        for r in raw:
            if r.get("syntax", "plain") != "plain":
                raise InvalidInputError(
                    "a sharded memory searches with plain query syntax only: tantivy's "
                    "query language scores with one shard's statistics")
            r.pop("syntax", None)
        if not raw:
            return []
        if self._embedder is not None:
            raw = fill_query_vectors(self._embedder, raw)
        return answer_requests(raw, self._find_plain, self._find_grouped)

    def _find_plain(self, raw: list[dict[str, Any]]) -> list[list[Hit]]:
        """``find_batch`` of requests without grouping (their query vectors filled in)."""
        parts: list[Part] = []
        for i, reads in enumerate(self._shard_reads()):
            shard_raw = [{**r, "as_of": self._shard_as_of(r.get("as_of"), i)} for r in raw]
            parts.append(Part(i, reads, shard_raw, parts[0] if parts else None))
        routes = [None if (s := self._router.of_filter(r.get("filter"))) is None else {s}
                  for r in raw]
        return find_batch(parts, routes, self._shard_reads()[0].index_config.rrf_k)

    def _find_grouped(self, request: dict[str, Any]) -> list[Hit]:
        """One ``find`` with ``group_by`` / ``tie_break``, every round on the shards'
        snapshots of its first (:mod:`..index.grouping`)."""
        shards = [pinned_reads(r) for r in self._shard_reads()]
        view = ShardedView(self, shards)
        as_of = [self._shard_as_of(request.get("as_of"), i) for i in range(len(shards))]

        def stored_vector(hit: Hit) -> Any:
            homes = [self._router.of_id(hit.id)] if self._router.by_id else range(len(shards))
            for i in homes:
                with contextlib.suppress(FrameNotFoundError):
                    return shards[i].stored_vectors([hit], as_of[i])[0]
            return None

        return grouped_find(request, lambda r: view._find_plain([r])[0],
                            lambda hits: [stored_vector(h) for h in hits], self.dim,
                            shards[0].index_config.distance)

    # ------------------------------------------------------------ time travel

    @property
    def generation(self) -> int:
        """The sharded generation this handle reads: +1 per sharded write."""
        raise NotImplementedError

    def as_of(self, t: datetime | int) -> ShardedView:
        """A read-only view of every shard at record time ``t`` (a datetime), or at the
        sharded generation ``t`` (an int: the shards' pinned generations)."""
        if isinstance(t, bool) or not isinstance(t, int | datetime):
            raise InvalidTypeError(
                f"as_of takes a datetime or a generation int, not {type(t).__name__}")
        if isinstance(t, int):
            pin = self._pin(t)
            views = [h.as_of(g) for h, g in zip(self._handles(), pin.shards, strict=True)]
        else:
            views = [r.as_of(t) for r in self._shard_reads()]
        return ShardedView(self, views)

    def _pin(self, generation: int) -> Pin:
        if not 1 <= generation <= self.generation:
            raise InvalidInputError(f"no sharded generation {generation}: this memory is at "
                                    f"generation {self.generation}")
        return self._pins.pin(generation)

    def _shard_as_of(self, as_of: datetime | int | None, shard: int) -> datetime | int | None:
        """A sharded ``as_of`` argument as shard ``shard`` reads it."""
        if isinstance(as_of, int) and not isinstance(as_of, bool):
            return self._pin(as_of).shards[shard]
        return as_of


class ShardedView(ShardedReads):
    """Read-only view of a sharded memory at a past time (from ``ShardedMemory.as_of``)."""

    def __init__(self, owner: ShardedReads, views: list[Reads]) -> None:
        self._owner = owner
        self._manifest, self._router = owner._manifest, owner._router
        self._pins, self._embedder = owner._pins, owner._embedder
        self._views = views

    def _shard_reads(self) -> list[Reads]:
        return self._views

    def _handles(self) -> list[Memory]:
        return self._owner._handles()

    @property
    def generation(self) -> int:
        return self._owner.generation

    def _readonly(self, *_: Any, **__: Any) -> Any:
        raise ReadOnlyError("an as_of view is read-only")

    put = put_many = update = delete = delete_many = seal = _readonly


class ShardedMemory(ShardedReads):
    """One logical memory over several ``.mv2`` files, local or in object storage.

    Create with :meth:`create`, open with :meth:`open`. One writer at a time (it holds
    every shard's writer lock); any number of readers, each on the pinned state it opened
    until :meth:`refresh`.
    """

    def __init__(self, manifest: Manifest, handles: list[Memory], pins: PinLog, *,
                 readonly: bool, embedder: Any) -> None:
        self._manifest = manifest
        self._router = Router(len(manifest.shards), manifest.route)
        self._pins = pins
        self._mems = handles
        self._readonly_handle = readonly
        # a {"name", "dim"} record binds the files without a model (Memory.create)
        self._embedder = None if isinstance(embedder, Mapping) else embedder
        self._closed = False
        self._lock = threading.RLock()  # writes and their pins, one at a time
        self._latest, self._end = self._pins.latest()
        self._reads: list[Reads] = []
        self._settle()

    # -------------------------------------------------------------- lifecycle

    @classmethod
    def create(cls, manifest_path: str | os.PathLike[str], shards: int | Sequence[str], *,
               dim: int | None = None, route: str | None = None, embedder: Any = None,
               **options: Any) -> ShardedMemory:
        """Create the shards and their manifest, and open them for writing.

        Args:
            manifest_path: the manifest file to create (it must not exist).
            shards: how many shards (files ``<manifest stem>-NNN.mv2`` beside it), or their
                paths (relative ones are relative to the manifest's directory).
            dim: embedding dimension of every shard (None: learnt from the first one).
            route: the metadata key frames are routed by (a tenant or agent id; every
                frame must carry it); None routes by a hash of the frame id.
            embedder: embeds texts put without an embedding, and text queries.
            options: ``Memory.create``'s other options (``index=``, ``config=``...), the
                same for every shard.

        Raises:
            AlreadyExistsError: the manifest or a shard file exists.
            InvalidInputError: a bad shard count, path list or route.
        """
        path = os.fspath(manifest_path)
        names = _shard_names(path, shards)
        if route is not None and (not isinstance(route, str) or not route or "." in route
                                  or route.startswith("$")):
            raise InvalidInputError(f"route must name a top-level metadata key (no '.', no "
                                    f"leading '$'), or be None to route by id; got {route!r}")
        manifest = Manifest(path, names, route, dim)
        if os.path.lexists(path) or os.path.lexists(manifest.pins_path):
            raise AlreadyExistsError(f"{path} already exists")
        handles: list[Memory] = []
        try:
            for i in range(len(names)):
                handles.append(Memory.create(manifest.shard_path(i), dim=dim,
                                             embedder=embedder, **options))
            write_manifest(manifest)
            pins = PinLog(manifest.pins_path, len(names))
            pins.create(Pin(1, now_us(), tuple(h.generation for h in handles)))
        except BaseException:
            for h in handles:
                h.close()
                os.unlink(h.path)
            raise
        return cls(manifest, handles, pins, readonly=False, embedder=embedder)

    @classmethod
    def open(cls, manifest_path: str | os.PathLike[str], readonly: bool = False, *,
             embedder: Any = None, **options: Any) -> ShardedMemory:
        """Open a sharded memory (writable unless ``readonly=True``). Read-only, the
        manifest and the shards may be object URLs (``s3://bucket/agents.mv2s``: its
        ``.pins`` and relative shard names beside it; ``remote=`` a RemoteConfig).
        ``options`` go to each shard's ``Memory.open``.

        Raises:
            MemoryNotFoundError: no manifest (or a shard) at the path.
            CorruptFileError: a damaged manifest or pins file, or a shard older than its
                pin (replaced by an older copy, or not published before the manifest).
            MemoryLockedError: another process writes to a shard.
            RemoteReadOnlyError: a URL opened without ``readonly=True``.
        """
        path = os.fspath(manifest_path)
        if is_remote(path) and not readonly:
            raise RemoteReadOnlyError(f"{path} is an object in storage: it can only be read",
                                      path)
        remote = options.get("remote")
        manifest = read_manifest(path, remote)
        pins = PinLog(manifest.pins_path, len(manifest.shards), remote)
        handles: list[Memory] = []
        try:
            for i in range(len(manifest.shards)):
                handles.append(Memory.open(manifest.shard_path(i), readonly=readonly,
                                           embedder=embedder, **options))
            return cls(manifest, handles, pins, readonly=readonly, embedder=embedder)
        except BaseException:
            for h in handles:
                h.close()
            raise

    @staticmethod
    def publish(manifest_path: str | os.PathLike[str], url: str, *,
                expected: Published | None = None, seal: bool = False,
                timeout: float = 300.0) -> Published:
        """Upload a closed sharded memory to object storage (``url``: the manifest's object,
        ``s3://bucket/team/agents.mv2s``; the shards and pins go beside it) with
        conditional writes; returns what was published, to pass as ``expected`` next time
        (``None``: the first publish). Readers move to it with ``refresh()``.
        ``seal=True`` seals every shard first. See :func:`.publish.publish` for the order
        of the uploads and the errors (``PublishConflictError`` when another publisher
        went first)."""
        from .publish import publish

        if seal:
            with ShardedMemory.open(manifest_path) as mem:
                mem.build_index()
        return publish(manifest_path, url, expected=expected, timeout=timeout)

    @_serialized
    def close(self) -> None:
        """Seal every shard, pin the result, and release the files (twice is harmless)."""
        if self._closed:
            return
        try:
            if not self._readonly_handle:
                for h in self._mems:
                    h.seal()
                self._pin_now()
        finally:
            self._closed = True
            for h in self._mems:
                h.close()

    def __enter__(self) -> ShardedMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("readonly" if self.readonly else "writable")
        return f"<ShardedMemory {self._manifest.path!r} {self.shard_count} shards {state}>"

    @property
    def path(self) -> str:
        return self._manifest.path

    @property
    def readonly(self) -> bool:
        return self._readonly_handle

    @property
    def shards(self) -> list[Memory]:
        """The shard handles, in manifest order (read them; write through this object)."""
        return list(self._mems)

    @property
    def generation(self) -> int:
        self._check_open()
        return self._latest.generation

    @_serialized
    def refresh(self) -> int:
        """Move a reader to the newest pinned state; returns its generation."""
        self._check_open()
        if self._readonly_handle:
            for h in self._mems:
                h.refresh()
            self._latest, self._end = self._pins.latest()
            self._settle()
        return self._latest.generation

    @_serialized
    def seal(self) -> int:
        """Commit every shard's pending writes (``Memory.seal``); returns the generation."""
        for h in self._writable():
            h.seal()
        self._pin_now()
        return self._latest.generation

    @_serialized
    def compact(self, retain_after: datetime | None = None) -> int:
        """``Memory.compact`` of every shard (``retain_after`` drops the history before
        it in each); returns the generation."""
        for h in self._writable():
            h.compact(retain_after)
        self._pin_now()
        return self._latest.generation

    def stats(self) -> ShardedStats:
        """The shards' ``Memory.stats()`` and their totals."""
        per_shard = [h.stats() for h in self._handles()]
        return ShardedStats(self._manifest.path, self.generation, len(self),
                            sum(s.versions for s in per_shard),
                            sum(s.file_bytes for s in per_shard), per_shard,
                            sum(s.live_bytes for s in per_shard))

    def verify(self) -> VerifyReport:
        """``Memory.verify`` of every shard: never raises for damage, reports it (each
        problem names its shard)."""
        from ..reports import VerifyReport

        problems: list[str] = []
        notices: list[str] = []
        checked: dict[str, int] = {}
        for h in self._handles():
            report = h.verify()
            problems += [f"{h.path}: {p}" for p in report.problems]
            notices += report.notices
            for what, n in report.checked.items():
                checked[what] = checked.get(what, 0) + n
        return VerifyReport(not problems, problems, checked, notices)

    @_serialized
    def build_index(self, *, complete: bool = True) -> int:
        """``Memory.build_index`` on every shard; returns the generation."""
        for h in self._writable():
            h.build_index(complete=complete)
        self._pin_now()
        return self._latest.generation

    def _settle(self) -> None:
        """Read each shard at its pinned generation; a writer pins shards found ahead."""
        reads: list[Reads] = []
        ahead = False
        for i, (h, pinned) in enumerate(zip(self._mems, self._latest.shards, strict=True)):
            current = h.generation
            if current < pinned:
                raise CorruptFileError(
                    f"shard {i} ({h.path}) is at generation {current}, older than its pinned "
                    f"{pinned}: it was replaced by an older copy, or not published before the "
                    "manifest", "shard", 0)
            ahead |= current > pinned
            reads.append(h if current == pinned or not self._readonly_handle
                         else h.as_of(pinned))
        self._reads = reads
        if ahead and not self._readonly_handle:  # a writer stopped between two shards
            self._pin_now()

    def _pin_now(self) -> None:
        gens = tuple(h.generation for h in self._mems)
        if gens == self._latest.shards:
            return
        pin = Pin(self._latest.generation + 1, now_us(), gens)
        self._end = self._pins.append(pin, self._end)
        self._latest = pin

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"{self._manifest.path} is closed")

    def _writable(self) -> list[Memory]:
        self._check_open()
        if self._readonly_handle:
            raise ReadOnlyError(f"{self._manifest.path} is open read-only")
        return self._mems

    def _shard_reads(self) -> list[Reads]:
        self._check_open()
        return self._reads

    def _handles(self) -> list[Memory]:
        self._check_open()
        return self._mems

    # ----------------------------------------------------------------- writes

    def put(self, text: str, *, embedding: Sequence[float] | None = None,
            metadata: Mapping[str, Any] | None = None, tags: Iterable[str] | None = None,
            created_at: datetime | None = None, id: str | None = None) -> str:
        """Store a frame in its shard (``Memory.put``); returns its id."""
        return self.put_many([{"text": text, "embedding": embedding, "metadata": metadata,
                               "tags": tags, "created_at": created_at, "id": id}])[0]

    @_serialized
    def put_many(self, records: Iterable[Mapping[str, Any]], *,
                 delete: Iterable[str] = ()) -> list[str]:
        """Store many frames, each in its shard; returns their ids. Every record is checked
        before any shard is written; readers see the whole batch or none of it. Records
        without ``created_at`` get the batch's time (one file gives them its record time).
        """
        mems = self._writable()
        records = [dict(r) if isinstance(r, Mapping) else r for r in check_records(records)]
        if self._embedder is not None:
            records = [dict(r) for r in fill_embeddings(self._embedder, records)]
        groups: dict[int, list[dict[str, Any]]] = {}
        homes: dict[str, int] = {}
        ids = []
        dim = self.dim
        now = from_us(now_us())  # one event time for the batch, as one file gives it
        for i, rec in enumerate(records):
            fid, created, _, metadata, _, _ = check_record(i, rec)
            if created is None:
                rec["created_at"] = now
            emb = check_embedding(rec.get("embedding"), dim)
            dim = dim or (len(emb) // 4 if emb else None)
            if fid is None:
                fid = rec["id"] = os.urandom(16).hex()
            shard = self._router.of_record(fid, metadata)
            if homes.setdefault(fid, shard) != shard:
                raise InvalidInputError(f"frame {fid!r} is routed to two shards in one batch "
                                        f"(its {self._router.field!r} differs)")
            groups.setdefault(shard, []).append(rec)
            ids.append(fid)
        if not self._router.by_id:
            self._check_homes(homes)
        doomed = self._owners(delete, missing_ok=True)
        both = sorted(set(homes).intersection(*doomed.values()) if doomed else ())
        if both:
            raise InvalidInputError(f"frame {both[0]!r} is both stored and deleted in one "
                                    "write")
        for shard in sorted(set(groups) | set(doomed)):
            mems[shard].put_many(groups.get(shard, []), delete=doomed.get(shard, ()))
        self._pin_now()
        return ids

    @_serialized
    def update(self, id: str, *, text: str = KEEP, metadata: Mapping[str, Any] = KEEP,
               embedding: Sequence[float] | None = KEEP, tags: Iterable[str] = KEEP,
               created_at: datetime = KEEP) -> int:
        """``Memory.update`` in the frame's shard; returns its version.

        Raises:
            FrameNotFoundError: no current frame has this id.
            InvalidInputError: new metadata routes the frame to another shard.
        """
        mems = self._writable()
        shard = self._home(check_id(id))
        if shard is None:
            raise FrameNotFoundError(f"no current frame has id {id!r}", id)
        if not self._router.by_id and metadata is not KEEP and self._router.of_record(
                id, metadata) != shard:
            raise InvalidInputError(f"the new {self._router.field!r} of frame {id!r} belongs "
                                    "to another shard: delete the frame and put it again")
        version = mems[shard].update(id, text=text, metadata=metadata, embedding=embedding,
                                     tags=tags, created_at=created_at)
        self._pin_now()
        return version

    def delete(self, id: str) -> None:
        """Delete a frame (its history stays readable via ``as_of``)."""
        self.delete_many([id])

    @_serialized
    def delete_many(self, ids: Iterable[str], *, missing_ok: bool = False) -> int:
        """Delete several frames, each in its shard; returns how many.

        Raises:
            FrameNotFoundError: an id has no current frame (nothing is deleted), unless
                ``missing_ok``.
        """
        mems = self._writable()
        doomed = self._owners(ids, missing_ok=missing_ok)
        count = sum(mems[shard].delete_many(found) for shard, found in sorted(doomed.items()))
        self._pin_now()
        return count

    def _owners(self, ids: Iterable[str], *, missing_ok: bool) -> dict[int, list[str]]:
        """The current frames among ``ids``, grouped by shard."""
        out: dict[int, list[str]] = {}
        for fid in check_records(ids, "ids"):
            shard = self._home(check_id(fid))
            if shard is None:
                if missing_ok:
                    continue
                raise FrameNotFoundError(f"no current frame has id {fid!r}", fid)
            out.setdefault(shard, []).append(fid)
        return out

    def _check_homes(self, homes: Mapping[str, int]) -> None:
        """Refuse to store a frame under a key of another shard than the one holding it."""
        reads = self._shard_reads()
        for fid, shard in homes.items():
            for other, r in enumerate(reads):
                if other != shard and fid in r:
                    raise InvalidInputError(
                        f"frame {fid!r} lives in shard {other}, and its new "
                        f"{self._router.field!r} routes it to shard {shard}: delete it first")


def _shard_names(path: str, shards: int | Sequence[str]) -> tuple[str, ...]:
    if isinstance(shards, int) and not isinstance(shards, bool):
        if not 1 <= shards <= MAX_SHARDS:
            raise InvalidInputError(f"a sharded memory has 1 to {MAX_SHARDS} shards, "
                                    f"not {shards}")
        stem = os.path.splitext(os.path.basename(path))[0]
        return tuple(f"{stem}-{i:03d}.mv2" for i in range(shards))
    if isinstance(shards, str | bytes) or not isinstance(shards, Sequence):
        raise InvalidTypeError("shards must be a count or a list of shard paths, not "
                               f"{type(shards).__name__}")
    names = tuple(os.fspath(s) for s in shards)
    if not 1 <= len(names) <= MAX_SHARDS or len(set(names)) != len(names):
        raise InvalidInputError(f"shards must be 1 to {MAX_SHARDS} distinct paths")
    return names
