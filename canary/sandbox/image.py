"""`make image`: the controller's container image, built and run here with podman.

There is no registry to pull from, so:

- podman runs as root with its own configuration (see image_tools.py).
- The base image `localhost/debian:bookworm-slim` is made from Debian's own packages with
  `debootstrap --variant=minbase` from the mirror apt already uses, kept as a tarball in
  the cache and imported with `podman import` (about a minute on the first build here).
- The wheels are fetched on the host (see image_context.py).
- Builds and runs use the host's network (`--network host`): no container network is set
  up here, and the sandbox's API server listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from canary.sandbox import procs
from canary.sandbox.build import Progress
from canary.sandbox.image_context import REPO, prepare_context
from canary.sandbox.image_tools import (
    ensure_tools,
    image_dir,
    locked,
    podman,
    podman_env,
    run_logged,
)
from canary.sandbox.tools import ToolError

CONTAINERFILE = REPO / "Containerfile"
LOCAL_REPOSITORY = "localhost/canary"
PUBLISHED_REPOSITORY = "ghcr.io/canary-dev/canary"
BASE_IMAGE = "localhost/debian:bookworm-slim"
SUITE = "bookworm"


def version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def local_tag() -> str:
    return f"{LOCAL_REPOSITORY}:{version()}"


def published_tag() -> str:
    return f"{PUBLISHED_REPOSITORY}:{version()}"


@dataclass(frozen=True)
class Mirrors:
    main: str
    security: str


def apt_mirrors(
    sources: Sequence[Path] = (
        Path("/etc/apt/sources.list"),
        *sorted(Path("/etc/apt/sources.list.d").glob("*")),
    ),
) -> Mirrors:
    """The Debian mirrors this machine's apt uses (one-line and deb822 formats)."""
    main = security = ""
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        uris: list[str] = []
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if path.suffix == ".sources" and words[:1] == ["URIs:"]:
                uris = words[1:]
            elif path.suffix == ".sources" and words[:1] == ["Suites:"]:
                for suite in words[1:]:
                    main, security = _pick(uris, suite, main, security)
            elif path.suffix != ".sources" and words[:1] == ["deb"]:
                rest = [w for w in words[1:] if not w.startswith("[")]
                if len(rest) >= 2:
                    main, security = _pick(rest[:1], rest[1], main, security)
    if not main:
        raise ToolError(
            f"no Debian {SUITE} mirror found in the apt sources, so debootstrap has nothing "
            f"to fetch from. Fix: add a `deb http://deb.debian.org/debian {SUITE} main` line "
            "to /etc/apt/sources.list"
        )
    return Mirrors(main, security or "http://deb.debian.org/debian-security")


def _pick(uris: list[str], suite: str, main: str, security: str) -> tuple[str, str]:
    if not uris:
        return main, security
    if suite == SUITE and not main:
        main = uris[0]
    elif suite == f"{SUITE}-security" and not security:
        security = uris[0]
    return main, security


def _deb822(mirrors: Mirrors) -> str:
    """The apt sources the official slim image has, so apt in a build sees security fixes."""
    keyring = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    return (
        f"Types: deb\nURIs: {mirrors.main}\nSuites: {SUITE} {SUITE}-updates\n"
        f"Components: main\n{keyring}\n"
        f"Types: deb\nURIs: {mirrors.security}\nSuites: {SUITE}-security\n"
        f"Components: main\n{keyring}"
    )


