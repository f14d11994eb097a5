"""The command line: one subcommand per step. Every error is one line on stderr, naming the argument
(or what went wrong) and the fix; exit 2 for bad input, 1 for a step that failed, 3 for findings
the scan refuses; never a traceback."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from pipeline.commands import cleanup, pin, promote, rollback, scan, tags
from pipeline.errors import StepError, UsageError


class _Parser(argparse.ArgumentParser):
    """argparse prints its usage and exits; here a refusal is an exception the one handler prints."""

    def error(self, message: str) -> NoReturn:
        command = " ".join(self.prog.split()[1:])
        raise UsageError(f"{message}; see `python3 -m pipeline {command + ' ' if command else ''}--help`")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="pipeline", description=__doc__, allow_abbrev=False)
    commands = root.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for command in (tags, pin, promote, rollback, cleanup, scan):
        command.register(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        return int(args.run(args))
    except StepError as error:
        message = " ".join(str(error).split())  # one line, whatever a tool printed
        print(f"pipeline {'usage ' if error.exit_code == 2 else ''}error: {message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("pipeline error: interrupted", file=sys.stderr)
        return 130
