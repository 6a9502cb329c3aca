"""Typed errors. Every failure the engine reports is a :class:`MemvidError`.

Each class carries a ``HINT`` that tells the user what to do; it is appended to the
message. Errors keep their constructor arguments in ``args`` so that they survive
pickling (they cross process boundaries in pools and test harnesses).

This module imports nothing from the package: import it first, anywhere.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

__all__ = [
    "AlreadyExistsError",
    "ChecksumError",
    "ClosedError",
    "ConfigError",
    "CorruptFileError",
    "DamagedCommitWarning",
    "DamagedIndexError",
    "DimensionMismatchError",
    "EmbedderMismatchError",
    "FilterError",
    "FormatError",
    "FrameNotFoundError",
    "HistoryUnavailableError",
    "InvalidInputError",
    "InvalidTypeError",
    "LockError",
    "MemoryLockedError",
    "MemoryNotFoundError",
    "MemvidError",
    "MissingDependencyError",
    "NotAMemoryFileError",
    "NotFoundError",
    "NotSealedError",
    "ObjectChangedError",
    "PublishConflictError",
    "ReadOnlyError",
    "RemoteAccessDeniedError",
    "RemoteError",
    "RemoteNotFoundError",
    "RemoteReadOnlyError",
    "RemoteServerError",
    "RemoteThrottledError",
    "RemoteTimeoutError",
    "RemoteTransientError",
    "RemoteTruncatedError",
    "StorageError",
    "VersionMismatchError",
    "storage_errors",
]


class MemvidError(Exception):
    """Root of every error raised by memvid-py."""

    code = "memvid_error"
    HINT = ""

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(message, *args)
        self.message = message

    def __str__(self) -> str:
        text = self.message
        if self.HINT and self.HINT not in text:
            text = f"{text} ({self.HINT})" if text else self.HINT
        return text

    def __reduce__(self):  # keep subclass attributes across pickling
        return (self.__class__, self.args, self.__dict__)


class FormatError(MemvidError):
    """The file is not a valid .mv2 file of a version this library reads."""

    code = "format_error"


class NotAMemoryFileError(FormatError):
    """The file does not start with the .mv2 magic bytes."""

    code = "not_a_memory_file"
    HINT = "check the path: this is not a .mv2 memory file"


class VersionMismatchError(FormatError):
    """The file was written by a newer, incompatible format version."""

    code = "version_mismatch"
    HINT = "upgrade memvid-py (pip install -U memvid-py) to open it"


class CorruptFileError(FormatError):
    """Bytes on disk do not match their checksum or structure.

    ``region`` names the damaged part (``header``, ``wal``, ``toc``, ``segment:<kind>``,
    ``frame``) and ``offset`` its byte offset in the file.
    """

    code = "corrupt_file"
    HINT = "run `mv2 verify FILE` for a report; restore from a copy or compact what is readable"

    def __init__(self, message: str, region: str = "", offset: int = -1) -> None:
        super().__init__(message, region, offset)
        self.region = region
        self.offset = offset


class ChecksumError(CorruptFileError):
    """A checksum did not match. ``newer_version``: the damaged bytes claim a newer format."""

    code = "checksum_error"

    def __init__(self, message: str, region: str = "", offset: int = -1,
                 newer_version: bool = False) -> None:
        super().__init__(message, region, offset)
        self.args = (message, region, offset, newer_version)
        self.newer_version = newer_version


class DamagedIndexError(CorruptFileError):
    """A derived index (the full-text index, the vector graph) fails its checks. The frames
    are intact: reads by id, the timeline and the other search modes keep working."""

    code = "damaged_index"
    HINT = ("run `mv2 doctor FILE --repair NEW.mv2` to copy the frames into a new file with "
            "fresh indexes; the other search modes keep working meanwhile")


class DamagedCommitWarning(RuntimeWarning):
    """The newest commit's table of contents fails its checks and the WAL no longer holds
    all its writes: a reader sees the file as of the commit before, without those writes.
    ``mv2 doctor FILE --repair NEW.mv2`` copies what can be read into a new file."""


class LockError(MemvidError):
    """The file lock could not be taken."""

    code = "lock_error"


class MemoryLockedError(LockError):
    """Another writer holds the file."""

    code = "memory_locked"
    HINT = "close the other writer, open with readonly=True, or raise lock_timeout="

    def __init__(self, message: str, holder_pid: int | None = None) -> None:
        super().__init__(message, holder_pid)
        self.holder_pid = holder_pid


class ReadOnlyError(MemvidError):
    """A write was attempted through a read-only handle or view."""

    code = "read_only"
    HINT = "open the file with Memory.open(path) (writable) to change it"


class StorageError(MemvidError, OSError):
    """The operating system refused a read or write: disk full (ENOSPC), file-size limit
    (EFBIG), quota, I/O error (EIO), read-only file system or permissions."""

    code = "storage_error"
    HINT = ("the file stays at its last commit; free space, raise the file-size limit or fix "
            "permissions, then retry")


STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT, errno.EROFS,
                            errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR})


@contextlib.contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Turn the OS refusing a read or write during ``what`` into a :class:`StorageError`."""
    try:
        yield
    except MemvidError:
        raise
    except OSError as exc:
        if exc.errno not in STORAGE_ERRNOS:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        raise StorageError(f"{what} failed: {exc.strerror or exc}{where}") from exc


class ClosedError(MemvidError):
    """The memory was used after close()."""

    code = "closed"
    HINT = "open the file again with Memory.open(path)"


