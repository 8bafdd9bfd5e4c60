"""Help a user can act on: choices and meanings rather than Python type names, the
version, and the command as it was typed (`kubectl canary` for the kubectl plug-in)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from canary.cli.app import app

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
TYPE_NAME = re.compile(r"<(str|int|float|bool|path|[a-z]+ range|list\[[^>]*\])>")


def commands(
    group: typer.core.TyperGroup, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


VERBS = sorted(commands(typer.main.get_command(app)))  # type: ignore[arg-type]


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_help_names_no_python_types(verb: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*verb, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert TYPE_NAME.findall(result.stdout) == []


def test_help_shows_the_choices_of_output_and_what_each_means() -> None:
    result = CliRunner().invoke(app, ["list", "--help"], env={"COLUMNS": "200"})
    assert "-o, --output <wide|json|yaml>  wide: also the stable and canary revisions" \
        in result.stdout


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"canary \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(
    ("argv0", "usage"),
    [("/usr/local/bin/kubectl-canary", "kubectl canary"), ("/usr/local/bin/canary", "canary")],
)
def test_usage_names_the_command_as_typed(argv0: str, usage: str) -> None:
    code = f"import sys; sys.argv[0] = {argv0!r}; from canary.cli.app import main; main()"
    out = subprocess.run([sys.executable, "-c", code, "status", "--help"], capture_output=True,
                         text=True, cwd=REPO, check=True, timeout=60)
    assert out.stdout.startswith(f"Usage: {usage} status [OPTIONS] {{NAME}}\n")
