"""Publish a sharded memory to object storage: its shards, manifest and pins as objects.

Readers learn of a sharded state from the pins only, so the order of the requests makes
each publish atomic for them:

1. a lease, ``<name>.publishing``, created only if there is none (``If-None-Match: *``):
   one publisher at a time;
2. every object is checked to be as the last publish left it (its ETag): a publisher
   whose ``expected`` state is not the published one (another went first) fails with
   ``PublishConflictError`` before it writes anything;
3. every shard whose bytes changed since the last publish, each with a conditional
   write (``If-Match`` the ETag that publish left; ``If-None-Match: *`` the first time);
4. the manifest, the first time only (it never changes);
5. the pins, with a conditional write: the commit. Until it lands, readers open the
   previous pins, and a replaced shard object still holds the generations those pins
   name (a shard file only grows, until a ``compact()``);
6. the lease is deleted.

Every shard's writer lock is held from the first read to the last upload, so no local
writer changes the memory meanwhile. Each shard is one PUT (at most 5 GiB).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field

from ..errors import InvalidInputError, PublishConflictError, storage_errors
from ..remote.stores import check_publishable, open_store
from ..remote.upload import etag_of, put_conditional, read_all, sealed
from ..remote.urls import is_remote
from .manifest import read_manifest

LEASE_SUFFIX = ".publishing"


@dataclass(frozen=True)
class Published:
    """What a publish left in storage: pass it as ``expected`` to the next one.

    ``etags``: each object's ETag by its name beside the manifest (the manifest's own name,
    ``<name>.pins`` and every shard's); ``digests``: the BLAKE2b of each shard's bytes as
    published (a shard whose bytes did not change is not uploaded again).
    """

    url: str
    etags: Mapping[str, str] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """JSON to keep between publishes (e.g. in a deploy pipeline's state)."""
        return json.dumps({"url": self.url, "etags": dict(self.etags),
                           "digests": dict(self.digests)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Published:
        """The ``Published`` that :meth:`to_json` wrote.

        Raises:
            InvalidInputError: ``text`` is not such JSON.
        """
        try:
            body = json.loads(text)
            url, etags, digests = body["url"], body["etags"], body["digests"]
            ok = isinstance(url, str) and all(
                isinstance(m, dict) and all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in m.items()) for m in (etags, digests))
        except (ValueError, TypeError, KeyError):
            ok = False
        if not ok:
            raise InvalidInputError("not the JSON of a Published: keep what "
                                    "Published.to_json() wrote")
        return cls(url, etags, digests)


def publish(manifest_path: str | os.PathLike[str], url: str, *,
            expected: Published | None = None, timeout: float = 300.0) -> Published:
    """Upload the sharded memory of ``manifest_path`` to ``url`` (the manifest's object
    URL, e.g. ``s3://bucket/team/agents.mv2s``; the shards go beside it, under the names
    the manifest gives them) and return what was published.

    ``expected=None`` publishes for the first time: published pins are a conflict, and
    objects that a first publish which died before its pins left are replaced. A
    ``Published`` (what the last publish to ``url`` returned) replaces the objects only
    while they are still the ones it left.

    Raises:
        PublishConflictError: another publisher changed an object, or holds the lease
            (nothing readers follow changed: the pins were not replaced).
        MemoryLockedError: a writer has the memory open.
        NotSealedError: a shard has WAL records not sealed (seal the memory first).
        InvalidInputError: ``url`` is not an object URL, ``expected`` is for another URL,
            or the manifest names shards that are not beside it.
    """
    path = os.fspath(manifest_path)
    limit = check_publishable(url)
    if expected is not None and (not isinstance(expected, Published) or expected.url != url):
        raise InvalidInputError(f"expected must be the Published that the last publish to "
                                f"{url} returned, got {expected!r}")
    manifest = read_manifest(path)
    names = _shard_names(manifest.shards, path)
    prefix, base = url.rsplit("/", 1)
    first = expected is None
    etags = {} if first else dict(expected.etags)
    digests = {} if first else dict(expected.digests)
    pins_name = f"{base}.pins"
    with ExitStack() as held:
        fds = [held.enter_context(sealed(manifest.shard_path(i), limit)) for i in range(len(names))]
        pins = _read_file(manifest.pins_path)
        held.enter_context(_lease(f"{url}{LEASE_SUFFIX}", timeout))
        # nothing is written before every object is known to be as ``expected`` left it
        if first:  # nothing published: no pins (a first publish that died left no pins)
            _check_etag(f"{prefix}/{pins_name}", None, timeout)
            for name in [base, *names]:  # what a first publish that died left is replaced
                if (leftover := _etag_of(f"{prefix}/{name}", timeout)) is not None:
                    etags[name] = leftover
        else:
            for name in [base, pins_name, *names]:
                _check_etag(f"{prefix}/{name}", etags.get(name), timeout)
        for name, fd in zip(names, fds, strict=True):
            data = read_all(fd)
            digest = hashlib.blake2b(data, digest_size=16).hexdigest()
            if digests.get(name) == digest:
                continue  # the object holds these bytes (checked above)
            etags[name] = _put(f"{prefix}/{name}", data, etags.get(name), timeout)
            digests[name] = digest
        if first:
            etags[base] = _put(url, _read_file(path), etags.get(base), timeout)
        etags[pins_name] = _put(f"{prefix}/{pins_name}", pins, etags.get(pins_name), timeout)
    return Published(url, etags, digests)


def _shard_names(shards: tuple[str, ...], path: str) -> list[str]:
    """The shards' names beside the manifest (each a plain file name)."""
    for shard in shards:
        if is_remote(shard) or os.path.isabs(shard) or "/" in shard or "\\" in shard \
                or shard in (".", ".."):
            raise InvalidInputError(
                f"{path} names shard {shard!r}, which is not a file beside it: only a "
                "sharded memory whose shards sit beside its manifest can be published")
    return list(shards)


def _read_file(path: str) -> bytes:
    with storage_errors("reading the file to publish"), open(path, "rb") as f:
        return f.read()


def _put(url: str, data: bytes, expected_etag: str | None, timeout: float) -> str:
    obstore, store, key = open_store(url, timeout)
    return put_conditional(obstore, store, key, data, url, expected_etag)


def _check_etag(url: str, etag: str | None, timeout: float) -> None:
    """Refuse to go on unless the object at ``url`` has ``etag`` (None: no object)."""
    current = _etag_of(url, timeout)
    if current == etag:
        return
    if etag is None:
        message = (f"{url} exists (ETag {current}): this memory was published there "
                   "already; pass what that publish returned as expected")
    else:
        message = (f"{url} no longer has ETag {etag} (now: {current or 'no object'}): "
                   "another publisher changed it")
    raise PublishConflictError(message, url, 412, current)


def _etag_of(url: str, timeout: float) -> str | None:
    """The ETag of the object at ``url``; None when there is none."""
    obstore, store, key = open_store(url, timeout)
    return etag_of(obstore, store, key, url)


@contextmanager
def _lease(url: str, timeout: float) -> Iterator[None]:
    """Hold the publish lease at ``url`` (an object created only if there is none)."""
    owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                        "since": time.time()}).encode()
    try:
        _put(url, owner, None, timeout)
    except PublishConflictError:
        raise PublishConflictError(
            f"another publish holds {url}: wait for it, or delete that object if no "
            "publisher is running (one died)", url, 412) from None
    try:
        yield
    finally:
        obstore, store, key = open_store(url, timeout)
        with suppress(Exception):  # a lease left behind is reported by the next publish
            obstore.delete(store, key)


__all__ = ["LEASE_SUFFIX", "Published", "publish"]
