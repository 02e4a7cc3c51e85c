"""The node agent's pure core: quantities, scheduling decisions, `$(VAR)` expansion. No server."""

from collections import Counter
from decimal import Decimal

import pytest

from .node_agent import FakeNode, choose_node, expand_references, gpu_node, parse_quantity, pod_requests

A100 = gpu_node("a100", "NVIDIA-A100-SXM4-80GB", gpus=2)
TAINTED = FakeNode("tainted", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
CPU = FakeNode("cpu", labels={"zone": "a"})


def pod(limits=None, requests=None, node_selector=None, affinity_terms=None, tolerations=None):
    spec = {"containers": [{"name": "main", "resources": {"limits": limits or {}, "requests": requests or {}}}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if affinity_terms:
        spec["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": affinity_terms}}
        }
    if tolerations:
        spec["tolerations"] = tolerations
    return {"spec": spec}


@pytest.mark.parametrize(
    "quantity, value",
    [
        ("500m", Decimal("0.5")),
        ("2", 2),
        (3, 3),
        ("1Gi", 2**30),
        ("64Mi", 64 * 2**20),
        ("1G", 10**9),
        ("1.5", Decimal("1.5")),
        ("1e3", 1000),
    ],
)
def test_parse_quantity(quantity, value):
    assert parse_quantity(quantity) == value


def test_parse_quantity_refuses_what_is_no_quantity():
    with pytest.raises(ValueError, match="not a Kubernetes quantity: '1 GB'"):
        parse_quantity("1 GB")


def test_a_limit_without_request_counts_as_the_request():
    both = {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": "2"}, "requests": {"cpu": "500m"}},
                },
                {"name": "b", "resources": {"requests": {"cpu": "1"}}},
            ]
        }
    }
    assert pod_requests(both) == Counter({"nvidia.com/gpu": 1, "cpu": Decimal("1.5")})


def test_gpu_pods_go_to_a_node_with_free_gpus_of_their_model():
    a100 = [
        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB"]}]}
    ]
    assert choose_node(pod({"nvidia.com/gpu": "1"}, affinity_terms=a100), [CPU, A100], {}) == (A100, "")
    assert choose_node(
        pod({"nvidia.com/gpu": "1"}, affinity_terms=a100), [CPU, A100], {"a100": Counter({"nvidia.com/gpu": 2})}
    ) == (None, "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match node selector.")


def test_a_resource_the_node_lacks_does_not_fit():
    assert choose_node(pod({"nvidia.com/mig-1g.10gb": "1"}), [CPU], {}) == (
        None,
        "0/1 nodes are available: 1 Insufficient nvidia.com/mig-1g.10gb.",
    )


@pytest.mark.parametrize(
    "expression, fits",
    [
        ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
        ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
        ({"key": "zone", "operator": "Exists"}, True),
        ({"key": "gpu", "operator": "DoesNotExist"}, True),
        ({"key": "zone", "operator": "Gt", "values": ["1"]}, False),
    ],
)
def test_required_node_affinity_operators(expression, fits):
    chosen, _ = choose_node(pod(affinity_terms=[{"matchExpressions": [expression]}]), [CPU], {})
    assert (chosen is CPU) is fits


def test_node_selector_and_taints():
    assert choose_node(pod(node_selector={"zone": "b"}), [CPU], {})[0] is None
    assert choose_node(pod(), [TAINTED], {}) == (
        None,
        "0/1 nodes are available: 1 node(s) had taint that the pod didn't tolerate.",
    )
    tolerated = pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])
    assert choose_node(tolerated, [TAINTED], {})[0] is TAINTED
    assert choose_node(pod(tolerations=[{"operator": "Exists"}]), [TAINTED], {})[0] is TAINTED


def test_expand_references_as_kubernetes_does():
    variables = {"PORT": "8888", "HOME": "/home/jovyan"}
    assert expand_references("--port=$(PORT) $(HOME)/x $$(PORT) $(UNSET)", variables) == (
        "--port=8888 /home/jovyan/x $(PORT) $(UNSET)"
    )
