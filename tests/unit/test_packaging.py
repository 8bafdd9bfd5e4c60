"""How canary ships: the image recipe's pure parts, one version everywhere, and a Helm chart
whose CRDs, admission policy and Grafana dashboard are the repository's own files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml

from canary.sandbox import image, image_context, image_tools
from canary.sandbox.tools import ToolError

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "canary"


def test_one_version_and_image_name_everywhere() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    docs = list(yaml.safe_load_all((REPO / "manifests" / "controller.yaml").read_text()))
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]
    assert image.version() == version == chart["appVersion"]
    assert pod["spec"]["containers"][0]["image"] == image.published_tag()
    assert image.published_tag() == f"{values['image']['repository']}:{version}"
    assert values["image"]["tag"] == ""  # so the chart's appVersion decides
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == version
    assert pod["metadata"]["labels"]["app.kubernetes.io/version"] == version
    assert image.local_tag() == f"localhost/canary:{version}"


def test_the_charts_crds_admission_policy_and_dashboard_are_the_repositorys_files() -> None:
    crds = sorted((REPO / "manifests" / "crds").glob("*.yaml"))
    linked = sorted((CHART / "crds").iterdir())
    assert [p.name for p in linked] == [p.name for p in crds]
    for link, target in zip(linked, crds, strict=True):
        assert link.is_symlink() and link.resolve() == target.resolve(), link
    admission = CHART / "files" / "admission.yaml"
    assert admission.resolve() == (REPO / "manifests" / "admission.yaml").resolve()
    dashboard = CHART / "files" / "canary-dashboard.json"
    assert dashboard.is_symlink()
    assert dashboard.resolve() == (REPO / "dashboards" / "canary.json").resolve()


def test_the_image_gets_the_runtime_dependencies_only() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {image_context._name(d) for d in declared}
    # Each exclusion names a real dependency: a renamed or dropped one must not linger here.
    assert names >= image_context.NOT_AT_RUNTIME
    kept = image_context.runtime_requirements()
    assert {image_context._name(d) for d in kept} == names - image_context.NOT_AT_RUNTIME
    assert all(d in declared for d in kept)  # bounds as pyproject.toml gives them


def test_the_controller_imports_nothing_the_image_leaves_out() -> None:
    """Every canary module outside the simulator and the sandbox imports without the
    dependencies the image drops (the e2e test runs a rollout from the image as well)."""
    left_out = image_context.NOT_AT_RUNTIME
    blocked = sorted({image_context._name(n).replace("-", "_") for n in left_out})
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {[*blocked, "matplotlib"]!r}:
                    raise ImportError("not in the image: " + name)

        sys.meta_path.insert(0, Block())
        import canary
        skip = ("canary.simulate", "canary.sandbox", "canary.__main__")
        for module in pkgutil.walk_packages(canary.__path__, "canary."):
            if not module.name.startswith(skip):
                importlib.import_module(module.name)
        # Provider plug-ins import their client libraries only when a provider is built.
        from canary.api.analysis_template import Metric
        from canary.providers.registry import PLUGINS, ProviderRegistry
        blocks = {{
            "prometheus": {{"address": "http://p:9090", "query": "up"}},
            "web": {{"url": "http://w/x", "jsonPath": "$.a"}},
        }}
        assert set(blocks) == set(PLUGINS), "add the new provider's block here"
        for name, block in blocks.items():
            metric = Metric.model_validate(
                {{"name": name, "provider": {{name: block}}, "thresholdRange": {{"max": 1}}}}
            )
            ProviderRegistry().provider_for(metric)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_apt_mirrors_reads_deb822_and_one_line_sources(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    assert image.apt_mirrors([deb822]) == image.Mirrors(
        "http://mirror.example/debian", "http://mirror.example/debian-security"
    )
    one_line = tmp_path / "sources.list"
    one_line.write_text(
        "deb [signed-by=/usr/share/keyrings/x.gpg] http://other.example/debian bookworm main\n"
    )
    assert image.apt_mirrors([tmp_path / "missing", one_line]) == image.Mirrors(
        "http://other.example/debian", "http://deb.debian.org/debian-security"
    )


def test_apt_mirrors_without_a_bookworm_source_says_how_to_fix_it(tmp_path: Path) -> None:
    other = tmp_path / "sources.list"
    other.write_text("deb http://mirror.example/debian trixie main\n")
    with pytest.raises(ToolError, match=r"sources\.list"):
        image.apt_mirrors([other])


def test_make_image_without_root_is_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_tools.os, "geteuid", lambda: 1000)
    with pytest.raises(ToolError) as error:
        image_tools.ensure_tools(print)
    assert "\n" not in str(error.value) and "as root" in str(error.value)
