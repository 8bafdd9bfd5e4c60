"""`make image`: the controller's container image, built and run here with podman.

There is no Docker engine and no registry to pull from, so:

- podman runs as root with its own containers.conf (kept in the cache and passed through
  CONTAINERS_CONF, so the machine's configuration is left alone): `runtime = "runc"` and
  `cgroup_manager = "cgroupfs"`, because crun refuses this machine's hybrid cgroups, and
  `default_ulimits = []`, because the defaults cannot be applied here.
- The base image `localhost/debian:bookworm-slim` is made from Debian's own packages with
  `debootstrap --variant=minbase` from the mirror apt already uses, kept as a tarball in
  the cache and imported with `podman import` (about a minute on the first build here).
- pip inside a build container does not trust the host's CA, so the wheels are fetched on
  the host, for the image's Python (bookworm's 3.11) rather than the host's, pinned to the
  versions in this virtualenv (the ones the tests ran), and installed with --no-index.
- Builds and runs use the host's network (`--network host`): no container network is set
  up here, and the sandbox's API server listens on 127.0.0.1.

Only the controller's runtime dependencies go in: not the simulator's (scipy), not the
unused httpx, not the `plot` or `test` extras.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from canary.sandbox import procs
from canary.sandbox.build import Progress
from canary.sandbox.paths import cache_dir
from canary.sandbox.tools import ToolError

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"
LOCAL_REPOSITORY = "localhost/canary"
PUBLISHED_REPOSITORY = "ghcr.io/canary-dev/canary"
BASE_IMAGE = "localhost/debian:bookworm-slim"
SUITE = "bookworm"
IMAGE_PYTHON = "3.11"  # bookworm's python3: the wheels must fit it, whatever the host runs
# Bookworm has glibc 2.36: every manylinux level up to it fits. pip does not infer the
# older levels from the newest one, so all are named.
IMAGE_PLATFORMS = tuple(f"manylinux_2_{minor}_{platform.machine()}" for minor in range(36, 4, -1))
NOT_AT_RUNTIME = frozenset({"scipy", "httpx"})
TOOLS = ("podman", "runc", "debootstrap")  # each also names its Debian package
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def local_tag() -> str:
    return f"{LOCAL_REPOSITORY}:{version()}"


def published_tag() -> str:
    return f"{PUBLISHED_REPOSITORY}:{version()}"


def image_dir() -> Path:
    return cache_dir() / "image"


def podman_env() -> dict[str, str]:
    conf = image_dir() / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
    return dict(os.environ, CONTAINERS_CONF=str(conf))


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=podman_env(), timeout=timeout
    )


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def ensure_tools(progress: Progress) -> None:
    missing = missing_tools()
    if os.geteuid() != 0:
        raise ToolError(
            "building the image needs root (podman runs rootful here, debootstrap needs "
            f"chroot){'; also missing: ' + ', '.join(missing) if missing else ''}. "
            "Fix: run `make image` as root"
        )
    if not missing:
        return
    progress(f"image: installing {', '.join(missing)} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise ToolError(
                f"{' '.join(cmd)} failed: {(out.stdout + out.stderr).strip()[-1500:]}\n"
                f"Fix: apt-get install -y {' '.join(missing)}"
            )


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One build at a time on the machine: test runs and `make image` share the cache."""
    image_dir().mkdir(parents=True, exist_ok=True)
    with (image_dir() / "lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _run(
    cmd: Sequence[str],
    log: Path,
    progress: Progress,
    label: str,
    env: dict[str, str] | None = None,
) -> None:
    """Run a slow command with its output in `log`, saying every 15 s that it still runs."""
    started = last = time.monotonic()
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            while proc.poll() is None:
                time.sleep(0.5)
                if time.monotonic() - last >= 15:
                    last = time.monotonic()
                    progress(f"  {label}: {last - started:.0f}s")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise ToolError(f"{label} failed (exit {proc.returncode}); the end of {log}:\n{tail}")


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
            _run(
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
    _run(
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


def build(progress: Progress) -> str:
    """Build the image (layers and base are cached) and return its local tag."""
    ensure_tools(progress)
    started = time.monotonic()
    with _locked():
        ensure_base(progress)
        context = prepare_context(progress)
        previous = _image_id(local_tag())
        progress(f"image: podman build -t {local_tag()} -t {published_tag()}")
        log = image_dir() / "build.log"
        log.unlink(missing_ok=True)
        _run(
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
            with _locked():
                print(prepare_context(say))
        else:
            build(say)
    except ToolError as exc:
        say(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
