"""MemvidStore: contract tests against LangGraph's InMemoryStore, persistence, time travel, TTL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langgraph.store.base import (
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore

from memvid_integrations.langgraph import MemvidStore
from memvid_store import Memory, ReadOnlyError

DIMS = 8
WORDS = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "melon", "grape", "berry"]
NAMESPACES = [("a",), ("a", "b"), ("a", "c"), ("a", "b", "d"), ("b", "x", "y"), ("c",)]
KINDS = ["fact", "pref", "note"]


def embed(texts: list[str]) -> list[list[float]]:
    """Hashed bag of words with integer counts (exact in float32) plus a constant bias."""
    out = []
    for text in texts:
        vec = [1.0] + [0.0] * (DIMS - 1)
        for word in text.lower().replace('"', " ").replace(",", " ").split():
            slot = 1 + int(hashlib.md5(word.encode()).hexdigest(), 16) % (DIMS - 1)
            vec[slot] += 1.0
        out.append(vec)
    return out


async def aembed(texts: list[str]) -> list[list[float]]:
    await asyncio.sleep(0)
    return embed(texts)


def index_config(fields: list[str] | None) -> dict[str, Any]:
    cfg: dict[str, Any] = {"dims": DIMS, "embed": embed}
    if fields is not None:
        cfg["fields"] = fields
    return cfg


# ---------------------------------------------------------------- reference


class Reference(InMemoryStore):
    """InMemoryStore with two of its quirks normalized away.

    InMemoryStore keeps a namespace listed once it was read or emptied, and keeps an item's
    old vectors when it is re-put with other fields or ``index=False``. MemvidStore lists only
    namespaces holding items and replaces an item's vectors on every put. This is
    ``InMemoryStore.batch`` with those two steps added.
    """

    def _purge(self) -> None:
        for ns in [ns for ns, items in self._data.items() if not items]:
            del self._data[ns]

    def _handle_list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        self._purge()  # a GetOp earlier in the same batch may have added an empty namespace
        return super()._handle_list_namespaces(op)

    def batch(self, ops: list[Any]) -> list[Any]:
        self._purge()
        results, put_ops, search_ops = self._prepare_ops(ops)
        if search_ops:
            self._batch_search(search_ops, self._embed_search_queries(search_ops), results)
        for ns, key in put_ops:
            self._vectors[ns].pop(key, None)
        to_embed = self._extract_texts(put_ops)
        if to_embed and self.index_config and self.embeddings:
            self._insertinmem_store(to_embed, self.embeddings.embed_documents(list(to_embed)))
        self._apply_put_ops(put_ops)
        return results


def random_value(rng: random.Random) -> dict[str, Any]:
    value: dict[str, Any] = {
        "text": " ".join(rng.choices(WORDS, k=rng.randint(2, 4))),
        "n": rng.randint(0, 9),
        "kind": rng.choice(KINDS),
    }
    if rng.random() < 0.5:
        value["tags"] = rng.sample(WORDS, rng.randint(1, 3))
    if rng.random() < 0.4:
        value["nested"] = {"x": rng.randint(0, 2), "y": rng.choice(KINDS)}
    return value


def random_filter(rng: random.Random) -> dict[str, Any] | None:
    choice = rng.randrange(9)
    if choice == 0:
        return None
    if choice == 1:
        return {"kind": rng.choice(KINDS)}
    if choice == 2:
        return {"n": {"$gt": rng.randint(0, 9)}}
    if choice == 3:
        return {"n": {"$gte": rng.randint(0, 9), "$lt": rng.randint(0, 9)}}
    if choice == 4:
        return {"n": {"$lte": rng.randint(0, 9)}, "kind": {"$ne": rng.choice(KINDS)}}
    if choice == 5:
        return {"nested": {"x": rng.randint(0, 2)}}
    if choice == 6:
        return {"kind": {"$eq": rng.choice(KINDS)}, "nested": {"y": rng.choice(KINDS)}}
    if choice == 7:
        return {"tags": rng.sample(WORDS, 1)}
    return {"n": rng.randint(0, 9), "missing": None}


def random_pattern(rng: random.Random) -> tuple[str, ...]:
    ns = rng.choice(NAMESPACES)
    length = rng.randint(1, len(ns))
    return tuple("*" if rng.random() < 0.3 else label for label in ns[:length])


def random_op(rng: random.Random, indexed: bool) -> Any:
    roll = rng.random()
    ns, key = rng.choice(NAMESPACES), f"k{rng.randrange(5)}"
    if roll < 0.35:
        index = rng.choice([None, None, False, ["kind"], ["tags[*]"], ["nested.y", "text"]])
        return PutOp(ns, key, random_value(rng), index=index)
    if roll < 0.45:
        return PutOp(ns, key, None)
    if roll < 0.6:
        return GetOp(ns, key)
    if roll < 0.85:
        prefix = rng.choice(NAMESPACES)[: rng.randint(0, 2)]
        query = (" ".join(rng.sample(WORDS, rng.randint(1, 3)))
                 if indexed and rng.random() < 0.6 else None)
        return SearchOp(prefix, random_filter(rng), rng.randint(1, 6), rng.randint(0, 3),
                        query)
    conditions = []
    if rng.random() < 0.5:
        conditions.append(MatchCondition("prefix", random_pattern(rng)))
    if rng.random() < 0.4:
        conditions.append(MatchCondition("suffix", random_pattern(rng)[-rng.randint(1, 2):]))
    depth = rng.choice([None, None, 1, 2, 3])
    return ListNamespacesOp(tuple(conditions), depth, rng.randint(1, 8), rng.randint(0, 2))


def normalize(result: Any) -> Any:
    """Results without timestamps (InMemoryStore resets created_at on every put)."""
    if result is None:
        return None
    if isinstance(result, list):
        return [normalize(r) for r in result]
    if isinstance(result, tuple):
        return result
    out = {"ns": result.namespace, "key": result.key, "value": result.value}
    score = getattr(result, "score", None)
    out["score"] = None if score is None else round(score, 9)
    return out


def store_path(tmp_path, name: str = "store.mv2") -> str:
    return str(tmp_path / name)


@pytest.mark.parametrize("fields", [["text", "tags[*]"], None, "no-index"])
@pytest.mark.parametrize("seed", [1, 2])
def test_random_operations_match_in_memory_store(tmp_path, fields, seed):
    indexed = fields != "no-index"
    index = index_config(fields) if indexed else None
    rng = random.Random(seed)
    path = store_path(tmp_path)
    store = MemvidStore(path, index=index, sync=False)
    ref = Reference(index=index)
    try:
        for step in range(160):
            size = 1 if rng.random() < 0.8 else rng.randint(2, 4)
            ops = [random_op(rng, indexed) for _ in range(size)]
            if sum(isinstance(op, PutOp) and op.value is not None for op in ops) > 1:
                ops = [op for op in ops if not isinstance(op, PutOp)] or ops[:1]
            expected = normalize(ref.batch(ops))
            assert normalize(store.batch(ops)) == expected, (step, ops)
            if step % 40 == 39:
                store.close()
                store = MemvidStore(path, index=index, sync=False)
        everything = [SearchOp((), None, 1000, 0, None), ListNamespacesOp((), None, 1000, 0)]
        assert normalize(store.batch(everything)) == normalize(ref.batch(everything))
    finally:
        store.close()


def test_async_batch_matches_sync(tmp_path):
    rng = random.Random(7)
    cfg = {"dims": DIMS, "embed": aembed, "fields": ["text", "tags[*]"]}
    ref = Reference(index=index_config(["text", "tags[*]"]))
    store = MemvidStore(store_path(tmp_path), index=cfg, sync=False)

    async def run() -> None:
        for step in range(60):
            op = random_op(rng, True)
            got = normalize(await store.abatch([op]))
            assert got == normalize(ref.batch([op])), (step, op)
        await store.aput(("docs",), "x", {"text": "apple pear"})
        hits = await store.asearch(("docs",), query="apple")
        assert [h.key for h in hits] == ["x"] and hits[0].score > 0
        assert (await store.aget(("docs",), "x")).value == {"text": "apple pear"}
        await store.adelete(("docs",), "x")
        assert await store.aget(("docs",), "x") is None
        assert ("docs",) not in await store.alist_namespaces()

    try:
        asyncio.run(run())
    finally:
        store.close()


# ------------------------------------------------------------- persistence


def test_timestamps_round_trip_and_created_at_is_kept(tmp_path):
    path = store_path(tmp_path)
    with MemvidStore(path) as store:
        store.put(("u",), "k", {"v": 1})
        first = store.get(("u",), "k")
        time.sleep(0.002)
        store.put(("u",), "k", {"v": 2})
        second = store.get(("u",), "k")
        assert second.created_at == first.created_at
        assert second.updated_at > first.updated_at
    with MemvidStore(path) as again:
        item = again.get(("u",), "k")
        assert (item.value, item.created_at, item.updated_at) == (
            {"v": 2}, second.created_at, second.updated_at)


READER = """
import json, sys
sys.path.insert(0, {tests!r})
from test_langgraph_store import index_config
from memvid_integrations.langgraph import MemvidStore
with MemvidStore({path!r}, index=index_config(["text", "tags[*]"])) as store:
    hits = store.search(("a",), query="apple kiwi", filter={{"kind": "fact"}}, limit=5)
    out = {{"hits": [[list(h.namespace), h.key, h.value, h.score, h.created_at.isoformat(),
                      h.updated_at.isoformat()] for h in hits],
            "namespaces": [list(n) for n in store.list_namespaces(prefix=("a", "*"))],
            "get": store.get(("a", "b"), "k1").value}}
    store.put(("a", "b"), "from-child", {{"text": "kiwi", "kind": "fact"}})
