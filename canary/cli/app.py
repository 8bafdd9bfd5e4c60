"""The `canary` command (also `kubectl canary`): the Typer app, built from one module per
verb group, each adding its commands with `register(app)`.

The modules import the Kubernetes client, numpy, the Prometheus clients, rich, the
simulator and the sandbox inside the commands that use them, so that `canary --help` and
`canary lint` start fast (tests/unit/test_cli_startup.py keeps it so).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from canary.cli import controller, inspection, rollout, sandbox, simulate, templates
from canary.cli.exits import EXIT_FAILED, fail
from canary.errors import CanaryError, PermanentError

# Typer prints an argument's Python type after its name ("NAME <str>", "PATH <list[str]>"),
# which tells a user nothing the metavar does not; choices (<a|b>) are worth keeping.
typer.core.TyperArgument.display_type_rich = (  # type: ignore[method-assign]
    lambda self, ctx: self.display_type(ctx) if self.type_descriptor.is_choice else None
)

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
for group in (rollout, inspection, templates, simulate, controller, sandbox):
    group.register(app)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        print(f"canary {version('canary')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    pass


def prog_name(argv0: str) -> str:
    """The command as users type it in usage lines: kubectl runs the plug-in
    `kubectl-canary` for `kubectl canary`."""
    return "kubectl canary" if Path(argv0).name.startswith("kubectl-canary") else "canary"


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        app(prog_name=prog_name(sys.argv[0]))
    except PermanentError as exc:
        sys.exit(fail(str(exc)).exit_code)
    except CanaryError as exc:  # transient: the API server or network; worth a retry
        sys.exit(fail(f"{exc} (try again)", EXIT_FAILED).exit_code)
