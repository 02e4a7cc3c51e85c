"""`helm install`, `upgrade` and `uninstall` of the chart on the k8s tier's real kube-apiserver 1.20
(no kubelet: the objects are stored and checked by the server, no pod runs), and `kubectl apply
--dry-run=server` of what it renders."""

import base64
import json
import os
import subprocess

import pytest

from ..prerequisites import require
from .chart import ALL_VALUES, CHART, KUBECTL, helm, tools_missing

pytestmark = [pytest.mark.helm, pytest.mark.k8s]

NAMESPACE = "chart-install"
DASK_NAMESPACE = "chart-install-dask"
TOKEN = "0123456789abcdef" * 4


@pytest.fixture
def cluster(kube_apiserver, tmp_path):
    """helm's and kubectl's environment for the API server as its admin, in NAMESPACE; the
    release and both namespaces' objects of this test are removed afterwards."""
    require(tools_missing())
    kubeconfig = kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig", kube_apiserver.admin_token, NAMESPACE)
    # helm's and kubectl's caches and settings stay in the test's folder.
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "HOME": str(tmp_path),
        "KUBECACHEDIR": str(tmp_path / "kube-cache"),
    }
    yield env
    subprocess.run(
        [str(KUBECTL), "delete", "namespace", NAMESPACE, DASK_NAMESPACE, "--wait=false"],
        env=env,
        capture_output=True,
        timeout=60,
    )


def kubectl(env: dict, *args: str) -> str:
    result = subprocess.run([str(KUBECTL), *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def hub_secret(env: dict) -> dict[str, str]:
    secret = json.loads(kubectl(env, "get", "secret", "lab-sciencelab-hub", "--namespace", NAMESPACE, "-o", "json"))
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items() if key != "values.yaml"}


def test_install_upgrade_and_uninstall_on_kubernetes_1_20(cluster):
    kubectl(cluster, "create", "namespace", NAMESPACE)
    kubectl(cluster, "create", "namespace", DASK_NAMESPACE)
    # Every value, rendered for 1.20, passes the server's own validation (namespaced objects go to
    # NAMESPACE, the kubeconfig's; the Dask ones name theirs).
    every_value = helm(
        "template", "lab", str(CHART), "--namespace", NAMESPACE, "--kube-version", "1.20.2",
        "--values", str(ALL_VALUES), "--set", f"dask.kubernetes.namespace={DASK_NAMESPACE}",
    )  # fmt: skip
    result = subprocess.run(
        [str(KUBECTL), "apply", "--dry-run=server", "-f", "-"],
        input=every_value,
        env=cluster,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout

    settings = [
        "--set", "hub.pdb.enabled=true",
        "--set", "dask.kubernetes.enabled=true",
        "--set", f"dask.kubernetes.namespace={DASK_NAMESPACE}",
    ]  # fmt: skip
    helm("install", "lab", str(CHART), "--namespace", NAMESPACE, *settings, env=cluster)
    # The cluster's own discovery chose the API version 1.20 has.
    pdb = json.loads(kubectl(cluster, "get", "poddisruptionbudgets.v1beta1.policy", "lab-sciencelab-hub", "-o", "json"))
    assert pdb["apiVersion"] == "policy/v1beta1"
    role = json.loads(
        kubectl(
            cluster,
            "get",
            "role",
            "lab-sciencelab-singleuser-chart-install",
            "--namespace",
            DASK_NAMESPACE,
            "-o",
            "json",
        )
    )
    assert role["rules"][2]["resources"] == ["daskclusters"]
    generated = hub_secret(cluster)
    assert sorted(generated) == ["cookie-secret", "crypt-key", "proxy-token"]

    # An upgrade keeps the generated secrets (lookup), and one given in values replaces its own only.
    helm("upgrade", "lab", str(CHART), "--namespace", NAMESPACE, *settings, env=cluster)
    assert hub_secret(cluster) == generated
    helm(
        "upgrade",
        "lab",
        str(CHART),
        "--namespace",
        NAMESPACE,
        *settings,
        "--set",
        f"proxy.secretToken={TOKEN}",
        env=cluster,
    )
    assert hub_secret(cluster) == {**generated, "proxy-token": TOKEN}

    helm("uninstall", "lab", "--namespace", NAMESPACE, env=cluster)
    assert (
        kubectl(
            cluster,
            "get",
            "secret,configmap,deployment,service,networkpolicy,role",
            "--namespace",
            NAMESPACE,
            "-o",
            "name",
            "-l",
            "app.kubernetes.io/instance=lab",
        )
        == ""
    )
    assert kubectl(cluster, "get", "clusterrole", "-o", "name", "-l", "app.kubernetes.io/instance=lab") == ""
    assert kubectl(cluster, "get", "role,rolebinding,networkpolicy", "--namespace", DASK_NAMESPACE, "-o", "name") == ""
