"""The k8s tier's own ground: the real API server, its RBAC for the hub, and the node agent."""

import os
import subprocess
import sys

import pytest
import requests
from kubernetes_validate import latest_version

from .fixtures import A100
from .hub import wait_for
from .node_agent import gpu_node
from .schema import validate_strictly

pytestmark = pytest.mark.k8s

NAMESPACE = "sciencelab"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"

# Answers GET with the GREETING variable, on the address and port given as arguments.
GREETER = """\
import http.server, os, sys
class Greeter(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ["GREETING"].encode())
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), Greeter).serve_forever()
"""


def make_pod(name: str, args: list[str], env=(), resources=None, affinity=None) -> dict:
    """An unprivileged pod running `python args...`, as our spawner's pods are meant to be."""
    spec = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "main",
                "image": "python:3.11-slim",
                "command": ["python"],
                "args": args,
                "ports": [{"name": "http", "containerPort": 8888}],
                "env": list(env),
                "resources": resources or {"requests": {"cpu": "100m", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    }
    if affinity:
        spec["affinity"] = affinity
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "k8s-tier"}}, "spec": spec}


def make_sleeper(name: str, limits: dict, product: str | None = None) -> dict:
    affinity = None
    if product:
        affinity = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [product]}]}
                    ]
                }
            }
        }
    return make_pod(name, ["-c", "import time; time.sleep(600)"], resources={"limits": limits}, affinity=affinity)


@pytest.fixture
def hub(kube_apiserver):
    """A requests session with the hub's token."""
    return kube_apiserver.session(kube_apiserver.hub_token)


@pytest.fixture
def admin(kube_apiserver):
    """A requests session with the admin token; deletes the namespace's pods and secrets after the test."""
    session = kube_apiserver.session(kube_apiserver.admin_token)
    yield session
    for kind in ("pods", "secrets"):
        session.delete(
            f"{kube_apiserver.url}/api/v1/namespaces/{NAMESPACE}/{kind}", json={"gracePeriodSeconds": 0}, timeout=30
        ).raise_for_status()


def pod_named(admin, url, name):
    response = admin.get(f"{url}{PODS}/{name}", timeout=10)
    return response.json() if response.status_code == 200 else None


def running(pod):
    status = (pod or {}).get("status", {})
    return (
        status.get("phase") == "Running"
        and status.get("podIP")
        and all(container["ready"] for container in status.get("containerStatuses", [{"ready": False}]))
    )


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("GET", PODS, True),
        ("GET", f"/api/v1/namespaces/{NAMESPACE}/secrets", True),
        ("GET", f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims", True),
        ("GET", f"/api/v1/namespaces/{NAMESPACE}/events", True),
        ("GET", "/api/v1/nodes", True),
        ("GET", "/api/v1/persistentvolumes", True),
        ("GET", "/api/v1/namespaces/default/secrets", False),
        ("GET", "/api/v1/namespaces/kube-system/pods", False),
        ("GET", f"/api/v1/namespaces/{NAMESPACE}/configmaps", False),
        ("POST", "/api/v1/namespaces", False),
        ("DELETE", "/api/v1/nodes/cpu-1", False),
        ("POST", f"/api/v1/namespaces/{NAMESPACE}/events", False),
        ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", False),
    ],
)
def test_hub_token_gets_exactly_what_the_hub_needs(kube_apiserver, hub, method, path, allowed):
    body = {"metadata": {"name": "intruder"}} if method == "POST" else None
    response = hub.request(method, kube_apiserver.url + path, json=body, timeout=10)
    assert response.status_code == (200 if allowed else 403), response.text


def test_requests_without_a_token_are_refused(kube_apiserver):
    response = requests.get(f"{kube_apiserver.url}{PODS}", verify=str(kube_apiserver.ca_path), timeout=10)
    assert response.status_code == 401


