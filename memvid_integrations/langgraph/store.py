"""``MemvidStore``: LangGraph long-term memory (``BaseStore``) in a ``.mv2`` memory file.

Layout. Each item is one frame tagged ``langgraph:store`` and ``langgraph:ns:<a.b.c>`` (labels
cannot contain ``.``) with id ``lgs:item:<sha256(namespace, key)>``. Its metadata holds the
namespace, key, value (JSON), ``updated_at``, TTL state and two insertion counters that keep
LangGraph's iteration order across reopen; its ``created_at`` is the item's creation time
(kept on update). Its text is the value's JSON, so the engine's lexical search sees the item.

Embeddings. Every indexed text (one per field path, one per element for ``[*]`` paths) has
its own vector, as in LangGraph: the first is the item frame's embedding; each further one is
a companion frame ``lgs:vec:<digest>:<i>`` tagged ``langgraph:store:vector``. An item's score
is the best cosine over its vectors (LangGraph's max pooling).

Search is an exact cosine over the in-memory mirror rather than ``Memory.find``: LangGraph's
filter semantics (nested dict equality, ``$ne`` matching missing keys, numeric coercion)
differ from the engine's filter language, so candidates are filtered in Python anyway, and
max pooling over several vectors per item plus ``offset`` need every candidate's score.

The mirror is loaded from the file at open and every batch writes through before the mirror
changes, so the file is the source of truth across processes. ``as_of=`` opens a read-only
view of the store as it was at that time (record time) or commit generation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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

from .._common import MemoryHolder, MemorySource, in_thread, opened_memory

__all__ = ["MemvidStore"]

TAG = "langgraph:store"
VECTOR_TAG = "langgraph:store:vector"
NS_TAG_PREFIX = "langgraph:ns:"
_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _digest(namespace: tuple[str, ...], key: str) -> str:
    return hashlib.sha256(json.dumps([list(namespace), key]).encode()).hexdigest()[:32]


def _item_id(namespace: tuple[str, ...], key: str) -> str:
    return f"lgs:item:{_digest(namespace, key)}"


def _vector_id(namespace: tuple[str, ...], key: str, i: int) -> str:
    return f"lgs:vec:{_digest(namespace, key)}:{i}"


def _f32(vector: Sequence[float]) -> list[float]:
    """The vector as the engine stores it (float32), so reopened scores equal live ones."""
    import numpy as np

    return np.asarray(vector, dtype=np.float32).astype(np.float64).tolist()


@dataclass
class _Record:
    item: Item
    vectors: list[tuple[str, list[float]]] = field(default_factory=list)
    seq: int = 0
    ns_seq: int = 0
    ttl: float | None = None
    expires_at: datetime | None = None


class MemvidStore(BaseStore, MemoryHolder):
    """A LangGraph ``BaseStore`` persisted in a memvid memory file.

    Args:
        path: the memory file (created if missing) or an open Memory to share.
        index: LangGraph ``IndexConfig`` (``dims``, ``embed``, ``fields``) for semantic search.
        ttl: LangGraph ``TTLConfig`` (``default_ttl`` minutes, ``refresh_on_read``,
            ``omit_expired``, ``sweep_interval_minutes``).
        as_of: a timezone-aware datetime or commit generation: a read-only view of the store
            as it was then.
        **options: ``Memory.create``/``Memory.open`` options when a path is given.
    """

    supports_ttl = True

    def __init__(self, path: MemorySource, *, index: IndexConfig | None = None,
                 ttl: TTLConfig | None = None, as_of: datetime | int | None = None,
                 **options: Any) -> None:
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
        self._hold(memory, owned, "default")
        self.index_config = dict(index) if index is not None else None
        self.embeddings = ensure_embeddings(index["embed"]) if index is not None else None
        self._fields = ([(p, tokenize_path(p) if p != "$" else p)
                         for p in (index.get("fields") or ["$"])] if index is not None else [])
        self.ttl_config = ttl
        self._view = self._memory.as_of(as_of) if as_of is not None else None
        self._lock = threading.RLock()
        self._data: dict[tuple[str, ...], dict[str, _Record]] = {}
        self._seq = 0
        self._sweeper: tuple[threading.Thread, threading.Event] | None = None
        self._load()
        interval = (ttl or {}).get("sweep_interval_minutes")
        if interval and self._view is None:
            self.start_ttl_sweeper(interval)

    @property
    def readonly(self) -> bool:
        return self._view is not None or self._memory.readonly

    def close(self) -> None:
        """Stop the TTL sweeper; close the memory if this store opened it (idempotent)."""
        self.stop_ttl_sweeper()
        super().close()

    # ------------------------------------------------------------ persistence

    def _load(self) -> None:
        source = self._view if self._view is not None else self._memory
        records: list[tuple[_Record, list[str]]] = []
        extra: dict[str, dict[int, tuple[str, list[float]]]] = {}
        for frame in source.iter_timeline():
            meta = frame.metadata
            if VECTOR_TAG in frame.tags and meta.get("kind") == "vector":
                emb = frame.embedding
                if emb is not None:
                    extra.setdefault(meta["item"], {})[meta["index"]] = (meta["path"], emb)
                continue
            if TAG not in frame.tags or meta.get("kind") != "item":
                continue
            ns, key = tuple(meta["namespace"]), meta["key"]
            item = Item(value=meta["value"], key=key, namespace=ns,
                        created_at=frame.created_at,
                        updated_at=datetime.fromisoformat(meta["updated_at"]))
            paths = meta.get("paths") or []
            emb = frame.embedding if paths else None
            vectors = [(paths[0], list(emb))] if emb is not None else []
            records.append((_Record(
                item, vectors, meta["seq"], meta["ns_seq"], meta.get("ttl"),
                datetime.fromisoformat(meta["expires_at"]) if meta.get("expires_at") else None),
                paths))
        for rec, paths in records:
            more = extra.get(_item_id(rec.item.namespace, rec.item.key), {})
            # only vector frames the item lists (a crash between writes can leave stale ones)
            rec.vectors.extend(more[i] for i in range(1, len(paths))
                               if i in more and more[i][0] == paths[i])
            self._seq = max(self._seq, rec.seq, rec.ns_seq)
        records.sort(key=lambda r: (r[0].ns_seq, r[0].seq))
        for rec, _ in records:
            self._data.setdefault(rec.item.namespace, {})[rec.item.key] = rec

    def _frames(self, rec: _Record, texts: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The item frame, then one frame per further vector (``texts``: the embedded texts)."""
        item = rec.item
        meta = {
            "kind": "item", "namespace": list(item.namespace), "key": item.key,
            "value": item.value, "updated_at": item.updated_at.isoformat(),
            "seq": rec.seq, "ns_seq": rec.ns_seq, "paths": [p for p, _ in rec.vectors],
            "ttl": rec.ttl,
            "expires_at": rec.expires_at.isoformat() if rec.expires_at else None,
        }
        text = json.dumps(item.value, sort_keys=True, ensure_ascii=False)
        out = [{"id": _item_id(item.namespace, item.key), "text": text,
                "embedding": rec.vectors[0][1] if rec.vectors else None, "metadata": meta,
                "tags": [TAG, NS_TAG_PREFIX + ".".join(item.namespace)],
                "created_at": item.created_at}]
        item_fid = out[0]["id"]
        for i, (path, vec) in enumerate(rec.vectors[1:], start=1):
            out.append({"id": _vector_id(item.namespace, item.key, i),
                        "text": texts[i] if i < len(texts) else "", "embedding": vec,
                        "tags": [VECTOR_TAG], "created_at": item.created_at,
                        "metadata": {"kind": "vector", "item": item_fid, "index": i,
                                     "path": path}})
        return out

    @staticmethod
    def _frame_ids(ns: tuple[str, ...], key: str, start: int, stop: int) -> list[str]:
        """The item frame (when ``start`` is 0) and vector frames ``start..stop-1``."""
        ids = [_item_id(ns, key)] if start == 0 else []
        return ids + [_vector_id(ns, key, i) for i in range(max(start, 1), stop)]

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
                    _check_filter(op.filter)
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
            touched: dict[tuple[tuple[str, ...], str], _Record] = {}
            puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
            for op in ops:
                if isinstance(op, GetOp):
                    rec = self._live(op.namespace, op.key, now)
                    if rec is not None and op.refresh_ttl:
                        touched[(op.namespace, op.key)] = rec
                    results.append(rec.item if rec is not None else None)
                elif isinstance(op, SearchOp):
                    hits = self._search(op, query_vecs.get(op.query) if op.query else None,
                                        now)
                    if op.refresh_ttl:
                        for hit in hits:
                            rec = self._data[hit.namespace][hit.key]
                            touched[(hit.namespace, hit.key)] = rec
                    results.append(hits)
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op, now))
                else:
                    puts[(op.namespace, op.key)] = op
                    results.append(None)
            self._refresh(touched, puts, now)
            if puts:
                self._apply_puts(puts, doc_vecs, now)
            return results

    def _live(self, ns: tuple[str, ...], key: str, now: datetime) -> _Record | None:
        rec = self._data.get(ns, {}).get(key)
        if rec is None or (self._omit_expired() and _expired(rec, now)):
            return None
        return rec

    def _omit_expired(self) -> bool:
        return bool((self.ttl_config or {}).get("omit_expired", False))

    def _refresh(self, touched: dict[tuple[tuple[str, ...], str], _Record],
                 puts: dict[tuple[tuple[str, ...], str], PutOp], now: datetime) -> None:
        """Push back the expiry of items with a TTL that a read returned."""
        if self.readonly:
            return
        recs = [rec for k, rec in touched.items() if rec.ttl is not None and k not in puts]
        if not recs:
            return
        frames = []
        for rec in recs:
            rec.expires_at = now + timedelta(minutes=rec.ttl)
            frames.append(self._frames(rec)[0])
        self._memory.put_many(frames)

    def _apply_puts(self, puts: dict[tuple[tuple[str, ...], str], PutOp],
                    doc_vecs: dict[str, list[float]], now: datetime) -> None:
        dims = self.index_config["dims"] if self.index_config else None
        new: dict[tuple[tuple[str, ...], str], _Record | None] = {}
        frames: list[dict[str, Any]] = []
        seq = self._seq
        ns_seqs: dict[tuple[str, ...], int] = {}
        for (ns, key), op in puts.items():
            old = self._data.get(ns, {}).get(key)
            if op.value is None:
                new[(ns, key)] = None
                continue
            texts = self._texts_of(op)
            vectors = []
            for path, text in texts:
                vec = doc_vecs[text]
                if len(vec) != dims:
                    raise InvalidInputError(f"the embedding function returned {len(vec)} numbers "
                                     f"but index['dims'] is {dims}")
                vectors.append((path, _f32(vec)))
            if old is not None:
                rec_seq, ns_seq, created = old.seq, old.ns_seq, old.item.created_at
            else:
                seq += 1
                rec_seq, created = seq, now
                if ns not in ns_seqs:
                    if self._data.get(ns):
                        ns_seqs[ns] = next(iter(self._data[ns].values())).ns_seq
                    elif any(r is not None and k[0] == ns for k, r in new.items()):
                        ns_seqs[ns] = next(r.ns_seq for k, r in new.items()
                                           if r is not None and k[0] == ns)
                    else:
                        ns_seqs[ns] = rec_seq
                ns_seq = ns_seqs[ns]
            ttl = op.ttl
            rec = _Record(Item(value=dict(op.value), key=key, namespace=ns, created_at=created,
                               updated_at=now), vectors, rec_seq, ns_seq, ttl,
                          now + timedelta(minutes=ttl) if ttl is not None else None)
            frames.extend(self._frames(rec, [t for _, t in texts]))
            new[(ns, key)] = rec
        if frames:
            self._memory.put_many(frames)
        doomed: list[str] = []
        for (ns, key), rec in new.items():
            old = self._data.get(ns, {}).get(key)
            old_n = len(old.vectors) if old is not None else 0
            if rec is None:
                if old is not None:
                    doomed += self._frame_ids(ns, key, 0, max(old_n, 1))
            elif old_n > max(len(rec.vectors), 1):
                doomed += self._frame_ids(ns, key, max(len(rec.vectors), 1), old_n)
        if doomed:  # one atomic write for every delete of the batch
            self._memory.delete_many(doomed, missing_ok=True)
        self._seq = seq
        for (ns, key), rec in new.items():
            bucket = self._data.get(ns)
            if rec is None:
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del self._data[ns]
                continue
            if bucket is None:
                bucket = self._data[ns] = {}
            bucket[key] = rec

    # ---------------------------------------------------------------- reads

    def _search(self, op: SearchOp, query_vec: list[float] | None,
                now: datetime) -> list[SearchItem]:
        prefix = tuple(op.namespace_prefix)
        n = len(prefix)
        omit = self._omit_expired()
        candidates: list[_Record] = []
        for ns, bucket in self._data.items():
            if ns[:n] != prefix:
                continue
            for rec in bucket.values():
                if omit and _expired(rec, now):
                    continue
                if not op.filter or all(_compare(rec.item.value.get(k), v)
                                        for k, v in op.filter.items()):
                    candidates.append(rec)
        if query_vec is None:
            return [_hit(rec.item, None) for rec in candidates[op.offset:op.offset + op.limit]]
        scored: list[tuple[float, int, _Record]] = []
        scoreless = [rec for rec in candidates if not rec.vectors]
        with_vectors = [(order, rec) for order, rec in enumerate(candidates) if rec.vectors]
        if with_vectors:
            sims = _cosines(query_vec, [v for _, rec in with_vectors for _, v in rec.vectors])
            pos = 0
            for order, rec in with_vectors:
                n_vec = len(rec.vectors)
                scored.append((max(sims[pos:pos + n_vec]), order, rec))
                pos += n_vec
        scored.sort(key=lambda t: (-t[0], t[1]))
        kept = [(s, rec) for s, _, rec in scored[op.offset:op.offset + op.limit]]
        if scoreless and len(kept) < op.limit:
            kept.extend((None, rec) for rec in scoreless[:op.limit - len(kept)])
        return [_hit(rec.item, score) for score, rec in kept]

    def _list_namespaces(self, op: ListNamespacesOp, now: datetime) -> list[tuple[str, ...]]:
        omit = self._omit_expired()
        namespaces = [ns for ns, bucket in self._data.items()
                      if not omit or any(not _expired(r, now) for r in bucket.values())]
        for cond in op.match_conditions or ():
            namespaces = [ns for ns in namespaces if _matches(cond, ns)]
        if op.max_depth is not None:
            namespaces = sorted({ns[:op.max_depth] for ns in namespaces})
        else:
            namespaces = sorted(namespaces)
        return namespaces[op.offset:op.offset + op.limit]

    # ------------------------------------------------------------------ TTL

    def sweep_ttl(self) -> int:
        """Delete every expired item; returns how many were deleted."""
        if self.readonly:
            raise ReadOnlyError("this MemvidStore is read-only; nothing can be swept")
        with self._lock:
            now = datetime.now(UTC)
            expired = {(ns, key): PutOp(ns, key, None)
                       for ns, bucket in self._data.items()
                       for key, rec in bucket.items() if _expired(rec, now)}
            if expired:
                self._apply_puts(expired, {}, now)
            return len(expired)

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


