"""Which thread count a matrix product runs on, chosen by measuring both.

On an idle machine a second OpenBLAS thread halves a 10k x 384 query's product; when
other processes load the cores, a product waiting for its second thread's time slice
takes 10-100 times longer. Neither fixed choice is right, so each size of product
(by the power of two of its multiply-adds) keeps the time per multiply-add of each
choice (:data:`ONE` thread, :data:`ALL` of OpenBLAS's threads) as a running average and
runs on the faster:

* it starts on one thread, the choice that is never badly wrong;
* every ``interval`` products it tries the other choice: two products, the second one
  measured (the first wakes OpenBLAS's sleeping worker threads, which costs an idle
  machine as much as the product itself: measured alone, a trial of every thread looked
  slower than one thread, and the choice stayed on one thread at half the speed); a
  trial that is not faster by :data:`SWITCH` makes the interval :data:`GROWTH` times
  longer (up to :data:`EXPLORE_MAX`), so a loaded machine soon pays for one slow trial in
  thousands of products (a trial costs more than its own products: OpenBLAS's woken
  worker threads spin for a while after it, slowing the products that follow on a busy
  machine);
* whenever the other choice's average beats the current one's by :data:`SWITCH` (a trial
  that went well, or the current choice slowing down when load arrives), it switches and
  the interval starts again from :data:`EXPLORE_FIRST`. A trial's measurement replaces
  the other choice's average (made before the last switch), so one slow moment of the
  faster choice costs a few products on the other, not several ever rarer trials.

Only products that ran alone (no other bounded product in the process during them) are
measured. The policy is pure (no clock, no library): :mod:`.blas_threads` applies it.
"""

from __future__ import annotations

ONE, ALL = "one", "all"
EXPLORE_FIRST = 8  # products before a trial of the other choice, after a switch
EXPLORE_MAX = 4096  # the longest interval between trials
GROWTH = 4  # how much longer the interval gets after a trial that lost
SWITCH = 0.8  # the other choice takes over below this share of the current one's time
ALPHA = 0.25  # weight of a new measurement in a choice's running average


class ThreadChoice:
    """The choice for one size of product."""

    __slots__ = ("countdown", "current", "interval", "rate", "trial", "waking")

    def __init__(self) -> None:
        self.current = ONE
        self.rate: dict[str, float | None] = {ONE: None, ALL: None}  # seconds per MAC
        self.interval = self.countdown = EXPLORE_FIRST
        self.trial = 0  # products of the other choice still to run in this trial
        self.waking = False  # the next report of the other choice is the waking one

    def pick(self) -> str:
        """The choice the next product runs on (now and then a trial of the other)."""
        if self.trial:
            self.trial -= 1
            return _other(self.current)
        self.countdown -= 1
        if self.countdown <= 0:
            self.countdown = self.interval
            self.trial, self.waking = 1, True
            return _other(self.current)
        return self.current

    def report(self, choice: str, seconds: float, macs: int) -> None:
        """A product of ``macs`` multiply-adds ran on ``choice`` in ``seconds``."""
        if choice != self.current and self.waking:
            self.waking = False  # it woke the other choice's threads: not measured
            return
        rate = seconds / max(1, macs)
        old = self.rate[choice]
        # a trial replaces the other choice's average, which dates from before the last
        # switch (one slow moment would otherwise keep a choice off for several trials)
        fresh = old is None or choice != self.current
        self.rate[choice] = rate if fresh else old + ALPHA * (rate - old)
        mine, theirs = self.rate[self.current], self.rate[_other(self.current)]
        if mine is not None and theirs is not None and theirs < SWITCH * mine:
            self.current = _other(self.current)
            self.interval = self.countdown = EXPLORE_FIRST
        elif choice != self.current:  # a trial that did not win
            self.interval = min(GROWTH * self.interval, EXPLORE_MAX)
            self.countdown = self.interval


class ThreadChoices:
    """A :class:`ThreadChoice` per power of two of multiply-adds."""

    def __init__(self) -> None:
        self._by_size: dict[int, ThreadChoice] = {}

    def of(self, macs: int) -> ThreadChoice:
        size = int(macs).bit_length()
        found = self._by_size.get(size)
        if found is None:
            found = self._by_size[size] = ThreadChoice()
        return found


def _other(choice: str) -> str:
    return ALL if choice == ONE else ONE