def test_1_20_has_no_policy_v1(kube_apiserver, admin):
    groups = admin.get(f"{kube_apiserver.url}/apis", timeout=10).json()["groups"]
    versions = {version["groupVersion"] for group in groups for version in group["versions"]}
    assert "policy/v1beta1" in versions and "policy/v1" not in versions
    assert "autoscaling/v2" not in versions


def test_kubespawner_client_loads_the_kubeconfig(kube_apiserver, node_agent, tmp_path):
    """The hub finds the server as kubespawner does: `KUBECONFIG`, then `load_kube_config`."""
    kubeconfig = kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig", kube_apiserver.hub_token)
    script = (
        "import asyncio\n"
        "from kubespawner.clients import load_config, shared_client\n"
        "async def main():\n"
        "    load_config()\n"
        "    api = shared_client('CoreV1Api')\n"
        "    pods = await api.list_namespaced_pod('sciencelab')\n"
        "    nodes = await api.list_node()\n"
        "    print(len(pods.items), sorted(node.metadata.name for node in nodes.items))\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1) == ["0", "['cpu-1', 'gpu-a100-1', 'gpu-a100-mig-1']\n"]


def test_fake_gpu_nodes_are_ready_with_labels_and_allocatable(kube_apiserver, hub, node_agent):
    nodes = {
        node["metadata"]["name"]: node
        for node in hub.get(f"{kube_apiserver.url}/api/v1/nodes", timeout=10).json()["items"]
    }
    assert sorted(nodes) == ["cpu-1", "gpu-a100-1", "gpu-a100-mig-1"]
    gpu = nodes["gpu-a100-1"]
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.product"] == A100
    assert gpu["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert nodes["gpu-a100-mig-1"]["status"]["allocatable"]["nvidia.com/mig-1g.10gb"] == "7"
    assert "nvidia.com/gpu.product" not in nodes["cpu-1"]["metadata"]["labels"]
    for node in nodes.values():
        ready = [condition for condition in node["status"]["conditions"] if condition["type"] == "Ready"]
        assert ready[0]["status"] == "True"


def test_pods_run_as_local_processes_on_their_own_ip_and_stop_when_deleted(kube_apiserver, hub, admin, node_agent):
    url = kube_apiserver.url
    secret = {"metadata": {"name": "greetings"}, "stringData": {"alice": "hello alice", "bob": "hello bob"}}
    hub.post(f"{url}/api/v1/namespaces/{NAMESPACE}/secrets", json=secret, timeout=10).raise_for_status()
    for user in ("alice", "bob"):
        # Both listen on 0.0.0.0:8888, as every kubespawner pod does.
        pod = make_pod(
            f"greeter-{user}",
            ["-c", GREETER, "0.0.0.0", "8888"],
            env=[{"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "greetings", "key": user}}}],
        )
        hub.post(f"{url}{PODS}", json=pod, timeout=10).raise_for_status()

    pods = {
        user: wait_for(
            lambda: running(pod_named(admin, url, f"greeter-{user}")) and pod_named(admin, url, f"greeter-{user}"),
            what=f"{user}'s pod Running",
        )
        for user in ("alice", "bob")
    }
    assert pods["alice"]["status"]["podIP"] != pods["bob"]["status"]["podIP"]
    assert pods["alice"]["spec"]["nodeName"] == "cpu-1"
    for user, pod in pods.items():
        answer = wait_for(lambda: _get(f"http://{pod['status']['podIP']}:8888/"), what=f"{user}'s process")
        assert answer == f"hello {user}"

    hub.delete(f"{url}{PODS}/greeter-alice", timeout=10).raise_for_status()
    wait_for(lambda: pod_named(admin, url, "greeter-alice") is None, what="alice's pod removed")
    assert _get(f"http://{pods['alice']['status']['podIP']}:8888/") is None
    assert [running.pod["metadata"]["name"] for running in node_agent.processes.values()] == ["greeter-bob"]


def test_a_pod_without_its_secret_waits_with_the_kubelet_reason(kube_apiserver, hub, admin, node_agent):
    pod = make_pod(
        "no-secret",
        ["-c", GREETER, "0.0.0.0", "8888"],
        env=[{"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "greeting"}}}],
    )
    hub.post(f"{kube_apiserver.url}{PODS}", json=pod, timeout=10).raise_for_status()
    waiting = wait_for(
        lambda: (
            pod_named(admin, kube_apiserver.url, "no-secret")["status"]
            .get("containerStatuses", [{}])[0]
            .get("state", {})
            .get("waiting")
        ),
        what="the container waiting",
    )
    assert waiting["reason"] == "CreateContainerConfigError"
    assert "absent" in waiting["message"]


def test_gpu_pods_go_where_their_model_and_resources_are(kube_apiserver, hub, admin, node_agent):
    url = kube_apiserver.url
    for pod in (
        make_sleeper("all-a100s", {"nvidia.com/gpu": "4"}, A100),
        make_sleeper("mig-slice", {"nvidia.com/mig-1g.10gb": "1"}),
        make_sleeper("one-more-a100", {"nvidia.com/gpu": "1"}, A100),
    ):
        hub.post(f"{url}{PODS}", json=pod, timeout=10).raise_for_status()
    for name, node in (("all-a100s", "gpu-a100-1"), ("mig-slice", "gpu-a100-mig-1")):
        assert wait_for(lambda: running(pod_named(admin, url, name)), what=f"{name} Running")
        assert pod_named(admin, url, name)["spec"]["nodeName"] == node

    # No whole A100 left (the MIG node has the model's label but only slices): the third pod waits,
    # as it would for kube-scheduler, and says why.
    condition = wait_for(
        lambda: [
            condition
            for condition in pod_named(admin, url, "one-more-a100")["status"].get("conditions", [])
            if condition["type"] == "PodScheduled"
        ],
        what="one-more-a100 marked unschedulable",
    )[0]
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == (
        "0/3 nodes are available: 2 Insufficient nvidia.com/gpu, 1 node(s) didn't match node selector."
    )
    events = hub.get(
        f"{url}/api/v1/namespaces/{NAMESPACE}/events",
        params={"fieldSelector": "involvedObject.name=one-more-a100"},
        timeout=10,
    ).json()["items"]
    assert [event["reason"] for event in events] == ["FailedScheduling"]

    # The GPUs come free: the waiting pod gets one.
    hub.delete(f"{url}{PODS}/all-a100s", timeout=10).raise_for_status()
    assert wait_for(lambda: running(pod_named(admin, url, "one-more-a100")), what="one-more-a100 Running")
    assert pod_named(admin, url, "one-more-a100")["spec"]["nodeName"] == "gpu-a100-1"


def test_without_processes_bound_pods_are_running_at_once(kube_apiserver, admin, start_node_agent):
    """What inventory benchmarks use: many pods, no process each."""
    agent = start_node_agent([gpu_node("bench-gpu-1", A100, gpus=8)], run_processes=False)
    for index in range(3):
        pod = make_sleeper(f"bench-{index}", {"nvidia.com/gpu": "1"})
        pod["spec"]["nodeName"] = "bench-gpu-1"
        admin.post(f"{kube_apiserver.url}{PODS}", json=pod, timeout=10).raise_for_status()
    for index in range(3):
        assert wait_for(lambda: running(pod_named(admin, kube_apiserver.url, f"bench-{index}")))
    assert agent.processes == {}


def test_the_test_pod_is_valid_against_the_official_schema():
    pod = make_pod("valid", ["-c", GREETER], resources={"limits": {"nvidia.com/gpu": "1"}})
    validate_strictly(pod)
    validate_strictly(pod, latest_version())
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalaton"] = False
    with pytest.raises(
        AssertionError,
        match=(
            r"^Pod 'valid' at spec/containers/0/securityContext: Additional properties are not allowed "
            r"\('allowPrivilegeEscalaton' was unexpected\) \(Kubernetes 1\.\d+ schema\)$"
        ),
    ):
        validate_strictly(pod)


def _get(url):
    try:
        return requests.get(url, timeout=2).text
    except requests.ConnectionError:
        return None
