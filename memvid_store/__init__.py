"""memvid-py: embedded single-file long-term memory for AI agents.

``import memvid_store`` is cheap: names are resolved on first use, and heavy modules
(numpy, zstandard) load only when an operation needs them.
"""

from __future__ import annotations

import time as _time

IMPORT_STARTED = _time.time()  # ColdStartMetrics: runtime load vs import (before the rest)

from typing import TYPE_CHECKING  # noqa: E402

from .errors import (  # noqa: E402 (after IMPORT_STARTED, which times them)
    AlreadyExistsError,
    ChecksumError,
    ClosedError,
    ConfigError,
    CorruptFileError,
    DamagedCommitWarning,
    DamagedIndexError,
    DimensionMismatchError,
    EmbedderMismatchError,
    FilterError,
    FormatError,
    FrameNotFoundError,
    HistoryUnavailableError,
    InvalidInputError,
    InvalidTypeError,
    LockError,
    MemoryLockedError,
    MemoryNotFoundError,
    MemvidError,
    MissingDependencyError,
    NotAMemoryFileError,
    NotFoundError,
    NotSealedError,
    ObjectChangedError,
    PublishConflictError,
    ReadOnlyError,
    RemoteAccessDeniedError,
    RemoteError,
    RemoteNotFoundError,
    RemoteReadOnlyError,
    RemoteServerError,
    RemoteThrottledError,
    RemoteTimeoutError,
    RemoteTransientError,
    RemoteTruncatedError,
    StorageError,
    VersionMismatchError,
)
from .lazy import lazy_exports  # noqa: E402

if TYPE_CHECKING:
    from .coldstart.analyzer import AccessPatternAnalyzer
    from .coldstart.loader import IncrementalFrameLoader, LoadPriority
    from .coldstart.metrics import ColdStartMetrics, emit_metrics
    from .collection import Collection
    from .config import CacheConfig, IndexConfig, StoreConfig, WarmupConfig
    from .engine.fileio import MmapConfig
    from .memory import Memory, MemoryView
    from .remote.config import RemoteConfig
    from .reports import Change, Stats, VerifyReport
    from .sharded.memory import ShardedMemory, ShardedView
    from .types import Frame, Hit

__version__ = "0.1.0"

_dynamic_imports = {
    "Memory": "memory",
    "MemoryView": "memory",
    "ShardedMemory": "sharded.memory",
    "ShardedView": "sharded.memory",
    "StoreConfig": "config",
    "AccessPatternAnalyzer": "coldstart.analyzer",
    "CacheConfig": "config",
    "Change": "reports",
    "Collection": "collection",
    "ColdStartMetrics": "coldstart.metrics",
    "IncrementalFrameLoader": "coldstart.loader",
    "IndexConfig": "config",
    "LoadPriority": "coldstart.loader",
    "MmapConfig": "engine.fileio",
    "RemoteConfig": "remote.config",
    "WarmupConfig": "config",
    "emit_metrics": "coldstart.metrics",
    "Frame": "types",
    "Hit": "types",
    "Stats": "reports",
    "VerifyReport": "reports",
}

__all__ = [
    "AccessPatternAnalyzer",
    "AlreadyExistsError",
    "CacheConfig",
    "Change",
    "ChecksumError",
    "ClosedError",
    "ColdStartMetrics",
    "Collection",
    "ConfigError",
    "CorruptFileError",
    "DamagedCommitWarning",
    "DamagedIndexError",
    "DimensionMismatchError",
    "EmbedderMismatchError",
    "FilterError",
    "FormatError",
    "Frame",
    "FrameNotFoundError",
    "HistoryUnavailableError",
    "Hit",
    "IncrementalFrameLoader",
    "IndexConfig",
    "InvalidInputError",
    "InvalidTypeError",
    "LoadPriority",
    "LockError",
    "Memory",
    "MemoryLockedError",
    "MemoryNotFoundError",
    "MemoryView",
    "MemvidError",
    "MissingDependencyError",
    "MmapConfig",
    "NotAMemoryFileError",
    "NotFoundError",
    "NotSealedError",
    "ObjectChangedError",
    "PublishConflictError",
    "ReadOnlyError",
    "RemoteAccessDeniedError",
    "RemoteConfig",
    "RemoteError",
    "RemoteNotFoundError",
    "RemoteReadOnlyError",
    "RemoteServerError",
    "RemoteThrottledError",
    "RemoteTimeoutError",
    "RemoteTransientError",
    "RemoteTruncatedError",
    "ShardedMemory",
    "ShardedView",
    "Stats",
    "StorageError",
    "StoreConfig",
    "VerifyReport",
    "VersionMismatchError",
    "WarmupConfig",
    "__version__",
    "emit_metrics",
]


IMPORT_FINISHED = _time.time()


__getattr__, __dir__ = lazy_exports(__name__, globals(), _dynamic_imports)
