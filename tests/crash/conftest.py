"""Shared helpers for crash tests: the writer subprocess, ack logs, states, file layout."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memvid_store import FrameNotFoundError, Memory, MemvidError
from memvid_store.engine import format as fmt
from memvid_store.engine import wal as walfmt

WRITER = Path(__file__).with_name("writer_proc.py")
WAL_SIZE = 1 << 20
KILLED = 137

# canonical frame state: (text, metadata as sorted JSON, tags, embedding)
Canon = tuple[str, str, tuple[str, ...], tuple[float, ...] | None]


def crash_iterations(default: int = 50) -> int:
    """Number of kill -9 iterations (``MEMVID_CRASH_ITERATIONS`` overrides)."""
    raw = os.environ.get("MEMVID_CRASH_ITERATIONS", "")
    return int(raw) if raw.strip().isdigit() and int(raw) > 0 else default


def child_env(fault: str | None = None) -> dict[str, str]:
    """Environment for a writer subprocess, with ``MEMVID_FAULT`` set only if asked."""
    env = {k: v for k, v in os.environ.items() if k != "MEMVID_FAULT"}
    if fault:
        env["MEMVID_FAULT"] = fault
    return env


# ---------------------------------------------------------------------------- states


def canon(text: str, metadata: dict | None, tags: Iterable[str] | None,
          embedding: Iterable[float] | None) -> Canon:
    return (text, json.dumps(metadata or {}, sort_keys=True), tuple(tags or ()),
            None if embedding is None else tuple(float(x) for x in embedding))


def canon_item(item: dict[str, Any]) -> Canon:
    return canon(item["text"], item["metadata"], item["tags"], item["embedding"])


def canon_frame(frame: Any, with_embedding: bool = True) -> Canon:
    return canon(frame.text, frame.metadata, frame.tags,
                 frame.embedding if with_embedding else None)


@dataclass
class Model:
    """Expected content of a file: live items by id and deleted ids."""

    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def apply(self, entry: dict[str, Any]) -> Model:
        """Apply one logged op in place; returns self."""
        for item in entry.get("items", ()):
            self.live[item["id"]] = item
            self.deleted.discard(item["id"])
        if entry["op"] == "delete":
            for fid in entry["ids"]:
                self.live.pop(fid, None)
                self.deleted.add(fid)
        return self

    def copy(self) -> Model:
        return Model(copy.deepcopy(self.live), set(self.deleted))

    def state(self) -> dict[str, Canon]:
        return {fid: canon_item(item) for fid, item in self.live.items()}

    def to_json(self) -> dict[str, Any]:
        return {"live": self.live, "deleted": sorted(self.deleted)}


@dataclass
class AckLogView:
    """Parsed ack log: acknowledged ops in order and the op in flight at death, if any."""

    ready: bool
    acked: list[dict[str, Any]]
    inflight: dict[str, Any] | None
    closed: bool


def read_acks(path: str | os.PathLike[str]) -> AckLogView:
    """Parse an ack log; a final line without newline (cut by the kill) is ignored."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return AckLogView(False, [], None, False)
    lines = raw.split("\n")[:-1]  # the last element is "" or a partial line
    ready = closed = False
    acked: list[dict[str, Any]] = []
    begun: dict[int, dict[str, Any]] = {}
    for line in lines:
        obj = json.loads(line)
        ev = obj["ev"]
        if ev == "ready":
            ready = True
        elif ev in ("closed", "exit"):
            closed = True
        elif ev == "begin":
            begun[obj["n"]] = obj
        elif ev == "ack":
            begun.pop(obj["n"])
            acked.append(obj)
    if len(begun) > 1:
        raise AssertionError(f"more than one op in flight: {sorted(begun)}")
    inflight = next(iter(begun.values()), None)
    return AckLogView(ready, acked, inflight, closed)


