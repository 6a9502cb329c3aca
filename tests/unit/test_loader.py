"""IncrementalFrameLoader: batches in event-time order, bounded read-ahead, no leaked threads."""

from __future__ import annotations

import gc
import threading
import time
from datetime import datetime, timedelta

import pytest

from memvid_store import InvalidInputError, InvalidTypeError
from memvid_store.coldstart.loader import THREAD_NAME, IncrementalFrameLoader, LoadPriority
from tests.conftest import T0

N = 250


def minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def assert_no_loader_thread(timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while loader_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert loader_threads() == []


@pytest.fixture
def filled(mem):
    # inserted in reverse event-time order: batches must follow created_at, not insertion
    mem.put_many([{"text": f"frame {i}", "id": f"f{i:03d}", "created_at": minute(i)}
                  for i in reversed(range(N))])
    mem.seal()
    return mem


class CountingSource:
    """A read source that counts the frames the loader pulled from it."""

    def __init__(self, inner, fail_after: int | None = None) -> None:
        self.inner = inner
        self.read = 0
        self.fail_after = fail_after

    def iter_timeline(self, since=None, until=None):
        for frame in self.inner.iter_timeline(since, until):
            if self.fail_after is not None and self.read == self.fail_after:
                raise RuntimeError("source failed")
            self.read += 1
            yield frame


def wait_for(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.mark.parametrize("priority", list(LoadPriority))
def test_batches_follow_created_at_and_cover_the_range(filled, priority):
    with IncrementalFrameLoader(filled, batch_size=100, prefetch_distance=2) as loader:
        batches = list(loader.load_time_range(priority=priority))
        assert [len(b) for b in batches] == [100, 100, 50]
        assert [f.id for b in batches for f in b] == [f"f{i:03d}" for i in range(N)]
        window = [f.id for b in loader.load_time_range(minute(10), minute(25), priority)
                  for f in b]
        assert window == [f"f{i:03d}" for i in range(10, 25)]
    assert_no_loader_thread()


def test_empty_range_yields_nothing(filled):
    loader = IncrementalFrameLoader(filled)
    assert list(loader.load_time_range(minute(N + 5), None)) == []
    assert_no_loader_thread()


def test_priority_may_be_given_by_name(filled):
    loader = IncrementalFrameLoader(filled, batch_size=N)
    assert len(next(loader.load_time_range(priority="LOW"))) == N
    loader.close()
    assert_no_loader_thread()


def test_works_on_an_as_of_view(filled):
    before = filled.as_of(datetime.now(T0.tzinfo))
    time.sleep(0.002)  # the writes below are recorded strictly after the view's time
    filled.update("f005", text="changed")
    filled.delete("f006")
    filled.put("late", created_at=minute(1))
    with IncrementalFrameLoader(before, batch_size=4) as loader:
        frames = [f for b in loader.load_time_range(minute(0), minute(8)) for f in b]
    assert [f.id for f in frames] == [f"f{i:03d}" for i in range(8)]
    assert frames[5].text == "frame 5"
    assert_no_loader_thread()


@pytest.mark.parametrize(("priority", "depth"), [(LoadPriority.HIGH, 3),
                                                  (LoadPriority.NORMAL, 3),
                                                  (LoadPriority.LOW, 1)])
def test_read_ahead_is_bounded(filled, priority, depth):
    source = CountingSource(filled)
    batches = IncrementalFrameLoader(source, batch_size=10, prefetch_distance=3) \
        .load_time_range(priority=priority)
    first = next(batches)
    assert len(first) == 10
    # the queue holds `depth` batches, the reader one more in hand
    wait_for(lambda: source.read >= 10 * (depth + 2))
    time.sleep(0.05)
    assert source.read == 10 * (depth + 2)
    batches.close()
    assert not batches.running
    assert_no_loader_thread()


def test_high_priority_starts_reading_before_the_first_next(filled):
    high_source, normal_source = CountingSource(filled), CountingSource(filled)
    loader_high = IncrementalFrameLoader(high_source, batch_size=10, prefetch_distance=2)
    loader_normal = IncrementalFrameLoader(normal_source, batch_size=10, prefetch_distance=2)
    high = loader_high.load_time_range(priority=LoadPriority.HIGH)
    normal = loader_normal.load_time_range(priority=LoadPriority.NORMAL)
    wait_for(lambda: high_source.read == 30)
    assert high_source.read == 30 and normal_source.read == 0 and not normal.running
    high.close()
    normal.close()
    assert_no_loader_thread()


def test_no_thread_survives_close_midway(filled):
    batches = IncrementalFrameLoader(filled, batch_size=5, prefetch_distance=2) \
        .load_time_range(priority=LoadPriority.HIGH)
    next(batches)
    batches.close()
    batches.close()
    assert list(batches) == []
    assert_no_loader_thread()


def test_loader_close_stops_all_its_iterators(filled):
    with IncrementalFrameLoader(filled, batch_size=5, prefetch_distance=1) as loader:
        iterators = [loader.load_time_range(priority=p) for p in LoadPriority]
        for it in iterators:
            next(it)
        assert len(loader_threads()) == 3
    assert_no_loader_thread()
    with pytest.raises(InvalidInputError, match="closed"):
        loader.load_time_range()


def test_no_thread_survives_an_exception_in_the_consumer(filled):
    loader = IncrementalFrameLoader(filled, batch_size=5, prefetch_distance=2)

    def consume() -> None:
        for batch in loader.load_time_range(priority=LoadPriority.HIGH):
            if batch:
                raise ValueError("consumer failed")

    with pytest.raises(ValueError, match="consumer failed"):
        consume()
    gc.collect()
    assert_no_loader_thread()


def test_no_thread_survives_garbage_collection_of_an_abandoned_iterator(filled):
    loader = IncrementalFrameLoader(filled, batch_size=5, prefetch_distance=2)
    started = loader.load_time_range(priority=LoadPriority.NORMAL)
    next(started)
    never_iterated = loader.load_time_range(priority=LoadPriority.HIGH)
    assert len(loader_threads()) == 2
    del started, never_iterated
    gc.collect()
    assert_no_loader_thread()


def test_a_failing_source_raises_in_the_consumer_after_the_good_batches(filled):
    source = CountingSource(filled, fail_after=25)
    batches = IncrementalFrameLoader(source, batch_size=10).load_time_range()
    assert [len(next(batches)), len(next(batches))] == [10, 10]
    with pytest.raises(RuntimeError, match="source failed"):
        next(batches)
    assert list(batches) == []
    assert_no_loader_thread()


def test_invalid_arguments(filled):
    with pytest.raises(InvalidTypeError):
        IncrementalFrameLoader(object())
    with pytest.raises(InvalidInputError):
        IncrementalFrameLoader(filled, batch_size=0)
    with pytest.raises(InvalidInputError):
        IncrementalFrameLoader(filled, prefetch_distance=True)
    loader = IncrementalFrameLoader(filled)
    with pytest.raises(InvalidInputError):
        loader.load_time_range(priority="urgent")
    with pytest.raises(InvalidTypeError):
        loader.load_time_range(priority=1)
    with pytest.raises(InvalidInputError, match="timezone"):
        loader.load_time_range(datetime(2024, 1, 1))
    assert_no_loader_thread()
