"""The manifest of a sharded memory: its shards and routing, and the pins of their versions.

Two files, side by side:

* ``<name>`` (JSON, written once at create): the format, the shard paths (relative to the
  manifest's directory, absolute, or object URLs), the routing and the dimension, with a
  CRC-32 of the rest. Written to a temporary name, fsynced and renamed into place.
* ``<name>.pins``: one fixed-size record per sharded write, appended and fsynced after
  every shard it touched is durable. A record is (generation, record time µs, each
  shard's generation) with its CRC-32. Generation ``g`` is record ``g - 1``; the newest
  record is the state readers see. A torn last record (a crash while appending) is
  ignored and cut off by the next writer; damage anywhere else is a CorruptFileError.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from ..engine.store import fsync_dir
from ..errors import CorruptFileError, MemoryNotFoundError, VersionMismatchError
from ..remote.urls import is_remote

FORMAT = "memvid-sharded"
VERSION = 1
PINS_MAGIC = b"MV2PINS\x00"
_PINS_HEAD = struct.Struct("<8sII")  # magic, shard count, CRC-32 of the first 12 bytes
_RECORD_HEAD = struct.Struct("<QQ")  # generation, record time µs


@dataclass(frozen=True)
class Manifest:
    """What a sharded memory is made of (fixed at create)."""

    path: str  # the manifest file
    shards: tuple[str, ...]  # as written in the manifest
    route: str | None  # the metadata field frames are routed by; None: by frame id
    dim: int | None

    def shard_path(self, i: int) -> str:
        """Where shard ``i`` is: a URL or absolute path as is, else next to the manifest
        (beside its object, for a manifest in object storage)."""
        p = self.shards[i]
        if is_remote(p) or os.path.isabs(p):
            return p
        if is_remote(self.path):
            return f"{self.path.rsplit('/', 1)[0]}/{p}"
        return os.path.join(os.path.dirname(os.path.abspath(self.path)), p)

    @property
    def pins_path(self) -> str:
        return self.path + ".pins"

    def to_json(self) -> bytes:
        body = {"format": FORMAT, "version": VERSION, "shards": list(self.shards),
                "route": self.route, "dim": self.dim}
        body["crc32"] = zlib.crc32(_canonical(body))
        return json.dumps(body, indent=1).encode()


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in body.items() if k != "crc32"}, sort_keys=True,
                      separators=(",", ":")).encode()


def write_manifest(manifest: Manifest) -> None:
    """Write ``manifest`` durably under its path (which must not exist yet)."""
    tmp = f"{manifest.path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(manifest.to_json())
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, manifest.path)  # fails when the manifest exists: never replaced
    finally:
        os.unlink(tmp)
    fsync_dir(manifest.path)


class LocalBlob:
    """Reads of a local file (what a manifest or a pin log is read through)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, start: int, end: int) -> bytes:
        with self._open() as f:
            f.seek(start)
            return f.read(end - start)

    def tail(self, size: int) -> tuple[bytes, int]:
        """The last ``size`` bytes and the file's size."""
        with self._open() as f:
            total = os.fstat(f.fileno()).st_size
            f.seek(max(0, total - size))
            return f.read(), total

    def _open(self) -> Any:
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            raise MemoryNotFoundError(f"{self.path} does not exist") from None


class ObjectBlob:
    """Reads of an object in storage, every one of the same version (its ETag)."""

    def __init__(self, url: str, remote: Any = None) -> None:
        from ..remote.config import RemoteConfig
        from ..remote.reader import object_client

        self.path = url
        self.client = object_client(url, RemoteConfig.of(remote))
        self.etag: str | None = None
        self.pinned: dict[str, str] = {}  # the version id, when the store names one

    def read(self, start: int, end: int) -> bytes:
        got = self.client.get(start, end, if_match=self.etag, **self.pinned)
        assert got is not None  # only an if_none_match request answers None
        self._seen(got)
        return bytes(got.data)

    def tail(self, size: int) -> tuple[bytes, int]:
        tail = getattr(self.client, "tail", None)
        if tail is not None:
            got = tail(size)
        else:  # no suffix ranges (Azure): the first bytes tell the size, then the last
            got = self.client.get(0, size, if_match=self.etag, **self.pinned)
            if got is not None and got.size > size:
                self._seen(got)
                got = self.client.get(got.size - size, got.size, if_match=self.etag,
                                      **self.pinned)
        assert got is not None
        self._seen(got)
        return bytes(got.data), got.size

    def _seen(self, got: Any) -> None:
        self.etag = got.etag
        if got.version:
            self.pinned = {"version": got.version}


def blob(path: str, remote: Any = None) -> LocalBlob | ObjectBlob:
    """Reads of ``path``: a local file, or an object (``remote``: a RemoteConfig)."""
    return ObjectBlob(path, remote) if is_remote(path) else LocalBlob(path)


