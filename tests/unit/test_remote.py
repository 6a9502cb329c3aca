"""Memories opened straight from S3 (a moto server on 127.0.0.1): every read equals the
same read of the local file, the open costs at most two requests, a warm instance
downloads nothing, ``refresh()`` moves to a new version without mixing two, and every
failure is a typed error, retried when it may pass."""

from __future__ import annotations

import contextlib
import http.server
import os
import random
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("obstore")
pytest.importorskip("moto.server")

from memvid_store import Memory
from memvid_store.errors import (
    InvalidInputError,
    MemoryNotFoundError,
    NotAMemoryFileError,
    ObjectChangedError,
    ReadOnlyError,
    RemoteAccessDeniedError,
    RemoteNotFoundError,
    RemoteReadOnlyError,
    RemoteServerError,
    RemoteThrottledError,
    RemoteTimeoutError,
    RemoteTruncatedError,
)
from memvid_store.remote.source import SECTOR

from .remote_memories import CHUNK, uploaded
from .remote_memories import build as _build
from .remote_memories import open_url as _open
from .remote_memories import reads as _reads
from .remote_memories import vec as _vec
from .s3_server import ENV, Faulty, Recorder, environ, moto_s3

BUCKET = "memvid-test"


@pytest.fixture(scope="module")
def s3():
    with moto_s3(BUCKET) as bucket:
        yield bucket


@pytest.fixture(scope="module")
def published(s3, tmp_path_factory):
    """(url, local path, marks) of one memory uploaded to the bucket."""
    return uploaded(s3.upload, "agent.mv2", f"s3://{BUCKET}/agent.mv2", tmp_path_factory)


def test_every_read_equals_the_local_file(published, tmp_path):
    url, path, marks = published
    with Memory.open(path, readonly=True) as local, _open(url, str(tmp_path)) as remote:
        assert remote.readonly and remote.path == url
        assert _reads(remote, marks) == _reads(local, marks)
        assert remote.generation == local.generation
        assert remote.stats().frames == local.stats().frames
        assert remote.stats().file_bytes == os.path.getsize(path)
        assert remote.verify().ok


def test_an_open_takes_two_rounds_and_reads_are_lazy(published, tmp_path):
    url, path, _ = published
    rec = Recorder()
    with _open(url, str(tmp_path), wrap_client=rec.wrap) as mem:
        source = mem._reader.fd
        # the header and the tail (TOC) together, then the run headers and small segments
        assert source.rounds == 2 and len(rec.calls) <= 2 + len(source.log)
        assert sorted(start for start, _, _ in rec.calls[:2])[1] == 0
        assert rec.calls[0][1] is None or rec.calls[1][1] is None  # one asks for the tail
        assert all(kw in ({}, {"if_match": None, "if_none_match": None})
                   for _, _, kw in rec.calls[:2])  # the version is not known yet
        mem.get("f5")
        mem.find("golf", k=3, mode="lexical")
        etag = source.identity
        assert all(kw["if_match"] == etag for _, _, kw in rec.calls[2:])  # one version
        assert all(start % SECTOR == 0 for start, _, _ in rec.calls[2:])  # whole pages
        assert rec.bytes < os.path.getsize(path)  # the WAL and vectors were not needed


def test_a_query_takes_a_bounded_number_of_rounds_and_requests(published, tmp_path):
    url, path, _ = published
    rec = Recorder()
    with _open(url, str(tmp_path), wrap_client=rec.wrap, gap_bytes=0) as mem:
        source = mem._reader.fd
        opened = source.rounds
        mem.find(vector=_vec(random.Random(3)), k=10, mode="vector")
        # run parts (with the vectors' first read), rows to rescore, the hits' payloads
        assert source.rounds - opened <= 3
        assert len(rec.calls) <= 12
        opened, calls = source.rounds, len(rec.calls)
        mem.find("golf hotel", k=10, mode="lexical")
        assert source.rounds - opened <= 2  # the BM25 files, the hits' payloads
        assert len(rec.calls) - calls <= 4
        assert rec.bytes < os.path.getsize(path) // 2


