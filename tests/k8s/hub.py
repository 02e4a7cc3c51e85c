"""A real ScienceLab hub whose servers are pods on the test cluster, for tests and benchmarks.

`KubeHub` is the demo hub (`tests/demo_hub.py`) switched to `KubeProfileSpawner` by an extra
`jupyterhub_config.py`: the hub's token is RBAC-limited to the `sciencelab` namespace, the hub
listens on the node's address (`cluster.NODE_IP`) so that servers in pods reach its API, the pods
run on the cluster's node from the image the test imported there, and every pod manifest the
spawner sends is also written to `state_dir/pods/<name>.json` (a `modify_pod_hook`), so tests
check exactly what was sent.
"""

import json
import time
from pathlib import Path

from ..demo_hub import DemoHub
from .apiserver import NAMESPACE, KubeCredentials
from .cluster import NODE_IP

# The namespace's own service-account token stays: admission refuses pods while it is missing.
KEEP_SERVICE_ACCOUNT_TOKENS = "type!=kubernetes.io/service-account-token"

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
                     service_port=free_port(), check=False, sessions_file=str(STATE / "sciencelab-sessions.json"))
# Servers in pods call the hub's API: it listens on the node's address, not on loopback.
c.JupyterHub.hub_ip = "{hub_ip}"
c.{spawner}.cmd = ["jupyterhub-singleuser"]
c.{spawner}.image = "{image}"
c.{spawner}.modify_pod_hook = record_pod
c.{spawner}.start_timeout = 120
c.{spawner}.http_timeout = 120
"""


def kube_hub_config(image: str, namespace: str = NAMESPACE, spawner: str = "KubeProfileSpawner") -> str:
    """The hub's Kubernetes configuration: `spawner` in `namespace`, `image` where no profile names one."""
    return (
        KUBE_HUB_CONFIG.replace("{namespace}", namespace)
        .replace("{spawner}", spawner)
        .replace("{image}", image)
        .replace("{hub_ip}", NODE_IP)
    )


class KubeHub(DemoHub):
    """`DemoHub` with ScienceLab's Kubernetes spawner on `credentials`' API server (see the module
    docstring); `base_config` (default: `kube_hub_config(image)`) and then `extra_config` become
    its configuration, `env` is added to its environment."""

    def __init__(
        self,
        state_dir: Path,
        credentials: KubeCredentials,
        profiles: str,
        image: str,
        extra_config: str = "",
        base_config: str | None = None,
        env: dict[str, str] | None = None,
    ):
        state_dir.mkdir(parents=True, exist_ok=True)
        kubeconfig = credentials.write_kubeconfig(state_dir / "kubeconfig", credentials.hub_token)
        super().__init__(
            state_dir,
            extra_config=(base_config or kube_hub_config(image)) + extra_config,
            profiles=profiles,
            env={"KUBECONFIG": str(kubeconfig), **(env or {})},
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


def remove_namespace_objects(credentials: KubeCredentials, namespace: str = NAMESPACE):
    """Delete every pod, Secret and claim a hub left in `namespace`, and ScienceLab's volumes."""
    admin = credentials.session(credentials.admin_token)
    for kind in ("pods", "secrets", "persistentvolumeclaims"):
        admin.delete(
            f"{credentials.url}/api/v1/namespaces/{namespace}/{kind}",
            params={"fieldSelector": KEEP_SERVICE_ACCOUNT_TOKENS} if kind == "secrets" else {},
            json={"gracePeriodSeconds": 0},
            timeout=30,
        ).raise_for_status()
    admin.delete(
        f"{credentials.url}/api/v1/persistentvolumes",
        params={"labelSelector": f"sciencelab.io/namespace={namespace}"},
        timeout=30,
    ).raise_for_status()


def wait_for(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
