"""Soak: one writer and three readers (two with ``follow=True``, one calling
``refresh()``) for a while; every state a reader sees must be a state the writer
reached after some acknowledged prefix of its operations (no torn reads)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from memvid_store import Memory

from ..crash.conftest import wait_for
from ..crash.writer_proc import COLLECTIONS
from .ops import run_writer, state_digest
from .probe import guard

READERS = (("follow", True), ("follow", True), ("refresh", False))


def read_state(mem: Memory) -> dict[str, dict[str, Any]]:
    """Every collection's frames at one generation (``as_of`` the one just read)."""
    gen = mem.generation
    lives: dict[str, dict[str, Any]] = {}
    for coll in COLLECTIONS:
        target = mem if coll == "default" else mem.collection(coll)
        lives[coll] = {f.id: {"text": f.text, "metadata": f.metadata, "tags": list(f.tags)}
                       for f in target.as_of(gen).select()}
    return lives


def reader(path: Path, out: Path, follow: bool, seconds: float) -> None:
    mem = Memory.open(path, readonly=True, follow=follow)
    deadline = time.monotonic() + seconds
    with open(out, "w", encoding="utf-8") as fh:
        while time.monotonic() < deadline:
            if not follow:
                refreshed = guard(mem.refresh)
                if isinstance(refreshed, str):
                    fh.write(json.dumps({"error": refreshed}) + "\n")
                    continue
            state = guard(lambda: state_digest(read_state(mem)))
            fh.write(json.dumps({"digest": state} if not state.startswith("!")
                                else {"error": state}) + "\n")
            fh.flush()
    mem.close()


def _fork(fn: Any) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except BaseException:  # reported by the exit status
            import traceback

            traceback.print_exc()
            code = 3
        os._exit(code)
    return pid


def soak(workdir: Path, seconds: float) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    path, ack = workdir / "soak.mv2", workdir / "soak.ack"
    writer = _fork(lambda: run_writer(str(path), str(ack), {}, 4242, seconds + 2, True))
    assert wait_for(lambda: ack.exists() and ack.stat().st_size > 0, 60), "writer not ready"
    readers = [(mode, workdir / f"reader-{i}.log",
                _fork(lambda f=follow, i=i: reader(path, workdir / f"reader-{i}.log", f,
                                                   seconds)))
               for i, (mode, follow) in enumerate(READERS)]
    trials: list[dict[str, Any]] = []
    statuses = {}
    for pid in [writer] + [pid for _, _, pid in readers]:
        deadline = time.monotonic() + seconds + 120
        while True:
            got, status, rusage = os.wait4(pid, os.WNOHANG)
            if got == pid:
                statuses[pid] = (status, rusage.ru_maxrss)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                _, status, rusage = os.wait4(pid, 0)
                statuses[pid] = (None, rusage.ru_maxrss)
                break
            time.sleep(0.05)
    valid = {json.loads(line).get("digest") for line in ack.read_text().splitlines()}
    valid.discard(None)
    for mode, log, pid in readers:
        status, rss = statuses[pid]
        kind = f"soak reader ({mode})"
        lines = log.read_text().splitlines() if log.exists() else []
        for line in lines:
            obs = json.loads(line)
            if "error" in obs:
                raw = obs["error"].startswith("!raw:")
                trials.append({"kind": kind, "outcome": "raw error" if raw else "detected",
                               "error": obs["error"].split(":", 2)[1], "detail": obs["error"]})
            elif obs["digest"] in valid:
                trials.append({"kind": kind, "outcome": "recovered", "rss_kb": rss})
            else:
                trials.append({"kind": kind, "outcome": "silently wrong",
                               "detail": "a state no acknowledged prefix reaches"})
        if status is None or os.WIFSIGNALED(status) or os.WEXITSTATUS(status):
            trials.append({"kind": kind, "outcome": "crashed",
                           "detail": f"reader ended with status {status}"})
    wstatus, wrss = statuses[writer]
    trials.append({"kind": "soak writer", "rss_kb": wrss,
                   "outcome": "recovered" if wstatus == 0 else "crashed",
                   "detail": f"{len(valid)} states written, status {wstatus}"})
    return trials