def test_a_warm_open_downloads_nothing(published, tmp_path):
    url, _, marks = published
    rec = Recorder()
    with _open(url, str(tmp_path), wrap_client=rec.wrap) as mem:
        first = _reads(mem, marks)
    rec.clear()
    with _open(url, str(tmp_path), wrap_client=rec.wrap) as mem:  # a new process's view
        assert _reads(mem, marks) == first
    assert rec.bytes == 0
    assert [kw["if_none_match"] for _, _, kw in rec.calls] == [rec.calls[0][2]["if_none_match"]]
    assert rec.calls[0][2]["if_none_match"]


def test_the_cache_stays_within_its_bound(published, tmp_path):
    url, _, marks = published
    bound = 4 * CHUNK
    with _open(url, str(tmp_path), cache_bytes=bound) as mem:
        _reads(mem, marks)  # more than the bound is read: chunks are evicted
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(tmp_path)
             for f in files if f.isdigit()]
    assert 0 < sum(sizes) <= bound


def test_refresh_moves_to_a_new_version_and_never_mixes_two(s3, tmp_path):
    old, new = str(tmp_path / "old.mv2"), str(tmp_path / "new.mv2")
    _build(old, 1)
    marks = _build(new, 2)
    s3.upload(old, "moving.mv2")
    url = f"s3://{BUCKET}/moving.mv2"
    with _open(url, str(tmp_path / "cache"), gap_bytes=0) as mem, \
            Memory.open(new, readonly=True) as fresh:
        before = mem.get("f5")
        s3.upload(new, "moving.mv2")
        assert mem.get("f5") == before  # already read: still the version it opened
        with pytest.raises(ObjectChangedError):
            mem.select(limit=1000)  # needs payloads of the old one
        mem.refresh()
        assert mem.get("f5") == fresh.get("f5") != before
        assert _reads(mem, marks) == _reads(fresh, marks)
        assert mem.refresh() == fresh.generation  # unchanged: nothing moves


def test_in_a_versioned_bucket_a_snapshot_keeps_reading_its_version(s3, tmp_path):
    old, new = str(tmp_path / "old.mv2"), str(tmp_path / "new.mv2")
    old_marks = _build(old, 1)
    marks = _build(new, 2)
    bucket = s3.versioned("memvid-versions")
    bucket.upload(old, "moving.mv2")
    url = "s3://memvid-versions/moving.mv2"
    with _open(url, str(tmp_path / "cache"), gap_bytes=0) as mem, \
            Memory.open(old, readonly=True) as was, Memory.open(new, readonly=True) as fresh:
        before = mem.get("f5")
        bucket.upload(new, "moving.mv2")
        assert _reads(mem, old_marks) == _reads(was, old_marks)  # downloads: its version
        mem.refresh()
        assert mem.get("f5") == fresh.get("f5") != before
        assert _reads(mem, marks) == _reads(fresh, marks)
        with _open(url, str(tmp_path / "cache"), gap_bytes=0) as again:  # a warm restart
            assert _reads(again, marks) == _reads(fresh, marks)


def test_a_refresh_cut_short_by_a_change_never_reuses_the_old_version(s3, tmp_path):
    old, new = str(tmp_path / "old.mv2"), str(tmp_path / "new.mv2")
    _build(old, 1)
    marks = _build(new, 3)
    s3.upload(old, "cut.mv2")
    faults = Faulty([])
    with _open(f"s3://{BUCKET}/cut.mv2", str(tmp_path / "cache"), wrap_client=faults.wrap,
               retries=0) as mem, Memory.open(new, readonly=True) as fresh:
        before = mem.get("f5")
        s3.upload(new, "cut.mv2")
        faults.plan = [None, "changed"]  # the new version's first chunk, then its TOC
        with pytest.raises(ObjectChangedError):
            mem.refresh()
        assert mem.get("f5") == before  # still the version it had installed
        mem.refresh()
        assert _reads(mem, marks) == _reads(fresh, marks)


