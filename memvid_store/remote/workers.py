"""The threads that make a round's requests: one pool per process, kept between rounds.

A round used to start a thread per request (up to ``parallel_requests``) and join them
all at its end; a thread's start waits until it holds the GIL, which other downloads
and the query's own work hold meanwhile. The pool's threads wait for the next round
instead. A pool has as many threads as the most tasks its rounds (of any thread) had
pending at once, ``parallel_requests`` at most, and a cold open starts them all while its
first requests are in flight.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

Call = tuple[Callable[..., Any], tuple]


class _Round:
    """The results of one ``run_all``: filled by the pool's threads, awaited by its caller."""

    def __init__(self, count: int) -> None:
        self.results: list[Any] = [None] * count
        self.errors: list[BaseException | None] = [None] * count
        self.left = count
        self.lock = threading.Lock()
        self.done = threading.Event()
        if not count:
            self.done.set()

    def run(self, index: int, call: Call) -> None:
        try:
            self.results[index] = call[0](*call[1])
        except BaseException as exc:  # raised in the caller's thread
            self.errors[index] = exc
        with self.lock:
            self.left -= 1
            if not self.left:
                self.done.set()


class _Pool:
    """Daemon threads taking ``(round, index, call)`` tasks from one queue."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.threads = 0
        self.pending = 0  # tasks queued or running, of every round
        self.lock = threading.Lock()

    def submit(self, task: _Round, calls: list[Call]) -> None:
        """Queue a round's calls, with threads for every task pending (rounds of other
        threads included), the pool's size at most."""
        with self.lock:
            self.pending += len(calls)
        self.grow(self.pending)
        for index, call in enumerate(calls):
            self.tasks.put((task, index, call))

    def grow(self, wanted: int) -> None:
        """Start threads until the pool has ``wanted`` (its size at most)."""
        with self.lock:
            new = max(0, min(self.size, wanted) - self.threads)
            self.threads += new
        for _ in range(new):
            threading.Thread(target=self._work, name=f"memvid-fetch-{self.size}",
                             daemon=True).start()

    def _work(self) -> None:
        while True:
            task, index, call = self.tasks.get()
            task.run(index, call)
            with self.lock:
                self.pending -= 1


_lock = threading.Lock()
_pools: dict[int, _Pool] = {}


def run_all(size: int, calls: Iterable[Call], *, start_pool: bool = False) -> list[Any]:
    """Run ``calls`` (a function and its arguments each) on the process's pool of ``size``
    threads; wait for every one, then return their results in order (the first error
    raised once all have ended). ``start_pool``: start all the pool's threads now (a cold
    open does with its first requests: a thread starts in about 0.1 ms while the process
    waits for the network, a millisecond or more once downloads hold the GIL)."""
    calls = list(calls)
    pool = _pool(size)
    task = _Round(len(calls))
    pool.submit(task, calls)
    if start_pool:  # while those run
        pool.grow(size)
    task.done.wait()
    for error in task.errors:
        if error is not None:
            raise error
    return task.results


def _pool(size: int) -> _Pool:
    with _lock:
        pool = _pools.get(size)
        if pool is None:
            pool = _pools[size] = _Pool(size)
        return pool


def _forget_in_child() -> None:
    """A forked child has none of its parent's threads: it makes its own pools."""
    global _lock
    _lock = threading.Lock()
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


__all__ = ["run_all"]