def read_manifest(path: str, remote: Any = None) -> Manifest:
    """Parse and check the manifest at ``path`` (a file, or an object URL read with the
    ``remote`` RemoteConfig).

    Raises:
        MemoryNotFoundError: nothing there (RemoteNotFoundError for an object).
        CorruptFileError: not a manifest, or it fails its checksum.
        VersionMismatchError: a newer manifest format.
    """
    raw = blob(path, remote).read(0, 1 << 20)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CorruptFileError(f"{path} is not a sharded memory manifest (not JSON)",
                               "manifest", 0) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise CorruptFileError(f"{path} is not a sharded memory manifest", "manifest", 0)
    if body.get("crc32") != zlib.crc32(_canonical(body)):
        raise CorruptFileError(f"{path} fails its checksum: restore it from a copy",
                               "manifest", 0)
    version = body.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise VersionMismatchError(f"{path} has manifest version {version!r}; this "
                                   f"memvid-py reads version {VERSION}: upgrade it")
    shards, route, dim = body.get("shards"), body.get("route"), body.get("dim")
    if (not isinstance(shards, list) or not shards
            or not all(isinstance(s, str) and s for s in shards)
            or not (route is None or isinstance(route, str))
            or not (dim is None or (isinstance(dim, int) and dim > 0))):
        raise CorruptFileError(f"{path} has malformed fields", "manifest", 0)
    return Manifest(path, tuple(shards), route, dim)


@dataclass(frozen=True)
class Pin:
    """The shards' versions of one sharded generation."""

    generation: int
    time_us: int
    shards: tuple[int, ...]


class PinLog:
    """The ``.pins`` log of a manifest with ``count`` shards (appended locally; read from a
    file or an object: ``remote`` is the RemoteConfig of a URL)."""

    def __init__(self, path: str, count: int, remote: Any = None) -> None:
        self.path = path
        self.count = count
        self.remote = remote
        self.record = struct.Struct(f"<QQ{count}QI")

    def create(self, first: Pin) -> None:
        head = PINS_MAGIC + struct.pack("<I", self.count)
        with open(self.path, "xb") as f:
            f.write(_PINS_HEAD.pack(PINS_MAGIC, self.count, zlib.crc32(head)))
            f.write(self._pack(first))
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(self.path)

    def _pack(self, pin: Pin) -> bytes:
        body = self.record.pack(pin.generation, pin.time_us, *pin.shards, 0)[:-4]
        return body + struct.pack("<I", zlib.crc32(body))

    def latest(self) -> tuple[Pin, int]:
        """The newest intact pin and the byte length of the log up to it. Reads the end
        and the header only (two requests for an object): opening does not grow with the
        history.

        Raises:
            MemoryNotFoundError: the pins file is missing.
            CorruptFileError: a bad header, or neither of the last two records is intact.
        """
        source = blob(self.path, self.remote)
        size = self.record.size
        tail, total = source.tail(3 * size)  # the last two whole records, and a torn one
        self._check_head(source.read(0, _PINS_HEAD.size))
        count = (total - _PINS_HEAD.size) // size
        first = total - len(tail)
        for g in (count, count - 1):  # the last record may be torn by a crash
            off = _PINS_HEAD.size + (g - 1) * size
            if g >= 1 and off >= first:
                pin = self._parse(tail[off - first: off - first + size], g)
                if pin is not None:
                    return pin, off + size
        raise CorruptFileError(f"{self.path} holds no intact pin at its end", "pins", total)

    def pin(self, generation: int) -> Pin:
        """The pin of ``generation`` (one the log holds: ``latest`` named it or a later one).

        Raises:
            CorruptFileError: that record fails its checksum.
        """
        source = blob(self.path, self.remote)
        self._check_head(source.read(0, _PINS_HEAD.size))
        off = _PINS_HEAD.size + (generation - 1) * self.record.size
        pin = self._parse(source.read(off, off + self.record.size), generation)
        if pin is None:
            raise CorruptFileError(f"{self.path}: the pin of generation {generation} is "
                                   "damaged", "pins", off)
        return pin

    def _check_head(self, head: bytes) -> None:
        ok = len(head) == _PINS_HEAD.size
        if ok:
            magic, count, crc = _PINS_HEAD.unpack(head)
            ok = magic == PINS_MAGIC and crc == zlib.crc32(head[:12]) and count == self.count
        if not ok:
            raise CorruptFileError(f"{self.path} has a bad header (or names another shard "
                                   f"count than the manifest's {self.count})", "pins", 0)

    def _parse(self, rec: bytes, generation: int) -> Pin | None:
        if len(rec) < self.record.size:
            return None
        gen, t, *gens, crc = self.record.unpack(rec)
        if crc != zlib.crc32(rec[:-4]) or gen != generation:
            return None
        return Pin(gen, t, tuple(gens))

    def append(self, pin: Pin, end: int) -> int:
        """Append ``pin`` after the intact records ending at ``end`` (cutting a torn one),
        durably; returns the new end."""
        with open(self.path, "r+b") as f:
            f.truncate(end)
            f.seek(end)
            f.write(self._pack(pin))
            f.flush()
            os.fsync(f.fileno())
        return end + self.record.size
