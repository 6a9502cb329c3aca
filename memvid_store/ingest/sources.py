"""Finding the files to ingest and the metadata their paths give.

A file's *source name* is its path relative to the parent of the argument that named it,
with ``/`` separators: ``mv2 ingest m.mv2 notes/`` names ``notes/2024/a.md`` whatever
the current directory, so frame ids stay the same when the corpus moves.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .readers import Problem


@dataclass(frozen=True, slots=True)
class Source:
    """One file to read: where it is and the name frames will cite."""

    path: Path
    name: str

    @property
    def ext(self) -> str:
        return self.path.suffix.lower().lstrip(".")

    @property
    def folders(self) -> list[str]:
        return self.name.split("/")[:-1]


@dataclass(frozen=True, slots=True)
class Scope:
    """What an argument covers: a directory prefix (``notes/``) or one file name."""

    name: str
    is_dir: bool

    def covers(self, source_name: str) -> bool:
        return source_name.startswith(self.name) if self.is_dir else source_name == self.name


def discover(paths: Iterable[str | os.PathLike[str]], globs: Iterable[str] = ()
             ) -> tuple[list[Source], list[Scope], list[Problem]]:
    """Files under ``paths`` (directories recursively, hidden entries skipped, sorted).

    In directories every file is taken, filtered by ``globs`` (matched against the source
    name and the file name): one of an unsupported type is then reported by its reader,
    not skipped silently. A file named explicitly is always taken.
    """
    patterns = list(globs)
    sources: list[Source] = []
    scopes: list[Scope] = []
    problems: list[Problem] = []
    seen: set[Path] = set()
    for arg in paths:
        path = Path(arg)
        base = path.resolve().parent
        if path.is_dir():
            scopes.append(Scope(_name(path.resolve(), base) + "/", True))
            found = (s for s in _walk(path.resolve(), base) if _wanted(s, patterns))
        elif path.exists():
            source = Source(path, _name(path.resolve(), base))
            scopes.append(Scope(source.name, False))
            found = iter([source])
        else:
            problems.append(Problem(str(arg), None, "no such file or directory"))
            continue
        for source in found:
            key = source.path.resolve()
            if key not in seen:
                seen.add(key)
                sources.append(source)
    return sources, scopes, problems


def _walk(root: Path, base: Path) -> Iterator[Source]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for file in sorted(files):
            if file.startswith("."):
                continue
            path = Path(folder) / file
            yield Source(path, _name(path, base))


def _name(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _wanted(source: Source, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatch(source.name, p) or
                               fnmatch.fnmatch(source.path.name, p) for p in patterns)
