"""One query's product split over threads (``split_rows``): the same bits as one call,
on helper threads only when chosen, one split at a time, and usable after a fork."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvid_store.index.vector import split_rows
from memvid_store.index.vector.thread_choice import ALL, ONE


@pytest.fixture
def fresh(monkeypatch):
    """Choices made anew for the test, and two usable cores whatever the machine has."""
    monkeypatch.setattr(split_rows, "_choices", split_rows.ThreadChoices())
    monkeypatch.setattr(split_rows, "usable_cpus", lambda: 2)
    return split_rows


def _recording_vecdot(threads: list[str]):
    def vecdot(m, q, out=None):
        threads.append(threading.current_thread().name)
        return np.vecdot(m, q, out=out)
    return vecdot


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 3000), dim=st.integers(1, 64), parts=st.integers(2, 4),
       seed=st.integers(0, 2**32 - 1))
def test_a_split_product_has_the_bits_of_one_call(rows, dim, parts, seed):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((rows, dim)).astype(np.float32)
    q = rng.standard_normal(dim).astype(np.float32)
    helpers = split_rows._pool(split_rows.MAX_PARTS - 1)
    assert np.array_equal(split_rows._split(np.vecdot, m, q, parts, helpers), np.vecdot(m, q))


def test_small_products_stay_on_the_calling_thread(fresh):
    threads: list[str] = []
    m = np.ones((1000, 64), np.float32)  # below SPLIT_MACS
    fresh.choice_of(1000 * 64).current = ALL
    fresh.row_products(_recording_vecdot(threads), m, np.ones(64, np.float32))
    assert threads == [threading.current_thread().name]


def test_a_product_chosen_split_runs_on_the_helpers_with_the_same_bits(fresh):
    threads: list[str] = []
    rng = np.random.default_rng(1)
    m = rng.standard_normal((20_000, 128)).astype(np.float32)
    q = rng.standard_normal(128).astype(np.float32)
    choice = fresh.choice_of(m.size)
    choice.current, choice.countdown = ALL, 10**9
    out = fresh.row_products(_recording_vecdot(threads), m, q)
    assert np.array_equal(out, np.vecdot(m, q))
    assert len(threads) == 2 and any(t.startswith("memvid-rows") for t in threads)
    choice.current = ONE
    threads.clear()
    fresh.row_products(_recording_vecdot(threads), m, q)
    assert threads == [threading.current_thread().name]


def test_the_choice_learns_from_measured_products(fresh):
    """Products of a size are measured on each choice (a trial now and then), so after
    enough of them both choices hold a measured rate."""
    m = np.ones((20_000, 128), np.float32)
    q = np.ones(128, np.float32)
    for _ in range(40):
        fresh.row_products(np.vecdot, m, q)
    rate = fresh.choice_of(m.size).rate
    assert rate[ONE] is not None and rate[ALL] is not None


def test_products_of_several_threads_at_once_are_all_right(fresh):
    rng = np.random.default_rng(2)
    m = rng.standard_normal((20_000, 128)).astype(np.float32)
    queries = rng.standard_normal((8, 128)).astype(np.float32)
    choice = fresh.choice_of(m.size)
    choice.current, choice.countdown = ALL, 10**9
    got: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        for _ in range(20):
            got[i] = fresh.row_products(np.vecdot, m, queries[i])

    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(queries))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for i, q in enumerate(queries):
        assert np.array_equal(got[i], np.vecdot(m, q))


def _split_in_child(conn) -> None:
    m = np.arange(20_000 * 128, dtype=np.float32).reshape(20_000, 128) % 7
    q = np.ones(128, np.float32)
    choice = split_rows.choice_of(m.size)
    choice.current, choice.countdown = ALL, 10**9
    conn.send(bool(np.array_equal(split_rows.row_products(np.vecdot, m, q), np.vecdot(m, q))))


def test_a_forked_child_splits_with_its_own_helpers(fresh):
    m = np.ones((20_000, 128), np.float32)
    choice = fresh.choice_of(m.size)
    choice.current, choice.countdown = ALL, 10**9
    fresh.row_products(np.vecdot, m, np.ones(128, np.float32))  # the parent's helpers
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_split_in_child, args=(child,))
    proc.start()
    assert parent.poll(30), "the child's split hung"
    assert parent.recv() is True
    proc.join(10)
    assert proc.exitcode == 0
