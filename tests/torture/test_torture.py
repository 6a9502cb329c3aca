"""The CI subset of ``make torture``: every kind with small counts, run as
``python -m tests.torture --quick`` in a fresh process (the runner forks its trials).

No trial may crash, hang, let a raw exception escape or answer silently wrong, except the
open findings listed in ``KNOWN`` (docs/reliability.md, "Findings"; none now). Each entry names
one finding: fixing the engine lets it be removed, and any new kind of failure fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BAD = ("crashed", "raw error", "silently wrong", "harness")

# (kind, case or None for every trial of the kind, outcome): open findings, see
# docs/reliability.md. Remove an entry when the engine is fixed.
KNOWN: set[tuple[str, str | None, str]] = set()  # none open: F1-F4 are fixed


def known(trial: dict) -> bool:
    return any(trial["kind"] == kind and (case is None or trial.get("case") == case)
               and trial["outcome"] == outcome for kind, case, outcome in KNOWN)


@pytest.mark.crash
@pytest.mark.timeout(600)
def test_torture_quick(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-W", "ignore", "-m", "tests.torture", "--quick",
                          "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                         timeout=580)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (result,) = tmp_path.glob("torture-*.json")
    res = json.loads(result.read_text())
    table = res["table"]
    for kind in ("kill -9", "flip: header", "flip: wal records", "flip: toc", "flip: run parts",
                 "flip: payload blocks", "flip: lex files", "flip: ann graph", "flip: commits",
                 "truncate: region boundary", "crafted: length field", "crafted: bomb",
                 "soak reader (follow)", "soak reader (refresh)"):
        assert table.get(kind, {}).get("tried", 0) > 0, f"no {kind} trial ran"
    new = [t for t in res["bad_trials"] if not known(t)]
    assert not new, "new failures:\n" + "\n".join(
        f"{t['kind']} / {t.get('where')}: {t['outcome']} {t.get('error') or ''} "
        f"{str(t.get('detail'))[:300]}" for t in new)
