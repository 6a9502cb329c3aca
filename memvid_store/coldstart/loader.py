"""Read a time range of frames in batches while a background thread reads ahead.

>>> with IncrementalFrameLoader(mem, batch_size=100) as loader:     # doctest: +SKIP
...     for batch in loader.load_time_range(jan, feb, LoadPriority.HIGH):
...         summarize(batch)

Works on a ``Memory`` or an ``as_of`` view alike: it only uses ``iter_timeline``. Each
range is read by one daemon thread that stops when the batches are exhausted, when the
iterator or the loader is closed, when the consumer raises (the abandoned iterator is
collected) and when the iterator is garbage collected.
"""

from __future__ import annotations

import enum
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ..errors import InvalidInputError, InvalidTypeError
from ..types import Frame, to_us

__all__ = ["FrameBatches", "IncrementalFrameLoader", "LoadPriority"]

THREAD_NAME = "memvid-frame-loader"
_POLL = 0.05  # seconds between checks of the stop flag while a queue is full or empty
_LOW_PAUSE = 0.001  # seconds a LOW priority reader sleeps after each batch
_JOIN_TIMEOUT = 10.0


class LoadPriority(enum.Enum):
    """How eagerly the reader thread works.

    * ``HIGH``: starts reading as soon as ``load_time_range`` is called and keeps up to
      ``prefetch_distance`` batches ready, without pausing.
    * ``NORMAL``: starts at the first ``next()``; keeps up to ``prefetch_distance``
      batches ready and yields the interpreter to other threads after each batch.
    * ``LOW``: starts at the first ``next()``; keeps one batch ready and sleeps 1 ms after
      each batch, so that foreground work goes first.
    """

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class _End:
    """Queue marker: the range is exhausted."""


class _Failed:
    """Queue marker: the reader raised ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class FrameBatches(Iterator[list[Frame]]):
    """Iterator of ``list[Frame]`` in ``created_at`` order, read ahead by a thread.

    ``close()`` (or leaving a ``with`` block) stops the thread; so does exhausting the
    iterator or dropping the last reference to it.
    """

    def __init__(self, source: Any, since: datetime | None, until: datetime | None,
                 batch_size: int, prefetch_distance: int, priority: LoadPriority) -> None:
        depth = 1 if priority is LoadPriority.LOW else prefetch_distance
        pause = {LoadPriority.HIGH: None, LoadPriority.NORMAL: 0.0,
                 LoadPriority.LOW: _LOW_PAUSE}[priority]
        self.priority = priority
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        # the thread must not reference self, or an abandoned iterator would never die
        self._thread = threading.Thread(
            target=_read, name=THREAD_NAME, daemon=True,
            args=(source, since, until, batch_size, self._queue, self._stop, pause))
        self._done = False
        self._finalizer = weakref.finalize(self, self._stop.set)
        if priority is LoadPriority.HIGH:
            self._thread.start()

    def __iter__(self) -> FrameBatches:
        return self

    def __next__(self) -> list[Frame]:
        if self._done:
            raise StopIteration
        if self._thread.ident is None:
            self._thread.start()
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
                break
            except queue.Empty:
                if self._stop.is_set():  # closed from another thread
                    self.close()
                    raise StopIteration from None
        if isinstance(item, _End):
            self.close()
            raise StopIteration
        if isinstance(item, _Failed):
            self.close()
            raise item.error
        return item

    def close(self) -> None:
        """Stop the reader thread and drop batches read ahead. Calling it twice is harmless."""
        self._done = True
        self._stop.set()
        while True:  # unblock a reader waiting for room
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT)
        self._finalizer.detach()

    @property
    def running(self) -> bool:
        """True while the reader thread is alive."""
        return self._thread.is_alive()

    def __enter__(self) -> FrameBatches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(source: Any, since: datetime | None, until: datetime | None, batch_size: int,
          out: queue.Queue[Any], stop: threading.Event, pause: float | None) -> None:
    """Reader thread: put batches of frames, then an end marker, unless stopped."""
    try:
        batch: list[Frame] = []
        for frame in source.iter_timeline(since, until):
            if stop.is_set():
                return
            batch.append(frame)
            if len(batch) == batch_size:
                if not _offer(out, batch, stop):
                    return
                batch = []
                if pause is not None:
                    time.sleep(pause)
        if batch and not _offer(out, batch, stop):
            return
        _offer(out, _End(), stop)
    except BaseException as exc:  # handed to the consumer, raised by next()
        _offer(out, _Failed(exc), stop)


def _offer(out: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` once there is room; False if stopped first."""
    while not stop.is_set():
        try:
            out.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False


class IncrementalFrameLoader:
    """Loads frames by event-time range in batches, reading ahead in the background.

    Args:
        source: a ``Memory`` or a ``MemoryView`` (``mem.as_of(t)``).
        batch_size: frames per batch.
        prefetch_distance: batches read ahead of the consumer (see ``LoadPriority``).
    """

    def __init__(self, source: Any, batch_size: int = 100, prefetch_distance: int = 5) -> None:
        if not callable(getattr(source, "iter_timeline", None)):
            raise InvalidTypeError(f"source must be a Memory or an as_of view, not "
                                   f"{type(source).__name__}")
        for name, value in (("batch_size", batch_size), ("prefetch_distance", prefetch_distance)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be an int >= 1, got {value!r}")
        self.source = source
        self.batch_size = batch_size
        self.prefetch_distance = prefetch_distance
        self._open: weakref.WeakSet[FrameBatches] = weakref.WeakSet()
        self._closed = False

    def load_time_range(self, start: datetime | None = None, end: datetime | None = None,
                        priority: LoadPriority | str = LoadPriority.NORMAL) -> FrameBatches:
        """Batches of the current frames with ``start <= created_at < end`` (either None).

        Raises:
            InvalidInputError: the loader is closed, ``priority`` is unknown or a bound is
                a naive datetime.
        """
        if self._closed:
            raise InvalidInputError("this IncrementalFrameLoader is closed; create a new one")
        for name, value in (("start", start), ("end", end)):
            if value is not None:
                to_us(value, name)  # naive or non-datetime values fail here, not in the thread
        if isinstance(priority, str):
            try:
                priority = LoadPriority(priority.lower())
            except ValueError:
                raise InvalidInputError(f"priority must be high, normal or low, got "
                                        f"{priority!r}") from None
        elif not isinstance(priority, LoadPriority):
            raise InvalidTypeError(f"priority must be a LoadPriority, not "
                                   f"{type(priority).__name__}")
        batches = FrameBatches(self.source, start, end, self.batch_size,
                               self.prefetch_distance, priority)
        self._open.add(batches)
        return batches

    def close(self) -> None:
        """Stop every reader thread this loader started. Calling it twice is harmless."""
        self._closed = True
        for batches in list(self._open):
            batches.close()

    def __enter__(self) -> IncrementalFrameLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
