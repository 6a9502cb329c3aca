"""Building the next vector graph in a child process while the writer goes on.

Extending a graph costs seconds per 10k vectors, so it has no place on the commit path
(:mod:`.maintain` decides when it is due). ``BackgroundGraph.start`` runs
``python -m memvid_store.index.graph_worker`` on the file: the child opens it read-only at
its newest commit, prepares the graph (:func:`.vector.graph_update.prepare_graph`), writes
it and its cluster lists to a scratch file, prints their meta as one JSON line and exits.
The writer then maps the scratch file, checks the CRCs and commits the graph on top of the
graph it extends, or drops it if a commit changed the graph in between.

A process rather than a thread: usearch takes the GIL back for every vector it adds, so a
build in a thread of a busy process runs tens of times slower (measured in
docs/architecture.md), and the child can run at a lower priority. It writes nothing into
the file, so killing it (``cancel``, the writer's ``close()``) or a crash of either process
loses nothing: the file keeps the graph it had. A child whose parent dies exits.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import subprocess
import sys
import threading
import warnings
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .vector.graph_update import PreparedGraph

NICENESS = 10  # the child yields the CPU to the writer's process and its queries


class BackgroundGraph:
    """At most one child building a graph for one writer, and the graph it left.

    ``on_ready`` is called (from a waiting thread) once a graph is ready to commit.
    """

    def __init__(self, path: str, scratch_dir: Callable[[], str],
                 on_ready: Callable[[], None]) -> None:
        self.path = path
        self._scratch_dir = scratch_dir
        self._on_ready = on_ready
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready: PreparedGraph | None = None
        self._closed = False
        self.failures = 0  # children that failed (a failed build is not retried at once)

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self) -> bool:
        """Start a child unless one runs, a graph waits, or this is closed."""
        with self._lock:
            if self._closed or self._proc is not None or self._ready is not None:
                return False
            scratch = self._scratch_dir()
            fd, out = _scratch_file(scratch)
            os.close(fd)
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", __name__, self.path, out, scratch,
                     str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    close_fds=True)
            except OSError:
                _unlink(out)
                self.failures += 1
                return False
            self._proc = proc
        threading.Thread(target=self._wait, args=(proc, out), daemon=True,
                         name="memvid-graph-wait").start()
        return True

    def take(self, base: tuple[int, int] | None) -> PreparedGraph | None:
        """The ready graph if it extends the graph ``base`` names; a stale one is dropped."""
        with self._lock:
            graph, self._ready = self._ready, None
        return graph if graph is not None and graph.base == base else None

    def ready(self) -> bool:
        return self._ready is not None

    def cancel(self) -> None:
        """Stop the child, if one runs (its graph is lost; the file keeps its own)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()

    def close(self) -> None:
        """Stop for good; a graph already ready stays for the closing commit."""
        with self._lock:
            self._closed = True
        self.cancel()

    def _wait(self, proc: subprocess.Popen[bytes], out: str) -> None:
        try:
            stdout, stderr = proc.communicate()
            graph = _load(out, stdout) if proc.returncode == 0 else None
        except Exception as exc:  # a bad scratch file: the build is lost, never the file
            stderr, graph = repr(exc).encode(), None
        finally:
            _unlink(out)  # a loaded graph's map keeps its bytes
        with self._lock:
            if self._proc is not proc:
                return  # cancelled
            self._proc = None
            if graph is None:
                self.failures += 1
                if proc.returncode not in (0, -9):
                    warnings.warn(f"building the vector graph of {self.path} in the background "
                                  f"failed: {stderr.decode(errors='replace')[-500:]}",
                                  RuntimeWarning, stacklevel=1)
                return
            if self._closed and self._ready is None:
                return  # the closing commit has been made without it
            self._ready = graph
        try:
            self._on_ready()
        except Exception as exc:  # the writer commits it later, or a later build does
            warnings.warn(f"the vector graph built in the background could not be committed "
                          f"to {self.path}: {exc}", RuntimeWarning, stacklevel=1)


def _load(out: str, stdout: bytes) -> PreparedGraph | None:
    """The graph the child wrote to ``out`` (None if it had nothing to add), its CRC
    checked: the bytes committed are the bytes the child built."""
    from .vector.graph_build import GraphBlob
    from .vector.graph_update import PreparedGraph

    lines = stdout.decode().strip().splitlines()
    info = json.loads(lines[-1]) if lines else None
    if info is None or info.get("length", 0) == 0:
        return None
    length = int(info["length"])
    lists = info.get("lists")
    total = length + (int(lists["length"]) if lists else 0)
    with open(out, "rb") as fh:
        if os.fstat(fh.fileno()).st_size != total:
            raise ValueError(f"the graph file holds {os.fstat(fh.fileno()).st_size} bytes, "
                             f"not {total}")
        data = memoryview(mmap.mmap(fh.fileno(), total, access=mmap.ACCESS_READ))
    graph = data[:length]
    crc = zlib.crc32(graph)
    if crc != int(info["crc"]):
        raise ValueError("the graph file's CRC does not match the child's")
    blob = None
    if lists:
        from .vector.lists_build import ListsBlob

        rest = data[length:]
        if zlib.crc32(rest) != int(lists["crc"]):
            raise ValueError("the cluster lists' CRC does not match the child's")
        blob = ListsBlob([rest], len(rest), int(lists["crc"]), lists["meta"])
    base = tuple(info["base"]) if info["base"] is not None else None
    return PreparedGraph(base, GraphBlob([graph], length, crc), info["meta"],  # type: ignore[arg-type]
                         blob)


def _scratch_file(directory: str) -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix="graph-", suffix=".part", dir=directory)


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# ------------------------------------------------------------------------ the child


def _exit_with_parent(parent: int) -> None:
    """Exit as soon as the writer's process is gone (a build for nobody)."""
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="memvid-parent-watch").start()


def build_in_child(path: str, out: str, scratch_dir: str) -> dict[str, Any]:
    """Prepare the graph of the file at ``path`` and write it to ``out``; its meta."""
    from ..engine import _faults
    from ..engine.follow import ReaderFile
    from ..engine.store import make_snapshot
    from ..reads import index_config_of
    from .vector.graph_update import prepare_graph

    _faults.hit("graph.child")
    _faults.stall("graph.stall")
    reader = ReaderFile(path, follow=False)
    try:
        snap = make_snapshot(reader.fd, reader.load(), True)
        graph = prepare_graph(snap, index_config_of(snap), scratch_dir,
                              upto=snap.toc.next_gid)
        if graph is None:
            return {"length": 0}
        lists = graph.lists
        with open(out, "wb") as fh:
            for part in graph.blob.parts + (lists.parts if lists is not None else []):
                fh.write(part)
        return {"base": graph.base, "length": graph.blob.length, "crc": graph.blob.crc,
                "meta": graph.meta,
                "lists": None if lists is None else {"length": lists.length,
                                                     "crc": lists.crc, "meta": lists.meta}}
    finally:
        reader.close()


def main(argv: list[str]) -> int:
    path, out, scratch_dir, parent = argv
    _exit_with_parent(int(parent))
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICENESS)
    print(json.dumps(build_in_child(path, out, scratch_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
