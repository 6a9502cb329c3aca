"""The per-kind table (markdown) and the results files of a torture run."""

from __future__ import annotations

from typing import Any

from .outcome import OUTCOMES

BAD = ("crashed", "raw error", "silently wrong")
DAMAGE = ("crafted", "truncate", "flip")  # kinds that read a damaged file


def rss_summary(table: dict[str, Any], baseline_kb: int, intact_kb: int,
                file_bytes: int) -> dict[str, Any]:
    """Peak RSS of the damage trials against the bound (file size + 64 MB) over the same
    reads of the intact files (``intact_kb``: what the libraries take anyway), and over a
    bare forked process (``baseline_kb``); the writers' (kills, soak) beside it."""
    def worst(rows: list[str]) -> tuple[str, float]:
        kind = max(rows, key=lambda k: table[k]["rss_kb"], default="")
        return kind, (table[kind]["rss_kb"] / 1024 if kind else 0.0)

    damaged = [k for k in table if k.split(":")[0] in DAMAGE]
    kind, mb = worst(damaged)
    writers_kind, writers_mb = worst([k for k in table if k not in damaged])
    return {"worst_mb": mb, "worst_kind": kind, "baseline_mb": baseline_kb / 1024,
            "intact_mb": intact_kb / 1024, "growth_mb": mb - intact_kb / 1024,
            "bound_mb": file_bytes / 2**20 + 64, "writers_mb": writers_mb,
            "writers_kind": writers_kind}


def markdown(res: dict[str, Any]) -> str:
    counts = res["counts"]
    lines = [f"## Torture run ({res['timestamp']})", "",
             f"Command: `{res['command']}`  ", f"Machine: {res['machine_summary']}  ",
             f"Counts: {counts}; wall time {res['seconds']:.0f} s", "",
             "| kind | tried | " + " | ".join(OUTCOMES) + " | worst RSS MB | typed errors |",
             "| --- | ---: | " + " | ".join("---:" for _ in OUTCOMES) + " | ---: | --- |"]
    for kind, row in res["table"].items():
        errors = ", ".join(f"{k} {v}" for k, v in list(row["errors"].items())[:4])
        lines.append(f"| {kind} | {row['tried']} | "
                     + " | ".join(str(row.get(o, 0)) for o in OUTCOMES)
                     + f" | {row['rss_kb'] / 1024:.0f} | {errors} |")
    total = res["totals"]
    lines.append("| **all** | **" + str(total["tried"]) + "** | "
                 + " | ".join(f"**{total.get(o, 0)}**" for o in OUTCOMES) + " | | |")
    rolled = sum(row.get("rolled back", 0) for row in res["table"].values())
    warned = sum(row.get("rolled back warned", 0) for row in res["table"].values())
    lines += ["", f"Rolled back trials whose open warned (`DamagedCommitWarning`: writes of "
              f"the newest commit are not readable): {warned} of {rolled}."]
    rss = res["rss"]
    lines += ["", f"Peak RSS of a damage trial (crafted, truncated or flipped file): "
              f"{rss['worst_mb']:.0f} MB ({rss['worst_kind']}); the same reads of the intact "
              f"files peak at {rss['intact_mb']:.0f} MB (a bare forked process: "
              f"{rss['baseline_mb']:.0f} MB), so damage adds at most {rss['growth_mb']:.0f} "
              f"MB against a bound of file size + 64 MB = {rss['bound_mb']:.0f} MB "
              f"({'within' if rss['growth_mb'] <= rss['bound_mb'] else 'OVER'} the bound)."]
    if rss.get("writers_mb"):
        lines += [f"Writers (kill -9 chains, the soak) are not bounded by the file: their "
                  f"peak was {rss['writers_mb']:.0f} MB ({rss['writers_kind']})."]
    bad = [(kind, ex) for kind, row in res["table"].items() for ex in row["examples"]]
    if bad:
        lines += ["", "### Examples of crashed / raw error / silently wrong trials", ""]
        lines += [f"- {kind}: {ex['outcome']} at {ex['where']}: {ex.get('error') or ''} "
                  f"{(ex.get('detail') or '')[:300]}" for kind, ex in bad]
    return "\n".join(lines) + "\n"


def totals(table: dict[str, dict[str, Any]]) -> dict[str, int]:
    out = {"tried": sum(r["tried"] for r in table.values())}
    for o in (*OUTCOMES, "harness"):
        out[o] = sum(r.get(o, 0) for r in table.values())
    return out