def _hit(item: Item, score: float | None) -> SearchItem:
    return SearchItem(namespace=item.namespace, key=item.key, value=item.value,
                      created_at=item.created_at, updated_at=item.updated_at,
                      score=float(score) if score is not None else None)


def _expired(rec: _Record, now: datetime) -> bool:
    return rec.expires_at is not None and rec.expires_at <= now


def _cosines(query: Sequence[float], vectors: list[list[float]]) -> list[float]:
    """Cosine of the query with each vector (0 for a zero vector)."""
    import numpy as np

    q = np.asarray(query, dtype=np.float64)
    mat = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(mat, axis=1)
    q_norm = np.linalg.norm(q)
    sims = np.zeros(len(mat))
    if q_norm == 0:
        return sims.tolist()
    mask = norms != 0
    sims[mask] = mat[mask] @ q / (norms[mask] * q_norm)
    return sims.tolist()


def _matches(cond: MatchCondition, ns: tuple[str, ...]) -> bool:
    path = tuple(cond.path)
    if len(ns) < len(path):
        return False
    pairs = (zip(ns, path, strict=False) if cond.match_type == "prefix"
             else zip(reversed(ns), reversed(path), strict=False))
    return all(p == "*" or k == p for k, p in pairs)


def _check_filter(value: Any) -> None:
    """Raise ValueError for an operator LangGraph does not define, anywhere in a filter."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and k.startswith("$") and k not in _OPERATORS:
                raise InvalidInputError(f"unsupported filter operator {k!r}; "
                                 f"use one of {', '.join(_OPERATORS)}")
            _check_filter(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_filter(v)


def _compare(item_value: Any, filter_value: Any) -> bool:
    """LangGraph's filter semantics: operators, nested dict and list equality."""
    if isinstance(filter_value, dict):
        if any(k.startswith("$") for k in filter_value):
            return all(_apply(item_value, k, v) for k, v in filter_value.items())
        if not isinstance(item_value, dict):
            return False
        return all(_compare(item_value.get(k), v) for k, v in filter_value.items())
    if isinstance(filter_value, list | tuple):
        return (isinstance(item_value, list | tuple) and len(item_value) == len(filter_value)
                and all(_compare(a, b) for a, b in zip(item_value, filter_value, strict=True)))
    return item_value == filter_value


def _apply(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return value == operand
    if op == "$ne":
        return value != operand
    try:
        a, b = float(value), float(operand)
    except (TypeError, ValueError):
        return False  # a missing or non-numeric value never satisfies an ordering
    if op == "$gt":
        return a > b
    if op == "$gte":
        return a >= b
    if op == "$lt":
        return a < b
    return a <= b
