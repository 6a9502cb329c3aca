"""A moto S3 server on 127.0.0.1 for the remote tests, and client wrappers that count
requests or inject faults (``RemoteConfig.wrap_client``)."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from memvid_store.errors import (
    ObjectChangedError,
    RemoteServerError,
    RemoteThrottledError,
    RemoteTimeoutError,
)
from memvid_store.remote.client import Fetched

ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Bucket:
    """One bucket of the moto server: ``upload(path, key)`` puts a file's bytes."""

    def __init__(self, endpoint: str, name: str) -> None:
        from obstore.store import S3Store

        self.name, self.endpoint = name, endpoint
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{name}", method="PUT"))
        self.store = S3Store(name, endpoint=endpoint, client_options={"allow_http": True})

    def versioned(self, name: str) -> Bucket:
        """Another bucket of the same server, keeping every version of its objects."""
        other = Bucket(self.endpoint, name)
        body = b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
        urllib.request.urlopen(urllib.request.Request(
            f"{self.endpoint}/{name}?versioning", data=body, method="PUT",
            headers={"Content-Type": "application/xml"}))
        return other

    def upload(self, path: str, key: str) -> None:
        import obstore

        with open(path, "rb") as f:
            obstore.put(self.store, key, f.read())


@contextmanager
def moto_s3(bucket: str) -> Iterator[Bucket]:
    """A running moto server (the AWS environment variables point at it) with ``bucket``."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        with environ({**ENV, "AWS_ENDPOINT_URL": endpoint}):
            yield Bucket(endpoint, bucket)
    finally:
        server.stop()


class Recorder:
    """Counts the requests and bytes of every client it wraps."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, dict[str, Any]]] = []
        self.bytes = 0

    def wrap(self, client: Any) -> Counting:
        return Counting(client, self)

    def clear(self) -> None:
        self.calls.clear()
        self.bytes = 0


class Counting:
    def __init__(self, client: Any, recorder: Recorder) -> None:
        self.client, self.recorder, self.url = client, recorder, client.url

    def get(self, start: int, end: int, **conditions: Any) -> Fetched | None:
        self.recorder.calls.append((start, end, conditions))
        got = self.client.get(start, end, **conditions)
        if got is not None:
            self.recorder.bytes += len(got.data)
        return got

    def tail(self, size: int) -> Fetched:
        """The last ``size`` bytes (recorded with ``start`` -size, ``end`` None)."""
        self.recorder.calls.append((-size, None, {}))
        got = self.client.tail(size)
        self.recorder.bytes += len(got.data)
        return got


class Faulty:
    """Plays ``plan`` over the next requests, one step each: ``"503"`` (throttled),
    ``"500"``, ``"timeout"``, ``"truncate"`` (a body one byte short), ``"changed"`` (412),
    ``None`` (pass)."""

    def __init__(self, plan: list[str | None]) -> None:
        self.plan = list(plan)
        self.seen = 0

    def wrap(self, client: Any) -> Faulty:
        self.client, self.url = client, client.url
        return self

    def get(self, start: int, end: int, **conditions: Any) -> Fetched | None:
        self.seen += 1
        step = self.plan.pop(0) if self.plan else None
        if step == "503":
            raise RemoteThrottledError("SlowDown", self.url, 503)
        if step == "500":
            raise RemoteServerError("InternalError", self.url, 500)
        if step == "timeout":
            raise RemoteTimeoutError("timed out", self.url)
        if step == "changed":
            raise ObjectChangedError("changed", self.url, 412)
        got = self.client.get(start, end, **conditions)
        if step == "truncate" and got is not None:
            return Fetched(got.data[:-1], got.etag, got.size)
        return got
