"""Page checks of run parts: a lookup checks the pages it reads, damage is caught there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvid_store import Memory, WarmupConfig
from memvid_store.engine import part_pages
from memvid_store.engine.part_pages import PAGE_BYTES, PagedPart, page_checks
from memvid_store.engine.terms import term_hash
from memvid_store.errors import ChecksumError
from tests.cli.test_doctor import flip

START = datetime(2026, 1, 1, tzinfo=UTC)
ROWS = 6000  # "created" holds 6000 x 8 bytes: 12 pages


def build(path: Path, n: int = ROWS) -> None:
    with Memory.create(path) as mem:
        mem.put_many([{"id": f"f{i:05d}", "text": f"note {i}",
                       "created_at": START + timedelta(seconds=i)} for i in range(n)])
        mem.seal()


def lazy(path: Path) -> Memory:
    """The file opened without loading any tier (lookups read what they need)."""
    return Memory.open(path, readonly=True,
                       warmup=WarmupConfig(preload_threshold=0, background=False))


def main_run(mem: Memory):
    (run,) = mem._snap().runs
    return run


def part_page_offset(path: Path, name: str, page: int) -> int:
    """File offset of byte 100 of ``page`` of part ``name`` of the file's run."""
    with lazy(path) as mem:
        run = main_run(mem)
        start, length, _ = run._locate(name)
        assert length > (page + 1) * PAGE_BYTES
        return start + page * PAGE_BYTES + 100


def test_a_lookup_checks_only_the_pages_it_reads(tmp_path):
    build(tmp_path / "m.mv2")
    with lazy(tmp_path / "m.mv2") as mem:
        frame = mem.get("f03000")
        assert frame.text == "note 3000"
        run = main_run(mem)
        for name in ("created", "flags", "poff", "idoff", "ids"):
            if name in run._paged:
                assert run._paged[name].count <= 2, name
        assert "created" not in run._parts  # never checked whole
        assert run._paged["hsort"].count < len(run._paged["hsort"].checked) / 2  # a search


def test_a_damaged_page_fails_its_rows_and_no_others(tmp_path):
    path = tmp_path / "m.mv2"
    build(path)
    flip(path, part_page_offset(path, "created", 5))  # rows 2560-3071
    with lazy(path) as mem:
        assert mem.get("f00100").text == "note 100"
        assert mem.get("f05900").text == "note 5900"
        with pytest.raises(ChecksumError, match="page 5 of run part 'created'"):
            mem.get("f02700")
        report = mem.verify()
        assert not report.ok and any("'created'" in p for p in report.problems)


def test_a_damaged_page_fails_every_read_of_it_not_only_the_first(tmp_path):
    path = tmp_path / "m.mv2"
    build(path)
    flip(path, part_page_offset(path, "created", 5))  # rows 2560-3071
    with lazy(path) as mem:
        run = main_run(mem)
        assert run.item("created", 100) == run.row_items(("created",), 100)[0]
        for _ in range(2):  # a failed page is not remembered as checked
            with pytest.raises(ChecksumError, match="page 5 of run part 'created'"):
                run.row_items(("flags", "created"), 2700)
            with pytest.raises(ChecksumError):
                run.item("created", 2600)
        assert run.row_items(("created", "version"), 3100) == [
            run.item("created", 3100), run.item("version", 3100)]


def test_a_part_read_at_many_pages_is_checked_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(part_pages, "WHOLE_AFTER_PAGES", 3)  # 12 pages: a quarter is 3
    build(tmp_path / "m.mv2")
    with lazy(tmp_path / "m.mv2") as mem:
        run = main_run(mem)
        for i in (0, 1000, 2000):
            mem.get(f"f{i:05d}")
        assert run._paged["created"].count == 3 and "created" not in run._parts
        mem.get("f04000")
        assert "created" in run._parts and "created" not in run._paged


def test_one_term_of_a_large_posting_part_checks_its_own_pages(languages):
    """A term's postings, a slice of the run's posting rows, are read with their pages
    checked, not the whole part (a quarter of the part's pages would check it whole)."""
    with lazy(languages) as mem:
        assert mem.count({"lang": {"$ne": "en"}}) == ROWS // 50
        run = main_run(mem)
        paged = run._paged["trows"]
        assert "trows" not in run._parts and 0 < paged.count < paged.whole_after
        # the term itself is found by a binary search of the term keys, page by page
        assert {"tkey", "toff"}.isdisjoint(run._parts) and run._paged["tkey"].count < 6
        assert sorted(f.id for f in mem.select({"lang": "fr"})) == [
            f"f{i:05d}" for i in range(0, ROWS, 50)]


