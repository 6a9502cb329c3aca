"""Child process for tests/unit/test_concurrency.py: drives one Memory from JSON-line commands.

Usage: ``reader_proc.py`` — reads one JSON command per line on stdin and answers each with
one JSON line on stdout. A command is ``{"op": NAME, ...arguments}``; the answer is the
op's result, or ``{"error": class name, "message": ..., "holder_pid": ...}`` when it
raised a MemvidError. ``open_writer`` first answers ``{"started": true}`` and then, once
``Memory.open`` returned or failed, its result.

Rows are ``[id, text, version]`` lists in timeline order.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

from memvid_store import Frame, Memory, MemvidError, ReadOnlyError
from memvid_store.types import from_us

Row = list[Any]


def row(frame: Frame) -> Row:
    return [frame.id, frame.text, frame.version]


def send(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Session:
    """The child's one open memory and its state between commands."""

    def __init__(self) -> None:
        self.mem: Memory | None = None
        self.frames: Iterator[Frame] | None = None

    def describe(self) -> dict[str, Any]:
        mem = self.mem
        stats = mem.stats()
        return {"generation": mem.generation, "rows": [row(f) for f in mem.timeline()],
                "len": len(mem), "wal_records": stats.wal_records,
                "history_floor": None if stats.history_floor is None
                else stats.history_floor.isoformat(),
                "readonly": mem.readonly, "mmap": stats.mmap}

    def op_open(self, path: str, readonly: bool = True, mmap: bool = True,
                lock_timeout: float = 5.0) -> dict[str, Any]:
        self.mem = Memory.open(path, readonly=readonly, mmap=mmap, lock_timeout=lock_timeout)
        return self.describe()

    def op_open_writer(self, path: str, lock_timeout: float) -> dict[str, Any]:
        """Open for writing, waiting up to ``lock_timeout`` s for the lock."""
        send({"started": True})
        start = time.monotonic()
        try:
            self.mem = Memory.open(path, lock_timeout=lock_timeout, sync=False)
        except MemvidError as exc:
            return {**error(exc), "elapsed": time.monotonic() - start}
        return {**self.describe(), "elapsed": time.monotonic() - start}

    def op_describe(self) -> dict[str, Any]:
        return self.describe()

    def op_iter_start(self) -> dict[str, Any]:
        self.frames = self.mem.iter_timeline()
        return {}

    def op_iter_next(self, n: int | None = None) -> dict[str, Any]:
        """The next ``n`` frames of the iteration (all remaining ones when ``n`` is None)."""
        rows = []
        for frame in self.frames:
            rows.append(row(frame))
            if n is not None and len(rows) == n:
                break
        return {"rows": rows}

    def op_refresh(self) -> dict[str, Any]:
        return {"generation": self.mem.refresh(), **self.describe()}

    def op_get(self, id: str) -> dict[str, Any]:
        return {"row": row(self.mem.get(id))}

    def op_history(self, id: str) -> dict[str, Any]:
        return {"rows": [row(f) for f in self.mem.history(id)]}

    def op_as_of(self, t_us: int) -> dict[str, Any]:
        return {"rows": [row(f) for f in self.mem.as_of(from_us(t_us)).timeline()]}

    def op_put(self, text: str, id: str | None = None) -> dict[str, Any]:
        return {"id": self.mem.put(text, id=id)}

    def op_try_writes(self) -> dict[str, Any]:
        """Every write method of a read-only handle: the error class each raised."""
        mem = self.mem
        fid = mem.ids()[0] if len(mem) else "none"
        calls = {"put": lambda: mem.put("x"), "put_many": lambda: mem.put_many([{"text": "x"}]),
                 "update": lambda: mem.update(fid, text="x"), "delete": lambda: mem.delete(fid),
                 "seal": mem.seal, "compact": mem.compact}
        out = {}
        for name, call in calls.items():
            try:
                call()
                out[name] = None
            except ReadOnlyError as exc:
                out[name] = type(exc).__name__
        return out

    def op_poll(self, target: int, width: int, timeout: float) -> dict[str, Any]:
        """refresh() in a loop until ``target`` frames are visible; checks each state seen.

        Frames are expected to be ids ``0..n-1`` (zero-padded to ``width``) in timeline order
        with text ``"text <i>"``: every refresh must show a prefix of them.
        """
        counts: list[int] = []
        problems: list[str] = []
        generations: set[int] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                generations.add(self.mem.refresh())
                ids = self.mem.ids()
                if ids and self.mem.get(ids[-1]).text != f"text {int(ids[-1])}":
                    problems.append(f"wrong text for {ids[-1]}")
            except MemvidError as exc:
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            if ids != [f"{i:0{width}d}" for i in range(len(ids))]:
                problems.append(f"not a prefix: {len(ids)} ids, first gap near "
                                f"{next((i for i, x in enumerate(ids) if int(x) != i), -1)}")
            if counts and len(ids) < counts[-1]:
                problems.append(f"went back from {counts[-1]} to {len(ids)} frames")
            counts.append(len(ids))
            if len(ids) >= target:
                break
        return {"counts": counts, "problems": problems[:20], "generations": len(generations)}

    def op_write(self, method: str, args: list[Any] | None = None,
                 kwargs: dict[str, Any] | None = None,
                 collection: str | None = None) -> dict[str, Any]:
        """Call a write method of the open memory (put, update, delete, seal, compact...),
        or of one of its collections; answers once it returned, that is once the write is
        acknowledged."""
        target = self.mem if collection is None else self.mem.collection(collection)
        return {"result": getattr(target, method)(*(args or []), **(kwargs or {}))}

    def op_close(self) -> dict[str, Any]:
        self.mem.close()
        return {}


def error(exc: MemvidError) -> dict[str, Any]:
    return {"error": type(exc).__name__, "message": str(exc),
            "holder_pid": getattr(exc, "holder_pid", None)}


def main() -> None:
    session = Session()
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd.pop("op")
        if op == "exit":
            break
        try:
            send(getattr(session, f"op_{op}")(**cmd))
        except MemvidError as exc:
            send(error(exc))
    if session.mem is not None:
        session.mem.close()


if __name__ == "__main__":
    main()
