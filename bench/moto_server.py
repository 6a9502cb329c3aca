"""A moto S3 server on 127.0.0.1 for the object-storage benchmarks, stopped on exit."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server(**env_extra: str) -> Iterator[dict[str, str]]:
    """Start ``moto.server`` on a free local port; yields the environment (credentials,
    ``AWS_ENDPOINT_URL``) a client needs. The server stops when the block ends."""
    with local_server(lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                    "-p", str(port)], quiet=True, **env_extra) as env:
        yield env


@contextlib.contextmanager
def local_server(command: Callable[[int], list[str]], *, quiet: bool = False,
                 **env_extra: str) -> Iterator[dict[str, str]]:
    """Run ``command(port)``, an S3 server for a free local port, until the block ends;
    yields the environment (credentials, ``AWS_ENDPOINT_URL``) a client needs, once the
    port accepts connections."""
    port = free_port()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", **env_extra)
    quiet_io = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else {}
    server = subprocess.Popen(command(port), env=env, **quiet_io)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield env
    finally:
        server.terminate()
        server.wait()
