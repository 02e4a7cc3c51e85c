"""The benchmark's fake GPU nodes: what a kubelet and the GPU operator would register. No server."""

from .fake_nodes import gpu_node, make_node


def test_a_gpu_node_is_registered_ready_with_its_model_gpus_and_mig_slices():
    node = gpu_node("mig-1", "NVIDIA-A100-SXM4-80GB", gpus=0, **{"nvidia.com/mig-1g.10gb": "7"})
    allocatable = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": "0", "nvidia.com/mig-1g.10gb": "7"}
    assert make_node(node, "2026-11-02T10:00:00Z") == {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "mig-1",
            "labels": {
                "kubernetes.io/hostname": "mig-1",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
                "nvidia.com/gpu.count": "0",
            },
        },
        "status": {
            "capacity": allocatable,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": "2026-11-02T10:00:00Z",
                    "lastTransitionTime": "2026-11-02T10:00:00Z",
                }
            ],
            "nodeInfo": {"kubeletVersion": "v1.20.2", "operatingSystem": "linux", "architecture": "amd64"},
        },
    }
