"""The `canary` command: a thin Typer layer that parses, calls and prints."""

from __future__ import annotations

import typer

from canary.sandbox.commands import app as sandbox_app

app = typer.Typer(
    help="Canary rollouts for Kubernetes: step traffic, judge from Prometheus, "
    "promote or roll back on their own.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox_app, name="sandbox")


def main() -> None:
    app()
