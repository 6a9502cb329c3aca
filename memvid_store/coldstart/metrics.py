"""Cold-start metrics: phase timings, memory use, cache hit rate, alerts, CloudWatch EMF.

A ``MetricsRecorder`` (:mod:`.phases`) collects the seconds each phase of a cold start took
(the engine records ``open``, ``toc``, ``time_index``, ``lex_index``, ``vec_index`` and
``first_query``; any other name is kept too). ``MetricsRecorder.snapshot`` hands them to
:func:`cold_start_metrics`, which combines them with what the process knows about itself
into a frozen :class:`ColdStartMetrics`:

* ``runtime_load_ms``: process start to the moment ``import memvid_store`` began
  (interpreter start-up and whatever the application imported first);
* ``import_ms``: the package's own import (``memvid_store/__init__``);
* ``cold_start_ms``: process start to the first answer (``first_query`` recorded);
* ``rss_mb`` and its share of the memory limit, the cache hit rate, and :class:`Alert`\\ s.

Process start comes from ``/proc/self/stat`` (Linux, 10 ms resolution); where it is not
available, the figures that need it are None. RSS is read from ``/proc/self/statm``
(elsewhere the peak RSS from ``resource``). The memory limit is, in order:
``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` (MB), the cgroup v2 ``memory.max``, the cgroup v1
``memory.limit_in_bytes`` (a cgroup limit of ``max`` or above the physical memory means no
limit), then the physical memory (``/proc/meminfo``). MB here is 2**20 bytes, as Lambda
counts.

Alerts (thresholds in :class:`AlertThresholds`): cold start above 3 s is a warning, above
5 s critical; memory use above 80 % a warning, above 90 % critical; a cache hit rate below
70 % a warning, only once the caches have seen at least 100 lookups (a handful of lookups
says nothing about a cache). A value exactly at a threshold raises nothing.

:func:`emit_metrics` writes one JSON line in CloudWatch Embedded Metric Format, which
CloudWatch Logs turns into metrics when a Lambda function prints it.

This module uses the standard library only.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TextIO

from ..errors import ConfigError, InvalidInputError

__all__ = [
    "PHASES",
    "Alert",
    "AlertThresholds",
    "ColdStartMetrics",
    "check_alerts",
    "cold_start_metrics",
    "emf_document",
    "emit_metrics",
    "memory_limit",
    "process_start_time",
    "rss_bytes",
]

PHASES = ("open", "toc", "time_index", "lex_index", "vec_index", "first_query")
INDEX_PHASES = ("time_index", "lex_index", "vec_index")
MB = 1 << 20
# A cgroup limit at or above this is "no limit" (cgroup v1 writes 2**63 rounded to pages).
UNLIMITED_BYTES = 1 << 60
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")
LAMBDA_MEMORY_ENV = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"

# CloudWatch Embedded Metric Format limits
EMF_MAX_METRICS = 100
EMF_MAX_DIMENSIONS = 30
EMF_MAX_DIMENSION_VALUE = 1024
EMF_MAX_NAMESPACE = 255
_NAMESPACE = re.compile(r"[A-Za-z0-9._#:/-]+")


class CacheCounters(Protocol):
    """What :func:`cold_start_metrics` reads from a cache's statistics."""

    name: str
    hits: int
    misses: int


