"""Shared by the adapter benchmarks: a cheap embedding, the corpus, timing and guarded steps.

* ``hash_vectors``: a deterministic 64-d embedding (BLAKE2b digest bytes of the text, centred
  and L2-normalised), the same in every process, costing about a microsecond per text so
  embedding never dominates a figure. ``langchain_embeddings()`` / ``llamaindex_embedding()``
  wrap it as the frameworks' embedding classes (the framework is imported on first call).
* ``records``: the benchmark corpus (``bench.corpus``) without its vectors, as texts,
  metadata and ids.
* ``Recorder``: runs each measurement guarded (an exception becomes ``{"error": ...}``) and
  writes the section's results to a JSON file after every step, so a section process that
  is killed on timeout still leaves what it measured and the step it was in.
* ``compare``: first-call time and p50/p95 of each peer's repeated calls, the peers taking
  turns call by call; ``fresh``: a figure measured in new processes
  (``bench/adapters_child.py``), median of several runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from functools import cache
from hashlib import blake2b
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHILD = HERE / "adapters_child.py"
DIM = 64
BATCH = 1000


# ----------------------------------------------------------------------------- embedding


def hash_vectors(texts: list[str], dim: int = DIM) -> np.ndarray:
    """One unit float32 row per text from the BLAKE2b digest of its UTF-8 bytes."""
    raw = b"".join(blake2b(t.encode(), digest_size=dim).digest() for t in texts)
    out = np.frombuffer(raw, dtype=np.uint8).reshape(len(texts), dim).astype(np.float32)
    out -= 127.5
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


@cache
def _langchain_class() -> type:
    from langchain_core.embeddings import Embeddings

    class HashEmbeddings(Embeddings):
        """LangChain ``Embeddings`` over :func:`hash_vectors`."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return hash_vectors(list(texts)).tolist()

        def embed_query(self, text: str) -> list[float]:
            return hash_vectors([text])[0].tolist()

    return HashEmbeddings