def test_transient_failures_are_retried(published, tmp_path):
    url, path, _ = published
    faults = Faulty(["503", "500", "timeout", "truncate"])
    with Memory.open(path, readonly=True) as local, \
            _open(url, str(tmp_path), wrap_client=faults.wrap) as mem:
        assert mem.count() == local.count()
        assert faults.seen >= 5


@pytest.mark.parametrize(("fault", "error"), [
    ("503", RemoteThrottledError), ("500", RemoteServerError),
    ("timeout", RemoteTimeoutError), ("truncate", RemoteTruncatedError)])
def test_failures_past_the_retry_budget_are_typed(published, tmp_path, fault, error):
    url, _, _ = published
    faults = Faulty([fault] * 3)
    with pytest.raises(error):
        _open(url, str(tmp_path), wrap_client=faults.wrap, retries=2)
    assert faults.seen == 3


def test_missing_object_and_writable_open(s3, tmp_path):
    with pytest.raises(RemoteNotFoundError) as info:
        _open(f"s3://{BUCKET}/missing.mv2", str(tmp_path))
    assert isinstance(info.value, MemoryNotFoundError)
    with pytest.raises(RemoteReadOnlyError) as ro:
        Memory.open(f"s3://{BUCKET}/agent.mv2")
    assert isinstance(ro.value, ReadOnlyError) and "publish" in str(ro.value)
    with pytest.raises(InvalidInputError):
        Memory.open(f"s3://{BUCKET}/agent.mv2", readonly=True, follow=True)
    with pytest.raises(InvalidInputError):
        Memory.open(f"s3://{BUCKET}", readonly=True)


