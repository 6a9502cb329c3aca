"""The versions whose strings at a metadata path may contain a text (``$contains``).

``{"source": {"$contains": "mail"}}`` is answered from each run's string value columns
(:data:`~.value_kinds.STRINGS`: every string at a path as its key, the first
``STRING_KEY_BYTES`` of its UTF-8 bytes zero-padded, sorted, with its row) instead of
decoding every payload: a path holds few distinct strings in most memories (kinds,
sources, languages), and each distinct key is tested once. A key's rows are candidates
when the key

* contains the text (both lowercased for ``$icontains``, as the filter compares them);
* may be cut (``STRING_KEY_BYTES`` long: the string may go on; the last rule finds such
  rows too, at the cost of a posting lookup per distinct key);
* is not ASCII and the comparison lowercases (``str.lower`` may bring a character into
  ASCII, e.g. the Kelvin sign);
* or stands, in some row, for a longer string than it shows: a string whose first bytes
  end in NUL characters has the key of its head. Rows of the key that are not posted
  under the equality term of the key's own string (``value_term``), and rows holding
  several values at the path (one of them may be the key's own string, another a longer
  one: a row lists a key once), are such rows.

So the versions found are a superset of the matches (the payload decides); versions of a
run written without value columns all are. ``None``: the path holds more than
``DISTINCT_MAX`` distinct keys in a run (unique strings per frame), where testing them
would cost about what the payloads do, or a run's value columns are damaged.

``{"tags": {"$contains": "proj"}}`` reads each run's list of distinct tags
(``RunReader.distinct_tags``): the rows posted under each tag that contains the text
(``terms.tag_term``) are candidates; a run without a list, or with a damaged one, gives
all its rows.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

from ..errors import DamagedIndexError
from .terms import multi_term, strings_of, tag_term, term_hash, value_term
from .value_kinds import STRING_KEY_BYTES, STRINGS

if TYPE_CHECKING:
    from .runs import RunReader
    from .snapshot import Snapshot

DISTINCT_MAX = 4096  # distinct keys of a path in one run tested one by one
CACHE_SIZE = 32  # substring conditions whose versions a snapshot keeps


def substring_gids(snap: Snapshot, path: str, text: str, fold: bool, *,
                   tags: bool = False) -> list[int] | None:
    """Gids (ascending) of a superset of the versions holding at ``path`` (``tags``: in
    their tags) a string that contains ``text`` (``fold``: lowercased both sides); None
    when a run's distinct keys there are too many to test. Kept per snapshot for the last
    ``CACHE_SIZE`` conditions."""
    return snap.memoized("substring_gids", (path, text, fold, tags, len(snap.delta)),
                         CACHE_SIZE, lambda: _gids(snap, path, text, fold, tags))


def _gids(snap: Snapshot, path: str, text: str, fold: bool, tags: bool
          ) -> list[int] | None:
    wanted = text.lower() if fold else text
    needle = wanted.encode()
    path_hash = term_hash(STRINGS.term(path))
    gids: list[int] = []
    for run in snap.runs:
        try:
            rows = (_tagged_rows(snap, run, wanted, fold) if tags
                    else _run_rows(snap, run, path, path_hash, needle, fold))
        except DamagedIndexError:  # damaged value columns: the payloads answer, slower
            if not tags:
                return None
            rows = list(range(run.n))
        if rows is None:
            return None
        gids += [run.base + row for row in rows]
    for v in snap.delta:
        if v.tombstone:
            continue
        held = (v.tags or () if tags
                else [s for at, s in strings_of(v.metadata) if at == path])
        if any(wanted in (s.lower() if fold else s) for s in held):
            gids.append(v.gid)
    return gids


def _tagged_rows(snap: Snapshot, run: RunReader, wanted: str, fold: bool) -> list[int]:
    """Rows of ``run`` tagged with a tag that contains ``wanted`` (all rows of a run
    written without its tag list)."""
    if not run.has_tag_list:
        return list(range(run.n))
    rows: set[int] = set()
    for tag in run.distinct_tags:
        if _holds(tag, wanted, fold):
            rows.update(snap.run_posted_rows(run, term_hash(tag_term(tag))))
    return sorted(rows)


def tag_terms(snap: Snapshot, text: str, fold: bool) -> list[str] | None:
    """The ``t`` terms of every tag in the snapshot that contains ``text`` (both
    lowercased when ``fold``): a version matches the substring exactly when it is posted
    under one of them. None when a run has no tag list, or a damaged one."""
    wanted = text.lower() if fold else text
    found: set[str] = set()
    for run in snap.runs:
        if not run.has_tag_list:
            return None
        try:
            found.update(tag for tag in run.distinct_tags if _holds(tag, wanted, fold))
        except DamagedIndexError:
            return None
    for v in snap.delta:
        if not v.tombstone and v.tags:
            found.update(tag for tag in v.tags if _holds(tag, wanted, fold))
    return [tag_term(tag) for tag in sorted(found)]


def _holds(tag: str, wanted: str, fold: bool) -> bool:
    return wanted in (tag.lower() if fold else tag)


def _run_rows(snap: Snapshot, run: RunReader, path: str, path_hash: int, needle: bytes,
              fold: bool) -> list[int] | None:
    """Rows of ``run`` that may hold a match, ascending (None: too many distinct keys)."""
    if not run.has_values(STRINGS):
        return list(range(run.n))
    keys, start, end = run.values_at(STRINGS, path_hash)
    spans = []  # (first, last, key) of each distinct key: they are sorted
    first = start
    while first < end:
        if len(spans) == DISTINCT_MAX:
            return None
        last = bisect_right(keys, keys[first], first, end)
        spans.append((first, last, keys[first].rstrip(b"\x00")))  # without its padding
        first = last
    found: set[int] = set()
    multi: set[int] | None = None
    multi_read = False
    for first, last, key in spans:
        held = run.value_rows(STRINGS, first, last)
        if _may_contain(key, needle, fold):
            found.update(held)
            continue
        if not multi_read:
            multi, multi_read = _multi_rows(snap, run, path), True
        found.update(_longer_than_key(snap, run, path, key, held, multi))
    return sorted(found)


def _multi_rows(snap: Snapshot, run: RunReader, path: str) -> set[int] | None:
    """Rows of ``run`` holding two or more numbers or strings at ``path`` (None: their
    posting list is damaged)."""
    try:
        return set(snap.run_posted_rows(run, term_hash(multi_term(path))))
    except DamagedIndexError:
        return None


def _may_contain(key: bytes, needle: bytes, fold: bool) -> bool:
    """Whether the string a key stands for may contain the needle (the key is the whole
    string unless cut, or unless the string has NULs after it: :func:`_longer_than_key`)."""
    if len(key) >= STRING_KEY_BYTES:
        return True
    if fold:
        return not key.isascii() or needle in key.lower()
    return needle in key


def _longer_than_key(snap: Snapshot, run: RunReader, path: str, key: bytes,
                     held: list[int], multi: set[int] | None) -> list[int]:
    """The rows of ``held`` (holding ``key`` at ``path``) whose string there may be
    longer than the key: those not posted under the equality term of the key's own
    string, and those holding several values at the path (``multi``: a row holding the
    key's own string and a longer one of the same key is listed once; None: unknown, so
    every row)."""
    if multi is None:
        return held
    try:
        h = term_hash(value_term(path, key.decode()))
        if not multi and run.has_postings and run.posted_count(h) == len(held):
            return []  # every row holds the key's own string (those rows hold the key)
        posted = set(snap.run_posted_rows(run, h))
    except (UnicodeDecodeError, DamagedIndexError):
        return held
    return [row for row in held if row not in posted or row in multi]
