"""A small S3-compatible server of local files with a modelled latency, for benchmarks.

It answers what the engine's S3 client (obstore) sends to read an object: ``GET`` with
or without ``Range`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``), ``HEAD``, and the
conditions ``If-Match`` / ``If-None-Match`` on the object's ETag (412 / 304), with 404
for a missing key and 416 for a range past the end; and ``ListObjectsV2`` (``prefix``,
``delimiter``, ``start-after``, one page), which a dataset of many objects (LanceDB)
reads its versions with. ``/<bucket>/<key>`` is the file
``<root>/<bucket>/<key>``; authentication headers are ignored. Each request waits
``latency`` seconds before its first byte (default 20 ms, about S3's time to first byte
within a region), and a body can be paced to ``rate`` bytes per second per request.
Unlike moto, a range GET reads only its range, so its time does not grow with the object.

``file_server(root, latency=0.02)`` runs it in its own process on 127.0.0.1 and yields
the environment a client needs; it stops when the block ends. ``GET /__requests__``
returns (and forgets) the requests served since the last call, as JSON: a client that
keeps no count of its own (LanceDB) is measured from it.
``python bench/s3_file_server.py ROOT PORT [LATENCY] [RATE]`` runs it in the foreground.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the server's child process
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.moto_server import local_server

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_PIECE = 1 << 20  # bytes written at a time


def etag_of(path: str) -> str:
    st = os.stat(path)
    return '"' + hashlib.md5(f"{st.st_size}-{st.st_mtime_ns}".encode()).hexdigest() + '"'


class Handler(http.server.BaseHTTPRequestHandler):
    """One connection; ``server.root``, ``server.latency``, ``server.rate`` configure it."""

    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses connections
    # a reply is its headers then its body, two writes: with Nagle's algorithm the body
    # waits for the client's delayed ACK of the headers (40 ms on Linux), which S3 does
    # not add to a request
    disable_nagle_algorithm = True

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def end_headers(self) -> None:
        self._last_write = time.perf_counter()  # a reply without a body ends here
        super().end_headers()

    def _answer(self, body: bool) -> None:
        if self.path == "/__requests__":
            return self._reply(200, json.dumps(self.server.log.take()).encode(),  # type: ignore[attr-defined]
                               "application/json")
        arrived = time.perf_counter()
        self._sent, self._last_write = 0, 0.0
        self.server.log.begin()  # type: ignore[attr-defined]
        try:
            self._serve(body)
        finally:
            # answered when its last write began: the client may send its next request as
            # soon as those bytes arrive, before this thread runs again
            done = self._last_write or time.perf_counter()
            self.server.log.add(self.command, arrived, done, self._sent)  # type: ignore[attr-defined]

    def _serve(self, body: bool) -> None:
        time.sleep(self.server.latency)  # type: ignore[attr-defined]
        target, _, query = self.path.partition("?")
        path = os.path.join(self.server.root, target.lstrip("/"))  # type: ignore[attr-defined]
        if ".." in self.path:
            return self._error(404, "NoSuchKey")
        params = urllib.parse.parse_qs(query)
        if params.get("list-type") == ["2"] and os.path.isdir(path):
            return self._list(path, target.strip("/"), params)
        if not os.path.isfile(path):
            return self._error(404, "NoSuchKey")
        size, etag = os.path.getsize(path), etag_of(path)
        if self.headers.get("If-Match") not in (None, etag, "*"):
            return self._error(412, "PreconditionFailed")
        if self.headers.get("If-None-Match") in (etag, "*"):
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            return self.end_headers()
        start, end, status = 0, size, 200
        asked = self.headers.get("Range")
        if asked:
            found = _RANGE.match(asked.strip())
            if not found or found.groups() == ("", ""):
                return self._error(416, "InvalidRange")
            first, last = found.groups()
            if first:
                start, end = int(first), min(size, int(last) + 1 if last else size)
            else:
                start, end = max(0, size - int(last)), size
            if start >= size:
                return self._error(416, "InvalidRange")
            status = 206
        self.send_response(status)
        self.send_header("Content-Length", str(end - start))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(os.path.getmtime(path),
                                                                 usegmt=True))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if body:
            self._send(path, start, end)

    def _list(self, bucket_dir: str, bucket: str, params: dict[str, list[str]]) -> None:
        """One ListObjectsV2 page of every key under ``prefix`` (after ``start-after``),
        keys past a ``delimiter`` rolled up into common prefixes."""
        prefix = params.get("prefix", [""])[0]
        delimiter = params.get("delimiter", [""])[0]
        after = params.get("start-after", [""])[0]
        keys, prefixes = [], set()
        for folder, _, names in os.walk(bucket_dir):
            for name in names:
                full = os.path.join(folder, name)
                key = os.path.relpath(full, bucket_dir).replace(os.sep, "/")
                if not key.startswith(prefix) or key <= after:
                    continue
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                if cut >= 0:
                    prefixes.add(key[: cut + len(delimiter)])
                else:
                    keys.append((key, full))
        rows = []
        for key, full in sorted(keys):
            st = os.stat(full)
            modified = datetime.fromtimestamp(st.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            rows.append(f"<Contents><Key>{_xml(key)}</Key><LastModified>{modified}"
                        f"</LastModified><ETag>{_xml(etag_of(full))}</ETag><Size>{st.st_size}"
                        "</Size><StorageClass>STANDARD</StorageClass></Contents>")
        rows += [f"<CommonPrefixes><Prefix>{_xml(p)}</Prefix></CommonPrefixes>"
                 for p in sorted(prefixes)]
        body = ('<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>{_xml(bucket)}</Name><Prefix>{_xml(prefix)}</Prefix>"
                f"<KeyCount>{len(rows)}</KeyCount><MaxKeys>100000</MaxKeys>"
                f"<IsTruncated>false</IsTruncated>{''.join(rows)}</ListBucketResult>")
        self._reply(200, body.encode(), "application/xml")

    def _reply(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._last_write = time.perf_counter()
        self.wfile.write(body)
        self._sent = len(body)

    def _send(self, path: str, start: int, end: int) -> None:
        rate = self.server.rate  # type: ignore[attr-defined]
        began = time.perf_counter()
        with open(path, "rb") as f:
            f.seek(start)
            at = start
            while at < end:
                piece = f.read(min(_PIECE, end - at))
                self._last_write = time.perf_counter()
                self.wfile.write(piece)
                at += len(piece)
                self._sent += len(piece)
                if rate:
                    ahead = (at - start) / rate - (time.perf_counter() - began)
                    if ahead > 0:
                        time.sleep(ahead)

    def _error(self, status: int, code: str) -> None:
        self._reply(status, f"<Error><Code>{code}</Code><Message>{code}</Message></Error>"
                    .encode(), "application/xml")

    def log_message(self, *args: object) -> None:
        pass


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class RequestLog:
    """The requests served: (method, arrived, done, body bytes), on the server's clock.
    A request is logged after its reply is written, when its client may already have
    asked for the log: ``take`` waits (up to ``WAIT_S``) for the requests being served."""

    WAIT_S = 5.0

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._rows: list[tuple[str, float, float, int]] = []
        self._serving = 0

    def begin(self) -> None:
        with self._changed:
            self._serving += 1

    def add(self, method: str, arrived: float, done: float, sent: int) -> None:
        with self._changed:
            self._rows.append((method, arrived, done, sent))
            self._serving -= 1
            self._changed.notify_all()

    def take(self) -> list[tuple[str, float, float, int]]:
        with self._changed:
            self._changed.wait_for(lambda: self._serving == 0, timeout=self.WAIT_S)
            rows, self._rows = self._rows, []
        return rows


def summary(rows: list[list]) -> dict[str, int]:
    """Requests, body bytes and rounds of a request log (``GET /__requests__``): a round
    begins with a request that arrives after every earlier one was answered."""
    rounds, busy_until = 0, -1.0
    for _, arrived, done, _ in sorted(rows, key=lambda r: r[1]):
        if arrived > busy_until:
            rounds += 1
        busy_until = max(busy_until, done)
    return {"requests": len(rows), "bytes": sum(r[3] for r in rows), "rounds": rounds}


def serve(root: str, port: int, latency: float, rate: float) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.root, server.latency, server.rate = root, latency, rate  # type: ignore[attr-defined]
    server.log = RequestLog()  # type: ignore[attr-defined]
    server.serve_forever()


@contextlib.contextmanager
def file_server(root: str, latency: float = 0.02, rate: float = 0.0,
                **env_extra: str) -> Iterator[dict[str, str]]:
    """Serve ``root`` (``<root>/<bucket>/<key>``) on a free local port from a child
    process; yields the environment (credentials, ``AWS_ENDPOINT_URL``) a client needs."""
    with local_server(lambda port: [sys.executable, str(Path(__file__).resolve()), root,
                                    str(port), str(latency), str(rate)],
                      **env_extra) as env:
        yield env


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.02,
          float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
