"""Fake GPU nodes on a bare API server, for the GPU inventory benchmark: the test cluster's one real
node cannot show a site of 100 GPU nodes and 2000 pods.

`register_fake_nodes` creates the Node objects a kubelet would (labels, capacity and allocatable
CPUs, memory, GPUs, MIG slices), Ready. Nothing runs on them: pods created bound to one
(`spec.nodeName`) count in the inventory as a site's pending or running pods do. They are for a
`KubeApiServer` alone: on the full cluster (`cluster.py`) the controller-manager would mark them
NotReady for want of heartbeats and the scheduler would send real pods to them.
"""

import datetime
from dataclasses import dataclass, field

from .apiserver import KubeCredentials

KUBELET_VERSION = "v1.20.2"


@dataclass
class FakeNode:
    """A node to register. `allocatable` holds Kubernetes quantities by resource name."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    allocatable: dict[str, str] = field(default_factory=lambda: {"cpu": "8", "memory": "32Gi", "pods": "110"})


def gpu_node(name: str, product: str, gpus: int, **resources: str) -> FakeNode:
    """A node with `gpus` whole GPUs of model `product` (the NVIDIA GPU operator's labels);
    `resources` adds MIG slices, e.g. `**{"nvidia.com/mig-1g.10gb": "7"}`."""
    return FakeNode(
        name=name,
        labels={"nvidia.com/gpu.product": product, "nvidia.com/gpu.count": str(gpus)},
        allocatable={"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": str(gpus), **resources},
    )


def make_node(node: FakeNode, now: str) -> dict:
    """The Node object a kubelet registers for `node`, Ready since `now`."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **node.labels,
            },
        },
        "status": {
            "capacity": node.allocatable,
            "allocatable": node.allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": "amd64"},
        },
    }


def register_fake_nodes(credentials: KubeCredentials, nodes: list[FakeNode]):
    """Create `nodes` Ready on the API server (as the admin); the API server takes a new node's
    status only through its status subresource."""
    admin = credentials.session(credentials.admin_token)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for node in nodes:
        manifest = make_node(node, now)
        admin.post(f"{credentials.url}/api/v1/nodes", json=manifest, timeout=30).raise_for_status()
        admin.patch(
            f"{credentials.url}/api/v1/nodes/{node.name}/status",
            json={"status": manifest["status"]},
            headers={"Content-Type": "application/merge-patch+json"},
            timeout=30,
        ).raise_for_status()
