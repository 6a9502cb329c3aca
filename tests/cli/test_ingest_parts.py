"""The pieces of `mv2 ingest`: chunking, front matter, HTML text, record times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from memvid_store.ingest import chunk_text
from memvid_store.ingest.frontmatter import FrontMatterError, split_front_matter
from memvid_store.ingest.html_text import html_to_text
from memvid_store.ingest.readers import parse_time

PROSE = ("The ferry leaves at seven. It returns at noon!\nTickets are sold on board; "
         "cards only.\n\n" * 12 + "上海办公室每周大约收到九百张中文工单。高峰在周一上午。" * 20)


@pytest.mark.parametrize("size, overlap", [(20, 0), (60, 10), (200, 50), (500, 0), (999, 400)])
def test_chunks_cover_the_text_within_size(size: int, overlap: int) -> None:
    chunks = chunk_text(PROSE, size, overlap)
    assert all(0 < len(c) <= size for c in chunks)
    flat = "".join(PROSE.split())
    joined = "".join("".join(c.split()) for c in chunks)
    assert set(joined) == set(flat)  # nothing is lost
    pos = 0
    for chunk in chunks:  # chunks appear in order, each starting after the previous start
        found = "".join(PROSE.split()).find("".join(chunk.split()), pos)
        assert found >= pos
        pos = found + 1
    if overlap == 0:
        assert joined == flat


def test_chunks_prefer_boundaries() -> None:
    chunks = chunk_text("First paragraph here.\n\nSecond one is a little longer than that.", 45)
    assert chunks == ["First paragraph here.", "Second one is a little longer than that."]
    words = chunk_text("alpha beta gamma delta epsilon zeta eta theta iota kappa", 25)
    assert all(not c.startswith(("lpha", "eta ")) for c in words)
    assert chunk_text("   ", 100) == [] and chunk_text("short", 100) == ["short"]
    with pytest.raises(ValueError, match="at least 20"):
        chunk_text("x", 10)
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("x", 100, 60)


def test_front_matter_values() -> None:
    text = ("---\ntitle: \"Decisions: 2024\"\ncount: 3\nratio: 0.5\ndraft: false\n"
            "tags: [a, 'b, c']\nempty:\nlist:\n  - one\n  - 2\n# a comment\n---\nBody\n")
    fields, body, line = split_front_matter(text)
    assert fields == {"title": "Decisions: 2024", "count": 3, "ratio": 0.5, "draft": False,
                      "tags": ["a", "b, c"], "empty": None, "list": ["one", 2]}
    assert body == "Body\n" and line == 13
    assert split_front_matter("no front matter\n---\n") == ({}, "no front matter\n---\n", 1)
    assert split_front_matter("---\nnot closed\n")[0] == {}
    with pytest.raises(FrontMatterError) as err:
        split_front_matter("---\nok: 1\njust words\n---\n")
    assert err.value.line == 3


def test_html_visible_text() -> None:
    text, title = html_to_text(
        "<html><head><title> A  page </title><style>p{}</style></head><body>"
        "<script>var x = 1;</script><h1>Head</h1><p>One &amp; two</p><ul><li>a</li>"
        "<li>b</li></ul><p>Tail<br>line</p><!-- hidden --></body></html>")
    assert title == "A page"
    assert text == "Head\n\nOne & two\n\na\nb\n\nTail\nline"


def test_record_times() -> None:
    assert parse_time("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("2024-05-01T10:00:00+02:00").utcoffset().total_seconds() == 7200
    assert parse_time(0) == datetime(1970, 1, 1, tzinfo=UTC)
    for bad in ("yesterday", True, [1]):
        with pytest.raises(ValueError):
            parse_time(bad)