def observe(mem: Memory, probe_ids: Iterable[str] = ()) -> dict[str, Canon]:
    """Every current frame of ``mem`` by id, read both through the timeline and get().

    Ids in ``probe_ids`` that are not current must raise FrameNotFoundError.
    """
    listed = mem.ids()
    assert len(listed) == len(set(listed)), "ids() lists an id twice"
    timeline = {f.id: canon_frame(f) for f in mem.timeline()}
    assert set(timeline) == set(listed)
    out: dict[str, Canon] = {}
    for fid in listed:
        out[fid] = canon_frame(mem.get(fid))
        assert out[fid] == timeline[fid], f"get({fid!r}) disagrees with the timeline"
    for fid in set(probe_ids) - set(listed):
        try:
            mem.get(fid)
        except FrameNotFoundError:
            continue
        raise AssertionError(f"{fid!r} is not listed by ids() but get() finds it")
    assert len(mem) == len(out), f"len() is {len(mem)}, {len(out)} frames are current"
    return out


def describe_diff(got: dict[str, Canon], want: dict[str, Canon], limit: int = 8) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = sorted(k for k in set(got) & set(want) if got[k] != want[k])
    parts = [f"missing {len(missing)}: {missing[:limit]}", f"extra {len(extra)}: {extra[:limit]}",
             f"different {len(wrong)}: {wrong[:limit]}"]
    for k in wrong[:2]:
        parts.append(f"  {k}: got {str(got[k])[:160]} want {str(want[k])[:160]}")
    return "; ".join(parts)


def match_state(got: dict[str, Canon], candidates: dict[str, dict[str, Canon]]) -> str:
    """Name of the candidate state ``got`` equals; AssertionError with a diff otherwise."""
    for name, want in candidates.items():
        if got == want:
            return name
    diffs = " || ".join(f"vs {name}: {describe_diff(got, want)}"
                        for name, want in candidates.items())
    raise AssertionError(f"state matches none of {list(candidates)}: {diffs}")


# ------------------------------------------------------------------- script steps


def item(fid: str, text: str, metadata: dict | None = None) -> dict[str, Any]:
    """Expected state of a frame written with text and metadata only."""
    return {"id": fid, "text": text, "metadata": metadata or {}, "tags": [], "embedding": None}


def put(fid: str, text: str, metadata: dict | None = None) -> dict[str, Any]:
    return {"op": "put", "items": [item(fid, text, metadata)]}


def put_many(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"op": "put_many", "items": items}


def update(fid: str, text: str, metadata: dict) -> dict[str, Any]:
    return {"op": "update", "id": fid, "set": {"text": text, "metadata": metadata},
            "items": [item(fid, text, metadata)]}


def delete(fid: str) -> dict[str, Any]:
    return {"op": "delete", "ids": [fid]}


SEAL: dict[str, Any] = {"op": "seal"}
EXIT: dict[str, Any] = {"op": "exit"}  # leave without sealing


# ------------------------------------------------------------------------ processes


def start_writer(args: list[str], workdir: Path, fault: str | None = None) -> subprocess.Popen:
    """Start writer_proc.py with the venv's interpreter; stderr goes to a file in workdir."""
    err = open(workdir / "writer.stderr", "ab")  # noqa: SIM115
    try:
        return subprocess.Popen([sys.executable, str(WRITER), *args], env=child_env(fault),
                                stdout=subprocess.DEVNULL, stderr=err, cwd=workdir)
    finally:
        err.close()


def writer_stderr(workdir: Path) -> str:
    path = workdir / "writer.stderr"
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def run_script(path: Path, steps: list[dict[str, Any]], workdir: Path, name: str,
               fault: str | None = None, timeout: float = 60.0) -> tuple[int, AckLogView]:
    """Run a scripted writer to completion; returns (exit code, parsed ack log)."""
    steps_file = workdir / f"{name}.steps.json"
    steps_file.write_text(json.dumps(steps))
    ack = workdir / f"{name}.ack"
    proc = start_writer(["script", str(path), str(ack), str(steps_file)], workdir, fault)
    try:
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, read_acks(ack)


