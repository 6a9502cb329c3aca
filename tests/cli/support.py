"""Helpers shared by the command-line tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from memvid_store.cli import cli

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
EMBEDDER = "hash:64"  # deterministic and fast; the real model is tested with the embedders


def run(*args: Any, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def fails(result: Result, code: int, *fragments: str) -> Result:
    """A clean failure: this exit code, the given message, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    return result
