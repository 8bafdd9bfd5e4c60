"""How `canary` commands exit: the codes CI scripts branch on, defined once, and the one
way a command reports an error."""

from __future__ import annotations

import sys

import typer

EXIT_OK = 0  # success; `deploy --wait`: promoted
EXIT_FAILED = 1  # rolled back or failed; a request the controller did not apply
EXIT_USAGE = 2  # usage or config error: a bad option, a missing Canary, no CRDs
EXIT_TIMEOUT = 3  # gave up waiting; the rollout or request may still complete


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: MESSAGE` to stderr and return the Exit for the caller to raise."""
    print(f"error: {message}", file=sys.stderr)  # never wrapped: CI logs are grepped
    return typer.Exit(code)
