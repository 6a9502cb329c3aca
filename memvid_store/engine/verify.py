"""Full-file verification: every checksum, every reachable commit, the WAL."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import CorruptFileError, FormatError
from .fileio import FileView
from .format import HEADER_SIZE, SLOT_SIZE, crc32, pick_header
from .history import iter_tocs
from .records import decode_ops
from .runs import RunReader
from .snapshot import Snapshot
from .store import read_state
from .wal import replay

if TYPE_CHECKING:
    from .source import ByteSource


def verify_file(fd: int | ByteSource) -> tuple[list[str], dict[str, int]]:
    """Return (problems, counts of what was checked). Never raises for damage.

    ``fd``: a local file's descriptor, or a ``ByteSource`` (every byte is read)."""
    problems: list[str] = []
    checked = {"header_slots": 0, "tocs": 0, "segments": 0, "blocks": 0, "wal_records": 0}
    local = isinstance(fd, int)
    pread = (lambda n, off: os.pread(fd, n, off)) if local else fd.pread
    raw = pread(HEADER_SIZE, 0)
    try:
        _, slot_problems = pick_header(raw)
    except FormatError as exc:
        return [f"header: {exc}"], checked
    try:
        state = read_state(fd)
    except FormatError as exc:
        return [f"header: {p}" for p in slot_problems] + [
            f"{getattr(exc, 'region', 'file')}: {exc}"], checked
    other_problems = [p for p in state.problems if p not in slot_problems]
    if state.toc.prev is None and any(not any(raw[s * SLOT_SIZE : (s + 1) * SLOT_SIZE])
                                      for s in (0, 1)):
        # a file's first commit has written one slot only; the other is not damage
        slot_problems = [p for p in slot_problems if "no .mv2 magic" not in p]
    checked["header_slots"] = 2 - len(slot_problems)
    problems += [f"header: {p}" for p in slot_problems]
    problems += other_problems
    end = state.header.committed_end
    view = FileView(fd, end, use_mmap=False) if local else fd.view(end)
    snap = Snapshot(view, state.header, state.toc, [], [])
    seen: set[int] = set()
    try:
        for toc in iter_tocs(snap):
            checked["tocs"] += 1
            for seg in toc.segments:
                if seg.offset in seen:
                    continue
                seen.add(seg.offset)
                checked["segments"] += 1
                problems += _check_segment(view, seg, seen, checked)
    except CorruptFileError as exc:
        problems.append(f"toc chain: {exc.message} (earlier commits unreachable)")
    region = pread(state.header.wal_size, state.header.wal_offset)
    rep = replay(region, state.header.wal_checkpoint_seq, scan_damage=True)
    problems += rep.problems
    for _, payload in rep.records:
        checked["wal_records"] += 1
        try:
            decode_ops(payload, 0, state.header.wal_offset)
        except CorruptFileError as exc:
            problems.append(f"wal: {exc.message}")
    return problems, checked


def _check_segment(view: FileView, seg, seen: set[int], checked: dict[str, int]) -> list[str]:
    where = f"segment:{seg.kind} at offset {seg.offset}"
    try:
        data = view.read(seg.offset, seg.length, f"segment:{seg.kind}")
    except CorruptFileError as exc:
        return [f"{where}: {exc.message}"]
    if crc32(data) != seg.crc:
        if seg.kind != "run":
            return [f"{where}: checksum mismatch"]
        found = RunReader(view, seg).verify()
        return found or [f"{where}: checksum mismatch"]
    if seg.kind != "run":
        return []
    problems = []
    try:
        header = RunReader(view, seg).header
    except CorruptFileError as exc:
        return [f"{where}: {exc.message}"]
    width = 4 * int(header["dim"] or 0)
    ranges = [("blocks", off, length, crc) for off, length, crc in header["blocks"]]
    ranges += [("vectors", off, rows * width, crc) for off, rows, crc in header["vblocks"]]
    for kind, off, length, crc in ranges:
        if off in seen:
            continue
        seen.add(off)
        checked["blocks"] += 1
        try:
            if crc32(view.read(off, length, f"segment:{kind}")) != crc:
                problems.append(f"segment:{kind} at offset {off}: checksum mismatch")
        except CorruptFileError as exc:
            problems.append(f"segment:{kind} at offset {off}: {exc.message}")
    return problems
