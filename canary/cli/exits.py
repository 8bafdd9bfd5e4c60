"""How `canary` commands exit: the codes CI scripts branch on, defined once, and the one
way a command reports an error."""

from __future__ import annotations

import sys

import typer

EXIT_OK = 0  # success; `deploy --wait`: promoted
EXIT_FAILED = 1  # rolled back or failed; a request the controller did not apply
EXIT_USAGE = 2  # usage or config error: a bad option, a missing Canary, no CRDs
EXIT_TIMEOUT = 3  # gave up waiting; the rollout or request may still complete

# `canary lint` reads a file it could not check (missing, unreadable, not YAML) as a
# config error, unlike a finding in a file it could.
LINT_CLEAN, LINT_FINDINGS, LINT_UNCHECKED = EXIT_OK, EXIT_FAILED, EXIT_USAGE

# `canary analyze` has two codes of its own, so that CI can tell a template that is
# wrong (1) from metrics that could not tell (3, not a timeout) or could not be read (4).
ANALYZE_PASS, ANALYZE_FAIL = EXIT_OK, EXIT_FAILED
ANALYZE_INCONCLUSIVE = 3  # any Inconclusive, and no Fail or Error
ANALYZE_ERROR = 4  # any provider Error, and no Fail
ANALYZE_INTERRUPTED = 130  # Ctrl-C during --duration, as shells report SIGINT


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: MESSAGE` to stderr and return the Exit for the caller to raise."""
    print(f"error: {message}", file=sys.stderr)  # never wrapped: CI logs are grepped
    return typer.Exit(code)
