"""Classify a trial's observation against the states the file may rightly show, and
tally the outcomes by kind.

Outcomes, from worst to best:

* ``crashed``: the process died on a signal or hung (set by ``isolate.run_forked``);
* ``raw error``: an exception that is not a MemvidError escaped a call;
* ``silently wrong``: no error, but a read answered differently from every state the
  file may show;
* ``detected``: a typed MemvidError on open or on the reads that touch the damage, every
  other read right;
* ``rolled back``: every read equals an older committed state (what a crash before the
  newest commit leaves) and ``verify()`` names the damage; the report counts how many
  of these the open warned of (``DamagedCommitWarning``: writes of the newest commit
  are not readable);
* ``recovered``: every read equals an accepted state (the undamaged one, or for damage to
  the WAL an acknowledged prefix of it).

A fall back to an older state that ``verify()`` does not report counts as silently wrong.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .probe import ERR, RAW, Observation

OUTCOMES = ("detected", "recovered", "rolled back", "crashed", "raw error", "silently wrong")


def _first_raw(result: dict[str, Any]) -> str | None:
    values = [result.get("open"), result.get("verify")]
    values += list((result.get("obs") or {}).values())
    return next((v for v in values if isinstance(v, str) and v.startswith(RAW)), None)


def _compare(obs: Observation, want: Observation) -> tuple[list[str], list[str]]:
    """(keys answered wrongly, keys answered with an error the state does not have)."""
    wrong, errors = [], []
    for key, value in obs.items():
        expected = want.get(key)
        if value == expected:
            continue
        if isinstance(value, str) and value.startswith(ERR):
            errors.append(key)
        else:
            wrong.append(key)
    return wrong, errors


def classify(result: dict[str, Any], accepted: dict[str, Observation],
             older: dict[str, Observation]) -> dict[str, Any]:
    """Outcome of a probe ``result`` (``probe.probe_file``): ``accepted`` states are
    recoveries, ``older`` ones roll-backs. Returns ``{"outcome", "error", "detail"}``."""
    if result.get("outcome") in ("crashed", "harness"):
        return result
    raw = _first_raw(result)
    if raw is not None:
        return {"outcome": "raw error", "error": raw.split(":", 2)[1], "detail": raw[:300]}
    if "open" in result:
        return {"outcome": "detected", "error": result["open"][len(ERR):],
                "detail": "on open"}
    obs = result["obs"]
    nearest: tuple[int, str, list[str]] | None = None
    for pool, name, want in [*(("accepted", n, w) for n, w in accepted.items()),
                             *(("older", n, w) for n, w in older.items())]:
        wrong, errors = _compare(obs, want)
        if not wrong:
            if errors:
                first = obs[errors[0]]
                return {"outcome": "detected", "error": first[len(ERR):],
                        "detail": f"{len(errors)} reads failed, e.g. {errors[0]} (vs {name})"}
            if pool == "accepted":
                return {"outcome": "recovered", "state": name}
            if result.get("verify"):
                warned = "warned on open; " if result.get("warned") else "NOT warned; "
                return {"outcome": "rolled back", "state": name, "warned": bool(
                    result.get("warned")), "detail": warned + str(result["verify"][0])[:200]}
            return {"outcome": "silently wrong", "state": name,
                    "detail": f"shows the older state {name} and verify() reports nothing"}
        if nearest is None or len(wrong) < nearest[0]:
            nearest = (len(wrong), name, wrong)
    assert nearest is not None
    _, name, wrong = nearest
    key = wrong[0]
    return {"outcome": "silently wrong", "state": name,
            "detail": f"{len(wrong)} reads differ from {name}, e.g. {key}: "
                      f"got {str(obs.get(key))[:120]} want "
                      f"{str((accepted | older)[name].get(key))[:120]}"}


def tally(trials: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind: tried, one count per outcome, error classes, worst RSS and examples."""
    table: dict[str, dict[str, Any]] = {}
    for trial in trials:
        row = table.setdefault(trial["kind"], {"tried": 0, **dict.fromkeys(OUTCOMES, 0),
                                               "harness": 0, "errors": Counter(),
                                               "rss_kb": 0, "examples": [],
                                               "rolled back warned": 0})
        row["tried"] += 1
        row["rolled back warned"] += bool(trial.get("warned"))
        outcome = trial["outcome"]
        row[outcome] = row.get(outcome, 0) + 1
        if trial.get("error"):
            row["errors"][trial["error"]] += 1
        row["rss_kb"] = max(row["rss_kb"], trial.get("rss_kb") or 0)
        bad = outcome in ("crashed", "raw error", "silently wrong", "harness")
        if bad and len(row["examples"]) < 5:
            row["examples"].append({k: trial.get(k) for k in
                                    ("where", "outcome", "error", "detail", "state")})
    for row in table.values():
        row["errors"] = dict(row["errors"].most_common())
    return table
