"""The public surface is pinned: changing it is a deliberate act."""

from __future__ import annotations

import pickle

import pytest

import memvid_store
from memvid_store import errors

EXPECTED_ALL = [
    "AccessPatternAnalyzer", "AlreadyExistsError", "CacheConfig", "Change", "ChecksumError",
    "ClosedError", "ColdStartMetrics", "Collection", "ConfigError", "CorruptFileError",
    "DamagedCommitWarning",
    "DamagedIndexError",
    "DimensionMismatchError", "EmbedderMismatchError", "FilterError", "FormatError", "Frame",
    "FrameNotFoundError", "HistoryUnavailableError", "Hit", "IncrementalFrameLoader",
    "IndexConfig",
    "InvalidInputError", "InvalidTypeError", "LoadPriority", "LockError", "Memory",
    "MemoryLockedError", "MemoryNotFoundError", "MemoryView", "MemvidError",
    "MissingDependencyError", "MmapConfig", "NotAMemoryFileError", "NotFoundError",
    "NotSealedError", "ObjectChangedError", "PublishConflictError", "ReadOnlyError",
    "RemoteAccessDeniedError", "RemoteConfig",
    "RemoteError", "RemoteNotFoundError", "RemoteReadOnlyError", "RemoteServerError",
    "RemoteThrottledError", "RemoteTimeoutError", "RemoteTransientError", "RemoteTruncatedError",
    "ShardedMemory", "ShardedView", "Stats", "StorageError", "StoreConfig", "VerifyReport",
    "VersionMismatchError",
    "WarmupConfig", "__version__", "emit_metrics",
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


def _keyword_only(func) -> set[str]:
    import inspect

    return {name for name, p in inspect.signature(func).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _positional(func) -> list[str]:
    import inspect

    return [name for name, p in inspect.signature(func).parameters.items()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


def test_options_are_keyword_only():
    """Options after the path, and everything after ``text`` in ``find``, are keywords."""
    Memory = memvid_store.Memory
    assert _positional(Memory.create) == ["path"]
    assert {"dim", "config", "index", "embedder", "created_at"} <= _keyword_only(Memory.create)
    assert _positional(Memory.open) == ["path"]
    assert {"readonly", "config", "embedder"} <= _keyword_only(Memory.open)
    assert _positional(Memory.find) == ["self", "text"]
    assert _keyword_only(Memory.find) == {"vector", "k", "mode", "filter", "as_of",
                                          "time_range", "syntax", "weights", "group_by",
                                          "tie_break"}


def test_keyword_only_options_refuse_positions(tmp_path):
    with pytest.raises(TypeError):
        memvid_store.Memory.create(tmp_path / "m.mv2", 3)  # type: ignore[misc]
    with memvid_store.Memory.create(tmp_path / "m.mv2", dim=2) as mem:
        mem.put("a", embedding=[1.0, 0.0])
        with pytest.raises(TypeError):
            mem.find("a", [1.0, 0.0])  # type: ignore[misc]
        assert [h.text for h in mem.find("a", vector=[1.0, 0.0])] == ["a"]
        assert isinstance(mem.find("a")[0], memvid_store.Hit)
    with pytest.raises(TypeError):
        memvid_store.Memory.open(tmp_path / "m.mv2", True)  # type: ignore[misc]


def test_views_refuse_every_write(tmp_path):
    with memvid_store.Memory.create(tmp_path / "m.mv2") as mem:
        fid = mem.put("a")
        view = mem.as_of(mem.generation)
        for write, args in ((view.put, ("b",)), (view.put_many, ([{"text": "b"}],)),
                            (view.update, (fid,)), (view.delete, (fid,)),
                            (view.delete_many, ([fid],)), (view.seal, ()), (view.compact, ())):
            with pytest.raises(errors.ReadOnlyError):
                write(*args)
        assert mem.get(fid).text == "a"
