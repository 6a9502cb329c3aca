"""Runs are written from their parts' own buffers, and merged-away runs' pages are let go."""

from __future__ import annotations

import zlib

from memvid_store import Memory
from memvid_store.engine import compact
from memvid_store.engine.fileio import FileView
from memvid_store.engine.runs import encode_run
from memvid_store.engine.store import merge_runs


def _filled(path: str, commits: int) -> Memory:
    mem = Memory.create(path, dim=4)
    for c in range(commits):
        mem.put_many([{"id": f"d{c}-{i}", "text": f"note {c} {i} alpha", "embedding":
                       [1.0, c, i, 0.5], "metadata": {"n": i, "tag": f"t{i % 3}"}}
                      for i in range(20)])
        mem.seal()  # one run per commit
    return mem


def test_an_encoded_run_is_its_pieces_back_to_back(tmp_path) -> None:
    mem = _filled(str(tmp_path / "m.mv2"), 3)
    snap = mem._snap()
    merged = merge_runs(list(snap.runs), snap)
    encoded = encode_run(merged)
    data = b"".join(encoded.pieces)
    assert len(data) == encoded.length
    assert zlib.crc32(data) == encoded.crc
    assert encoded.meta["n"] == sum(r.n for r in snap.runs)
    assert all(len(piece) for piece in encoded.pieces)
    mem.close()


def test_a_commit_lets_go_of_the_pages_of_the_runs_it_merged_away(tmp_path,
                                                                    monkeypatch) -> None:
    released: list[tuple[int, int, int]] = []  # (map, offset, size) of each release
    real = FileView.release

    def spy(self, offset: int, size: int) -> None:
        released.append((id(self), offset, size))
        real(self, offset, size)

    monkeypatch.setattr(FileView, "release", spy)
    mem = _filled(str(tmp_path / "m.mv2"), 1)
    merged_away: set[tuple[int, int, int]] = set()
    for c in range(1, 12):
        before = {(id(r.view), r.ref.offset, r.ref.length) for r in mem._snap().runs}
        mem.put_many([{"id": f"e{c}", "text": "more", "embedding": [0.0, 1.0, 0.0, c]}])
        mem.seal()
        after = {(id(r.view), r.ref.offset, r.ref.length) for r in mem._snap().runs}
        merged_away |= before - after
    assert len({view for view, _, _ in merged_away}) > 1  # runs read through older maps
    assert merged_away <= set(released)  # each through the map it was read with
    assert len(mem.find("alpha", k=50, mode="lexical")) == 20  # they still read
    assert mem.get("d0-7").metadata == {"n": 7, "tag": "t1"}
    mem.close()


def test_compaction_lets_go_of_the_pages_it_read(tmp_path, monkeypatch) -> None:
    mem = _filled(str(tmp_path / "m.mv2"), 6)
    released: list[tuple[int, int, int]] = []
    real = FileView.release

    def spy(self, offset: int, size: int) -> None:
        released.append((id(self), offset, size))
        real(self, offset, size)

    monkeypatch.setattr(FileView, "release", spy)
    snap = mem._snap()
    old_maps = {id(r.view): r.view.length for r in snap.runs} | {id(snap.view): snap.view.length}
    monkeypatch.setattr(compact, "CHUNK_BYTES", 256)  # a chunk every few versions
    mem.compact()
    whole = {(view, 0, length) for view, length in old_maps.items()}
    assert len(old_maps) > 1 and whole <= set(released)  # every map of the old file
    assert len(mem.find("alpha", k=200, mode="lexical")) == 120
    mem.close()
