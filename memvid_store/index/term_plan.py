"""What a filter says about the posting lists: the terms every match is posted under.

A filter (the language of ``find``) is an AND of conditions. A condition the postings can
answer gives a *group*: terms of which every matching frame is posted under at least one
(``{"kind": "note"}`` gives ``[v kind note]``, ``{"kind": {"$in": [a, b]}}`` gives
``[v kind a, v kind b]``, ``{"tags": "x"}`` gives ``[t x]``, ``$exists: true`` the path's
``e`` term); a comparison (``$gt`` ``$gte`` ``$lt`` ``$lte``) with a number or a string
gives a :class:`Range` of the sorted value columns of that kind (``engine/value_kinds.py``:
stored values are rounded or cut monotonically and bounds taken as stored, so a range
admits every match). Conditions neither can answer (negations, equality with lists or
dicts) give none; ``$or`` gives one group only when each of its branches has one. So
the frames posted under a group are a superset of the matches, to be checked on their
payload — unless the plan is *exact*: one group of terms that answers the whole filter
(plain equality, ``$in`` of scalars or ``$exists: true`` on one top-level key or on the
tags, and an ``$or`` of exact filters: the union of their terms). Dotted paths are never
exact: ``a.b`` reads a top-level ``a.b`` first, and both are posted under the same path.
A substring (``$contains``, ``$icontains``) of a metadata path or of the tags gives a
:class:`Substring`: the versions holding there a string that may contain it, found by
testing each distinct string of the path's (the tags') value columns once.

A negation of such an exact condition gives *excluded* terms instead: no version posted
under them matches (``{"lang": {"$ne": "en"}}`` excludes ``v lang en``; so do ``$nin``,
``$exists: false``, a field's ``$not`` of an equality and ``$not``/``$nor`` of exact
filters). Every version posted under none of them is a candidate: few when the negated
value is what nearly every version holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.terms import canonical, exists_term, tag_term, value_term
from ..engine.value_kinds import NUMBERS, STRINGS, ValueKind
from .filters import METADATA_PREFIX, TAGS_KEYS


@dataclass(frozen=True, slots=True)
class Range:
    """The values of ``kind`` stored at ``path`` within ``[lo, hi]`` (None: unbounded).
    With both bounds, a window: versions holding several values at ``path`` belong too
    (``Snapshot.windowed``)."""

    path: str
    lo: float | str | None = None
    hi: float | str | None = None
    kind: ValueKind = NUMBERS
    lo_inclusive: bool = True  # False for $gt (the value columns keep strictness exact
    hi_inclusive: bool = True  # where they store values exactly: value_kinds.stored_bound)


@dataclass(frozen=True, slots=True)
class Substring:
    """The versions holding at ``path`` (``tags``: in their tags) a string that contains
    ``text`` (both lowercased when ``fold``), from the string value columns
    (``engine/substrings.py``)."""

    path: str
    text: str
    fold: bool = False
    tags: bool = False


Item = str | Range | Substring
"""A group member: a posting term, a range of the value columns, or a substring of the
string value columns."""


@dataclass(frozen=True, slots=True)
class TermPlan:
    """Groups of terms (AND of ORs) every match of a filter is posted under, and terms
    no match is posted under."""

    groups: tuple[tuple[Item, ...], ...]
    exact: bool = False
    excluded: tuple[str, ...] = ()
    only_excluded: bool = False  # the matches are the versions posted under none of them


NO_PLAN = TermPlan(())


def plan_terms(spec: Mapping[str, Any] | None) -> TermPlan:
    """The posting terms of a (valid) filter spec; no groups when none applies."""
    if not spec:
        return NO_PLAN
    groups: list[tuple[Item, ...]] = []
    excluded: list[str] = []
    exact = only_excluded = True
    for key, cond in spec.items():
        found, complete = _entry(key, cond)
        groups += found
        exact = exact and complete
        terms, negation = _excluded(key, cond)
        excluded += terms
        only_excluded = only_excluded and negation
    return TermPlan(tuple(groups), exact and len(groups) == 1 and len(spec) == 1,
                    tuple(dict.fromkeys(excluded)), only_excluded and bool(excluded))


def _excluded(key: str, cond: Any) -> tuple[list[str], bool]:
    """(terms no match of the entry ``key: cond`` is posted under: those of the exact
    conditions it negates; whether being posted under none of them is the whole entry)."""
    if key == "$and":
        plans = [plan_terms(sub) for sub in cond]
        return [t for p in plans for t in p.excluded], all(p.only_excluded for p in plans)
    if key in ("$not", "$nor"):
        negated = [cond] if key == "$not" else list(cond)
        plans = [plan_terms(sub) for sub in negated]
        if all(p.exact for p in plans):
            return [t for p in plans for t in p.groups[0] if isinstance(t, str)], True
        return [], False
    if key.startswith("$") and key not in TAGS_KEYS:
        return [], False  # $or: a version failing one branch may pass another
    if not (isinstance(cond, dict) and any(k.startswith("$") for k in cond)):
        return [], False
    out: list[str] = []
    whole = True
    for op, arg in cond.items():
        plan = NO_PLAN
        if op in _POSITIVE and (op != "$exists" or arg is False):
            sub = arg if op == "$not" else {_POSITIVE[op]: True if op == "$exists" else arg}
            if isinstance(sub, dict):
                plan = plan_terms({key: sub})
        if plan.exact:
            out += [t for t in plan.groups[0] if isinstance(t, str)]
        else:
            whole = False
    return out, whole


_POSITIVE = {"$ne": "$eq", "$nin": "$in", "$exists": "$exists", "$not": "$not"}


def _entry(key: str, cond: Any) -> tuple[list[tuple[Item, ...]], bool]:
    """(groups, whether they answer the entry exactly) of one entry of a filter dict."""
    if key == "$and":
        return [g for sub in cond for g in plan_terms(sub).groups], False
    if key == "$or":
        plans = [plan_terms(sub) for sub in cond]
        if all(p.groups for p in plans):  # exact when every branch is: a union of terms
            return ([tuple(t for p in plans for t in p.groups[0])],
                    all(p.exact for p in plans))
        return [], False
    if key.startswith("$") and key not in TAGS_KEYS:
        return [], False  # $nor, $not: nothing every match shares
    if key in TAGS_KEYS:
        return _condition(cond, _tag, tags=True)
    path = key[len(METADATA_PREFIX):] if key.startswith(METADATA_PREFIX) else key
    groups, complete = _condition(cond, lambda v: value_term(path, v), exists=path)
    groups += [(bound,) for bound in _bounds(cond, path)]
    return groups, complete and "." not in path


def _condition(cond: Any, term: Any, *, tags: bool = False,
               exists: str | None = None) -> tuple[list[tuple[Item, ...]], bool]:
    if not (isinstance(cond, dict) and any(k.startswith("$") for k in cond)):
        cond = {"$eq": cond}
    groups: list[tuple[str, ...]] = []
    complete = len(cond) == 1
    for op, arg in cond.items():
        if op == "$eq" and canonical(arg) is not None:
            groups.append(_one(term(arg)))
        elif op == "$in" and isinstance(arg, list | tuple) and all(
                canonical(a) is not None for a in arg):
            groups.append(tuple(t for t in (term(a) for a in arg) if t is not None))
        elif op == "$all" and isinstance(arg, list | tuple) and all(
                canonical(a) is not None for a in arg):
            groups += [_one(term(a)) for a in arg]
            complete = complete and len(arg) == 1
        elif op == "$exists" and arg is True and exists is not None:
            groups.append((exists_term(exists),))
        elif op in ("$contains", "$icontains") and exists is not None:
            groups.append((Substring(exists, arg, op == "$icontains"),)
                          if isinstance(arg, str) else (exists_term(exists),))
            complete = False
        elif op in ("$contains", "$icontains") and tags and isinstance(arg, str):
            groups.append((Substring(TAGS_KEYS[0], arg, op == "$icontains", tags=True),))
            complete = False
        elif op == "$eq" and tags and isinstance(arg, list | tuple) and arg and all(
                isinstance(a, str) for a in arg):
            groups += [(tag_term(a),) for a in arg]  # the tags are exactly this list
            complete = False
        else:
            complete = False
    return groups, complete


def _bounds(cond: Any, path: str) -> list[Range]:
    """The ranges of the comparisons of ``cond`` with numbers or strings: every match has
    a value in each (a superset, the payload decides: a strict bound stays strict only
    where values are stored exactly, ``value_kinds.stored_bound``). A lower and an
    upper bound of one kind make one window (``Snapshot.windowed``: it also admits
    versions holding several values there, which may meet each bound with another
    element); other comparisons give one-sided ranges."""
    if not (isinstance(cond, dict) and any(k.startswith("$") for k in cond)):
        return []
    sides: dict[tuple[ValueKind, bool], list[tuple[float | str, bool]]] = {}
    for op, arg in cond.items():
        if op not in ("$gt", "$gte", "$lt", "$lte"):
            continue
        if isinstance(arg, str):
            bound: float | str = arg
            kind = STRINGS
        elif isinstance(arg, int | float) and not isinstance(arg, bool):
            try:
                bound = float(arg)
            except OverflowError:  # an int beyond float64: no range narrows it
                continue
            kind = NUMBERS
        else:
            continue
        sides.setdefault((kind, op in ("$lt", "$lte")), []).append(
            (bound, op in ("$gte", "$lte")))
    out = []
    for (kind, upper), bounds in sides.items():
        if upper:
            lows = sides.get((kind, False))
            if lows:  # one window; the other bounds of this kind stay one-sided
                (lo, lo_in), (hi, hi_in) = lows[0], bounds[0]
                out.append(Range(path, lo=lo, hi=hi, kind=kind, lo_inclusive=lo_in,
                                 hi_inclusive=hi_in))
            out += [Range(path, hi=b, kind=kind, hi_inclusive=inc)
                    for b, inc in bounds[1 if lows else 0:]]
        else:
            highs = sides.get((kind, True))
            out += [Range(path, lo=b, kind=kind, lo_inclusive=inc)
                    for b, inc in bounds[1 if highs else 0:]]
    return out


def _one(term: str | None) -> tuple[str, ...]:
    return () if term is None else (term,)


def _tag(value: Any) -> str | None:
    """A tag equals only a string; other scalars match no frame (an empty group)."""
    return tag_term(value) if isinstance(value, str) else None
