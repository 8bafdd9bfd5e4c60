"""The `canary` command (also `kubectl canary`): the Typer app, built from one module per
verb group, each adding its commands with `register(app)`.

The modules import the Kubernetes client, numpy, the Prometheus clients, rich, the
simulator and the sandbox inside the commands that use them, so that `canary --help` and
`canary lint` start fast (tests/unit/test_cli_startup.py keeps it so).
"""

from __future__ import annotations

import logging
import sys

import typer

from canary.cli import controller, rollout, sandbox, simulate, templates
from canary.cli.exits import EXIT_FAILED, fail
from canary.errors import CanaryError, PermanentError

app = typer.Typer(
    help="Canary rollouts for Kubernetes: step traffic to a new version, judge it from "
    "Prometheus, promote it or roll it back on its own.\n\n"
    "\b\n"
    "CI:         canary deploy checkout --image app=registry/checkout:v2 --wait --timeout 30m\n"
    "Engineers:  canary status checkout --watch\n"
    "            canary promote checkout | canary abort checkout\n"
    "Platform:   canary lint analysis_templates/ my-canary.yaml\n"
    "            canary analyze --template http-error-rate --arg service=checkout\n"
    "Try it:     canary demo\n\n"
    "Exit codes: 0 success/promoted, 1 rolled back or failed, 2 usage or config error, "
    "3 timed out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for group in (rollout, templates, simulate, controller, sandbox):
    group.register(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except PermanentError as exc:
        sys.exit(fail(str(exc)).exit_code)
    except CanaryError as exc:  # transient: the API server or network; worth a retry
        sys.exit(fail(f"{exc} (try again)", EXIT_FAILED).exit_code)
