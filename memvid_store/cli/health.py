"""Commands that check and maintain a file: verify, doctor, compact."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime
from typing import Any

import click

from ..errors import (
    CorruptFileError,
    MemoryNotFoundError,
    NotAMemoryFileError,
    VersionMismatchError,
)
from ..reports import VerifyReport
from ._common import (
    MEMORY_PATH,
    TIMESTAMP,
    CliError,
    ExitCode,
    echo_json,
    human_bytes,
    json_option,
    open_memory,
    reported_errors,
)

# (prefix or fragment of a verify problem, what it means for the user), first match wins
_EXPLANATIONS: list[tuple[str, str]] = [
    ("header", "One of the two header slots is damaged. The other, intact slot is used, so "
               "the file still opens; a rewrite (--repair, or `mv2 compact`) restores both."),
    ("toc chain", "The chain of older commits is broken: reading as of old commit "
                  "generations fails, the current data is not affected."),
    ("wal", "A record of the write-ahead log is damaged: it and the records after it are "
            "not replayed, so writes made after the last commit may be missing."),
    ("segment:vectors", "A block of embeddings fails its checksum: vector search and "
                        "--json reads of those frames fail; --repair copies them without "
                        "their vectors."),
    ("segment:blocks", "A block of frame texts fails its checksum: those frames cannot be "
                       "read; --repair copies every other version."),
    ("segment:run", "A frame table fails its checksum: the frames it lists cannot be read; "
                    "--repair copies every other version."),
    ("segment:lex", "The full-text index fails its checksum: text search fails until the "
                    "index is rebuilt (--repair rebuilds it)."),
    ("segment:ann", "The vector graph fails its checksum: vector search scans every vector "
                    "exactly (slower) until it is rebuilt (--repair rebuilds it)."),
    ("toc", "The newest commit was not written completely (a crash during a commit, or a "
            "copy cut short): readers use the commit before it, so the writes of that "
            "last commit are missing."),
    ("segment", "Stored data fails its checksum: reads that touch it fail; --repair "
                "copies everything that can still be read."),
]
_UNKNOWN = "Unexpected damage: if reads fail, use --repair or restore a copy."


def explain(problem: str) -> str:
    """A plain-words explanation of one ``verify`` problem."""
    lowered = problem.lower()
    for fragment, meaning in _EXPLANATIONS:
        if lowered.startswith(fragment) or fragment in lowered:
            return meaning
    return _UNKNOWN


@click.command()
@click.argument("path", type=MEMORY_PATH)
@json_option('Print {"ok": ..., "problems": [...], "checked": {...}, "notices": [...]} as JSON.')
@click.pass_context
def verify(ctx: click.Context, path: str, as_json: bool) -> None:
    """Check every checksum in a memory file; exit code 6 when problems are found."""
    report = _verify(path)
    if as_json:
        echo_json({"ok": report.ok, "problems": report.problems, "checked": report.checked,
                   "notices": report.notices})
    elif report.ok:
        click.echo("ok: " + ", ".join(f"{n} {k}" for k, n in report.checked.items()))
    else:
        click.echo(f"{len(report.problems)} problem(s) found:")
        for problem in report.problems:
            click.echo(f"  - {problem}")
    for notice in [] if as_json else report.notices:
        click.echo(f"note: {notice}")
    if not report.ok:
        ctx.exit(ExitCode.DAMAGED)


def _verify(path: str) -> VerifyReport:
    from ..memory import Memory

    with reported_errors():
        try:
            mem = Memory.open(path, readonly=True)
        except CorruptFileError as exc:  # too damaged to open: that is the report
            return VerifyReport(False, [exc.message], {})
        with closing(mem):
            return mem.verify()


def _unopenable(exc: Exception) -> str:
    if isinstance(exc, NotAMemoryFileError):
        return "This is not a .mv2 memory file (it does not start with the .mv2 magic bytes)."
    if isinstance(exc, VersionMismatchError):
        return ("The file was written by a newer version of memvid-py: upgrade "
                "(pip install -U memvid-py) to read it. It is not damaged.")
    return ("Neither header slot nor any commit can be read, so nothing can be recovered "
            "automatically: restore the file from a copy.")


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--repair", "repair_to", type=MEMORY_PATH, metavar="OUT.mv2",
              help="Copy every version that can still be read into this new file.")
@json_option('Print {"ok", "problems": [{"problem", "meaning"}], "notices", "repair"} as JSON.')
@click.pass_context
def doctor(ctx: click.Context, path: str, repair_to: str | None, as_json: bool) -> None:
    """Diagnose a memory file in plain words and, with --repair, recover it into a new file.

    The copy holds every intact version (with its history and record times) of the newest
    commit that can be read; damaged versions are listed and left out. Exit codes: 0
    healthy (or fully repaired), 3 repaired with versions left out, 6 damaged.
    """
    from ..memory import Memory

    out: dict[str, Any] = {"path": path, "ok": False, "problems": [], "repair": None}
    try:
        mem = Memory.open(path, readonly=True)
    except MemoryNotFoundError as exc:
        raise CliError(str(exc), ExitCode.NOT_FOUND) from exc
    except (NotAMemoryFileError, VersionMismatchError, CorruptFileError) as exc:
        out["problems"] = [{"problem": str(exc), "meaning": _unopenable(exc)}]
        _doctor_output(out, as_json)
        ctx.exit(ExitCode.DAMAGED)
    except OSError as exc:
        raise CliError(str(exc)) from exc
    with closing(mem), reported_errors():
        report = mem.verify()
        info = mem.stats()
        out["ok"] = report.ok
        out["frames"], out["versions"], out["generation"] = (info.frames, info.versions,
                                                             info.generation)
        out["problems"] = [{"problem": p, "meaning": explain(p)} for p in report.problems]
        out["notices"] = report.notices
        if repair_to is not None:
            out["repair"] = _repair(mem, repair_to)
    _doctor_output(out, as_json)
    if repair_to is not None:
        ctx.exit(ExitCode.PARTIAL if out["repair"]["skipped"] else ExitCode.OK)
    if not report.ok:
        ctx.exit(ExitCode.DAMAGED)


def _repair(mem: Any, target: str) -> dict[str, Any]:
    from ..memory import Memory
    from ..transfer import copy_memory

    skipped: list[str] = []
    summary = copy_memory(mem, target, on_damaged=skipped.append)
    with Memory.open(target, readonly=True) as copy:
        check = copy.verify()
        frames = copy.stats().frames
    if not check.ok:  # a fresh copy must verify; anything else is a bug worth reporting
        raise CliError(f"the repaired copy {target} does not verify: {check.problems}")
    return {"path": target, **summary.as_dict(), "frames": frames, "skipped": skipped}


def _doctor_output(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(out)
        return
    if out["ok"]:
        click.echo(f"{out['path']}: healthy ({out['frames']} frames, {out['versions']} "
                   f"versions, generation {out['generation']})")
    else:
        click.echo(f"{out['path']}: {len(out['problems'])} problem(s)")
        for item in out["problems"]:
            click.echo(f"  - {item['problem']}\n    {item['meaning']}")
    for notice in out.get("notices", ()):
        click.echo(f"note: {notice}")
    repair = out["repair"]
    if repair is not None:
        click.echo(f"repaired into {repair['path']}: {repair['changes']} writes copied "
                   f"({repair['frames']} current frames)")
        for item in repair["skipped"]:
            click.echo(f"  left out: {item}")
    elif not out["ok"] and "frames" in out:
        click.echo(f"to recover what can be read: mv2 doctor {out['path']} --repair NEW.mv2")


@click.command()
@click.argument("path", type=MEMORY_PATH)
@click.option("--retain-after", type=TIMESTAMP,
              help="Drop versions replaced at or before this time (default: keep all history).")
def compact(path: str, retain_after: datetime | None) -> None:
    """Rewrite a memory file without dead space, optionally dropping old history."""
    with open_memory(path, readonly=False) as mem:
        before = mem.stats().file_bytes
        generation = mem.compact(retain_after=retain_after)
        after = mem.stats().file_bytes
    click.echo(f"compacted {path}: {human_bytes(before)} -> {human_bytes(after)}, "
               f"generation {generation}")


COMMANDS = [verify, doctor, compact]
