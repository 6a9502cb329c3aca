"""Configuration: frozen dataclasses; environment variables only through ``from_env()``."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from .engine.format import DEFAULT_WAL_SIZE, MAX_WAL_SIZE, MIN_WAL_SIZE

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How a file is opened and written.

    Attributes:
        wal_size: bytes of the embedded WAL ring, fixed at create time (1..64 MiB).
        sync: fsync every WAL append and commit. With ``False`` writes survive a crash of
            the process (kill -9) but not of the machine (power loss, kernel panic):
            much faster bulk ingest, at that explicit risk.
        lock_timeout: seconds a writer waits for another writer to close the file.
        mmap: map the file (``MEMVID_MMAP_ENABLED``); with ``False`` reads use ``pread``.
    """

    wal_size: int = DEFAULT_WAL_SIZE
    sync: bool = True
    lock_timeout: float = 5.0
    mmap: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.wal_size, int) or not MIN_WAL_SIZE <= self.wal_size <= MAX_WAL_SIZE:
            raise ValueError(
                f"wal_size must be between {MIN_WAL_SIZE} and {MAX_WAL_SIZE} bytes, "
                f"got {self.wal_size!r}")
        if self.lock_timeout < 0:
            raise ValueError(f"lock_timeout must be >= 0, got {self.lock_timeout!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> StoreConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        raw = env.get("MEMVID_MMAP_ENABLED")
        if raw is not None:
            if raw.strip().lower() not in _TRUE | _FALSE:
                raise ValueError(f"MEMVID_MMAP_ENABLED must be true or false, got {raw!r}")
            values["mmap"] = raw.strip().lower() in _TRUE
        values.update(overrides)
        return cls(**values)

    def with_options(self, options: dict[str, Any]) -> StoreConfig:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; "
                            f"valid options: {', '.join(sorted(known))}")
        return replace(self, **options) if options else self