class NotFoundError(MemvidError, KeyError):
    """Something looked up by key does not exist."""

    code = "not_found"

    def __str__(self) -> str:  # KeyError would repr() the message
        return MemvidError.__str__(self)


class FrameNotFoundError(NotFoundError):
    """No current frame has this id (it never existed or was deleted)."""

    code = "frame_not_found"
    HINT = "use history(id) or as_of(t) to read deleted or earlier versions"

    def __init__(self, message: str, frame_id: str = "") -> None:
        super().__init__(message, frame_id)
        self.frame_id = frame_id


class MemoryNotFoundError(NotFoundError, FileNotFoundError):
    """The .mv2 file does not exist."""

    code = "memory_not_found"
    HINT = "create it first with Memory.create(path) or `mv2 create PATH`"


class AlreadyExistsError(MemvidError, FileExistsError):
    """Memory.create() was asked to create a file that already exists."""

    code = "already_exists"
    HINT = "open it with Memory.open(path), or delete it first"


class DimensionMismatchError(MemvidError, ValueError):
    """An embedding does not have the file's dimension."""

    code = "dimension_mismatch"
    HINT = "embed with the model this file was created with"

    def __init__(self, message: str, expected: int = 0, got: int = 0) -> None:
        super().__init__(message, expected, got)
        self.expected = expected
        self.got = got


class InvalidInputError(MemvidError, ValueError):
    """An argument has the right type but a value the operation cannot accept."""

    code = "invalid_input"


class InvalidTypeError(InvalidInputError, TypeError):
    """An argument has a type the operation does not accept."""

    code = "invalid_type"


class ConfigError(InvalidInputError):
    """A configuration value (argument or ``MEMVID_*`` environment variable) is invalid."""

    code = "config_error"


class EmbedderMismatchError(MemvidError, ValueError):
    """The embedder given differs from the one that made the file's vectors."""

    code = "embedder_mismatch"
    HINT = ("open with the embedder named in the file (Memory.open(path).embedder_info), or pass "
            "allow_embedder_mismatch=True if the vectors are compatible")


class NotSealedError(InvalidInputError):
    """A file to publish still has WAL records not sealed into segments."""

    code = "not_sealed"
    HINT = "call memory.seal() and close the writer first, or publish with seal=True"


class FilterError(InvalidInputError):
    """A metadata filter is malformed (unknown operator, wrong operand type, ...)."""

    code = "filter_error"
    HINT = "see 'Filters' in the README"


class HistoryUnavailableError(MemvidError):
    """The requested point in time is older than the retained history."""

    code = "history_unavailable"
    HINT = "history before the last compact(retain_after=...) was dropped"


class MissingDependencyError(MemvidError, ImportError):
    """An optional dependency is not installed."""

    code = "missing_dependency"


class RemoteError(MemvidError):
    """A memory in object storage (``s3://``, ``gs://``, ``az://``) could not be read.

    ``url`` names the object; ``status`` is the HTTP status (0 when there was none).
    """

    code = "remote_error"

    def __init__(self, message: str, url: str = "", status: int = 0) -> None:
        super().__init__(message, url, status)
        self.url = url
        self.status = status


class RemoteReadOnlyError(RemoteError, ReadOnlyError):
    """A memory in object storage was opened for writing."""

    code = "remote_read_only"
    HINT = ("open it with readonly=True; to change it, write a local file and publish "
            "(upload) it to the object's key")


class RemoteNotFoundError(RemoteError, MemoryNotFoundError):
    """No object at the URL (HTTP 404), or no such bucket."""

    code = "remote_not_found"
    HINT = "check the bucket, the key and AWS_ENDPOINT_URL"


class RemoteAccessDeniedError(RemoteError):
    """The store refused the credentials (HTTP 401/403)."""

    code = "remote_access_denied"
    HINT = "check the AWS credentials and that they allow s3:GetObject on the key"


class ObjectChangedError(RemoteError):
    """The object was replaced while this snapshot was being read (its ETag changed)."""

    code = "object_changed"
    HINT = "call refresh() to move to the new version, then read again"


class RemoteTransientError(RemoteError):
    """A failure that may pass: raised once the bounded retries are spent."""

    code = "remote_transient"
    HINT = "the read was retried with backoff; try again later or raise the retry budget"


class RemoteThrottledError(RemoteTransientError):
    """The store asked to slow down (HTTP 503 SlowDown, 429)."""

    code = "remote_throttled"


class RemoteServerError(RemoteTransientError):
    """The store failed (HTTP 5xx)."""

    code = "remote_server_error"


class RemoteTimeoutError(RemoteTransientError):
    """The request timed out or the connection failed."""

    code = "remote_timeout"


class RemoteTruncatedError(RemoteTransientError):
    """A response body ended before the bytes asked for."""

    code = "remote_truncated"


class PublishConflictError(RemoteError):
    """A conditional upload lost: the object already exists (create) or no longer has the
    expected ETag (replace). ``current_etag`` is the object's ETag now, when known (None
    when there is no object or it could not be read)."""

    code = "publish_conflict"
    HINT = ("another publisher changed the object: open it, merge or rebuild, and publish "
            "again with the current ETag")

    def __init__(self, message: str, url: str = "", status: int = 412,
                 current_etag: str | None = None) -> None:
        super().__init__(message, url, status)
        self.args = (message, url, status, current_etag)
        self.current_etag = current_etag
