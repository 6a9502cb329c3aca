"""Run one trial in a forked child: its outcome, or how it died, and its peak RSS.

The child writes a JSON result to a file and leaves with ``os._exit``; the parent waits
with ``wait4`` so that the peak RSS (``ru_maxrss``) of the child is known even when it
died on a signal, and kills it when it overruns its timeout.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

POLL = 0.002


def run_forked(fn: Callable[[], dict[str, Any]], timeout: float) -> dict[str, Any]:
    """``fn()`` in a child process; returns its dict plus ``rss_kb`` and ``seconds``.

    A child that dies on a signal gives ``{"outcome": "crashed", "signal": n}``; one that
    overruns ``timeout`` is killed and gives ``{"outcome": "crashed", "hang": True}``; an
    exception that escapes ``fn`` (a bug of the harness) gives ``{"outcome": "harness"}``.
    """
    fd, out = tempfile.mkstemp(prefix="torture-", suffix=".json")
    os.close(fd)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            result = fn()
        except BaseException:  # reported to the parent
            result = {"outcome": "harness", "detail": traceback.format_exc()[-2000:]}
            code = 3
        try:
            with open(out, "w", encoding="utf-8") as fh:
                json.dump(result, fh, default=str)
        finally:
            os._exit(code)
    try:
        status, rusage = _wait(pid, start + timeout)
        seconds = time.monotonic() - start
        if status is None:
            result = {"outcome": "crashed", "hang": True, "detail": f"timeout {timeout}s"}
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            result = {"outcome": "crashed", "signal": sig,
                      "detail": f"died on {signal.Signals(sig).name}"}
        else:
            try:
                with open(out, encoding="utf-8") as fh:
                    result = json.load(fh)
            except (OSError, ValueError):
                result = {"outcome": "harness", "detail": "no result written"}
        result["rss_kb"] = rusage.ru_maxrss if rusage is not None else None
        result["seconds"] = round(seconds, 3)
        return result
    finally:
        os.unlink(out)


def _wait(pid: int, deadline: float) -> tuple[int | None, Any]:
    """(status, rusage) of ``pid``; (None, rusage) after killing it at ``deadline``."""
    while True:
        got, status, rusage = os.wait4(pid, os.WNOHANG)
        if got == pid:
            return status, rusage
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, _, rusage = os.wait4(pid, 0)
            return None, rusage
        time.sleep(POLL)


def run_lanes(jobs: int, lanes: list[Callable[[], list[dict[str, Any]]]]
              ) -> list[dict[str, Any]]:
    """Run the ``lanes`` (each a sequence of trials returning its results) ``jobs`` at a
    time, each lane in a forked process; returns every lane's results in order."""
    results: list[list[dict[str, Any]]] = [[] for _ in lanes]
    pending = list(range(len(lanes)))
    running: dict[int, tuple[int, str]] = {}
    while pending or running:
        while pending and len(running) < jobs:
            index = pending.pop(0)
            fd, out = tempfile.mkstemp(prefix="torture-lane-", suffix=".json")
            os.close(fd)
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    lane_results = lanes[index]()
                except BaseException:  # reported to the parent
                    lane_results = [{"kind": "harness", "outcome": "harness",
                                     "detail": traceback.format_exc()[-3000:]}]
                    code = 3
                try:
                    with open(out, "w", encoding="utf-8") as fh:
                        json.dump(lane_results, fh, default=str)
                finally:
                    os._exit(code)
            running[pid] = (index, out)
        pid, status = os.wait()
        if pid not in running:
            continue
        index, out = running.pop(pid)
        try:
            with open(out, encoding="utf-8") as fh:
                results[index] = json.load(fh)
        except (OSError, ValueError):
            results[index] = [{"kind": "harness", "outcome": "harness",
                               "detail": f"lane {index} died with status {status}"}]
        os.unlink(out)
    return [r for lane in results for r in lane]