print(json.dumps(out))
"""


def test_store_survives_reopen_in_another_process(tmp_path):
    path = store_path(tmp_path)
    index = index_config(["text", "tags[*]"])
    rng = random.Random(3)
    with MemvidStore(path, index=index) as store:
        for i in range(12):
            value = random_value(rng) | {"kind": "fact" if i % 2 else "note"}
            store.put(rng.choice(NAMESPACES[:4]), f"k{i % 4}", value)
        store.put(("a", "b"), "k1", {"text": "apple kiwi", "kind": "fact", "tags": ["fig"]})
        hits = store.search(("a",), query="apple kiwi", filter={"kind": "fact"}, limit=5)
        expected = {
            "hits": [[list(h.namespace), h.key, h.value, h.score, h.created_at.isoformat(),
                      h.updated_at.isoformat()] for h in hits],
            "namespaces": [list(n) for n in store.list_namespaces(prefix=("a", "*"))],
            "get": {"text": "apple kiwi", "kind": "fact", "tags": ["fig"]},
        }
    code = READER.format(tests=str(__import__("pathlib").Path(__file__).parent), path=path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == expected
    with MemvidStore(path, index=index) as store:
        assert store.get(("a", "b"), "from-child").value == {"text": "kiwi", "kind": "fact"}
        assert store.search(("a", "b"), query="kiwi", limit=1)[0].key == "from-child"


def test_frames_layout_and_shared_file(tmp_path):
    with Memory.create(tmp_path / "shared.mv2") as mem:
        mem.put("an unrelated frame", id="other")
        other = mem.collection("langgraph-other")
        other.put("another store's frame", id="item:x", metadata={"kind": "item"})
        store = MemvidStore(mem, index=index_config(["text", "tags[*]"]))
        assert store.collection.name == "langgraph-store"
        store.put(("users", "u1"), "prefs", {"text": "dark mode", "tags": ["ui", "theme"]})
        frames = store.collection.timeline()
        marker, item = (next(f for f in frames if f.metadata["kind"] == kind)
                        for kind in ("ns", "item"))
        assert marker.metadata["namespace"] == ["users", "u1"]
        assert item.metadata["nsp"] == ["users", "users.u1"]
        assert json.loads(item.text) == {"text": "dark mode", "tags": ["ui", "theme"]}
        assert item.embedding == embed(["dark mode"])[0]
        vectors = sorted((f.metadata["index"], f.text) for f in frames
                         if f.metadata["kind"] == "vec")
        assert vectors == [(1, "ui"), (2, "theme")]
        store.put(("users", "u1"), "prefs", {"text": "light mode"})  # one vector now
        assert sorted(f.id for f in store.collection.timeline()) == sorted([marker.id, item.id])
        store.delete(("users", "u1"), "prefs")
        assert store.collection.ids() == [] and store.list_namespaces() == []
        assert mem.ids() == ["other"] and other.ids() == ["item:x"]
        hits = store.collection.find(vector=embed(["dark mode"])[0], k=3, mode="vector",
                                     as_of=item.valid_from)
        assert item.id in [h.id for h in hits]
        named = MemvidStore(mem, collection="langgraph-other")
        assert named.search(()) == [] and named.list_namespaces() == []


# ------------------------------------------------------------- time travel


def test_as_of_returns_the_old_value_and_is_read_only(tmp_path):
    with Memory.create(tmp_path / "tt.mv2") as mem:
        store = MemvidStore(mem, index=index_config(["text"]))
        store.put(("docs",), "d1", {"text": "launch on may 6"})
        store.put(("docs",), "d2", {"text": "budget is fixed"})
        time.sleep(0.002)
        before = datetime.now(UTC)
        time.sleep(0.002)
        store.put(("docs",), "d1", {"text": "launch moved to may 13"})
        store.delete(("docs",), "d2")
        assert store.get(("docs",), "d2") is None

        past = MemvidStore(mem, index=index_config(["text"]), as_of=before)
        assert past.readonly
        assert past.get(("docs",), "d1").value == {"text": "launch on may 6"}
        assert past.get(("docs",), "d2").value == {"text": "budget is fixed"}
        assert [h.key for h in past.search(("docs",), query="budget", limit=1)] == ["d2"]
        assert past.list_namespaces() == [("docs",)]
        with pytest.raises(ReadOnlyError):
            past.put(("docs",), "d3", {"text": "x"})
        with pytest.raises(ReadOnlyError):
            past.delete(("docs",), "d1")
        assert store.get(("docs",), "d1").value == {"text": "launch moved to may 13"}


# --------------------------------------------------------------------- TTL


def test_ttl_expiry_refresh_and_sweep(tmp_path):
    path = store_path(tmp_path)
    ttl_minutes = 0.6 / 60  # 0.6 s
    store = MemvidStore(path, ttl={"omit_expired": True}, sync=False)
    try:
        assert store.supports_ttl
        store.put(("t",), "short", {"v": 1}, ttl=ttl_minutes)
        store.put(("t",), "keep", {"v": 2})
        time.sleep(0.35)
        assert store.get(("t",), "short").value == {"v": 1}  # refreshes the expiry
        time.sleep(0.35)
        assert store.get(("t",), "short", refresh_ttl=False) is not None
        time.sleep(0.45)
        assert store.get(("t",), "short") is None
        assert [i.key for i in store.search(("t",))] == ["keep"]
        assert store.sweep_ttl() == 1
        assert store.sweep_ttl() == 0
    finally:
        store.close()
    with MemvidStore(path) as again:
        assert again.get(("t",), "short") is None
        assert again.get(("t",), "keep").value == {"v": 2}


def test_ttl_survives_reopen(tmp_path):
    path = store_path(tmp_path)
    with MemvidStore(path, ttl={"default_ttl": 60.0}) as store:
        store.put(("t",), "k", {"v": 1})
        frame = store.collection.select({"kind": "item"})[0]
    assert frame.metadata["ttl"] == 60.0
    assert 3590 < frame.metadata["exp"] - time.time() <= 3600
    with MemvidStore(path, ttl={"omit_expired": True}) as again:
        assert again.get(("t",), "k", refresh_ttl=False).value == {"v": 1}
        assert again.collection.get(frame.id).metadata["exp"] == frame.metadata["exp"]
        again.get(("t",), "k")  # refresh_on_read (the default) pushes the expiry back
        assert again.collection.get(frame.id).metadata["exp"] > frame.metadata["exp"]


# --------------------------------------------------------------- bad input


def test_bad_input_raises_clear_errors(tmp_path):
    path = store_path(tmp_path)
    with MemvidStore(path, index=index_config(["text"])) as store:
        store.put(("a",), "k", {"text": "apple", "n": 1})
        with pytest.raises(ValueError, match=r"\$regex"):
            store.search(("a",), filter={"n": {"$regex": "x"}})
        with pytest.raises(InvalidNamespaceError):
            store.put(("a.b",), "k", {"text": "x"})
        with pytest.raises(InvalidNamespaceError):
            store.put(("langgraph",), "k", {"text": "x"})
        with pytest.raises(ValueError, match="empty"):
            store.batch([PutOp((), "k", {"text": "x"})])
        with pytest.raises(TypeError, match="dict"):
            store.batch([PutOp(("a",), "k", ["not", "a", "dict"])])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="limit"):
            store.search(("a",), limit=-1)
        with pytest.raises(TypeError, match="unknown store operation"):
            store.batch(["get a"])  # type: ignore[list-item]
        assert store.get(("a",), "k").value == {"text": "apple", "n": 1}
        assert store.search(("a",), filter={"missing": {"$gt": 1}}) == []
    with pytest.raises(ValueError, match="dims"):
        MemvidStore(path, index={"dims": 3, "embed": embed})
    with pytest.raises(ValueError, match="dims"):
        MemvidStore(store_path(tmp_path, "x.mv2"), index={"embed": embed})
    wrong = {"dims": DIMS, "embed": lambda texts: [[1.0, 2.0] for _ in texts]}
    with MemvidStore(store_path(tmp_path, "w.mv2"), index=wrong) as store:
        with pytest.raises(ValueError, match="dims"):
            store.put(("a",), "k", {"text": "x"})
        assert store.get(("a",), "k") is None
    async_only = {"dims": DIMS, "embed": aembed}
    with MemvidStore(store_path(tmp_path, "async.mv2"), index=async_only) as store:
        with pytest.raises(ValueError, match="async"):
            store.put(("a",), "k", {"text": "x"})  # an async embedder needs aput/abatch
        asyncio.run(store.aput(("a",), "k", {"text": "x"}))
        assert store.get(("a",), "k").value == {"text": "x"}
