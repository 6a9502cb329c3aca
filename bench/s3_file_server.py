"""A small S3-compatible server of local files with a modelled latency, for benchmarks.

It answers what the engine's S3 client (obstore) sends to read an object: ``GET`` with
or without ``Range`` (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``), ``HEAD``, and the
conditions ``If-Match`` / ``If-None-Match`` on the object's ETag (412 / 304), with 404
for a missing key and 416 for a range past the end. ``/<bucket>/<key>`` is the file
``<root>/<bucket>/<key>``; authentication headers are ignored. Each request waits
``latency`` seconds before its first byte (default 20 ms, about S3's time to first byte
within a region), and a body can be paced to ``rate`` bytes per second per request.
Unlike moto, a range GET reads only its range, so its time does not grow with the object.

``file_server(root, latency=0.02)`` runs it in its own process on 127.0.0.1 and yields
the environment a client needs; it stops when the block ends.
``python bench/s3_file_server.py ROOT PORT [LATENCY] [RATE]`` runs it in the foreground.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.server
import os
import re
import sys
import time
from collections.abc import Iterator
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

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        time.sleep(self.server.latency)  # type: ignore[attr-defined]
        path = os.path.join(self.server.root, self.path.split("?", 1)[0].lstrip("/"))  # type: ignore[attr-defined]
        if ".." in self.path or not os.path.isfile(path):
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

    def _send(self, path: str, start: int, end: int) -> None:
        rate = self.server.rate  # type: ignore[attr-defined]
        began = time.perf_counter()
        with open(path, "rb") as f:
            f.seek(start)
            at = start
            while at < end:
                piece = f.read(min(_PIECE, end - at))
                self.wfile.write(piece)
                at += len(piece)
                if rate:
                    ahead = (at - start) / rate - (time.perf_counter() - began)
                    if ahead > 0:
                        time.sleep(ahead)

    def _error(self, status: int, code: str) -> None:
        body = f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(root: str, port: int, latency: float, rate: float) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.root, server.latency, server.rate = root, latency, rate  # type: ignore[attr-defined]
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
