"""``MemvidStore``: LangGraph long-term memory (``BaseStore``) in a ``.mv2`` memory file.

The store keeps no copy of the file: every read is an engine call on its collection
(``"langgraph-store"`` by default), so opening costs what opening the file costs, and a
read-only store follows a writer in another process.

Layout (:mod:`.store_layout`): one frame per item (value as JSON text, first vector as
embedding, filter fields in metadata), one companion frame per further vector, one marker
frame per non-empty namespace.

* ``get`` reads the item frame by its id (a digest of namespace and key).
* ``search`` without a query lists item frames with ``select`` in LangGraph's iteration
  order: namespaces in first-insertion order (markers' ``created_at``), keys in insertion
  order (items' ``created_at``, kept on update); with a query it asks ``find`` (vector
  mode, grouped by item: an item scores its best vector, exactly, in float64) for item
  and companion frames. Either way the namespace prefix, the LangGraph filter
  (translated exactly, :mod:`.store_filters`) and TTL are one engine filter.
* ``list_namespaces`` selects markers (match conditions become label equalities).
* TTL: ``exp`` (epoch seconds) is in the filter fields; expired items are left out by the
  filter, ``sweep_ttl`` deletes them with one ``delete_many``.

Writes of a ``batch`` are one ``put_many`` and at most one ``delete_many``. ``as_of=``
gives a read-only view of the store as it was at that time or commit generation.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from memvid_store import ReadOnlyError
from memvid_store.errors import InvalidInputError, InvalidTypeError
from memvid_store.types import Frame, from_us, to_us

from .._common import MemoryHolder, MemorySource, in_thread, opened_memory
from . import store_layout as layout
from .store_filters import NEVER, check_filter, conjunction, translate

__all__ = ["DEFAULT_COLLECTION", "MemvidStore"]

DEFAULT_COLLECTION = "langgraph-store"
Key = tuple[tuple[str, ...], str]

_clock_lock = threading.Lock()
_clock = 0  # the last created_at (µs) given to an item in this process


def _next_created(floor_us: int) -> int:
    """A creation time (µs) later than every one given before and than ``floor_us``."""
    global _clock
    with _clock_lock:
        _clock = max(to_us(datetime.now(UTC)), floor_us + 1, _clock + 1)
        return _clock


class MemvidStore(BaseStore, MemoryHolder):
    """A LangGraph ``BaseStore`` persisted in a memvid memory file.

    Items live in the collection ``collection`` (default ``"langgraph-store"``) of the file,
    so the store can share a file with other adapters.

    Args:
        path: the memory file (created if missing) or an open Memory to share.
        index: LangGraph ``IndexConfig`` (``dims``, ``embed``, ``fields``) for semantic search.
        ttl: LangGraph ``TTLConfig`` (``default_ttl`` minutes, ``refresh_on_read``,
            ``omit_expired``, ``sweep_interval_minutes``).
        as_of: a timezone-aware datetime or commit generation: a read-only view of the store
            as it was then.
        collection: the collection of the file holding the store's frames.
        **options: ``Memory.create``/``Memory.open`` options when a path is given, e.g.
            ``readonly=True`` (which follows a writer in another process).
    """

    supports_ttl = True

    def __init__(self, path: MemorySource, *, index: IndexConfig | None = None,
                 ttl: TTLConfig | None = None, as_of: datetime | int | None = None,
                 collection: str = DEFAULT_COLLECTION, **options: Any) -> None:
        if index is not None:
            if not isinstance(index, dict) or "embed" not in index:
                raise InvalidInputError("index must be a dict with 'embed' (and 'dims', 'fields')")
            dims = index.get("dims")
            if not isinstance(dims, int) or isinstance(dims, bool) or dims <= 0:
                raise InvalidInputError(f"index['dims'] must be a positive int, got {dims!r}")
            fields = index.get("fields") or ["$"]
            if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
                raise InvalidTypeError(f"index['fields'] must be a list of str, got {fields!r}")
        if ttl is not None and not isinstance(ttl, dict):
            raise InvalidTypeError(f"ttl must be a TTLConfig dict, got {type(ttl).__name__}")
        with opened_memory(path, **options) as (memory, owned):
            if index is not None:
                mem_dim = memory.dim
                if mem_dim is not None and mem_dim != index["dims"]:
                    raise InvalidInputError(f"index['dims'] is {index['dims']} but the memory "
                                            f"file stores {mem_dim}-dimensional embeddings")
        self._hold(memory, owned, collection)
        self.index_config = dict(index) if index is not None else None
        self.embeddings = ensure_embeddings(index["embed"]) if index is not None else None
        self._fields = ([(p, tokenize_path(p) if p != "$" else p)
                         for p in (index.get("fields") or ["$"])] if index is not None else [])
        self.ttl_config = ttl
        self._view = self._collection.as_of(as_of) if as_of is not None else None
        self._reads = self._view if self._view is not None else self._collection
        self._lock = threading.RLock()
        self._floor: int | None = None  # newest created_at in the file, read at first write
        self._sweeper: tuple[threading.Thread, threading.Event] | None = None
        interval = (ttl or {}).get("sweep_interval_minutes")
        if interval and not self.readonly:
            self.start_ttl_sweeper(interval)

    @property
    def readonly(self) -> bool:
        return self._view is not None or self._memory.readonly

    def close(self) -> None:
        """Stop the TTL sweeper; close the memory if this store opened it (idempotent)."""
        self.stop_ttl_sweeper()
        super().close()

    # ---------------------------------------------------------------- batch

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = self._check_ops(ops)
        texts, queries = self._texts_to_embed(ops)
        doc_vecs = (self.embeddings.embed_documents(texts)
                    if texts and self.embeddings else [])
        query_vecs = {q: self.embeddings.embed_query(q) for q in queries} if queries else {}
        return self._execute(ops, dict(zip(texts, doc_vecs, strict=True)), query_vecs)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = self._check_ops(ops)
        texts, queries = self._texts_to_embed(ops)
        doc_vecs = (await self.embeddings.aembed_documents(texts)
                    if texts and self.embeddings else [])
        query_vecs = ({q: await self.embeddings.aembed_query(q) for q in queries}
                      if queries else {})
        return await in_thread(self._execute, ops, dict(zip(texts, doc_vecs, strict=True)),
                               query_vecs)

    def _check_ops(self, ops: Iterable[Op]) -> list[Op]:
        ops = list(ops)
        for op in ops:
            if not isinstance(op, GetOp | PutOp | SearchOp | ListNamespacesOp):
                raise InvalidTypeError(f"unknown store operation {type(op).__name__}")
            validate_op_namespace(op)
            if isinstance(op, PutOp):
                if self.readonly:
                    raise ReadOnlyError("this MemvidStore is read-only (as_of view or "
                                        "read-only memory); open it without as_of to write")
                if not op.namespace:
                    raise InvalidInputError("namespace cannot be empty")
                if op.namespace[0] == "langgraph":
                    raise InvalidInputError(f'root label of a namespace cannot be "langgraph": '
                                     f"{op.namespace}")
                if op.value is not None and not isinstance(op.value, dict):
                    raise InvalidTypeError(f"value must be a dict, not {type(op.value).__name__}")
                if op.index not in (None, False) and (
                        isinstance(op.index, str)
                        or not all(isinstance(p, str) for p in op.index)):
                    raise InvalidTypeError(
                        f"index must be False, None or a list of str: {op.index!r}")
                if op.ttl is not None and (not isinstance(op.ttl, int | float)
                                           or isinstance(op.ttl, bool) or op.ttl <= 0):
                    raise InvalidInputError(f"ttl must be a positive number of minutes: {op.ttl!r}")
            if isinstance(op, SearchOp):
                if op.filter is not None:
                    if not isinstance(op.filter, dict):
                        raise InvalidTypeError(f"filter must be a dict: {op.filter!r}")
                    check_filter(op.filter)
                for name in ("limit", "offset"):
                    value = getattr(op, name)
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        raise InvalidInputError(f"{name} must be a non-negative int, got {value!r}")
            if isinstance(op, ListNamespacesOp):
                for name in ("limit", "offset"):
                    value = getattr(op, name)
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        raise InvalidInputError(f"{name} must be a non-negative int, got {value!r}")
                if op.max_depth is not None and (not isinstance(op.max_depth, int)
                                                 or op.max_depth <= 0):
                    raise InvalidInputError(f"max_depth must be a positive int: {op.max_depth!r}")
                for cond in op.match_conditions or ():
                    if cond.match_type not in ("prefix", "suffix"):
                        raise InvalidInputError(f"match_type must be 'prefix' or 'suffix': "
                                         f"{cond.match_type!r}")
        return ops

    def _paths(self, op: PutOp) -> list[tuple[str, Any]]:
        if self.embeddings is None or op.value is None or op.index is False:
            return []
        if op.index is None:
            return self._fields
        return [(p, tokenize_path(p) if p != "$" else p) for p in op.index]

    def _texts_of(self, op: PutOp) -> list[tuple[str, str]]:
        """``(vector path, text)`` of every text to embed for a put."""
        out = []
        for path, tokens in self._paths(op):
            texts = get_text_at_path(op.value, tokens)
            if len(texts) > 1:
                out.extend((f"{path}.{i}", t) for i, t in enumerate(texts))
            elif texts:
                out.append((path, texts[0]))
        return out


    def _texts_to_embed(self, ops: list[Op]) -> tuple[list[str], list[str]]:
        texts: dict[str, None] = {}
        queries: dict[str, None] = {}
        if self.embeddings is None:
            return [], []
        for op in ops:
            if isinstance(op, PutOp):
                texts.update((t, None) for _, t in self._texts_of(op))
            elif isinstance(op, SearchOp) and op.query:
                queries[op.query] = None
        return list(texts), list(queries)

    def _execute(self, ops: list[Op], doc_vecs: dict[str, list[float]],
                 query_vecs: dict[str, list[float]]) -> list[Result]:
        with self._lock:
            now = datetime.now(UTC)
            results: list[Result] = []
            touched: dict[Key, Frame] = {}
            puts: dict[Key, PutOp] = {}
            got = self._frames([layout.item_id(op.namespace, op.key) for op in ops
                                if isinstance(op, GetOp)])
            for op in ops:
                if isinstance(op, GetOp):
                    frame = self._live(got[layout.item_id(op.namespace, op.key)], now)
                    if frame is not None and op.refresh_ttl:
                        touched[(op.namespace, op.key)] = frame
                    results.append(self._item(frame) if frame is not None else None)
                elif isinstance(op, SearchOp):
                    found = self._search(op, query_vecs.get(op.query) if op.query else None,
                                         now)
                    if op.refresh_ttl:
                        touched.update(((h.namespace, h.key), f) for f, h in found)
                    results.append([h for _, h in found])
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op, now))
                else:
                    puts[(op.namespace, op.key)] = op
                    results.append(None)
            self._refresh([f for k, f in touched.items() if k not in puts], now)
            if puts:
                self._apply_puts(puts, doc_vecs, now)
            return results

    # ---------------------------------------------------------------- frames

    def _frame(self, frame_id: str) -> Frame | None:
        return self._reads.get_many([frame_id])[0]

    def _frames(self, frame_ids: list[str]) -> dict[str, Frame | None]:
        """The current frame of each id (None: it has none), looked up together."""
        unique = list(dict.fromkeys(frame_ids))
        return dict(zip(unique, self._reads.get_many(unique), strict=True))

    def _live(self, frame: Frame | None, now: datetime) -> Frame | None:
        """The item frame, unless it is missing or (with ``omit_expired``) expired."""
        if frame is None or not self._omit_expired():
            return frame
        expires = frame.metadata.get("exp")
        return frame if expires is None or expires > now.timestamp() else None

    @staticmethod
    def _item(frame: Frame) -> Item:
        return layout.item_of(frame.text, frame.metadata, frame.created_at)

    def _omit_expired(self) -> bool:
        return bool((self.ttl_config or {}).get("omit_expired", False))

    def _alive(self, now: datetime) -> dict[str, Any]:
        """The engine filter leaving out expired frames (when ``omit_expired``)."""
        if not self._omit_expired():
            return {}
        return {"$or": [{"exp": None}, {"exp": {"$gt": now.timestamp()}}]}

    # ---------------------------------------------------------------- writes

    def _refresh(self, items: list[Frame], now: datetime) -> None:
        """Push back the expiry of items with a TTL that a read returned (one put_many)."""
        if self.readonly:
            return
        records = []
        for frame in items:
            meta = frame.metadata
            if meta.get("ttl") is None:
                continue
            ns, key = tuple(meta["namespace"]), meta["key"]
            expires = (now + timedelta(minutes=meta["ttl"])).timestamp()
            frames = [frame] + [f for f in map(self._frame,
                                               layout.vector_ids(ns, key, 1, meta["nvec"]))
                                if f is not None]
            records += [{"id": f.id, "text": f.text, "metadata": {**f.metadata, "exp": expires},
                         "embedding": f.embedding, "created_at": f.created_at}
                        for f in frames]
        if records:
            self._collection.put_many(records)

    def _newest(self) -> int:
        """The newest created_at (µs) in the collection, read once per store."""
        if self._floor is None:
            last = self._collection.select(reverse=True, limit=1)
            self._floor = to_us(last[0].created_at) if last else 0
        return self._floor

    def _vectors_of(self, op: PutOp, doc_vecs: dict[str, list[float]]
                    ) -> list[tuple[str, str, list[float]]]:
        dims = self.index_config["dims"] if self.index_config else None
        out = []
        for path, text in self._texts_of(op):
            vec = doc_vecs[text]
            if len(vec) != dims:
                raise InvalidInputError(f"the embedding function returned {len(vec)} numbers "
                                        f"but index['dims'] is {dims}")
            out.append((path, text, [float(x) for x in vec]))
        return out

    def _apply_puts(self, puts: dict[Key, PutOp], doc_vecs: dict[str, list[float]],
                    now: datetime) -> None:
        records: list[dict[str, Any]] = []
        doomed: list[str] = []
        markers: dict[tuple[str, ...], int | None] = {}  # namespace -> its created_at (µs)
        removed: dict[tuple[str, ...], int] = {}
        added: set[tuple[str, ...]] = set()
        found = self._frames([layout.item_id(ns, key) for ns, key in puts]
                             + [layout.marker_id(ns) for ns, _ in puts])
        for (ns, key), op in puts.items():
            old = found[layout.item_id(ns, key)]
            old_n = old.metadata["nvec"] if old is not None else 0
            if ns not in markers:
                marker = found[layout.marker_id(ns)]
                markers[ns] = to_us(marker.created_at) if marker is not None else None
            if op.value is None:
                if old is not None:
                    doomed += [old.id, *layout.vector_ids(ns, key, 1, old_n)]
                    removed[ns] = removed.get(ns, 0) + 1
                continue
            vectors = self._vectors_of(op, doc_vecs)
            if old is not None:
                created, nso = old.created_at, old.metadata["nso"]
            else:
                created = from_us(_next_created(self._newest()))
                added.add(ns)
                if markers[ns] is None:
                    markers[ns] = to_us(created)
                    records.append(layout.marker_frame(ns, created))
                nso = markers[ns]
            expires = (now + timedelta(minutes=op.ttl)).timestamp() if op.ttl else None
            records += layout.item_frames(ns, key, op.value, created_at=created,
                                          updated_at=now, nso=nso, ttl=op.ttl,
                                          expires=expires, vectors=vectors)
            doomed += layout.vector_ids(ns, key, max(len(vectors), 1), old_n)
        for ns, gone in removed.items():
            if ns not in added and self._collection.count({"ins": layout.ns_name(ns)}) <= gone:
                doomed.append(layout.marker_id(ns))
        if records:
            self._collection.put_many(records)
        if doomed:  # one atomic write for every delete of the batch
            self._collection.delete_many(doomed, missing_ok=True)

    # ---------------------------------------------------------------- reads

    def _namespaces(self, prefix: tuple[str, ...], extra: dict[str, Any] | None = None
                    ) -> list[Frame]:
        """Markers of the namespaces under ``prefix``, in first-insertion order."""
        scope = {"kind": "ns", "nsp": layout.ns_name(prefix)} if prefix else {"kind": "ns"}
        return self._reads.select(conjunction([scope, extra or {}]))

    def _walk(self, prefix: tuple[str, ...], flt: dict[str, Any], offset: int,
              limit: int) -> list[Frame]:
        """Item frames under ``prefix`` matching ``flt``, in iteration order, paged."""
        out: list[Frame] = []
        if limit == 0 or flt is NEVER:
            return out
        markers = self._namespaces(prefix)
        for marker in markers:
            scope = conjunction([{"ins": marker.metadata["ns"]}, flt])
            if offset and len(markers) > 1:
                found = self._reads.count(scope)
                if found <= offset:
                    offset -= found
                    continue
            out += self._reads.select(scope, offset=offset, limit=limit - len(out))
            offset = 0
            if len(out) >= limit:
                break
        return out

    def _search(self, op: SearchOp, query_vec: list[float] | None,
                now: datetime) -> list[tuple[Frame, SearchItem]]:
        """The page of a search: item frames and their results."""
        prefix = tuple(op.namespace_prefix)
        flt = conjunction([translate(op.filter), self._alive(now)])
        if query_vec is None:
            return [(f, _hit(f, None)) for f in self._walk(prefix, flt, op.offset, op.limit)]
        scored = conjunction([{"nsp": layout.ns_name(prefix)} if prefix else {}, flt])
        if not any(query_vec):  # cosine with a zero query is 0 for every vector
            page = [(f, 0.0) for f in self._walk(prefix, conjunction([flt, {"nvec": {"$gt": 0}}]),
                                                 op.offset, op.limit)]
        else:
            page = self._ranked(scored, query_vec, op.offset, op.limit)
        out = [(f, _hit(f, score)) for f, score in page]
        if len(out) < op.limit:
            fill = self._walk(prefix, conjunction([flt, {"nvec": 0}]), 0, op.limit - len(out))
            out += [(f, _hit(f, None)) for f in fill]
        return out

    def _ranked(self, flt: dict[str, Any], query: list[float], offset: int,
                limit: int) -> list[tuple[Frame, float]]:
        if flt is NEVER or limit == 0:
            return []
        reads = self._reads
        hits = reads.find(vector=query, k=offset + limit, mode="vector", filter=flt or None,
                          group_by=layout.OWNER, tie_break=layout.ITERATION_ORDER)
        page = hits[offset:]
        owners = reads.get_many([layout.owner_of(h.id, h.metadata) for h in page])  # together
        return [(frame, h.score) for frame, h in zip(owners, page, strict=True)
                if frame is not None]

    def _list_namespaces(self, op: ListNamespacesOp, now: datetime) -> list[tuple[str, ...]]:
        conditions = [_condition(c) for c in op.match_conditions or ()]
        markers = self._namespaces((), conjunction(conditions))
        namespaces = [tuple(m.metadata["namespace"]) for m in markers]
        if self._omit_expired():
            expired = self._expired_namespaces(now)
            namespaces = [ns for ns in namespaces if ns not in expired]
        if op.max_depth is not None:
            namespaces = sorted({ns[:op.max_depth] for ns in namespaces})
        else:
            namespaces = sorted(namespaces)
        return namespaces[op.offset:op.offset + op.limit]

    def _expired_namespaces(self, now: datetime) -> set[tuple[str, ...]]:
        """Namespaces all of whose items have expired."""
        expired = self._reads.select({"kind": "item", "exp": {"$lte": now.timestamp()}})
        names = {f.metadata["ins"]: tuple(f.metadata["namespace"]) for f in expired}
        return {ns for name, ns in names.items()
                if not self._reads.count(conjunction([{"ins": name}, self._alive(now)]))}

    # ------------------------------------------------------------------ TTL

    def sweep_ttl(self) -> int:
        """Delete every expired item; returns how many were deleted."""
        if self.readonly:
            raise ReadOnlyError("this MemvidStore is read-only; nothing can be swept")
        with self._lock:
            frames = self._collection.select({"exp": {"$lte": time.time()}})
            items = [f for f in frames if f.metadata.get("kind") == "item"]
            doomed = [f.id for f in frames]
            removed: dict[str, list[Frame]] = {}
            for f in items:
                removed.setdefault(f.metadata["ins"], []).append(f)
            for name, gone in removed.items():
                if self._collection.count({"ins": name}) <= len(gone):
                    doomed.append(layout.marker_id(tuple(gone[0].metadata["namespace"])))
            if doomed:
                self._collection.delete_many(doomed, missing_ok=True)
            return len(items)

    async def asweep_ttl(self) -> int:
        return await in_thread(self.sweep_ttl)

    def start_ttl_sweeper(self, interval_minutes: float | None = None) -> None:
        """Sweep expired items every ``interval_minutes`` in a daemon thread until stopped."""
        if self._sweeper is not None:
            return
        minutes = interval_minutes or (self.ttl_config or {}).get("sweep_interval_minutes")
        if not minutes or minutes <= 0:
            raise InvalidInputError(
                "give a positive interval_minutes (or ttl sweep_interval_minutes)")
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(minutes * 60):
                with contextlib.suppress(Exception):
                    self.sweep_ttl()

        thread = threading.Thread(target=run, name="memvid-store-ttl-sweeper", daemon=True)
        self._sweeper = (thread, stop)
        thread.start()

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; True when it has stopped (or never ran)."""
        if self._sweeper is None:
            return True
        thread, stop = self._sweeper
        stop.set()
        thread.join(timeout)
        self._sweeper = None
        return not thread.is_alive()


def _hit(frame: Frame, score: float | None) -> SearchItem:
    item = layout.item_of(frame.text, frame.metadata, frame.created_at)
    return SearchItem(namespace=item.namespace, key=item.key, value=item.value,
                      created_at=item.created_at, updated_at=item.updated_at,
                      score=float(score) if score is not None else None)


def _condition(cond: MatchCondition) -> dict[str, Any]:
    """A namespace match condition (``*`` matches any label) as a marker filter."""
    path = tuple(cond.path)
    side = "ls" if cond.match_type == "prefix" else "le"
    labels = path if side == "ls" else tuple(reversed(path))
    return conjunction([{"depth": {"$gte": len(path)}}]
                       + [{f"{side}/{i}": label} for i, label in enumerate(labels)
                          if label != "*"])