def ensure_base(progress: Progress) -> None:
    if podman("image", "exists", BASE_IMAGE).returncode == 0:
        return
    tarball = image_dir() / f"debian-{SUITE}-minbase.tar"
    if not tarball.exists():
        mirrors = apt_mirrors()
        progress(
            f"image: building the base image from Debian packages (debootstrap {SUITE} from "
            f"{mirrors.main}; a minute or more, once)"
        )
        with tempfile.TemporaryDirectory(dir=image_dir(), prefix="rootfs-") as scratch:
            rootfs = Path(scratch) / "rootfs"
            log = image_dir() / "debootstrap.log"
            log.unlink(missing_ok=True)
            run_logged(
                ["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirrors.main],
                log,
                progress,
                "debootstrap",
            )
            (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
            (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(_deb822(mirrors))
            # What the official slim image leaves out: caches, package lists, docs.
            for junk in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
                shutil.rmtree(rootfs / junk, ignore_errors=True)
            partial = tarball.with_suffix(".partial")
            subprocess.run(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
                check=True,
            )
            partial.rename(tarball)
    progress(f"image: importing {tarball.name} as {BASE_IMAGE}")
    out = podman("import", str(tarball), BASE_IMAGE, timeout=600)
    if out.returncode != 0:
        raise ToolError(f"podman import failed: {out.stderr.strip()[-1500:]}")


def build(progress: Progress) -> str:
    """Build the image (layers and base are cached) and return its local tag."""
    ensure_tools(progress)
    started = time.monotonic()
    with locked():
        ensure_base(progress)
        context = prepare_context(progress)
        previous = _image_id(local_tag())
        progress(f"image: podman build -t {local_tag()} -t {published_tag()}")
        log = image_dir() / "build.log"
        log.unlink(missing_ok=True)
        run_logged(
            [
                "podman", "build", "--network", "host", "--pull=never",
                "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--file", str(CONTAINERFILE),
                "--tag", local_tag(), "--tag", published_tag(), str(context),
            ],
            log,
            progress,
            "podman build",
            env=podman_env(),
        )
        if previous and previous != _image_id(local_tag()):
            # Its layers that the new image does not share would pile up build after build.
            podman("rmi", "--ignore", previous)
    progress(f"image: {local_tag()}, {size_mb(local_tag()):.0f} MB, "
             f"built in {time.monotonic() - started:.0f}s (log: {log})")
    return local_tag()


def _image_id(tag: str) -> str:
    out = podman("image", "inspect", "--format", "{{.Id}}", tag)
    return out.stdout.strip() if out.returncode == 0 else ""


def size_mb(tag: str) -> float:
    out = podman("image", "inspect", "--format", "{{.Size}}", tag)
    if out.returncode != 0:
        raise ToolError(f"podman image inspect {tag} failed: {out.stderr.strip()}")
    return int(out.stdout.strip()) / 1e6


@dataclass
class Container(procs.Managed):
    """`podman run` in the foreground: its output is the log, its exit the container's."""

    container: str = ""

    def stop(self) -> None:
        # The image's STOPSIGNAL (SIGINT) stops the controller cleanly; --rm removes it.
        podman("stop", "--ignore", "--time", "10", self.container, timeout=60)
        super().stop()


def run(
    name: str,
    tag: str,
    command: Sequence[str],
    rundir: Path,
    *,
    env: dict[str, str],
    mounts: dict[Path, str],
    user: str,
    lifetime: int = 3600,
) -> Container:
    """Run `command` in the image as a Kubernetes pod would with a read-only root
    filesystem, an empty /tmp and no capabilities, on the host's network. `lifetime`
    bounds it even if whoever started it dies without stopping it."""
    container = f"canary-{name}-{os.getpid()}-{time.monotonic_ns()}"
    argv = [
        "podman", "run", "--rm", "--name", container, "--network", "host",
        "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--timeout", str(lifetime),
        "--user", user,
        *(arg for key, value in env.items() for arg in ("--env", f"{key}={value}")),
        *(arg for src, dst in mounts.items() for arg in ("--volume", f"{src}:{dst}:ro")),
        tag, *command,
    ]
    managed = procs.start(name, argv, rundir, tie_to_parent=True, env=podman_env())
    return Container(managed.name, managed.proc, managed.pidfile, managed.log, container)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m canary.sandbox.image",
        description="Build the controller's image with podman (`make image`).",
    )
    parser.add_argument(
        "--context-only",
        action="store_true",
        help="only assemble the build context (for docker build) and print its path",
    )
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        if args.context_only:
            with locked():
                print(prepare_context(say))
        else:
            build(say)
    except ToolError as exc:
        say(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
