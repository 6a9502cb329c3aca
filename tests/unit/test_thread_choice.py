"""The thread count of small products, chosen by measurement (thread_choice, blas_threads)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from memvid_store.index.vector import blas_threads
from memvid_store.index.vector.thread_choice import (
    ALL,
    EXPLORE_FIRST,
    EXPLORE_MAX,
    GROWTH,
    ONE,
    ThreadChoice,
    ThreadChoices,
)

MACS = 1 << 20


def run(choice: ThreadChoice, seconds: dict[str, float], count: int) -> list[str]:
    """``count`` products, each taking ``seconds[pick]``; the picks."""
    picks = []
    for _ in range(count):
        pick = choice.pick()
        choice.report(pick, seconds[pick], MACS)
        picks.append(pick)
    return picks


def trial_starts(picks: list[str], other: str) -> list[int]:
    """Where each trial of ``other`` began (a trial is two products in a row)."""
    return [i for i, p in enumerate(picks) if p == other and (i == 0 or picks[i - 1] != other)]


def test_starts_on_one_thread_and_moves_to_all_when_they_are_faster():
    choice = ThreadChoice()
    picks = run(choice, {ONE: 2.0, ALL: 1.0}, EXPLORE_FIRST + 1)
    assert picks == [ONE] * (EXPLORE_FIRST - 1) + [ALL, ALL]  # the trial: two products
    assert choice.current == ALL
    picks = run(choice, {ONE: 2.0, ALL: 1.0}, 100)
    assert picks.count(ONE) <= 2 * 100 // EXPLORE_FIRST  # one thread only as a trial
    assert choice.current == ALL


def test_a_trial_does_not_measure_the_product_that_wakes_the_threads():
    """Every thread's first product after a run on one thread pays for waking them (as
    slow as one thread here); the second shows their speed, and that one decides."""
    choice = ThreadChoice()
    picks: list[str] = []
    for _ in range(EXPLORE_FIRST + 1):
        pick = choice.pick()
        waking = pick == ALL and (not picks or picks[-1] != ALL)
        choice.report(pick, 3.0 if waking else {ONE: 2.0, ALL: 1.0}[pick], MACS)
        picks.append(pick)
    assert choice.current == ALL
    assert choice.rate[ALL] == 1.0 / MACS


def test_a_loaded_machine_keeps_one_thread_and_tries_all_less_and_less_often():
    choice = ThreadChoice()
    picks = run(choice, {ONE: 1.0, ALL: 30.0}, 40_000)
    assert choice.current == ONE
    starts = trial_starts(picks, ALL)
    assert all(picks[i + 1] == ALL for i in starts)
    waits = [b - a - 1 for a, b in pairwise(starts)]  # the interval between two trials
    assert waits == sorted(waits) and waits[-1] == EXPLORE_MAX
    assert waits[1] == GROWTH * waits[0]
    assert len(starts) <= 8 + 40_000 // EXPLORE_MAX  # one slow trial in thousands


def test_load_arriving_moves_back_to_one_thread_at_once():
    choice = ThreadChoice()
    run(choice, {ONE: 2.0, ALL: 1.0}, EXPLORE_FIRST + 1)
    assert choice.current == ALL
    picks = run(choice, {ONE: 2.0, ALL: 40.0}, EXPLORE_FIRST)
    assert choice.current == ONE  # one slow product, then back
    assert picks == [ALL] + [ONE] * (EXPLORE_FIRST - 1)


def test_one_slow_moment_of_the_faster_choice_is_soon_forgotten():
    choice = ThreadChoice()
    run(choice, {ONE: 2.0, ALL: 1.0}, EXPLORE_FIRST + 1)
    assert choice.current == ALL
    assert run(choice, {ONE: 2.0, ALL: 10.0}, 1) == [ALL]  # a hiccup: back to one thread
    assert choice.current == ONE
    picks = run(choice, {ONE: 2.0, ALL: 1.0}, EXPLORE_FIRST + 1)  # the next trial wins
    assert choice.current == ALL and picks[-2:] == [ALL, ALL]


def test_sizes_are_chosen_apart():
    choices = ThreadChoices()
    assert choices.of(1 << 20) is choices.of((1 << 20) + 5)
    assert choices.of(1 << 20) is not choices.of(1 << 22)


class FakeLib:
    """OpenBLAS's get/set of its thread count, recorded."""

    def __init__(self, threads: int) -> None:
        self.threads, self.sets = threads, []

    def get(self) -> int:
        return self.threads

    def set(self, n: int) -> None:
        self.sets.append(n)
        self.threads = n


@pytest.fixture
def fresh(monkeypatch):
    """A clean choice table and a clock the test moves (each product takes ``ticks``)."""
    monkeypatch.setattr(blas_threads, "_choices", ThreadChoices())
    clock = {"now": 0.0, "one": 2.0, "all": 1.0}
    lib = FakeLib(2)

    def perf_counter() -> float:
        return clock["now"]

    monkeypatch.setattr(blas_threads.time, "perf_counter", perf_counter)
    return lib, clock


def product(lib: FakeLib, clock: dict, macs: int = MACS) -> int:
    """One bounded product; the thread count it ran on."""
    with blas_threads._measured(lib, macs):
        ran_on = lib.threads
        clock["now"] += clock["one"] if ran_on == 1 else clock["all"]
    return ran_on


def test_bounded_products_move_to_every_thread_once_measured_faster(fresh):
    lib, clock = fresh
    ran = [product(lib, clock) for _ in range(40)]
    assert ran[0] == 1 and ran[-1] == 2 and lib.threads == 2  # the count is set back
    clock["all"] = 50.0  # load arrives
    ran = [product(lib, clock) for _ in range(5)]
    assert ran[0] == 2 and ran[1:] == [1, 1, 1, 1]


def test_a_count_of_one_set_by_the_user_is_left_alone(fresh):
    lib, clock = fresh
    lib.threads = 1
    assert [product(lib, clock) for _ in range(40)] == [1] * 40
    assert lib.sets == []


def test_overlapping_products_are_not_measured(fresh):
    lib, clock = fresh
    with blas_threads._measured(lib, MACS):
        for _ in range(40):  # each overlaps the outer product: none counts
            product(lib, clock)
    choice = blas_threads._choices.of(MACS)
    assert choice.rate == {ONE: None, ALL: None}


def test_without_adaptation_every_bounded_product_runs_on_one_thread(fresh, monkeypatch):
    lib, clock = fresh
    monkeypatch.setattr(blas_threads, "ADAPTIVE", False)
    assert [product(lib, clock) for _ in range(40)] == [1] * 40
    assert lib.threads == 2
