"""Brute-force oracle for the posting lists: every content version's terms, from its payload.

Shared by the posting tests and the crash tests: whatever state a file is in, the postings
the snapshot answers with must equal the terms of the payloads it holds.
"""

from __future__ import annotations

from memvid_store.engine.snapshot import Snapshot
from memvid_store.engine.terms import term_hash, terms_of


def terms_by_gid(snap: Snapshot) -> dict[int, set[str]]:
    """``{gid: terms}`` of every stored content version, decoded from its payload."""
    out: dict[int, set[str]] = {}
    for ref in snap.iter_all():
        if snap.is_tombstone(ref):
            continue
        key, _, _, _, meta, tags = snap.record(ref)
        out[ref.gid] = terms_of(key, meta, tags)
    return out


def invert(model: dict[int, set[str]]) -> dict[str, list[int]]:
    """``{term: gids ascending}`` of ``{gid: terms}``."""
    out: dict[str, list[int]] = {}
    for gid in sorted(model):
        for term in model[gid]:
            out.setdefault(term, []).append(gid)
    return out


def run_postings(snap: Snapshot) -> dict[int, list[int]]:
    """Every (term hash -> gids) the snapshot's runs hold, read from their parts (or
    computed, for runs without them)."""
    out: dict[int, list[int]] = {}
    for run in snap.runs:
        if run.has_postings:
            tkey, toff, trows = run.part("tkey"), run.part("toff"), run.part("trows")
            assert list(tkey) == sorted(set(tkey)), "term hashes not strictly ascending"
            assert len(toff) == len(tkey) + 1 and toff[0] == 0 and toff[-1] == len(trows)
            pairs = {h: trows[toff[i] : toff[i + 1]].tolist() for i, h in enumerate(tkey)}
        else:
            pairs = snap.computed_postings(run)
        for h, rows in pairs.items():
            assert rows == sorted(set(rows)), "rows of a term not strictly ascending"
            out.setdefault(h, []).extend(run.base + r for r in rows)
    return out


def assert_postings_match(snap: Snapshot, model: dict[int, set[str]] | None = None) -> None:
    """The snapshot's postings equal the inverted ``model`` (default: its own payloads)."""
    if model is None:
        model = terms_by_gid(snap)
    expected = invert(model)
    for term, gids in expected.items():
        got = [ref.gid for ref in snap.posted(term)]
        assert got == gids, f"posted({term!r}): {got} != {gids}"
        count = snap.posted_count(term)
        assert count >= len(gids), f"posted_count({term!r}) {count} < {len(gids)}"
        if all(run.has_postings for run in snap.runs):
            assert count == len(gids), f"posted_count({term!r}) {count} != {len(gids)}"
    assert snap.posted("t\x00no such tag") == []
    committed = snap.toc.next_gid
    want: dict[int, list[int]] = {}
    for term, gids in expected.items():
        inside = [g for g in gids if g < committed]
        if inside:
            want.setdefault(term_hash(term), []).extend(inside)
    assert run_postings(snap) == {h: sorted(g) for h, g in want.items()}
