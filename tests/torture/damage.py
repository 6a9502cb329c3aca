"""Damaged-file trials: flipped bytes by region kind, truncations and crafted files.

Each trial writes its damaged copy of the corpus file, runs the read suite on it in a
forked process (``probe.probe_file``) and classifies the answers (``outcome.classify``)
against the corpus snapshots: the intact file (and, for damage in the WAL, its
acknowledged prefixes) are recoveries, older commits roll-backs.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from . import crafted, regions
from .isolate import run_forked
from .outcome import classify
from .probe import probe_file

Spec = dict[str, Any]


class Damage:
    """The corpus, its expected observations, and the trials on it."""

    def __init__(self, corpus: dict[str, Any], goldens: dict[str, Any]) -> None:
        self.plan = corpus["plan"]
        self.data = Path(corpus["file"]).read_bytes()
        self.full = {"full": goldens["full"]}
        self.prefixes = {s["name"]: goldens[s["name"]] for s in corpus["snaps"]
                         if s["kind"] == "wal"}
        last_commit = [s["name"] for s in corpus["snaps"] if s["kind"] == "commit"][-1]
        self.prefixes[last_commit] = goldens[last_commit]
        self.older = {n: g for n, g in goldens.items() if n != "full"}
        self.trials = 0

    # ---------------------------------------------------------------- trial lists

    def flips(self, per_kind: int, every_byte: bool, seed: int = 1) -> list[Spec]:
        rng = random.Random(seed)
        specs: list[Spec] = []
        for kind, spans in regions.regions(self.data).items():
            pos = regions.positions(spans)
            if not pos:
                continue
            if not (every_byte and kind in regions.EVERY_BYTE) and len(pos) > per_kind:
                pos = sorted(rng.sample(pos, per_kind))
            specs += [{"kind": f"flip: {kind}", "op": "flip", "pos": p,
                       "xor": rng.randint(1, 255), "wal": kind in regions.WAL_KINDS}
                      for p in pos]
        return specs

    def truncations(self, count: int, seed: int = 2) -> list[Spec]:
        rng = random.Random(seed)
        cuts = regions.boundaries(self.data)
        if len(cuts) > count // 2:
            cuts = sorted(rng.sample(cuts, count // 2))
        specs = [{"kind": "truncate: region boundary", "op": "truncate", "at": c} for c in cuts]
        specs += [{"kind": "truncate: random offset", "op": "truncate",
                   "at": rng.randrange(1, len(self.data))} for _ in range(count - len(cuts))]
        return specs

    def crafted(self) -> list[Spec]:
        return [{"kind": "crafted: bomb" if "bomb" in name else "crafted: length field",
                 "op": "crafted", "case": name, "wal": name.startswith("wal ")}
                for name in crafted.CASES]

    # ---------------------------------------------------------------------- running

    def damaged(self, spec: Spec) -> bytes:
        if spec["op"] == "flip":
            out = bytearray(self.data)
            out[spec["pos"]] ^= spec["xor"]
            return bytes(out)
        if spec["op"] == "truncate":
            return self.data[: spec["at"]]
        return crafted.CASES[spec["case"]](self.data)

    def run(self, spec: Spec, workdir: Path, timeout: float) -> dict[str, Any]:
        path = workdir / "trial.mv2"
        where = spec.get("case") or f"{spec['op']} at {spec.get('pos', spec.get('at'))}"
        # crafted in a child of its own: a bomb's buffers must not count in the trial's RSS
        made = run_forked(lambda: {"bytes": path.write_bytes(self.damaged(spec))}, 300)
        if "bytes" not in made:
            return {**spec, "where": where, "outcome": "harness", "detail": str(made)[:500]}
        accepted = self.full | (self.prefixes if spec.get("wal") else {})
        self.trials += 1
        sweeping = self.trials % 2 == 0
        result = run_forked(lambda: classify(_probe(str(path), self.plan, sweeping),
                                             accepted, self.older), timeout)
        path.unlink(missing_ok=True)
        return {**spec, "where": where, "file_bytes": made["bytes"], **result}


def _probe(path: str, plan: dict[str, Any], sweeping: bool) -> dict[str, Any]:
    """The read suite on ``path``; ``sweeping``: its reader starts checking its vector
    blocks whole in the background at its first rescored rows (``stored.ROWS_BEFORE_SWEEP``),
    racing the reads that follow, as a long-lived reader does."""
    if sweeping:
        from memvid_store.index.vector import stored

        stored.ROWS_BEFORE_SWEEP = 1
    return probe_file(path, plan)