def test_damaged_page_checks_are_reported(tmp_path):
    path = tmp_path / "m.mv2"
    build(path)
    with lazy(path) as mem:
        start, _, _ = main_run(mem)._locate("pchk")
    flip(path, start + 8)
    with lazy(path) as mem:
        with pytest.raises(ChecksumError, match="'pchk'"):
            mem.get("f00010")
        assert not mem.verify().ok


def test_runs_without_page_checks_check_parts_whole(tmp_path):
    from tests.torture import crafted

    path = tmp_path / "m.mv2"
    build(path, n=600)

    def drop_page_checks(header, parts):
        del header["pages"], parts["pchk"]

    path.write_bytes(crafted.edit_run(path.read_bytes(), drop_page_checks))
    with lazy(path) as mem:
        run = main_run(mem)
        assert run.header["pages"] == {} and "pchk" not in run.header["parts"]
        assert mem.get("f00300").text == "note 300"
        assert "created" in run._parts and not run._paged
        assert mem.verify().ok


@given(st.binary(max_size=5 * PAGE_BYTES + 17))
def test_page_checks_cover_every_byte_once(data):
    checks = page_checks(data)
    assert len(checks) == -(-len(data) // PAGE_BYTES)
    assert checks == [page_checks(data[i : i + PAGE_BYTES])[0]
                      for i in range(0, len(data), PAGE_BYTES)]


@given(st.sampled_from([1, 4, 8, 24]), st.integers(0, 3000), st.integers(0, 3000),
       st.integers(1, 3000))
def test_the_pages_of_a_span_hold_its_items(size, lo, span, count):
    raw = memoryview(bytes(size * count))
    items = raw.cast("B") if size in (1, 24) else raw.cast({4: "I", 8: "Q"}[size])
    part = PagedPart.of(items, raw, 0)
    hi = lo + span
    pages = part.unchecked_pages(lo, hi)
    within = min(hi, len(items))
    itemsize = items.itemsize
    if within <= lo:
        assert not pages
        return
    assert pages.start * PAGE_BYTES <= lo * itemsize
    assert pages.stop * PAGE_BYTES >= within * itemsize
    assert (pages.stop - 1) * PAGE_BYTES < within * itemsize  # no page past the span
    assert pages.stop <= len(part.checked)


def test_a_part_whose_every_page_matched_needs_no_more_checks(tmp_path):
    build(tmp_path / "m.mv2", n=1000)  # "created": 8000 bytes, two pages
    with lazy(tmp_path / "m.mv2") as mem:
        run = main_run(mem)
        mem.get("f00010")
        assert run._paged["created"].count == 1
        mem.get("f00900")
        assert "created" in run._parts and "created" not in run._paged


@pytest.fixture(scope="module")
def languages(tmp_path_factory) -> Path:
    """A run whose rows are posted under ``lang: en`` (49 in 50) or ``fr``."""
    path = tmp_path_factory.mktemp("pages") / "m.mv2"
    with Memory.create(path) as mem:
        mem.put_many([{"id": f"f{i:05d}", "text": f"note {i}",
                       "metadata": {"lang": "en" if i % 50 else "fr", "n": i}}
                      for i in range(ROWS)])
        mem.seal()
    return path


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.integers(0, ROWS - 1), min_size=1, max_size=40))
def test_a_posting_test_reads_pages_and_agrees_with_the_list(languages, rows):
    """``is_posted`` binary-searches a term's rows page by page on a lazily read run (not
    the whole posting part), and agrees with the term's row list."""
    with lazy(languages) as mem:
        run = main_run(mem)
        for lang in ("fr", "en"):
            h = term_hash(f"v\x00lang\x00s{lang}")
            answers = [run.is_posted(h, row) for row in rows]
            assert "trows" not in run._parts
            posted = set(run.posted_rows(h))
            assert answers == [row in posted for row in rows]