class _Stub(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status (or misbehaviour) the test sets."""

    mode: object = 503

    def do_GET(self) -> None:
        with contextlib.suppress(OSError):  # the client gave up (the timeout case)
            self._answer(type(self).mode)

    def _answer(self, mode: object) -> None:
        if mode == "truncate":
            self.send_response(206)
            self.send_header("Content-Range", "bytes 0-999/1000")
            self.send_header("Content-Length", "1000")
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.wfile.write(b"x" * 500)
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "hang":
            time.sleep(1.5)
        status = 500 if mode == "hang" else int(mode)
        code = b"SlowDown" if status == 503 else b"InternalError"
        body = b"<Error><Code>" + code + b"</Code><Message>a stub</Message></Error>"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with environ({**ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_port}"}):
        yield _Stub
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("mode", "error"), [
    (503, RemoteThrottledError), (500, RemoteServerError), (403, RemoteAccessDeniedError),
    (404, RemoteNotFoundError), (412, ObjectChangedError), (416, NotAMemoryFileError),
    ("truncate", RemoteTruncatedError),
    ("hang", RemoteTimeoutError)])
def test_http_failures_become_typed_errors(stub, tmp_path, mode, error):
    stub.mode = mode
    with pytest.raises(error):
        _open("s3://bucket/key.mv2", str(tmp_path), retries=0, timeout=0.5)


def test_row_columns_read_by_the_page_take_a_round_and_fewer_bytes(published, tmp_path,
                                                                    monkeypatch):
    """A run whose row columns are read by the page (``BY_PAGE_BYTES``: at 1M rows they
    are 61 MB): a query's rows are announced in a round of their own, and a first lexical
    answer downloads less than with the columns whole."""
    from memvid_store.engine import runs

    url = published[0]
    whole = Recorder()
    with _open(url, str(tmp_path / "whole"), wrap_client=whole.wrap) as mem:
        mem.find("golf hotel", k=10, mode="lexical")
    monkeypatch.setattr(runs, "BY_PAGE_BYTES", 0)
    monkeypatch.setattr(runs, "SMALL_RUN", 0)  # not fetched whole for being small
    by_page = Recorder()
    with _open(url, str(tmp_path / "paged"), wrap_client=by_page.wrap) as mem:
        source = mem._reader.fd
        opened = source.rounds
        mem.find("golf hotel", k=10, mode="lexical")
        assert source.rounds - opened <= 3  # the BM25 files, the candidates' rows, payloads
        assert by_page.bytes < whole.bytes
        assert any(r.region == "rows" for r in source.log)


def test_row_columns_read_by_the_page_answer_as_the_local_file(s3, tmp_path, monkeypatch):
    from memvid_store.engine import runs

    path = str(tmp_path / "own.mv2")  # a file of its own: no earlier read shares its bytes
    marks = _build(path, 2)
    monkeypatch.setattr(runs, "BY_PAGE_BYTES", 0)
    monkeypatch.setattr(runs, "SMALL_RUN", 0)
    q = _vec(random.Random(5))
    reads = [lambda m: m.get("f3"), lambda m: m.get("late2"), lambda m: m.history("f4"),
             lambda m: m.find("golf hotel", k=10, mode="lexical"),
             lambda m: m.find(vector=q, k=10, mode="vector"),
             lambda m: m.find("delta echo", vector=q, k=10, mode="hybrid"),
             lambda m: m.collection("notes").find("note golf", k=5, mode="lexical"),
             lambda m: m.as_of(marks["generation"]).find("updated", k=5, mode="lexical"),
             lambda m: m.select({"tags": "bravo"}, limit=20), _reads]
    with Memory.open(path, readonly=True) as local:
        for i, read in enumerate(reads):  # each the first read of its own object
            s3.upload(path, f"paged{i}.mv2")
            with _open(f"s3://{BUCKET}/paged{i}.mv2", str(tmp_path / f"read{i}")) as remote:
                got = read(remote) if read is not _reads else read(remote, marks)
                assert got == (read(local) if read is not _reads else read(local, marks))


def test_a_flipped_byte_in_a_row_column_read_by_the_page_is_a_typed_error(
        s3, published, tmp_path, monkeypatch):
    from memvid_store import MemvidError
    from memvid_store.engine import runs

    _, path, _ = published
    with Memory.open(path, readonly=True) as local:
        snap = local._snap()
        run = max(snap.runs, key=lambda r: r.n)
        start, length, _ = run._locate("vto")
    data = bytearray(Path(path).read_bytes())
    for at in range(start, start + length, 512):  # every page of the column
        data[at] ^= 0x40
    bad = tmp_path / "bad.mv2"
    bad.write_bytes(bytes(data))
    s3.upload(str(bad), "bad-vto.mv2")
    monkeypatch.setattr(runs, "BY_PAGE_BYTES", 0)
    monkeypatch.setattr(runs, "SMALL_RUN", 0)
    with _open(f"s3://{BUCKET}/bad-vto.mv2", str(tmp_path / "c")) as mem, \
            pytest.raises(MemvidError, match="checksum"):
        mem.find("golf hotel", k=10, mode="lexical")


def test_once_one_run_reads_its_rows_by_the_page_every_run_but_the_small_does():
    """A run past ``BY_PAGE_BYTES`` makes a query's rows take a round of their own; the
    rows of the other runs join it rather than being fetched whole."""
    from types import SimpleNamespace

    from memvid_store.engine import runs

    def run(row_bytes: int, length: int) -> SimpleNamespace:
        return SimpleNamespace(row_bytes=row_bytes, ref=SimpleNamespace(length=length),
                               rows_by_page=None)

    large = run(runs.BY_PAGE_BYTES + 1, 1 << 30)
    middle = run(5 << 20, 8 << 20)
    small = run(1 << 10, runs.SMALL_RUN)
    runs.read_rows_by_page([large, middle, small])
    assert (large.rows_by_page, middle.rows_by_page, small.rows_by_page) == (True, True, False)
    runs.read_rows_by_page([middle, small])
    assert (middle.rows_by_page, small.rows_by_page) == (False, False)
