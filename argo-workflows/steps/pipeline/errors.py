"""The two ways a step fails. Each carries its exit code; the command line prints the message as one
line on stderr and never a traceback."""

from __future__ import annotations


class StepError(Exception):
    exit_code = 1


class UsageError(StepError):
    """Bad input (an argument, or what an argument names): exit 2. The message names it and the fix."""

    exit_code = 2


class Failed(StepError):
    """A step that could not do its work (a signature that does not verify, a push refused): exit 1."""

    exit_code = 1


class Findings(StepError):
    """The scan found what the gate refuses (HIGH/CRITICAL, not waived): exit 3, apart from a scanner
    that could not look (1), so a blocked image is never mistaken for a broken scan."""

    exit_code = 3
