"""``mv2``: the command-line interface to .mv2 memory files.

Read commands open the file read-only. ``--json`` prints one JSON document; without it
the output is plain text and aligned tables. Errors print one line and exit with a code
that says what went wrong (see :class:`ExitCode` and docs/cli.md); user errors never
print a traceback.

Each command group lives in its own module; heavy modules (numpy, the ingest readers,
embedders) are imported inside the commands that need them, so ``mv2 get`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from .. import __version__
from . import browse, corpus, exchange, frames, health, performance, search
from ._common import CliError, ExitCode

__all__ = ["CliError", "ExitCode", "cli", "main"]


_EPILOG = ("Exit status: 0 ok, 1 error, 2 usage error, 3 partial (input skipped), "
           "4 not found, 5 locked by another writer, 6 not a .mv2 file, newer format or damaged.")


@click.group(name="mv2", context_settings={"help_option_names": ["-h", "--help"]},
             epilog=_EPILOG)
@click.version_option(__version__, prog_name="mv2")
def cli() -> None:
    """Create, fill, search, inspect and repair .mv2 memory files: crash-safe,
    single-file memory with time travel."""


for _module in (frames, browse, search, corpus, exchange, health, performance):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(args: Sequence[str] | None = None) -> None:
    """The ``mv2`` console script."""
    cli.main(args=list(args) if args is not None else None, prog_name="mv2")
