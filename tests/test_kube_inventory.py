"""The GPU ledger's counts from Node and Pod objects, event by event. No cluster."""

from types import SimpleNamespace

from sciencelab_spawner.kube_inventory import (
    GpuAvailability,
    GpuLedger,
    KubeGpuInventory,
    gpu_status,
    node_gpus,
    pod_gpus,
)
from sciencelab_spawner.profile_config import GpuModel, make_profile_config
from sciencelab_spawner.spawn_form import make_options_form

A100 = GpuModel("a100", "A100", node_label="NVIDIA-A100-SXM4-80GB")
H100 = GpuModel("h100", "H100", node_label="NVIDIA-H100-80GB-HBM3")
ANY = GpuModel("any", "any GPU")
MIG = GpuModel("mig", "MIG 1g", resource="nvidia.com/mig-1g.10gb")


def node(name, product=None, ready=True, unschedulable=False, **allocatable):
    return {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": product} if product else {}},
        "spec": {"unschedulable": True} if unschedulable else {},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", **allocatable},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(name, node_name=None, phase="Running", init=None, **limits):
    spec = {"containers": [{"name": "notebook", "resources": {"limits": {"cpu": "1", **limits}}}]}
    if node_name:
        spec["nodeName"] = node_name
    if init:
        spec["initContainers"] = [{"name": "init", "resources": {"limits": init}}]
    return {"metadata": {"name": name, "namespace": "sciencelab"}, "spec": spec, "status": {"phase": phase}}


GPU = "nvidia.com/gpu"


def ledger_with(*nodes, pods=()):
    ledger = GpuLedger()
    ledger.replace_nodes(nodes)
    ledger.replace_pods(pods)
    return ledger


def test_node_and_pod_gpus():
    assert node_gpus(node("a", "X", **{GPU: "4", "nvidia.com/mig-1g.10gb": "7"})).allocatable == {
        GPU: 4,
        "nvidia.com/mig-1g.10gb": 7,
    }
    assert pod_gpus(pod("p", **{GPU: "2"})) == {GPU: 2}
    # An init container counts when it asks for more than the containers together.
    assert pod_gpus(pod("p", init={GPU: "3"}, **{GPU: "1"})) == {GPU: 3}
    assert pod_gpus(pod("p")) == {}


def test_free_and_total_per_model():
    ledger = ledger_with(
        node("a100-1", "NVIDIA-A100-SXM4-80GB", **{GPU: "4"}),
        node("a100-2", "NVIDIA-A100-SXM4-80GB", **{GPU: "2"}),
        node("h100-1", "NVIDIA-H100-80GB-HBM3", **{GPU: "1"}),
        node("mig-1", "NVIDIA-A100-SXM4-80GB", **{"nvidia.com/mig-1g.10gb": "7"}),
        node("cpu-1"),
        pods=[
            pod("alice", "a100-1", **{GPU: "3"}),
            pod("bob", "mig-1", **{"nvidia.com/mig-1g.10gb": "2"}),
            pod("done", "a100-2", phase="Succeeded", **{GPU: "2"}),
            pod("waiting", None, **{GPU: "1"}),
        ],
    )
    assert ledger.availability(A100) == GpuAvailability(free=3, total=6, largest=2)
    assert ledger.availability(H100) == GpuAvailability(1, 1, 1)
    assert ledger.availability(ANY) == GpuAvailability(4, 7, 2)
    assert ledger.availability(MIG) == GpuAvailability(5, 7, 5)
    assert ledger.is_bound("sciencelab/alice") and not ledger.is_bound("sciencelab/waiting")


def test_pending_claims_take_their_share_of_matching_models():
    ledger = ledger_with(
        node("a100-1", "NVIDIA-A100-SXM4-80GB", **{GPU: "2"}), node("h100-1", "NVIDIA-H100-80GB-HBM3", **{GPU: "1"})
    )
    assert ledger.availability(A100, [(A100, 1)]) == GpuAvailability(1, 2, 1)
    # A claim for any GPU may land on an A100; a claim for an H100 cannot.
    assert ledger.availability(A100, [(ANY, 1), (H100, 1)]) == GpuAvailability(1, 2, 1)
    assert ledger.availability(H100, [(H100, 1)]) == GpuAvailability(0, 1, 0)
    assert ledger.availability(MIG, [(A100, 5)]) == GpuAvailability(0, 0, 0)


def test_events_move_the_counts():
    ledger = ledger_with(node("h100-1", "NVIDIA-H100-80GB-HBM3", **{GPU: "2"}))
    ledger.apply_pod_event("ADDED", pod("alice", None, phase="Pending", **{GPU: "1"}))
    assert ledger.availability(H100).free == 2
    ledger.apply_pod_event("MODIFIED", pod("alice", "h100-1", phase="Pending", **{GPU: "1"}))
    assert ledger.availability(H100).free == 1
    ledger.apply_pod_event("MODIFIED", pod("alice", "h100-1", **{GPU: "1"}))
    assert ledger.availability(H100).free == 1
    ledger.apply_pod_event("MODIFIED", pod("alice", "h100-1", phase="Failed", **{GPU: "1"}))
    assert ledger.availability(H100).free == 2
    ledger.apply_pod_event("ADDED", pod("bob", "h100-1", **{GPU: "2"}))
    ledger.apply_pod_event("DELETED", pod("bob", "h100-1", **{GPU: "2"}))
    assert ledger.availability(H100).free == 2

    ledger.apply_node_event("MODIFIED", node("h100-1", "NVIDIA-H100-80GB-HBM3", unschedulable=True, **{GPU: "2"}))
    assert ledger.availability(H100) == GpuAvailability(0, 0, 0)
    ledger.apply_node_event("MODIFIED", node("h100-1", "NVIDIA-H100-80GB-HBM3", **{GPU: "2"}))
    ledger.apply_node_event("ADDED", node("h100-2", "NVIDIA-H100-80GB-HBM3", ready=False, **{GPU: "8"}))
    assert ledger.availability(H100) == GpuAvailability(2, 2, 2)
    ledger.apply_node_event("DELETED", node("h100-1"))
    assert ledger.availability(H100) == GpuAvailability(0, 0, 0)


def test_a_new_listing_replaces_everything():
    ledger = ledger_with(
        node("a100-1", "NVIDIA-A100-SXM4-80GB", **{GPU: "4"}), pods=[pod("alice", "a100-1", **{GPU: "4"})]
    )
    assert ledger.availability(A100).free == 0
    ledger.replace_pods([])
    assert ledger.availability(A100).free == 4 and not ledger.is_bound("sciencelab/alice")


def test_an_inventory_not_read_yet_says_so_in_the_form_rather_than_no_gpu():
    config = make_profile_config(
        {
            "gpu_models": {"a100": {"display_name": "A100", "node_label": "NVIDIA-A100"}},
            "profiles": [{"slug": "gpu", "display_name": "GPU", "gpu": {"model": "a100"}}],
        },
        "test",
    )
    # The watches never started: the API is not called before `ready()`.
    inventory = KubeGpuInventory("jupyter", SimpleNamespace(list_node=None, list_namespaced_pod=None))
    free, problem = gpu_status(config, inventory)
    assert (free, problem) == (
        {},
        "the cluster's GPUs cannot be counted right now (the GPU inventory is still loading)",
    )
    # The profile is disabled for now, with the reason: not "No GPU on this machine".
    assert (
        '<p class="sciencelab-unavailable small text-danger mb-1">Not available on this hub: the cluster&#x27;s GPUs '
        "cannot be counted right now (the GPU inventory is still loading)</p>"
    ) in make_options_form(config, frozenset(), {}, free, problem)
