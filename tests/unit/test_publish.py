"""Publishing a local memory to S3 (a moto server on 127.0.0.1) with conditional writes:
create fails if the object exists, replace fails unless the object still has the
expected ETag, the loser gets PublishConflictError and the object is unchanged, readers
see the winner on ``refresh()``, and only sealed, closed files are uploaded."""

from __future__ import annotations

import contextlib
import http.server
import pickle
import shutil
import threading

import pytest

pytest.importorskip("obstore")
pytest.importorskip("moto.server")

from memvid_store import Memory
from memvid_store.errors import (
    InvalidInputError,
    MemoryLockedError,
    MemoryNotFoundError,
    NotAMemoryFileError,
    NotSealedError,
    PublishConflictError,
    RemoteAccessDeniedError,
    RemoteError,
    RemoteThrottledError,
)
from memvid_store.remote import publish

from .s3_server import ENV, environ, moto_s3

BUCKET = "memvid-publish"


@pytest.fixture(scope="module")
def s3():
    with moto_s3(BUCKET) as bucket:
        yield bucket


def _object(s3, key: str) -> tuple[bytes, str] | None:
    import obstore

    try:
        got = obstore.get(s3.store, key)
    except FileNotFoundError:
        return None
    return bytes(got.bytes()), got.meta["e_tag"]


def _sealed(path: str, n: int, start: int = 0) -> str:
    """``path`` with frames ``f0..f{n-1}`` (``start`` onwards added now), sealed and closed."""
    mem = Memory.open(path) if start else Memory.create(path)
    with mem:
        mem.put_many([{"id": f"f{i}", "text": f"frame {i} about topic{i % 3}"}
                      for i in range(start, n)])
        mem.seal()
    return path


def _reader(url: str, cache: str) -> Memory:
    return Memory.open(url, readonly=True, warmup="none", remote={"cache_dir": cache})


def test_create_publishes_once_and_a_second_create_conflicts(s3, tmp_path):
    path = _sealed(str(tmp_path / "a.mv2"), 5)
    url = f"s3://{BUCKET}/create.mv2"
    etag = publish(path, url)
    with open(path, "rb") as f:
        assert _object(s3, "create.mv2") == (f.read(), etag)
    with pytest.raises(PublishConflictError) as info:
        publish(path, url)
    assert isinstance(info.value, RemoteError)
    assert info.value.current_etag == etag and info.value.status == 412
    assert _object(s3, "create.mv2")[1] == etag


def test_replace_with_the_etag_moves_readers_and_a_stale_publisher_loses(s3, tmp_path):
    url = f"s3://{BUCKET}/moving.mv2"
    v1 = _sealed(str(tmp_path / "v1.mv2"), 5)
    etag1 = publish(v1, url)
    with _reader(url, str(tmp_path / "cache")) as reader:
        assert reader.count() == 5
        v2 = _sealed(str(tmp_path / "v1.mv2"), 8, start=5)  # the same file, grown
        etag2 = publish(v2, url, expected_etag=etag1)
        assert etag2 != etag1
        assert reader.count() == 5  # still the version it opened
        reader.refresh()
        assert reader.count() == 8 and reader.get("f7").text == "frame 7 about topic1"
        generation = reader.generation

        stale = _sealed(str(tmp_path / "other.mv2"), 2)  # another instance's build of v1
        with pytest.raises(PublishConflictError) as info:
            publish(stale, url, expected_etag=etag1)
        assert info.value.current_etag == etag2
        with open(v2, "rb") as f:
            assert _object(s3, "moving.mv2") == (f.read(), etag2)  # unchanged
        assert reader.refresh() == generation and reader.count() == 8


def test_replacing_a_missing_object_conflicts(s3, tmp_path):
    path = _sealed(str(tmp_path / "a.mv2"), 1)
    with pytest.raises(PublishConflictError) as info:
        publish(path, f"s3://{BUCKET}/never.mv2", expected_etag='"0123"')
    assert info.value.current_etag is None
    assert _object(s3, "never.mv2") is None


def test_an_open_writer_or_unsealed_records_are_refused(s3, tmp_path):
    path, src = str(tmp_path / "w.mv2"), str(tmp_path / "src.mv2")
    url = f"s3://{BUCKET}/unsealed.mv2"
    with Memory.create(src) as mem:
        mem.put("written, not sealed", id="x")
        with pytest.raises(MemoryLockedError):
            publish(src, url)
        shutil.copyfile(src, path)  # a copy taken while the record is in the WAL only
    with pytest.raises(NotSealedError) as info:
        publish(path, url)
    assert isinstance(info.value, InvalidInputError)
    assert _object(s3, "unsealed.mv2") is None
    etag = publish(path, url, seal=True)
    with _reader(url, str(tmp_path / "cache")) as reader:
        assert reader.get("x").text == "written, not sealed"
    assert _object(s3, "unsealed.mv2")[1] == etag


