"""The build context the Containerfile expects (see its header): deps/ and app/.

pip inside a build container does not trust the host's CA, so the wheels are fetched on
the host, for the image's Python (bookworm's 3.11) rather than the host's, pinned to the
versions in this virtualenv (the ones the tests ran), and installed with --no-index.

Only the controller's runtime dependencies go in: not the simulator's (scipy), not the
`plot` or `test` extras.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from canary.sandbox.build import Progress
from canary.sandbox.image_tools import image_dir, run_logged
from canary.sandbox.tools import ToolError

REPO = Path(__file__).resolve().parents[2]
IMAGE_PYTHON = "3.11"  # bookworm's python3: the wheels must fit it, whatever the host runs
# Bookworm has glibc 2.36: every manylinux level up to it fits. pip does not infer the
# older levels from the newest one, so all are named.
IMAGE_PLATFORMS = tuple(f"manylinux_2_{minor}_{platform.machine()}" for minor in range(36, 4, -1))
NOT_AT_RUNTIME = frozenset({"scipy"})


def runtime_requirements() -> list[str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return [d for d in deps if _name(d) not in NOT_AT_RUNTIME]


def _name(requirement: str) -> str:
    for stop in "<>=!~;[ ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower().replace("_", "-")


def _pins() -> list[str]:
    """This virtualenv's versions, as pip constraints: the image runs what the tests ran."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in out.stdout.splitlines() if "==" in line]


def ensure_wheels(progress: Progress) -> Path:
    """Wheels of the runtime dependencies for the image's Python, cached by what they are."""
    requirements, pins = runtime_requirements(), _pins()
    key = hashlib.sha256(
        "\n".join([IMAGE_PYTHON, *IMAGE_PLATFORMS, *requirements, *pins]).encode()
    ).hexdigest()[:16]
    target = image_dir() / "wheels" / key
    if (target / "requirements.txt").exists():
        return target
    progress(f"image: fetching wheels for Python {IMAGE_PYTHON} from PyPI")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target / "constraints.txt").write_text("\n".join(pins) + "\n")
    log = target / "pip.log"
    run_logged(
        [
            sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(target),
            "--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--implementation", "cp",
            *(arg for tag in IMAGE_PLATFORMS for arg in ("--platform", tag)),
            "--constraint", str(target / "constraints.txt"),
            *requirements,
        ],
        log,
        progress,
        "pip download",
    )
    (target / "constraints.txt").unlink()
    log.unlink()
    # Written last: its presence marks a complete download.
    (target / "requirements.txt").write_text("\n".join(requirements) + "\n")
    for stale in target.parent.iterdir():
        if stale != target:
            shutil.rmtree(stale)
    return target


def prepare_context(progress: Progress) -> Path:
    """The build context the Containerfile expects: deps/ and app/ (see its header)."""
    wheels = ensure_wheels(progress)
    context = image_dir() / "context"
    shutil.rmtree(context, ignore_errors=True)
    (context / "app").mkdir(parents=True)
    shutil.copytree(wheels, context / "deps", copy_function=os.link)
    progress("image: building the canary wheel")
    with tempfile.TemporaryDirectory(prefix="canary-src-") as scratch:
        # From a copy: an in-tree build would leave build/ and egg-info in the checkout.
        source = Path(scratch)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        shutil.copytree(
            REPO / "canary", source / "canary", ignore=shutil.ignore_patterns("__pycache__")
        )
        out = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--wheel-dir", str(context / "app"), str(source)],
            capture_output=True,
            text=True,
            # Fixed timestamps: unchanged code gives the same wheel, so podman's layer
            # cache holds and the build takes seconds.
            env=dict(os.environ, SOURCE_DATE_EPOCH="315532800"),
        )
    if out.returncode != 0:
        raise ToolError(f"pip wheel of canary failed: {out.stderr.strip()[-1500:]}")
    return context
