"""The process's download threads: kept between rounds, bounded, started ahead on request."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from memvid_store.errors import RemoteTimeoutError
from memvid_store.remote.workers import run_all


def _threads(size: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"memvid-fetch-{size}"]


def test_results_come_in_order_and_a_failure_is_raised_once_every_call_ended():
    assert run_all(3, [(pow, (2, n)) for n in range(10)]) == [2**n for n in range(10)]
    ended = []

    def slow(n: int) -> int:
        time.sleep(0.05)
        ended.append(n)
        return n

    def failing() -> None:
        raise RemoteTimeoutError("no answer")

    with pytest.raises(RemoteTimeoutError):
        run_all(3, [(failing, ()), (slow, (1,)), (slow, (2,))])
    assert sorted(ended) == [1, 2]  # none still running into the caller's next step


def test_rounds_reuse_the_pool_threads_and_never_exceed_its_size():
    size = 5
    seen = set()
    for _ in range(20):
        seen.update(run_all(size, [(lambda: threading.current_thread().name, ())] * 12))
    assert len(seen) <= size
    assert len(_threads(size)) <= size


def test_starting_the_pool_leaves_its_threads_ready_for_the_next_round():
    size = 7
    assert run_all(size, [(int, ("4",))], start_pool=True) == [4]
    assert len(_threads(size)) == size
    before = {t.ident for t in _threads(size)}
    run_all(size, [(time.sleep, (0.01,))] * size)
    assert {t.ident for t in _threads(size)} == before  # no thread started for this round


def test_rounds_of_two_threads_run_at_once_in_one_pool():
    """Two callers' rounds of 4 calls each in a pool of 8: all 8 calls run together (each
    waits for the 7 others at a barrier, which breaks if one is left queued)."""
    barrier = threading.Barrier(8, timeout=20)
    got = []
    callers = [threading.Thread(target=lambda: got.append(
        run_all(8, [(barrier.wait, ())] * 4))) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(30)
    assert len(got) == 2 and not barrier.broken


def _child(queue) -> None:
    queue.put(run_all(4, [(abs, (-n,)) for n in range(6)]))


def test_a_forked_child_makes_its_own_pool():
    run_all(4, [(abs, (-1,))] * 4)  # the parent's pool has threads
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == list(range(6))