# ----------------------------------------------------------------------------- alerts


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """Limits above (or, for the hit rate, below) which :func:`check_alerts` raises alerts.

    Attributes:
        cold_start_warning_ms: cold start (process start to first answer) for a warning.
        cold_start_critical_ms: cold start for a critical alert.
        memory_warning_pct: RSS as a percentage of the memory limit, for a warning.
        memory_critical_pct: the same, for a critical alert.
        cache_hit_rate_warning: hit rate (0..1) under which a warning is raised...
        cache_min_lookups: ...once the caches have counted at least this many lookups.
    """

    cold_start_warning_ms: float = 3000.0
    cold_start_critical_ms: float = 5000.0
    memory_warning_pct: float = 80.0
    memory_critical_pct: float = 90.0
    cache_hit_rate_warning: float = 0.70
    cache_min_lookups: int = 100

    def __post_init__(self) -> None:
        for name in ("cold_start_warning_ms", "cold_start_critical_ms", "memory_warning_pct",
                     "memory_critical_pct", "cache_hit_rate_warning", "cache_min_lookups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ConfigError(f"AlertThresholds.{name} must be a number >= 0, got {value!r}")
        if self.cold_start_warning_ms > self.cold_start_critical_ms:
            raise ConfigError("AlertThresholds: cold_start_warning_ms must not exceed "
                              "cold_start_critical_ms")
        if self.memory_warning_pct > self.memory_critical_pct:
            raise ConfigError("AlertThresholds: memory_warning_pct must not exceed "
                              "memory_critical_pct")
        if self.cache_hit_rate_warning > 1:
            raise ConfigError(f"AlertThresholds.cache_hit_rate_warning is a fraction (0..1), "
                              f"got {self.cache_hit_rate_warning!r}")


@dataclass(frozen=True, slots=True)
class Alert:
    """One threshold crossed: ``level`` is ``"warning"`` or ``"critical"``."""

    level: str
    metric: str
    value: float
    threshold: float
    message: str


def check_alerts(metrics: ColdStartMetrics,
                 thresholds: AlertThresholds | None = None) -> tuple[Alert, ...]:
    """The alerts ``metrics`` raise under ``thresholds`` (defaults: the documented ones).

    At most one alert per metric (the most severe). Figures that are None raise nothing.
    """
    t = thresholds or AlertThresholds()
    alerts = [
        _over("cold_start_ms", metrics.cold_start_ms, t.cold_start_warning_ms,
              t.cold_start_critical_ms, lambda cold, limit: (
                  f"cold start took {cold / 1000:.2f} s (> {limit / 1000:g} s): "
                  "look at the slowest phase in index_load_ms and first_query_ms; "
                  "MEMVID_PRELOAD_LEVEL=lazy defers index loads, provisioned "
                  "concurrency avoids cold starts")),
        _over("memory_used_pct", metrics.memory_used_pct, t.memory_warning_pct,
              t.memory_critical_pct, lambda used, limit: (
                  f"RSS {metrics.rss_mb:.0f} MB is {used:.0f}% of the "
                  f"{metrics.memory_limit_mb:.0f} MB limit (> {limit:g}%): raise "
                  "the memory size or lower MEMVID_CACHE_SIZE")),
    ]
    rate = metrics.cache_hit_rate
    if rate is not None and metrics.cache_lookups >= t.cache_min_lookups \
            and rate < t.cache_hit_rate_warning:
        alerts.append(Alert("warning", "cache_hit_rate", rate, t.cache_hit_rate_warning,
                            f"cache hit rate {rate:.0%} over {metrics.cache_lookups} lookups "
                            f"(< {t.cache_hit_rate_warning:.0%}): raise MEMVID_CACHE_SIZE"))
    return tuple(a for a in alerts if a is not None)


def _over(metric: str, value: float | None, warning: float, critical: float,
          message: Callable[[float, float], str]) -> Alert | None:
    """The alert of a figure above its warning or critical limit (None: within both)."""
    if value is None or value <= warning:
        return None
    level, limit = ("critical", critical) if value > critical else ("warning", warning)
    return Alert(level, metric, value, limit, message(value, limit))


# ----------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class ColdStartMetrics:
    """What a cold start cost, in milliseconds and MB (2**20 bytes); None when unknown.

    Attributes:
        runtime_load_ms: process start to the start of ``import memvid_store``.
        import_ms: ``import memvid_store`` itself.
        file_open_ms: ``Memory.open`` (header, TOC, live WAL records).
        index_load_ms: load time per index (``time_index``, ``lex_index``, ``vec_index``)
            that has been loaded.
        first_query_ms: the first ``find`` of this handle, including the loads it caused.
        cold_start_ms: process start to the end of the first ``find``.
        rss_mb: resident memory of the process now.
        memory_limit_mb: the memory the process may use; ``memory_limit_source`` says where
            the figure comes from (``lambda``, ``cgroup2``, ``cgroup1``, ``physical``).
        memory_used_pct: ``rss_mb`` as a percentage of ``memory_limit_mb``.
        cache_hit_rate: hits / lookups over all caches (0..1), None before any lookup.
        cache_lookups: lookups counted over all caches.
        phases_ms: every recorded phase, including ones not listed above.
        alerts: the thresholds these figures cross (see :class:`AlertThresholds`).
    """

    runtime_load_ms: float | None = None
    import_ms: float | None = None
    file_open_ms: float | None = None
    index_load_ms: dict[str, float] = field(default_factory=dict)
    first_query_ms: float | None = None
    cold_start_ms: float | None = None
    rss_mb: float | None = None
    memory_limit_mb: float | None = None
    memory_limit_source: str | None = None
    memory_used_pct: float | None = None
    cache_hit_rate: float | None = None
    cache_lookups: int = 0
    phases_ms: dict[str, float] = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (alerts as dicts)."""
        return asdict(self)


def with_alerts(metrics: ColdStartMetrics,
                 thresholds: AlertThresholds | None) -> ColdStartMetrics:
    return replace(metrics, alerts=check_alerts(metrics, thresholds))


def cold_start_metrics(seconds: Mapping[str, float], first_answer_at: float | None,
                       cache_stats: Iterable[CacheCounters] = (), *,
                       thresholds: AlertThresholds | None = None) -> ColdStartMetrics:
    """The cold-start figures now, from the phases a recorder holds, with their alerts.

    Args:
        seconds: seconds per recorded phase (``MetricsRecorder.phases()``).
        first_answer_at: ``time.time()`` of the first answer, the end of the cold start
            (``MetricsRecorder.first_answer_at``); None before it.
        cache_stats: statistics of the caches to count (objects with ``name``, ``hits``
            and ``misses``, e.g. ``Memory.cache_stats()``).
        thresholds: alert thresholds (default :class:`AlertThresholds`).
    """
    ms = {phase: s * 1e3 for phase, s in seconds.items()}
    started = process_start_time()
    package = sys.modules.get(__name__.partition(".")[0])
    import_began = getattr(package, "IMPORT_STARTED", None)
    import_ended = getattr(package, "IMPORT_FINISHED", None)
    hits = misses = 0
    for stats in cache_stats:
        hits += int(stats.hits)
        misses += int(stats.misses)
    rss = rss_bytes()
    limit, source = memory_limit()
    rss_mb = rss / MB if rss is not None else None
    metrics = ColdStartMetrics(
        runtime_load_ms=_elapsed_ms(started, import_began),
        import_ms=_elapsed_ms(import_began, import_ended),
        file_open_ms=ms.get("open"),
        index_load_ms={p: ms[p] for p in ms if p in INDEX_PHASES or p.endswith("_index")},
        first_query_ms=ms.get("first_query"),
        cold_start_ms=_elapsed_ms(started, first_answer_at),
        rss_mb=rss_mb,
        memory_limit_mb=limit / MB if limit else None,
        memory_limit_source=source,
        memory_used_pct=100.0 * rss / limit if rss is not None and limit else None,
        cache_hit_rate=hits / (hits + misses) if hits + misses else None,
        cache_lookups=hits + misses,
        phases_ms=ms,
    )
    return with_alerts(metrics, thresholds)


def _elapsed_ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start) * 1e3)


# ----------------------------------------------------------------------------- process


def process_start_time(proc: Path | None = None) -> float | None:
    """Wall-clock time (``time.time()`` scale) when this process started, or None.

    Linux: ``starttime`` of ``/proc/self/stat`` (clock ticks after boot) against
    ``CLOCK_BOOTTIME`` (or ``btime`` of ``/proc/stat``); resolution one clock tick.
    """
    root = proc or PROC
    try:
        stat = (root / "self" / "stat").read_text()
        # fields after "(comm)" start at field 3; comm may contain spaces and parentheses
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    since_boot = ticks / hz
    if proc is None and hasattr(time, "CLOCK_BOOTTIME"):
        try:
            return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot)
        except OSError:
            pass
    try:
        for line in (root / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + since_boot
    except (OSError, ValueError):
        pass
    return None


def rss_bytes(proc: Path | None = None) -> int | None:
    """Resident memory of this process now (Linux), else its peak, else None."""
    root = proc or PROC
    try:
        resident = int((root / "self" / "statm").read_text().split()[1])
        return resident * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB else


def memory_limit(environ: Mapping[str, str] | None = None, *, cgroup_root: Path | None = None,
                 proc: Path | None = None) -> tuple[int | None, str | None]:
    """``(bytes, source)`` of the memory this process may use; ``(None, None)`` if unknown.

    Sources in order: ``lambda`` (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``, MB), ``cgroup2``
    (``memory.max``), ``cgroup1`` (``memory/memory.limit_in_bytes``), ``physical``
    (``MemTotal`` of ``/proc/meminfo``, else ``sysconf``). A cgroup limit of ``max``, at
    or above 2**60 or above the physical memory is no limit. Unreadable values are skipped.
    """
    env = os.environ if environ is None else environ
    raw = env.get(LAMBDA_MEMORY_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw) * MB, "lambda"
    physical = _physical_memory(proc or PROC)
    root = cgroup_root or CGROUP_ROOT
    for source, path in (("cgroup2", root / "memory.max"),
                         ("cgroup1", root / "memory" / "memory.limit_in_bytes"),
                         ("cgroup1", root / "memory.limit_in_bytes")):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if not text.isdigit():  # "max": no limit at this level
            continue
        limit = int(text)
        if 0 < limit < UNLIMITED_BYTES and (physical is None or limit <= physical):
            return limit, source
    if physical is not None:
        return physical, "physical"
    return None, None


def _physical_memory(proc: Path) -> int | None:
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


# ----------------------------------------------------------------------------- EMF

# (field, metric name, unit); index loads follow as "index_load_ms.<index>"
_EMF_METRICS = (
    ("cold_start_ms", "cold_start_ms", "Milliseconds"),
    ("runtime_load_ms", "runtime_load_ms", "Milliseconds"),
    ("import_ms", "import_ms", "Milliseconds"),
    ("file_open_ms", "file_open_ms", "Milliseconds"),
    ("first_query_ms", "first_query_ms", "Milliseconds"),
    ("rss_mb", "rss_mb", "Megabytes"),
    ("memory_limit_mb", "memory_limit_mb", "Megabytes"),
    ("memory_used_pct", "memory_used_pct", "Percent"),
)


def emf_document(metrics: ColdStartMetrics, *, namespace: str = "Memvid",
                 dimensions: Mapping[str, str] | None = None,
                 timestamp_ms: int | None = None) -> dict[str, Any]:
    """The Embedded Metric Format document :func:`emit_metrics` prints.

    Figures that are None are left out; the cache hit rate is a ``Percent``
    (``cache_hit_pct``); alerts, the cache lookup count and the memory-limit source are
    plain members (searchable in CloudWatch Logs Insights, not metrics).

    Raises:
        InvalidInputError: a namespace or dimension CloudWatch would reject.
    """
    if not isinstance(namespace, str) or not 0 < len(namespace) <= EMF_MAX_NAMESPACE \
            or not _NAMESPACE.fullmatch(namespace):
        raise InvalidInputError(f"namespace must be 1-{EMF_MAX_NAMESPACE} characters of "
                                f"A-Z a-z 0-9 . _ # : / -, got {namespace!r}")
    dims = dict(dimensions or {})
    if len(dims) > EMF_MAX_DIMENSIONS:
        raise InvalidInputError(f"at most {EMF_MAX_DIMENSIONS} dimensions, got {len(dims)}")
    values: dict[str, float] = {}
    definitions: list[dict[str, str]] = []

    def add(name: str, value: float | None, unit: str) -> None:
        if value is not None and math.isfinite(value):
            values[name] = round(float(value), 3)
            definitions.append({"Name": name, "Unit": unit})

    for attr, name, unit in _EMF_METRICS:
        add(name, getattr(metrics, attr), unit)
    for index, ms in sorted(metrics.index_load_ms.items()):
        add(f"index_load_ms.{index}", ms, "Milliseconds")
    rate = metrics.cache_hit_rate
    add("cache_hit_pct", None if rate is None else 100.0 * rate, "Percent")
    definitions = definitions[:EMF_MAX_METRICS]
    for key, value in dims.items():
        if not isinstance(key, str) or not key or key.startswith(":") or key == "_aws":
            raise InvalidInputError(f"dimension names must be non-empty str not starting with "
                                    f"':', got {key!r}")
        if not isinstance(value, str) or not value.strip() \
                or len(value) > EMF_MAX_DIMENSION_VALUE or not value.isascii():
            raise InvalidInputError(f"dimension {key!r} needs a non-empty ASCII str value of at "
                                    f"most {EMF_MAX_DIMENSION_VALUE} characters, got {value!r}")
        if key in values:
            raise InvalidInputError(f"dimension {key!r} has the name of a metric; rename it")
    stamp = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    document: dict[str, Any] = {
        "_aws": {"Timestamp": stamp,
                 "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [list(dims)],
                                        "Metrics": definitions}]},
        **dims,
        **values,
        "cache_lookups": metrics.cache_lookups,
        "memory_limit_source": metrics.memory_limit_source,
        "alerts": [asdict(a) for a in metrics.alerts],
    }
    return document


def emit_metrics(metrics: ColdStartMetrics, *, namespace: str = "Memvid",
                 dimensions: Mapping[str, str] | None = None,
                 stream: TextIO | None = None) -> dict[str, Any]:
    """Write ``metrics`` as one JSON line in CloudWatch Embedded Metric Format.

    Args:
        metrics: from ``mem.metrics()`` or ``MetricsRecorder.snapshot``.
        namespace: the CloudWatch namespace.
        dimensions: dimension name -> value (e.g. ``{"function": "agent"}``); one
            dimension set with all of them (none: the metrics have no dimension).
        stream: where to write (default ``sys.stdout``, which Lambda sends to CloudWatch).

    Returns:
        The document written.
    """
    document = emf_document(metrics, namespace=namespace, dimensions=dimensions)
    out = sys.stdout if stream is None else stream
    out.write(json.dumps(document, separators=(",", ":")) + "\n")
    out.flush()
    return document
