"""kill -9 trials: a forked writer (``ops.run_writer``) is killed at a random moment; a
forked checker then opens the file and compares every collection, and the indexed
filters, with the acknowledged state (or the acknowledged state plus the write in flight).

Kills come in chains on one file: each writer starts from the file the previous kill
left, so that recovery itself is killed too.
"""

from __future__ import annotations

import copy
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from memvid_store import Memory

from ..crash.conftest import read_acks
from ..crash.writer_proc import COLLECTIONS
from .isolate import run_forked
from .ops import FILTERS, TortureOps, run_writer
from .probe import digest as hash_of
from .probe import guard

Lives = dict[str, dict[str, Any]]
CHAIN = 5
MAX_RUN = 0.3
EARLY = 0.15  # share of kills aimed at startup, open and recovery


def _matches(item: dict[str, Any], flt: dict[str, Any]) -> bool:
    meta = item["metadata"] or {}
    key, cond = next(iter(flt.items()))
    if key not in meta:
        return False
    value = meta[key]
    if not isinstance(cond, dict):
        return value == cond
    for op, arg in cond.items():
        if op == "$in":
            ok = value in arg
        else:  # $lt / $gte between numbers, or between strings
            comparable = (isinstance(value, str) == isinstance(arg, str)
                          and not isinstance(value, bool) and isinstance(value, int | float | str))
            ok = comparable and (value < arg if op == "$lt" else value >= arg)
        if not ok:
            return False
    return True


def expected(lives: Lives) -> dict[str, Any]:
    """What the checker should read from a file holding ``lives``."""
    out: dict[str, Any] = {}
    for coll, live in lives.items():
        out[f"state:{coll}"] = hash_of(sorted(
            [fid, it["text"], it["metadata"] or {}, list(it["tags"] or []), it["embedding"]]
            for fid, it in live.items()))
        for flt in FILTERS:
            out[f"select:{coll}:{flt}"] = sorted(f for f, it in live.items() if _matches(it, flt))
    return out


def observe(mem: Memory) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for coll in COLLECTIONS:
        target = mem if coll == "default" else mem.collection(coll)
        out[f"state:{coll}"] = guard(lambda t=target: hash_of(sorted(
            [f.id, f.text, f.metadata, list(f.tags),
             None if f.embedding is None else [float(x) for x in f.embedding]]
            for f in t.timeline())))
        for flt in FILTERS:
            out[f"select:{coll}:{flt}"] = guard(
                lambda t=target, q=flt: sorted(f.id for f in t.select(q)))
    return out


def check(path: Path, candidates: dict[str, dict[str, Any]], writable: bool) -> dict[str, Any]:
    """Open (read-only, or writable: recovery) and compare with the candidates."""
    mem = guard(lambda: Memory.open(path, readonly=not writable))
    if isinstance(mem, str):
        return {"open": mem}
    try:
        got = observe(mem)
    finally:
        guard(mem.close)
    raw = next((v for v in got.values() if isinstance(v, str) and v.startswith("!raw:")), None)
    if raw:
        return {"outcome": "raw error", "error": raw.split(":", 2)[1], "detail": raw[:300]}
    errors = [k for k, v in got.items() if isinstance(v, str) and v.startswith("!err:")]
    if errors:
        return {"outcome": "detected", "error": got[errors[0]][5:], "detail": errors[0]}
    for name, want in candidates.items():
        if got == want:
            return {"outcome": "recovered", "state": name}
    wrong = [k for k, v in got.items() if v != candidates["acked"].get(k)]
    return {"outcome": "silently wrong", "detail": f"{len(wrong)} reads differ, e.g. {wrong[:3]}"}


def kill_once(path: Path, workdir: Path, lives: Lives, seed: int, rng: random.Random
              ) -> tuple[dict[str, Any], Lives]:
    """One kill and its check; returns the trial and the state the file now holds."""
    ack = workdir / f"ack-{seed}.log"
    model = {c: {"live": live} for c, live in lives.items()}
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            run_writer(str(path), str(ack), model, seed, 60.0)
        except BaseException:  # the checker sees the file as it is
            code = 3
        os._exit(code)
    if rng.random() < EARLY:
        time.sleep(rng.uniform(0, 0.12))
    else:
        deadline = time.monotonic() + 30
        while not (ack.exists() and ack.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, MAX_RUN))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    trial: dict[str, Any] = {"kind": "kill -9", "where": f"seed {seed}"}
    if not os.WIFSIGNALED(status):
        trial.update(outcome="harness", detail=f"writer exited with {status} before the kill")
        return trial, lives
    log = read_acks(ack)
    replay = TortureOps(seed, model)
    for entry in log.acked:
        replay.apply(entry)
    acked = copy.deepcopy(replay.lives)
    candidates = {"acked": expected(acked)}
    states = {"acked": acked}
    if log.inflight is not None:
        replay.apply(log.inflight)
        states["acked+inflight"] = replay.lives
        candidates["acked+inflight"] = expected(replay.lives)
    if log.inflight:
        trial["op"] = log.inflight["op"]
    if not path.exists():
        trial.update(outcome="recovered" if not log.acked else "silently wrong",
                     detail="no file yet")
        return trial, lives
    result = run_forked(lambda: check(path, candidates, writable=False), 120)
    if result.get("outcome") == "recovered" and rng.random() < 0.5:
        result = run_forked(lambda: check(path, candidates, writable=True), 120)
    if "open" in result:
        result = {"outcome": "detected", "error": result["open"][5:], "detail": "on open",
                  "rss_kb": result.get("rss_kb")}
    trial.update(result)
    return trial, states.get(trial.get("state", "acked"), acked)


def kill_chain(workdir: Path, chain: int, kills: int) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(chain)
    path = workdir / f"kill-{chain}.mv2"
    lives: Lives = {c: {} for c in COLLECTIONS}
    trials = []
    for k in range(kills):
        trial, lives = kill_once(path, workdir, lives, chain * 1000 + k, rng)
        trials.append(trial)
    return trials
