"""The read suite of a trial: every kind of read, each answer reduced to a JSON value.

An observation maps a read's name (``get:notes:f012``) to its answer, or to
``!err:<class>`` for a MemvidError and ``!raw:<class>: <message>`` for any other
exception. ``FrameNotFoundError`` is an answer (``missing``), not an error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

from memvid_store import DamagedCommitWarning, FrameNotFoundError, Memory, MemvidError

Observation = dict[str, Any]
ERR, RAW = "!err:", "!raw:"


def digest(value: Any) -> str:
    """A short stable hash of a JSON value (keeps observations small)."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


def guard(fn: Callable[[], Any]) -> Any:
    """``fn()``'s answer, or the error it raised as an ``!err:``/``!raw:`` string."""
    try:
        return fn()
    except FrameNotFoundError:
        return "missing"
    except MemvidError as exc:
        return ERR + type(exc).__name__
    except Exception as exc:  # an escaped raw error is what we count
        return f"{RAW}{type(exc).__name__}: {str(exc)[:200]}"


def frame_value(frame: Any) -> list[Any]:
    emb = frame.embedding
    return [frame.id, frame.text, frame.metadata, list(frame.tags),
            None if emb is None else [float(x) for x in emb]]


def _hits(hits: list[Any]) -> list[Any]:
    return [[h.id, round(float(h.score), 4)] for h in hits]


def probe_collection(coll: Any, name: str, plan: dict[str, Any], obs: Observation) -> None:
    """Every read of ``plan`` on one collection (or memory) into ``obs``."""
    obs[f"timeline:{name}"] = guard(lambda: digest([frame_value(f) for f in coll.timeline()]))
    obs[f"ids:{name}"] = guard(lambda: sorted(coll.ids()))
    obs[f"count:{name}"] = guard(coll.count)
    for fid in plan["get"]:
        obs[f"get:{name}:{fid}"] = guard(lambda f=fid: frame_value(coll.get(f)))
    for fid in plan["history"]:
        obs[f"history:{name}:{fid}"] = guard(
            lambda f=fid: [[v.version, digest(frame_value(v))] for v in coll.history(f)])
    for flt in plan["filters"]:
        key = json.dumps(flt, sort_keys=True)
        obs[f"select:{name}:{key}"] = guard(lambda q=flt: [f.id for f in coll.select(q)])
        obs[f"count:{name}:{key}"] = guard(lambda q=flt: coll.count(q))
    for token in plan["tokens"]:
        obs[f"lexical:{name}:{token}"] = guard(
            lambda t=token: [h.id for h in coll.find(t, k=1, mode="lexical")])
    for i, vector in enumerate(plan["vectors"]):
        obs[f"vector:{name}:{i}"] = guard(
            lambda v=vector: _hits(coll.find(vector=v, k=3, mode="vector")))
        obs[f"grouped:{name}:{i}"] = guard(  # the best frame of each of 3 "w" values
            lambda v=vector: _hits(coll.find(vector=v, k=3, mode="vector", group_by="w")))
        token = plan["tokens"][i % len(plan["tokens"])] if plan["tokens"] else "note"
        obs[f"hybrid:{name}:{i}"] = guard(
            lambda v=vector, t=token: [h.id for h in coll.find(t, vector=v, k=1)])


def probe_memory(mem: Memory, plan: dict[str, Any]) -> Observation:
    obs: Observation = {"generation": guard(lambda: mem.generation)}
    for name, coll_plan in plan["collections"].items():
        coll = guard(lambda n=name: mem if n == "default" else mem.collection(n))
        if isinstance(coll, str):
            obs[f"collection:{name}"] = coll
            continue
        probe_collection(coll, name, coll_plan, obs)
    for gen in plan.get("as_of", ()):
        obs[f"as_of:{gen}"] = guard(
            lambda g=gen: digest([frame_value(f) for f in mem.as_of(g).timeline()]))
    return obs


def probe_file(path: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Open ``path`` read-only with a private index cache and run the read suite.

    Returns ``{"obs": ..., "verify": [problems], "warned": [DamagedCommitWarning
    names]}``, or ``{"open": error}`` when the open failed.
    """
    cache = tempfile.mkdtemp(prefix="torture-cache-")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DamagedCommitWarning)
            mem = guard(lambda: Memory.open(path, readonly=True, cache_dir=cache))
        if isinstance(mem, str):
            return {"open": mem}
        warned = [w.category.__name__ for w in caught
                  if issubclass(w.category, DamagedCommitWarning)]
        try:
            obs = probe_memory(mem, plan)
            report = guard(mem.verify)
            problems = report if isinstance(report, str) else list(report.problems)
        finally:
            close = guard(mem.close)
        if isinstance(close, str):
            obs["close"] = close
        return {"obs": obs, "verify": problems, "warned": warned}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
