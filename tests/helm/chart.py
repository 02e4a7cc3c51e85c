"""The ScienceLab chart and the real helm binary: render the chart, find its objects.

`make test` installs helm 4 and kubectl 1.33 with `tests/helm/install-helm.sh` into
`${SCIENCELAB_CACHE_DIR:-~/.cache/sciencelab}/kube-tools-v33/`.
"""

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "sciencelab"
ALL_VALUES = CHART / "ci" / "all-values.yaml"
CACHE_DIR = Path(os.environ.get("SCIENCELAB_CACHE_DIR", Path.home() / ".cache" / "sciencelab"))
KUBE_TOOLS = CACHE_DIR / "kube-tools-v33"
HELM = KUBE_TOOLS / "helm"
KUBECTL = KUBE_TOOLS / "kubectl"
INSTALL_SCRIPT = Path(__file__).with_name("install-helm.sh")
RELEASE = "lab"
NAMESPACE = "physics"


def tools_missing() -> str | None:
    """Why helm or kubectl cannot run here, or None."""
    absent = [tool.name for tool in (HELM, KUBECTL) if not os.access(tool, os.X_OK)]
    if absent:
        return f"{' and '.join(absent)} not installed in {KUBE_TOOLS}: run {INSTALL_SCRIPT} (`make test` does)"
    return None


class HelmError(Exception):
    """helm refused: the message is its standard error."""


def helm(*args: str, env: dict[str, str] | None = None) -> str:
    """Run helm with `args`; its standard output, or HelmError with its standard error."""
    result = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )
    if result.returncode != 0:
        raise HelmError(result.stderr)
    return result.stdout


@dataclass
class Rendering:
    """The objects of one `helm template`, in its order."""

    objects: list[dict]

    def get(self, kind: str, name: str) -> dict:
        """The one object of `kind` named `name`; KeyError naming what there is otherwise."""
        for item in self.objects:
            if item["kind"] == kind and item["metadata"]["name"] == name:
                return item
        raise KeyError(f"no {kind} {name!r}; rendered: {sorted(self.names())}")

    def of_kind(self, kind: str) -> dict[str, dict]:
        """The objects of `kind`, by name."""
        return {item["metadata"]["name"]: item for item in self.objects if item["kind"] == kind}

    def names(self) -> set[tuple[str, str]]:
        return {(item["kind"], item["metadata"]["name"]) for item in self.objects}


def render(
    values: dict | None = None,
    *,
    values_files: tuple[Path, ...] = (),
    kube_version: str | None = None,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> Rendering:
    """`helm template` of the chart with `values_files`, then `values` (as a file: types stay)."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for path in values_files:
        args += ["--values", str(path)]
    if kube_version:
        args += ["--kube-version", kube_version]
    if values is not None:
        args += ["--values", "-"]
    result = subprocess.run(
        [str(HELM), *args],
        input=yaml.safe_dump(values) if values is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise HelmError(result.stderr)
    return Rendering([item for item in yaml.safe_load_all(result.stdout) if item])