def test_bad_arguments_are_typed_errors(s3, tmp_path):
    path = _sealed(str(tmp_path / "a.mv2"), 1)
    with pytest.raises(InvalidInputError):
        publish(path, f"s3://{BUCKET}")
    with pytest.raises(InvalidInputError):
        publish(path, f"s3://{BUCKET}/k.mv2", expected_etag="")
    with pytest.raises(MemoryNotFoundError):
        publish(str(tmp_path / "missing.mv2"), f"s3://{BUCKET}/k.mv2")
    junk = tmp_path / "junk.mv2"
    junk.write_bytes(b"not a memory file" * 1000)
    with pytest.raises(NotAMemoryFileError):
        publish(str(junk), f"s3://{BUCKET}/k.mv2")
    assert _object(s3, "k.mv2") is None


def test_the_conflict_error_survives_pickling():
    err = PublishConflictError("lost", "s3://b/k", 412, '"abc"')
    back = pickle.loads(pickle.dumps(err))
    assert (back.url, back.status, back.current_etag) == ("s3://b/k", 412, '"abc"')


class _Stub(http.server.BaseHTTPRequestHandler):
    status = 503

    def do_PUT(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            code = b"SlowDown" if self.status == 503 else b"AccessDenied"
            body = b"<Error><Code>" + code + b"</Code></Error>"
            self.send_response(self.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("status", "error"), [(503, RemoteThrottledError),
                                               (403, RemoteAccessDeniedError)])
def test_store_failures_are_typed_errors(tmp_path, status, error):
    path = _sealed(str(tmp_path / "a.mv2"), 1)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.RequestHandlerClass = type("Stub", (_Stub,), {"status": status})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}"
        with environ({**ENV, "AWS_ENDPOINT_URL": endpoint}), pytest.raises(error):
            publish(path, "s3://bucket/key.mv2", timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_mv2_publish_creates_then_replaces_with_the_etag(s3, tmp_path):
    import json

    from click.testing import CliRunner

    from memvid_store.cli import cli

    path = _sealed(str(tmp_path / "c.mv2"), 3)
    url = f"s3://{BUCKET}/cli.mv2"
    first = CliRunner().invoke(cli, ["publish", path, url, "--json"])
    assert first.exit_code == 0, first.output
    etag = json.loads(first.output)["etag"]
    assert _object(s3, "cli.mv2")[1] == etag
    again = CliRunner().invoke(cli, ["publish", path, url])
    assert again.exit_code == 1 and "Traceback" not in again.output
    _sealed(path, 6, start=3)
    replaced = CliRunner().invoke(cli, ["publish", path, url, "--etag", etag])
    assert replaced.exit_code == 0, replaced.output
    assert _object(s3, "cli.mv2")[1] != etag
    etag = _object(s3, "cli.mv2")[1]
    compacted = CliRunner().invoke(cli, ["publish", path, url, "--etag", etag, "--compact"])
    assert compacted.exit_code == 0, compacted.output
    with Memory.open(path, readonly=True) as local:
        assert len(_object(s3, "cli.mv2")[0]) == local.stats().file_bytes


def test_compact_publishes_the_file_without_its_dead_space(s3, tmp_path):
    path = str(tmp_path / "dead.mv2")
    url = f"s3://{BUCKET}/dead.mv2"
    with Memory.create(path) as mem:
        for start in range(0, 400, 20):  # small commits: their merged runs left behind
            mem.put_many([{"id": f"f{i}", "text": f"frame {i} about topic{i % 3}"}
                          for i in range(start, start + 20)])
            mem.seal()
        mem.update("f3", text="frame 3, edited")
        before = mem.stats()
        history = [f.text for f in mem.history("f3")]
    assert before.file_bytes - before.live_bytes > 0
    etag = publish(path, url, seal=True, compact=True)
    data, stored = _object(s3, "dead.mv2")
    assert stored == etag and len(data) < before.file_bytes
    with Memory.open(path, readonly=True) as local:
        after = local.stats()
    assert len(data) == after.file_bytes and after.file_bytes - after.live_bytes < 4096
    with _reader(url, str(tmp_path / "cache")) as reader:
        assert [f.text for f in reader.history("f3")] == history  # all history kept
        assert reader.count() == 400
