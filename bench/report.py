"""Writing benchmark results: ``<name>-<stamp>.json`` / ``.md`` and the sections of latest.md.

``bench/run_all.py`` rewrites ``latest.md`` with every benchmark it ran; a benchmark run on
its own replaces only its own section there (``update_latest``), so the others stay.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

LATEST_TITLE = "# memvid-py benchmarks"


def new_result(script: str, **fields: Any) -> dict[str, Any]:
    """A result's common fields (time, the command that ran ``bench/<script>``, the
    machine), then ``fields``."""
    import sys
    from datetime import UTC, datetime

    from bench.machine import machine_info

    return {"timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
            "machine": machine_info(), **fields}


def heading(title: str, res: dict[str, Any]) -> list[str]:
    """The first lines of a result's markdown: its title and time, machine and command."""
    from bench.machine import summary

    return [f"## {title} ({res['timestamp']})", "",
            f"Machine: {summary(res['machine'])}  ", f"Command: `{res['command']}`", ""]


def stamp(timestamp: str) -> str:
    """``2026-11-28T03:33:08Z`` -> ``20261128T033308`` (file names of a result)."""
    return timestamp.replace(":", "").replace("-", "")[:15]


def write_results(res: dict[str, Any], out_dir: Path, name: str,
                  markdown: Callable[[dict[str, Any]], str]) -> tuple[Path, Path]:
    """``<name>-<stamp>.json`` (every figure) and ``.md`` (the tables) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"{name}-{stamp(res['timestamp'])}"
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(res, indent=2, default=str) + "\n")
    md_path.write_text(markdown(res))
    return json_path, md_path


def save(res: dict[str, Any], out_dir: Path, name: str,
         markdown: Callable[[dict[str, Any]], str], *, show: bool = False) -> None:
    """:func:`write_results`, then print where they went (and the tables, ``show``)."""
    json_path, md_path = write_results(res, out_dir, name, markdown)
    if show:
        print(md_path.read_text())
    print(f"results: {json_path}, {md_path}")


def update_latest(out_dir: Path, section: str) -> Path:
    """Put ``section`` (markdown starting with a ``## Title`` line) into ``latest.md``.

    A section whose ``## `` line starts with the same words (up to a parenthesis) is
    replaced (up to the next ``## `` section or run_all's closing "Targets missed" line);
    otherwise the section is appended.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    latest = out_dir / "latest.md"
    text = latest.read_text() if latest.exists() else LATEST_TITLE + "\n\n"
    heading = section.lstrip().splitlines()[0]
    key = heading.split("(")[0].strip()
    pattern = re.compile(rf"^{re.escape(key)}\b.*?(?=^## |^\*\*Targets missed|\Z)", re.S | re.M)
    body = section.rstrip("\n") + "\n\n"
    text, found = pattern.subn(lambda _: body, text, count=1)
    if not found:
        text = text.rstrip("\n") + "\n\n" + body
    latest.write_text(text.rstrip("\n") + "\n")
    return latest


def drop_workdir(work: Path, keep: bool) -> None:
    """Delete a run's files, or say where they are kept."""
    if keep:
        print(f"kept files in {work}", file=sys.stderr, flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)


def finish(res: dict[str, Any], out_dir: Path, name: str,
           targets: Callable[[dict[str, Any]], list[dict[str, Any]]],
           markdown: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """Record the load at the end, the targets and the result files of a run; ``res``."""
    res["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    res["targets"] = targets(res)
    res["files"] = [str(p) for p in write_results(res, out_dir, name, markdown)]
    return res


def report_exit(res: dict[str, Any], report: str, strict: bool) -> int:
    """Print a run's report, its files and missed targets; the exit status (1 when a target
    was missed and ``strict``)."""
    print(report)
    print("results: " + ", ".join(res["files"]))
    missed = [t["target"] for t in res["targets"] if not t["met"]]
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 1 if missed and strict else 0


def run_in_checkout(code: str, args: list[str], engine: Path) -> dict[str, Any]:
    """The JSON ``code`` prints as its last line, run in a fresh process that imports
    memvid_store from the checkout ``engine`` (and ``bench`` from it, then from here):
    a bench's ``--engine`` compares two commits on the same input."""
    import subprocess

    here = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(engine), str(here)]))
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=engine,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def checkout_rev(engine: Path) -> str:
    """The commit the checkout ``engine`` is at."""
    import subprocess

    return subprocess.run(["git", "-C", str(engine), "rev-parse", "--short=10", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