@cache
def _llamaindex_class() -> type:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class HashEmbedding(BaseEmbedding):
        """LlamaIndex ``BaseEmbedding`` over :func:`hash_vectors`."""

        def _get_query_embedding(self, query: str) -> list[float]:
            return hash_vectors([query])[0].tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return hash_vectors([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return hash_vectors(list(texts)).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return HashEmbedding


def langchain_embeddings() -> Any:
    """A LangChain ``Embeddings`` giving :func:`hash_vectors` rows (imports langchain_core)."""
    return _langchain_class()()


def llamaindex_embedding() -> Any:
    """A LlamaIndex ``BaseEmbedding`` giving :func:`hash_vectors` rows (imports llama_index)."""
    return _llamaindex_class()(model_name=f"hash-{DIM}", embed_batch_size=BATCH)


# ----------------------------------------------------------------------------- corpus


def records(n: int, seed: int = 0) -> Iterator[list[dict[str, Any]]]:
    """The first ``n`` corpus records in batches of ``BATCH``: id, text, metadata, tags."""
    from bench import corpus

    yield from corpus.iter_batches(n, BATCH, seed=seed, embeddings=False)


def query_texts(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct keyword queries (distinct: the engine caches answers per query)."""
    from bench import corpus

    seen: dict[str, None] = {}
    extra = 0
    while len(seen) < count:
        for text, _ in corpus.query_texts(count + extra, seed=seed):
            seen.setdefault(text, None)
        extra += count
    return list(seen)[:count]


# ----------------------------------------------------------------------------- timing


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class _Timing:
    """The calls of one peer in :func:`compare`."""

    def __init__(self, call: Callable[[int], Any]) -> None:
        self.call = call
        self.first = 0.0
        self.times: list[float] = []
        self.spent = 0.0
        self.out: Any = None

    def run(self, i: int, count: int, warmup: int, budget_s: float) -> bool:
        """Make call ``i``; False once this peer is done."""
        t0 = time.perf_counter()
        self.out = self.call(i)
        dt = time.perf_counter() - t0
        self.spent += dt
        if i == 0:
            self.first = dt * 1e3
        elif i > warmup or self.spent > budget_s / 4:
            self.times.append(dt * 1e3)
        done = len(self.times) >= count
        return not (done or (self.spent > budget_s and len(self.times) >= 3))

    def stats(self) -> dict[str, Any]:
        size = len(self.out) if hasattr(self.out, "__len__") else None
        return {"first_ms": self.first, "p50_ms": pct(self.times, 50),
                "p95_ms": pct(self.times, 95), "calls": len(self.times), "result_size": size}


def compare(peers: dict[str, Callable[[int], Any]], count: int, warmup: int,
            budget_s: float = 30.0) -> dict[str, dict[str, Any]]:
    """Each peer's ``call(i)`` for ``i`` = 0, 1, ..., the peers taking turns call by call:
    the first call's time, then p50 / p95 (ms) over up to ``count`` calls after ``warmup``
    calls, and the size of the last answer.

    A slow peer stops early: its warm-up ends once it has spent a quarter of ``budget_s`` and
    its timing once it has spent the budget (after at least 3 timed calls); ``calls`` says
    how many were timed.
    """
    timings = {name: _Timing(call) for name, call in peers.items()}
    active = list(timings)
    i = 0
    while active:
        active = [name for name in active if timings[name].run(i, count, warmup, budget_s)]
        i += 1
    return {name: t.stats() for name, t in timings.items()}


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call."""
    t0 = time.perf_counter()
    out = func()
    return time.perf_counter() - t0, out


def progress(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


class Adds:
    """Time of each batch written to each peer: total throughput and median per 1,000."""

    def __init__(self, *peers: str) -> None:
        self.batches: dict[str, list[tuple[int, float]]] = {p: [] for p in peers}

    def run(self, peer: str, size: int, func: Callable[..., Any], *args: Any,
            **kwargs: Any) -> None:
        seconds, _ = timed(lambda: func(*args, **kwargs))
        self.batches[peer].append((size, seconds))

    def result(self) -> dict[str, Any]:
        out = {}
        for peer, batches in self.batches.items():
            docs = sum(size for size, _ in batches)
            seconds = sum(s for _, s in batches)
            out[peer] = {"docs": docs, "seconds": seconds,
                         "docs_per_s": docs / seconds if seconds else None,
                         "ms_per_1k": statistics.median(s / size * 1e6 for size, s in batches)
                         if batches else None}
        return out


def collection_name(adapter: Any) -> str:
    """The engine collection an adapter keeps its frames in."""
    return getattr(getattr(adapter, "collection", None), "name", "default")


def file_mb(path: Path) -> float:
    return path.stat().st_size / 1e6 if path.exists() else 0.0


# ----------------------------------------------------------------------------- guarded steps


class Recorder:
    """Results of one section, written to ``state`` (JSON) after every step.

    ``step(name, func)`` stores ``func()`` (a dict) under ``name`` or, if it raises,
    ``{"error": "<type>: <message>"}``; while it runs, ``running`` names it.
    """

    def __init__(self, state: Path, section: str, params: dict[str, Any]) -> None:
        self.state = state
        self.data: dict[str, Any] = {"section": section, "params": params, "steps": {},
                                     "running": None}
        self._save()

    def step(self, name: str, func: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        self.data["running"] = name
        self._save()
        progress(f"{self.data['section']}: {name}...")
        t0 = time.perf_counter()
        try:
            out = func()
        except Exception as exc:  # one failing measurement must not end the section
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            progress(f"{self.data['section']}: {name} failed: {msg}")
            traceback.print_exc(file=sys.stderr)
            self.data["steps"][name] = {"error": msg}
            out = None
        else:
            self.data["steps"][name] = out
        self.data["running"] = None
        progress(f"{self.data['section']}: {name} done in {time.perf_counter() - t0:.1f} s")
        self._save()
        return out

    def note(self, key: str, value: Any) -> None:
        self.data[key] = value
        self._save()

    def _save(self) -> None:
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, default=str))
        os.replace(tmp, self.state)


# ----------------------------------------------------------------------------- fresh processes


def child_env() -> dict[str, str]:
    """The environment of a child process: this checkout first on the import path."""
    from bench.engine_bench import child_env as base

    env = base()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_child(case: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One fresh process running ``case`` of adapters_child.py; its phases in ms."""
    spawned = time.time()
    try:
        out = subprocess.run([sys.executable, str(CHILD), case, json.dumps(args)],
                             capture_output=True, text=True, timeout=timeout, env=child_env())
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:]
        return {"error": " | ".join(tail)[:300] or f"exit status {out.returncode}"}
    res = json.loads(line[len("RESULT "):])
    res["interpreter_ms"] = (res.pop("began") - spawned) * 1e3
    res["total_ms"] = (res.pop("answered") - spawned) * 1e3
    return res


def fresh(cases: dict[str, tuple[str, dict[str, Any]]], repeats: int,
          timeout: float) -> dict[str, Any]:
    """Each case ``label -> (child case, args)`` in new processes: one discarded warm-up run
    (page cache, bytecode), then ``repeats`` runs interleaved across cases; medians."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in cases}
    failed: dict[str, str] = {}
    for rnd in range(repeats + 1):
        for label, (case, args) in cases.items():
            if label in failed:
                continue
            res = run_child(case, args, timeout)
            if "error" in res:
                failed[label] = res["error"]
                progress(f"fresh {label}: {res['error']}")
            elif rnd:
                runs[label].append(res)
    out: dict[str, Any] = {}
    for label in cases:
        if label in failed:
            out[label] = {"error": failed[label]}
            continue
        keys = [k for k, v in runs[label][0].items() if k.endswith("_ms") and v is not None]
        out[label] = {k: statistics.median(r[k] for r in runs[label]) for k in keys}
        out[label]["hits"] = runs[label][-1].get("hits")
        out[label]["repeats"] = len(runs[label])
    return out
