"""FileView: mmap and pread reads, and releasing pages after one-off passes."""

from __future__ import annotations

import os
import sys

import pytest

from memvid_store import Memory
from memvid_store.engine.fileio import FileView
from memvid_store.index.searcher import searcher_for
from tests.unit.test_search import corpus, with_graph

MiB = 1 << 20


def file_of(tmp_path, size: int) -> int:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(size))
    return os.open(path, os.O_RDONLY)


def resident_file_kib() -> int:
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith("RssFile:"))
    return int(line.split()[1])


@pytest.mark.parametrize("use_mmap", [True, False])
def test_release_keeps_every_read_identical(tmp_path, use_mmap):
    fd = file_of(tmp_path, 3 * MiB + 123)
    try:
        view = FileView(fd, 3 * MiB + 123, use_mmap=use_mmap)
        before = bytes(view.read(0, view.length))
        held = view.read(MiB + 7, 5000)  # a view taken before the release stays valid
        expected_held = bytes(held)
        for off, size in [(MiB + 7, 5000), (0, view.length), (view.length - 1, 1),
                          (10, 0), (view.length - 5, 100)]:
            view.release(off, size)
        assert bytes(held) == expected_held
        assert bytes(view.read(0, view.length)) == before
        del held
        view.close()
        view.release(0, 10)  # closed: a no-op
    finally:
        os.close(fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_release_returns_mapped_pages(tmp_path):
    size = 64 * MiB
    fd = file_of(tmp_path, size)
    try:
        view = FileView(fd, size)
        base = resident_file_kib()
        data = view.read(0, size)
        sum(data[::4096])  # touch every page
        touched = resident_file_kib() - base
        view.release(0, size)
        after = resident_file_kib() - base
        del data
        view.close()
    finally:
        os.close(fd)
    assert touched > 48 * 1024, touched
    assert after < 8 * 1024, after


def test_index_loads_release_what_they_read_once(mem_path, opened, released_pages):
    """Column checksums, the tantivy copy and the graph load hand their pages back."""
    with_graph(mem_path, opened, seed=1).close()
    released = released_pages
    released.clear()
    mem = Memory.open(mem_path, readonly=True)
    opened.append(mem)
    snap = mem._snap()
    graph = snap.toc.find("ann")
    runs = [seg for seg in snap.toc.segments if seg.kind == "run"]

    def inside(seg) -> list[tuple[int, int]]:
        return [(off, n) for off, n in released
                if seg.offset <= off and off + n <= seg.offset + seg.length]

    mem.find(vector=corpus(1, seed=5)[0]["embedding"], k=5, mode="vector")
    assert (graph.offset, graph.length) in released
    assert any(inside(run) for run in runs)  # checked columns
    mem.find("tomato basil", k=5, mode="lexical")
    files = searcher_for(snap, mem.index_config, mem._ctx.cache_root)._lex_manifest().files
    assert {(off, n) for off, n, _ in files.values()} <= set(released)