def kill_writer_at_random(mode: str, path: Path, workdir: Path, model_json: Any, seed: int,
                          rng: Any, *, max_run: float, early_kill: float = 0.0) -> Path:
    """Run a ``mode`` writer (writer_proc.py) on ``path`` from the model ``model_json`` and
    SIGKILL it at a random point (``early_kill``: share of kills aimed at startup, open
    and recovery; the others land within ``max_run`` seconds of its first ack); returns
    its ack log."""
    import signal

    model_file = workdir / f"model-{seed}.json"
    model_file.write_text(json.dumps(model_json))
    ack = workdir / f"ack-{seed}.log"
    proc = start_writer([mode, str(path), str(ack), str(model_file), str(seed), "60"],
                        workdir)
    try:
        if rng.random() < early_kill:
            time.sleep(rng.uniform(0, 0.12))
        else:
            ready = wait_for(lambda: ack.exists() and ack.stat().st_size > 0, 30)
            assert ready, f"writer never became ready: {writer_stderr(workdir)}"
            time.sleep(rng.uniform(0, max_run))
        assert proc.poll() is None, (
            f"writer exited by itself with {proc.returncode}: {writer_stderr(workdir)}")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return ack


def wait_for(predicate: Callable[[], bool], timeout: float, poll: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


# --------------------------------------------------------------------------- layout


@dataclass
class WalRecord:
    start: int  # file offset of the record
    end: int  # file offset just past header + payload (padding excluded)
    seq: int


@dataclass
class Layout:
    """Where the regions of a .mv2 file lie (parsed from its bytes with the format module)."""

    size: int
    header: fmt.Header
    slots: dict[int, fmt.Header]
    wal: list[WalRecord]
    wal_end: int  # file offset past the last replayable record
    tocs: list[tuple[int, int, int]]  # (public generation, offset, length), newest first
    live_segments: list[fmt.SegmentRef]
    dead_segments: list[fmt.SegmentRef]  # only reachable from older TOCs
    blocks: list[tuple[int, int]]  # payload blocks (offset, length)
    vblocks: list[tuple[int, int]]  # vector blocks (offset, length)

    def segments(self, kind: str, live: bool = True) -> list[fmt.SegmentRef]:
        pool = self.live_segments if live else self.dead_segments
        return [s for s in pool if s.kind == kind]


def parse_layout(data: bytes) -> Layout:
    header, _ = fmt.pick_header(data[: fmt.HEADER_SIZE])
    slots = {}
    for slot in (0, 1):
        with contextlib.suppress(MemvidError):
            raw = data[slot * fmt.SLOT_SIZE : (slot + 1) * fmt.SLOT_SIZE]
            slots[slot] = fmt.unpack_header(raw, slot)
    tocs: list[tuple[int, int, int]] = []
    seen: dict[int, fmt.SegmentRef] = {}
    live: list[fmt.SegmentRef] = []
    ref: tuple[int, int, int] | None = (header.toc_offset, header.toc_len, header.toc_crc)
    first = True
    while ref is not None:
        off, length, _crc = ref
        toc = fmt.Toc.decode(data[off : off + length], off)
        tocs.append((toc.public_generation, off, length))
        for seg in toc.segments:
            if first:
                live.append(seg)
            seen.setdefault(seg.offset, seg)
        first = False
        ref = toc.prev
    live_offsets = {s.offset for s in live}
    dead = [s for off, s in sorted(seen.items()) if off not in live_offsets]
    blocks: set[tuple[int, int]] = set()
    vblocks: set[tuple[int, int]] = set()
    for seg in seen.values():
        if seg.kind == "run":
            _magic, hlen, _hcrc = struct.unpack_from("<4sII", data, seg.offset)
            run_header = json.loads(data[seg.offset + 12 : seg.offset + 12 + hlen])
            blocks.update((int(b[0]), int(b[1])) for b in run_header["blocks"])
            width = 4 * int(run_header["dim"] or 0)
            vblocks.update((int(b[0]), int(b[1]) * width)
                           for b in run_header.get("vblocks", ()))
    region = data[header.wal_offset : header.wal_offset + header.wal_size]
    rep = walfmt.replay(region, header.wal_checkpoint_seq)
    records, pos = [], 0
    for seq, payload in rep.records:
        start = header.wal_offset + pos
        records.append(WalRecord(start, start + walfmt.REC_HEADER + len(payload), seq))
        pos += fmt.align(walfmt.REC_HEADER + len(payload))
    return Layout(len(data), header, slots, records, header.wal_offset + rep.end, tocs, live,
                  dead, sorted(blocks), sorted(vblocks))
