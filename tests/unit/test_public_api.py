"""The public surface is pinned: changing it is a deliberate act."""

from __future__ import annotations

import pickle

import pytest

import memvid_store
from memvid_store import errors

EXPECTED_ALL = [
    "AccessPatternAnalyzer", "AlreadyExistsError", "CacheConfig", "Change", "ChecksumError",
    "ClosedError", "ColdStartMetrics", "ConfigError", "CorruptFileError",
    "DimensionMismatchError", "EmbedderMismatchError", "FilterError", "FormatError", "Frame",
    "FrameNotFoundError", "HistoryUnavailableError", "IncrementalFrameLoader", "IndexConfig",
    "InvalidInputError", "InvalidTypeError", "LoadPriority", "LockError", "Memory",
    "MemoryLockedError", "MemoryNotFoundError", "MemoryView", "MemvidError",
    "MissingDependencyError", "MmapConfig", "NotAMemoryFileError", "NotFoundError",
    "ReadOnlyError", "Stats", "StoreConfig", "VerifyReport", "VersionMismatchError",
    "WalError", "WarmupConfig", "__version__", "emit_metrics",
]


def test_all_is_pinned_and_sorted():
    assert memvid_store.__all__ == EXPECTED_ALL
    assert sorted(memvid_store.__all__) == memvid_store.__all__
    for name in memvid_store.__all__:
        assert getattr(memvid_store, name) is not None
    assert set(dir(memvid_store)) >= set(EXPECTED_ALL)


def test_bad_input_errors_are_memvid_errors(tmp_path):
    """Bad arguments raise MemvidError subclasses that still are ValueError / TypeError."""
    with memvid_store.Memory.create(tmp_path / "m.mv2") as mem:
        with pytest.raises(errors.InvalidTypeError) as exc:
            mem.put(42)  # type: ignore[arg-type]
        assert isinstance(exc.value, TypeError) and isinstance(exc.value, memvid_store.MemvidError)
        with pytest.raises(errors.InvalidInputError) as exc2:
            mem.find("x", k=0)
        assert isinstance(exc2.value, ValueError)
        assert len(mem) == 0


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        memvid_store.DoesNotExist  # noqa: B018


ERROR_SAMPLES = [
    errors.MemvidError("boom"),
    errors.CorruptFileError("bad bytes", "toc", 4096),
    errors.ChecksumError("crc", "segment:run", 99),
    errors.MemoryLockedError("locked", 1234),
    errors.FrameNotFoundError("no frame", "abc"),
    errors.DimensionMismatchError("dims", 384, 3),
    errors.MemoryNotFoundError("missing"),
    errors.AlreadyExistsError("exists"),
    errors.VersionMismatchError("newer"),
    errors.HistoryUnavailableError("gone"),
    errors.FilterError("unknown operator $foo"),
    errors.MissingDependencyError("pip install x"),
]


@pytest.mark.parametrize("exc", ERROR_SAMPLES, ids=lambda e: type(e).__name__)
def test_errors_pickle_and_keep_attributes(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.__dict__ == exc.__dict__
    assert isinstance(back, errors.MemvidError)


def test_error_messages_carry_hints():
    exc = errors.MemoryLockedError("file is locked by process 7", 7)
    assert "readonly=True" in str(exc) and exc.holder_pid == 7
    assert "verify" in str(errors.CorruptFileError("x", "toc", 1))
    assert str(errors.FrameNotFoundError("no frame with id 'a'", "a")).startswith("no frame")


def test_error_hierarchy():
    assert issubclass(errors.FrameNotFoundError, KeyError)
    assert issubclass(errors.MemoryNotFoundError, FileNotFoundError)
    assert issubclass(errors.AlreadyExistsError, FileExistsError)
    assert issubclass(errors.DimensionMismatchError, ValueError)
    assert issubclass(errors.ChecksumError, errors.CorruptFileError)
    assert issubclass(errors.MissingDependencyError, ImportError)
