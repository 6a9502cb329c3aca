"""Trial counts (``MEMVID_TORTURE_*`` environment variables) and the CI subset."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _env(name: str, default: float) -> float:
    raw = os.environ.get(f"MEMVID_TORTURE_{name}", "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"MEMVID_TORTURE_{name} must be a number, not {raw!r}") from None


@dataclass(frozen=True)
class Counts:
    kills: int = 1000  # MEMVID_TORTURE_KILLS
    flips: int = 2000  # MEMVID_TORTURE_FLIPS: sampled bytes per segment kind
    every_byte: bool = True  # header, TOC and WAL records flipped at every byte
    truncations: int = 200  # MEMVID_TORTURE_TRUNCATIONS
    soak_s: float = 180.0  # MEMVID_TORTURE_SOAK_S
    jobs: int = 2  # MEMVID_TORTURE_JOBS: trials run at once
    timeout_s: float = 60.0  # MEMVID_TORTURE_TIMEOUT_S: per trial

    @classmethod
    def from_env(cls, quick: bool = False) -> Counts:
        base = QUICK if quick else cls()
        return cls(
            kills=int(_env("KILLS", base.kills)), flips=int(_env("FLIPS", base.flips)),
            every_byte=base.every_byte and _env("EVERY_BYTE", 1) != 0,
            truncations=int(_env("TRUNCATIONS", base.truncations)),
            soak_s=_env("SOAK_S", base.soak_s), jobs=max(1, int(_env("JOBS", base.jobs))),
            timeout_s=_env("TIMEOUT_S", base.timeout_s))


# the CI subset: every kind, few trials (``--quick``)
QUICK = Counts(kills=20, flips=8, every_byte=False, truncations=10, soak_s=5.0)
