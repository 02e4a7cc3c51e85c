"""A real ScienceLab hub whose servers are pods on the test API server, for tests and benchmarks.

`KubeHub` is the demo hub (`tests/demo_hub.py`) switched to `KubeProfileSpawner` by an extra
`jupyterhub_config.py`: the hub's token is RBAC-limited to the `sciencelab` namespace, the pods run
on the node agent's fake nodes, and every pod manifest the spawner sends is also written to
`state_dir/pods/<name>.json` (a `modify_pod_hook`), so tests check exactly what was sent.
"""

import json
import time
from pathlib import Path

from ..demo_hub import DemoHub
from .apiserver import NAMESPACE, KubeCredentials

KUBE_HUB_CONFIG = """\
import json
from pathlib import Path

from sciencelab_spawner.demo import free_port
from sciencelab_spawner.hub_config import configure_sciencelab

STATE = Path(__file__).parent


def record_pod(spawner, pod):
    manifest = spawner.api.api_client.sanitize_for_serialization(pod)
    (STATE / "pods").mkdir(exist_ok=True)
    (STATE / "pods" / (manifest["metadata"]["name"] + ".json")).write_text(json.dumps(manifest))
    return pod


# The demo's own service and roles are replaced by those of the Kubernetes spawner.
configure_sciencelab(c, spawner="kubernetes", profiles_file=str(STATE / "profiles.yaml"), namespace="{namespace}",
                     service_port=free_port(), check=False)
c.{spawner}.cmd = ["jupyterhub-singleuser"]
c.{spawner}.image = "quay.io/jupyter/base-notebook:2026-11-02"
c.{spawner}.modify_pod_hook = record_pod
c.{spawner}.start_timeout = 120
c.{spawner}.http_timeout = 120
"""


def kube_hub_config(namespace: str = NAMESPACE, spawner: str = "KubeProfileSpawner") -> str:
    return KUBE_HUB_CONFIG.replace("{namespace}", namespace).replace("{spawner}", spawner)


class KubeHub(DemoHub):
    """`DemoHub` with ScienceLab's Kubernetes spawner on `credentials`' API server (see the module
    docstring); `extra_config` is appended to the Kubernetes configuration."""

    def __init__(
        self,
        state_dir: Path,
        credentials: KubeCredentials,
        profiles: str,
        extra_config: str = "",
        base_config: str | None = None,
    ):
        state_dir.mkdir(parents=True, exist_ok=True)
        kubeconfig = credentials.write_kubeconfig(state_dir / "kubeconfig", credentials.hub_token)
        super().__init__(
            state_dir,
            extra_config=(base_config or kube_hub_config()) + extra_config,
            profiles=profiles,
            env={"KUBECONFIG": str(kubeconfig)},
        )
        self.credentials = credentials
        self.admin_api = credentials.session(credentials.admin_token)

    def sent_pod(self, name: str) -> dict:
        """The manifest of pod `name` as the spawner last sent it."""
        return json.loads((self.state_dir / "pods" / f"{name}.json").read_text())

    def kube(self, path: str, **params) -> dict | None:
        """GET `path` on the API server as the cluster admin; None for 404."""
        response = self.admin_api.get(self.credentials.url + path, params=params, timeout=30)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def stop_server(self, user: str, server: str = ""):
        super().stop_server(user, server)
        release_deleted_volumes(self.credentials)


def release_deleted_volumes(credentials: KubeCredentials, namespace: str = NAMESPACE):
    """What kube-controller-manager's pvc- and pv-protection controllers do once no pod uses a
    claim (the test cluster has no controller-manager): drop the finalizers of claims and volumes
    being deleted, so they go."""
    admin = credentials.session(credentials.admin_token)
    for path in (f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", "/api/v1/persistentvolumes"):
        for item in admin.get(credentials.url + path, timeout=30).json()["items"]:
            if item["metadata"].get("deletionTimestamp") and item["metadata"].get("finalizers"):
                admin.patch(
                    f"{credentials.url}{path}/{item['metadata']['name']}",
                    json={"metadata": {"finalizers": None}},
                    headers={"Content-Type": "application/merge-patch+json"},
                    timeout=30,
                )


def remove_namespace_objects(credentials: KubeCredentials, namespace: str = NAMESPACE):
    """Delete every pod, Secret, claim and ScienceLab volume a hub left in `namespace`."""
    admin = credentials.session(credentials.admin_token)
    for kind in ("pods", "secrets", "persistentvolumeclaims"):
        admin.delete(
            f"{credentials.url}/api/v1/namespaces/{namespace}/{kind}", json={"gracePeriodSeconds": 0}, timeout=30
        ).raise_for_status()
    admin.delete(
        f"{credentials.url}/api/v1/persistentvolumes",
        params={"labelSelector": f"sciencelab.io/namespace={namespace}"},
        timeout=30,
    ).raise_for_status()
    release_deleted_volumes(credentials, namespace)


def wait_for(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
