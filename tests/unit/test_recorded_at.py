"""Replaying history with ``recorded_at`` reproduces every ``as_of`` answer."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from memvid_store import InvalidInputError, Memory


def _events(mem: Memory) -> list[tuple]:
    """(record time, kind, payload) for every write, from the change log."""
    return [(c.recorded_at, c.kind, c.frame if c.kind == "put" else c.id)
            for c in mem.changes()]


def _replay(events: list[tuple], target: Memory) -> None:
    i = 0
    while i < len(events):
        t, kind = events[i][0], events[i][1]
        j = i
        while j < len(events) and events[j][:2] == (t, kind):
            j += 1
        batch = [e[2] for e in events[i:j]]
        if kind == "put":
            target.put_many([{"id": f.id, "text": f.text, "metadata": f.metadata,
                              "tags": f.tags, "created_at": f.created_at,
                              "embedding": f.embedding} for f in batch], recorded_at=t)
        else:
            target.delete_many(batch, recorded_at=t)
        i = j


def _state(view) -> list[tuple]:
    return sorted((f.id, f.text, f.version, tuple(f.tags)) for f in view.timeline())


def test_replay_reproduces_as_of_answers(tmp_path):
    rng = random.Random(7)
    src = Memory.create(tmp_path / "src.mv2", wal_size=1 << 20, sync=False)
    ids: list[str] = []
    for round_ in range(12):
        ids += src.put_many([{"text": f"note {round_}-{i} " + "x" * rng.randint(10, 3000),
                              "embedding": [rng.random() + 0.01 for _ in range(8)],
                              "tags": [f"r{round_}"]} for i in range(40)])
        live = [i for i in ids if i in src]
        for fid in rng.sample(live, 5):
            src.update(fid, text=f"updated {round_} " + "y" * rng.randint(10, 2000))
        src.delete_many(rng.sample([i for i in ids if i in src], 3))
        if round_ % 4 == 3:
            src.seal()
    events = _events(src)
    times = sorted({e[0] for e in events})

    dst = Memory.create(tmp_path / "dst.mv2", wal_size=1 << 20, sync=False,
                        created_at=src.stats().created_at)
    _replay(events, dst)
    for mem in (src, dst):
        mem.close()
    src, dst = Memory.open(tmp_path / "src.mv2", readonly=True), \
        Memory.open(tmp_path / "dst.mv2", readonly=True)
    assert _state(src) == _state(dst)
    probes = times + [t - timedelta(microseconds=1) for t in times]
    for t in rng.sample(probes, 60):
        assert _state(src.as_of(t)) == _state(dst.as_of(t)), t
    assert [(c.kind, c.id, c.recorded_at) for c in src.changes()] == \
        [(c.kind, c.id, c.recorded_at) for c in dst.changes()]
    mid = times[len(times) // 2]
    assert [c.recorded_at for c in src.as_of(mid).changes()] == \
        [e[0] for e in events if e[0] <= mid]
    fid = rng.choice(ids)
    assert [(f.text, f.valid_from, f.valid_to) for f in src.history(fid)] == \
        [(f.text, f.valid_from, f.valid_to) for f in dst.history(fid)]


def test_recorded_at_must_move_forward(tmp_path):
    with Memory.create(tmp_path / "m.mv2") as mem:
        fid = mem.put("now")
        past = mem.get(fid).valid_from - timedelta(seconds=1)
        with pytest.raises(InvalidInputError, match="time order"):
            mem.put_many([{"text": "earlier"}], recorded_at=past)
        with pytest.raises(InvalidInputError, match="time order"):
            mem.delete_many([fid], recorded_at=past)
        assert mem.get(fid).text == "now" and len(mem) == 1
        later = mem.get(fid).valid_from + timedelta(seconds=1)
        mem.delete_many([fid], recorded_at=later)
        assert fid not in mem
        assert mem.history(fid)[-1].valid_to == later
        with pytest.raises(InvalidInputError):
            mem.put_many([{"text": "naive"}], recorded_at=later.replace(tzinfo=None)
                         + timedelta(days=1))


def test_changes_can_skip_damaged_payloads(tmp_path):
    import os

    from memvid_store import CorruptFileError

    path = tmp_path / "m.mv2"
    with Memory.create(path) as mem:
        ids = mem.put_many([{"text": f"payload number {i} " * 20} for i in range(5)])
        victim_offset = None
    with Memory.open(path, readonly=True) as mem:
        snap = mem._snap()
        ref = snap.get(ids[2], None)
        victim_offset = ref.run.part("poff")[ref.row]
    with open(path, "r+b") as f:
        f.seek(victim_offset + 3)
        byte = f.read(1)
        f.seek(victim_offset + 3)
        f.write(bytes([byte[0] ^ 0xFF]))
        os.fsync(f.fileno())
    with Memory.open(path, readonly=True, cache=0) as mem:
        with pytest.raises(CorruptFileError):
            list(mem.changes())
        damaged: list[str] = []
        got = [c.id for c in mem.changes(on_damaged=damaged.append)]
        assert got == [i for i in ids if i != ids[2]]
        assert len(damaged) == 1 and ids[2] in damaged[0]
