"""Fault injection: a writer dies at each named crash point (``MEMVID_FAULT``).

A first writer lays down a known base (sealed frames plus unsealed WAL records) and exits
without sealing; a second writer, armed with the fault, runs a known sequence and dies at
the point. The file must reopen to exactly the state before or after the interrupted
operation, verify, and accept writes again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memvid_store import Memory
from memvid_store.engine import _faults

from .conftest import (
    EXIT,
    KILLED,
    SEAL,
    Model,
    canon_item,
    delete,
    item,
    match_state,
    observe,
    put,
    put_many,
    run_script,
    update,
)

POINTS = ("wal.torn_record", "wal.before_fsync", "commit.after_segments", "commit.after_toc",
          "commit.torn_header", "commit.after_header", "compact.before_rename")


BASE = [
    *(put(f"a{i}", f"alpha frame {i} " * (i + 1), {"i": i}) for i in range(1, 5)),
    put_many([item(f"b{i}", f"batch frame {i}") for i in range(1, 4)]),
    SEAL,
    put("c1", "in the wal, not sealed"),
    update("a1", "alpha one, updated", {"i": 100}),
    delete("a2"),
    EXIT,
]


def big_items(prefix: str, count: int, size: int) -> list[dict[str, Any]]:
    return [item(f"{prefix}{i}", f"{prefix}{i} " + "x" * size) for i in range(count)]


# name -> (MEMVID_FAULT, steps after the base, the in-flight op must have had no effect)
SCENARIOS: dict[str, tuple[str, list[dict[str, Any]], bool]] = {
    "wal.torn_record": ("wal.torn_record", [put("x1", "torn")], True),
    "wal.before_fsync": ("wal.before_fsync", [put("x1", "unsynced")], False),
    "commit.after_segments": ("commit.after_segments", [put("x1", "sealing"), SEAL], False),
    "commit.after_toc": ("commit.after_toc", [put("x1", "sealing"), SEAL], False),
    "commit.torn_header": ("commit.torn_header", [put("x1", "sealing"), SEAL], False),
    "commit.after_header": ("commit.after_header", [put("x1", "sealing"), SEAL], False),
    "compact.before_rename": ("compact.before_rename",
                              [update("a3", "alpha three v2", {"i": 3}),
                               {"op": "compact", "retain": "now"}], False),
    # a batch larger than wal_size / 4 is committed directly, without a WAL record
    "commit.after_toc-direct-batch": ("commit.after_toc",
                                      [put_many(big_items("d", 40, 8000))], True),
    # the WAL fills up: the automatic seal inside put_many dies
    "commit.after_segments-auto-seal": ("commit.after_segments",
                                        [put_many(big_items(f"w{k}-", 4, 50_000))
                                         for k in range(6)], True),
}


def make_base(path: Path, workdir: Path) -> Model:
    code, log = run_script(path, BASE, workdir, "base")
    assert code == 0 and log.closed, f"base writer failed with {code}"
    model = Model()
    for entry in log.acked:
        model.apply(entry)
    return model


def candidates_after(model: Model, log: Any) -> dict[str, Model]:
    acked = model.copy()
    for entry in log.acked:
        acked.apply(entry)
    out = {"before": acked}
    if log.inflight is not None:
        out["after"] = acked.copy().apply(log.inflight)
    return out


def probe_ids(cands: dict[str, Model]) -> set[str]:
    ids: set[str] = set()
    for m in cands.values():
        ids |= set(m.live) | m.deleted
    return ids


def header_only(problems: list[str]) -> bool:
    return bool(problems) and all(p.startswith("header:") for p in problems)


@pytest.mark.crash
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_point_recovers(tmp_path: Path, name: str) -> None:
    """Death at a crash point leaves the state before or after the interrupted op."""
    fault, steps, must_be_before = SCENARIOS[name]
    path = tmp_path / "fault.mv2"
    base = make_base(path, tmp_path)
    with Memory.open(path, readonly=True) as ro:
        base_commits = len(ro.commits())
        assert match_state(observe(ro, probe_ids({"b": base})), {"base": base.state()})
    code, log = run_script(path, [*steps, EXIT], tmp_path, "faulted", fault=f"{fault}:1")
    assert code == KILLED, f"{name}: writer exited with {code}, expected death at {fault}"
    assert log.inflight is not None, f"{name}: the writer died outside any operation"
    cands = candidates_after(base, log)
    if must_be_before:
        cands.pop("after", None)
    probe = probe_ids(cands)

    with Memory.open(path, readonly=True) as ro:
        state = match_state(observe(ro, probe), {k: m.state() for k, m in cands.items()})
        report = ro.verify()
        generation, commits = ro.generation, len(ro.commits())
    if fault == "commit.torn_header":
        # half a header slot on disk is indistinguishable from a damaged slot: verify may
        # name it, nothing else; the next commit rewrites that slot (checked below)
        assert report.ok or header_only(report.problems), report.problems
    else:
        assert report.ok, f"{name}: verify() problems {report.problems}"
    if fault in ("commit.after_segments", "commit.after_toc"):
        assert commits == base_commits, "an uncommitted commit became visible"
    if fault == "commit.torn_header":
        # the new TOC and its footer were fsynced before the header write tore: recovering
        # that complete commit from the footer is allowed, a partial state never is
        assert commits in (base_commits, base_commits + 1), commits
    if fault == "commit.after_header":
        assert commits == base_commits + 1, "a durable header was not used"

    # the file is writable again; the new commit and a later reopen keep everything
    with Memory.open(path) as rw:
        assert match_state(observe(rw, probe), {state: cands[state].state()}) == state
        rw.put("written after recovery", id="z1")
    final = cands[state].copy().apply(put("z1", "written after recovery"))
    with Memory.open(path, readonly=True) as ro:
        assert match_state(observe(ro, probe | {"z1"}), {"final": final.state()})
        report = ro.verify()
        assert report.ok, f"{name}: verify() after rewrite: {report.problems}"
        assert ro.generation > generation
    if name == "compact.before_rename":
        # before: both versions of a3; after (compacted with retain_after=now): the newest
        with Memory.open(path, readonly=True) as ro:
            texts = [f.text for f in ro.history("a3")]
        assert texts in ([base.live["a3"]["text"], "alpha three v2"], ["alpha three v2"]), texts


@pytest.mark.crash
def test_torn_wal_record_keeps_earlier_records(tmp_path: Path) -> None:
    """The torn put is absent; every acknowledged put before it, sealed or not, is present."""
    path = tmp_path / "torn.mv2"
    base = make_base(path, tmp_path)
    code, _ = run_script(path, [put("t1", "torn away"), EXIT], tmp_path, "torn",
                         fault="wal.torn_record")
    assert code == KILLED
    with Memory.open(path, readonly=True) as ro:
        got = observe(ro, {"t1", *base.live, *base.deleted})
    assert "t1" not in got
    assert got == base.state()
    assert got["c1"] == canon_item(item("c1", "in the wal, not sealed"))


@pytest.mark.crash
@pytest.mark.parametrize("point", POINTS)
def test_fault_fires_on_nth_visit(tmp_path: Path, point: str) -> None:
    """``MEMVID_FAULT=<point>:2`` lets the first visit pass and kills at the second."""
    assert point in _faults.__doc__
    path = tmp_path / "nth.mv2"
    make_base(path, tmp_path)
    if point.startswith("wal."):
        steps = [put("p1", "first visit"), put("p2", "second visit")]
    elif point.startswith("commit."):
        steps = [put("p1", "first visit"), SEAL, put("p2", "second visit"), SEAL]
    else:
        steps = [put("p1", "first visit"), {"op": "compact"}, put("p2", "second visit"),
                 {"op": "compact"}]
    code, log = run_script(path, [*steps, EXIT], tmp_path, "nth", fault=f"{point}:2")
    assert code == KILLED, f"{point}:2 did not kill the writer (exit code {code})"
    assert [e["n"] for e in log.acked] == list(range(len(steps) - 1))
    assert log.inflight is not None and log.inflight["n"] == len(steps) - 1
    with Memory.open(path, readonly=True) as ro:
        assert ro.get("p1").text == "first visit"
        assert ro.verify().ok or point == "commit.torn_header"
