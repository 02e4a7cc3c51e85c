"""The k8s tier's own ground: the single-node cluster, its RBAC for the hub, and what its kubelet
does with a pod (user, volumes, Secrets, readiness, networking, logs and exec, fake GPUs)."""

import json
import os
import subprocess
import sys
import time

import pytest
import requests
from kubernetes_validate import latest_version

from .cluster import NODE_IP, NODE_NAME, POD_CIDR, PROVISIONER_DIR, SERVICE_CIDR, STORAGE_CLASS, exec_in_pod
from .hub import remove_namespace_objects, wait_for
from .schema import validate_strictly

pytestmark = pytest.mark.k8s

NAMESPACE = "sciencelab"
NS = f"/api/v1/namespaces/{NAMESPACE}"
PODS = f"{NS}/pods"
A100 = "NVIDIA-A100-SXM4-80GB"
# The probe writes what it is and has into files, then serves them over HTTP.
PROBE_SCRIPT = """\
mkdir -p /tmp/www
id > /tmp/www/id
printf %s "$GREETING" > /tmp/www/greeting
touch /host/written-by-pod /claim/written-by-pod /scratch/written-by-pod
echo probe serving
exec httpd -f -p 8080 -h /tmp/www
"""


def make_pod(name: str, image: str, command: list[str], volumes=(), mounts=(), env=(), resources=None, affinity=None):
    """An unprivileged pod, as our spawner's pods are meant to be."""
    spec = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1234,
            "runAsGroup": 2345,
            "fsGroup": 3456,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "main",
                "image": image,
                "command": command,
                "ports": [{"name": "http", "containerPort": 8080}],
                "env": list(env),
                "volumeMounts": list(mounts),
                "resources": resources or {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
        "volumes": list(volumes),
    }
    if affinity:
        spec["affinity"] = affinity
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


def make_sleeper(name: str, image: str, limits: dict, product: str | None = None) -> dict:
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
    return make_pod(name, image, ["sleep", "600"], resources={"limits": limits}, affinity=affinity)


@pytest.fixture
def hub(kube_apiserver):
    """A requests session with the hub's token."""
    return kube_apiserver.session(kube_apiserver.hub_token)


@pytest.fixture
def admin(kube_apiserver):
    """A requests session with the admin token; deletes the namespace's pods, services, secrets
    and claims after the test, and waits for the pods to be gone."""
    session = kube_apiserver.session(kube_apiserver.admin_token)
    yield session
    remove_namespace_objects(kube_apiserver)
    for service in session.get(f"{kube_apiserver.url}{NS}/services", timeout=30).json()["items"]:
        session.delete(f"{kube_apiserver.url}{NS}/services/{service['metadata']['name']}", timeout=30)
    wait_for(lambda: not session.get(f"{kube_apiserver.url}{PODS}", timeout=30).json()["items"], 60, "pods deleted")


def pod_named(admin, url, name):
    response = admin.get(f"{url}{PODS}/{name}", timeout=10)
    return response.json() if response.status_code == 200 else None


def ready(pod):
    status = (pod or {}).get("status", {})
    return (
        status.get("phase") == "Running"
        and status.get("podIP")
        and all(container["ready"] for container in status.get("containerStatuses", [{"ready": False}]))
    )


def get_text(url):
    try:
        return requests.get(url, timeout=2).text
    except requests.ConnectionError:
        return None


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("GET", PODS, True),
        ("GET", f"{NS}/secrets", True),
        ("GET", f"{NS}/persistentvolumeclaims", True),
        ("GET", f"{NS}/events", True),
        ("GET", "/api/v1/nodes", True),
        ("GET", "/api/v1/persistentvolumes", True),
        ("GET", "/api/v1/namespaces/default/secrets", False),
        ("GET", "/api/v1/namespaces/kube-system/pods", False),
        ("GET", f"{NS}/configmaps", False),
        ("POST", "/api/v1/namespaces", False),
        ("DELETE", f"/api/v1/nodes/{NODE_NAME}", False),
        ("POST", f"{NS}/events", False),
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


def test_kubespawner_client_loads_the_kubeconfig(kube_apiserver, tmp_path):
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
    assert result.stdout == f"0 ['{NODE_NAME}']\n"


def test_the_node_is_ready_on_the_bridge_address_with_the_host_path_storage_class(kube_apiserver, admin):
    node = admin.get(f"{kube_apiserver.url}/api/v1/nodes/{NODE_NAME}", timeout=10).json()
    assert {"type": "InternalIP", "address": NODE_IP} in node["status"]["addresses"]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.20.2"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.6.")
    classes = admin.get(f"{kube_apiserver.url}/apis/storage.k8s.io/v1/storageclasses", timeout=10).json()["items"]
    assert [(c["metadata"]["name"], c["provisioner"]) for c in classes] == [(STORAGE_CLASS, "kubernetes.io/host-path")]
    # The `kubernetes` Service leads pods to the API server on the node.
    endpoints = admin.get(f"{kube_apiserver.url}/api/v1/namespaces/default/endpoints/kubernetes", timeout=10).json()
    assert endpoints["subsets"][0]["addresses"] == [{"ip": NODE_IP}]


def test_a_pod_runs_as_its_user_with_its_volumes_and_answers_on_its_ip_and_cluster_ip(
    kube_apiserver, admin, probe_image_on_node, tmp_path
):
    url = kube_apiserver.url
    host_folder = tmp_path / "host"
    host_folder.mkdir()
    host_folder.chmod(0o777)
    admin.post(
        f"{url}{NS}/secrets", json={"metadata": {"name": "probe"}, "stringData": {"greeting": "hello"}}, timeout=10
    ).raise_for_status()
    admin.post(
        f"{url}{NS}/persistentvolumeclaims",
        json={
            "metadata": {"name": "probe"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
        },
        timeout=10,
    ).raise_for_status()
    pod = make_pod(
        "probe",
        probe_image_on_node,
        ["sh", "-c", PROBE_SCRIPT],
        volumes=[
            {"name": "host", "hostPath": {"path": str(host_folder), "type": "Directory"}},
            {"name": "scratch", "emptyDir": {}},
            {"name": "secret", "secret": {"secretName": "probe", "defaultMode": 0o440}},
            {"name": "claim", "persistentVolumeClaim": {"claimName": "probe"}},
        ],
        mounts=[
            {"name": "host", "mountPath": "/host"},
            {"name": "scratch", "mountPath": "/scratch"},
            {"name": "secret", "mountPath": "/etc/probe", "readOnly": True},
            {"name": "claim", "mountPath": "/claim"},
        ],
        env=[{"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "probe", "key": "greeting"}}}],
    )
    pod["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/id", "port": 8080}, "periodSeconds": 1}
    service = {
        "metadata": {"name": "probe"},
        "spec": {"selector": {"app": "probe"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    created = time.monotonic()
    admin.post(f"{url}{PODS}", json=pod, timeout=10).raise_for_status()
    cluster_ip = admin.post(f"{url}{NS}/services", json=service, timeout=10).json()["spec"]["clusterIP"]
    running = wait_for(lambda: ready(pod_named(admin, url, "probe")) and pod_named(admin, url, "probe"), 90, "Ready")
    print(f"probe pod Ready {time.monotonic() - created:.1f}s after it was created")

    assert running["spec"]["nodeName"] == NODE_NAME
    pod_ip = running["status"]["podIP"]
    assert pod_ip.startswith(POD_CIDR.rsplit(".", 2)[0]) and cluster_ip.startswith(SERVICE_CIDR.rsplit(".", 2)[0])
    assert get_text(f"http://{pod_ip}:8080/id") == "uid=1234 gid=2345 groups=2345,3456\n"
    assert wait_for(lambda: get_text(f"http://{cluster_ip}/greeting"), 30, "the ClusterIP answering") == "hello"

    def run(*command):
        return exec_in_pod(kube_apiserver, "probe", list(command))

    assert run("cat", "/etc/probe/greeting") == "hello"
    # fsGroup: the emptyDir and the Secret's files are the group's; host paths are left alone.
    assert run("stat", "-c", "%n %u:%g %a", "/scratch", "/etc/probe/..data/greeting", "/scratch/written-by-pod") == (
        "/scratch 0:3456 2777\n/etc/probe/..data/greeting 0:3456 440\n/scratch/written-by-pod 1234:3456 644\n"
    )
    assert run("sh", "-c", "echo $PROBE_SERVICE_HOST:$PROBE_SERVICE_PORT") == f"{cluster_ip}:80\n"
    # As a hub in a pod does: the API server through the `kubernetes` Service, with the pod's token.
    version = run(
        "sh",
        "-c",
        'wget -q -O - --no-check-certificate --header "Authorization: Bearer $(cat '
        '/var/run/secrets/kubernetes.io/serviceaccount/token)" '
        "https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/version",
    )
    assert json.loads(version)["gitVersion"] == "v1.20.2"
    written = host_folder / "written-by-pod"
    assert (written.stat().st_uid, written.stat().st_gid) == (1234, 2345)
    claim = admin.get(f"{url}{NS}/persistentvolumeclaims/probe", timeout=10).json()
    volume = admin.get(f"{url}/api/v1/persistentvolumes/{claim['spec']['volumeName']}", timeout=10).json()
    assert (claim["status"]["phase"], volume["spec"]["storageClassName"]) == ("Bound", STORAGE_CLASS)
    folder = volume["spec"]["hostPath"]["path"]
    assert folder.startswith(f"{PROVISIONER_DIR}/")
    assert os.stat(f"{folder}/written-by-pod").st_uid == 1234
    log = admin.get(f"{url}{PODS}/probe/log", timeout=10).text
    assert log == "probe serving\n"

    # Deleting the claim deletes the provisioned folder (reclaim policy Delete).
    admin.delete(f"{url}{PODS}/probe", json={"gracePeriodSeconds": 1}, timeout=10).raise_for_status()
    wait_for(lambda: pod_named(admin, url, "probe") is None, 60, "the pod deleted")
    admin.delete(f"{url}{NS}/persistentvolumeclaims/probe", timeout=10).raise_for_status()
    wait_for(lambda: not os.path.exists(folder), 60, "the provisioned folder deleted")


def test_a_pod_without_its_secret_waits_with_the_kubelet_reason(kube_apiserver, hub, admin, probe_image_on_node):
    pod = make_pod(
        "no-secret",
        probe_image_on_node,
        ["sleep", "600"],
        env=[{"name": "GREETING", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "greeting"}}}],
    )
    hub.post(f"{kube_apiserver.url}{PODS}", json=pod, timeout=10).raise_for_status()

    def waiting():
        status = pod_named(admin, kube_apiserver.url, "no-secret")["status"].get("containerStatuses") or [{}]
        state = status[0].get("state", {}).get("waiting", {})
        return state if state.get("reason") not in (None, "ContainerCreating") else None

    waiting = wait_for(waiting, 60, "the container waiting for its Secret")
    assert waiting == {"reason": "CreateContainerConfigError", "message": 'secret "absent" not found'}


def test_fake_gpus_advertised_on_the_node_are_scheduled_and_counted(
    kube_cluster, kube_apiserver, hub, admin, probe_image_on_node
):
    url = kube_apiserver.url
    kube_cluster.advertise({"nvidia.com/gpu.product": A100}, {"nvidia.com/gpu": "2"})
    try:
        for pod in (
            make_sleeper("both-gpus", probe_image_on_node, {"nvidia.com/gpu": "2"}, A100),
            make_sleeper("one-more-gpu", probe_image_on_node, {"nvidia.com/gpu": "1"}, A100),
        ):
            hub.post(f"{url}{PODS}", json=pod, timeout=10).raise_for_status()
        assert wait_for(lambda: ready(pod_named(admin, url, "both-gpus")), 60, "both-gpus Ready")
        # No GPU left: kube-scheduler keeps the second pod pending and says why.
        condition = wait_for(
            lambda: [
                condition
                for condition in pod_named(admin, url, "one-more-gpu")["status"].get("conditions", [])
                if condition["type"] == "PodScheduled"
            ],
            30,
            "one-more-gpu marked unschedulable",
        )[0]
        assert (condition["reason"], condition["message"]) == (
            "Unschedulable",
            "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
        )
        hub.delete(f"{url}{PODS}/both-gpus", json={"gracePeriodSeconds": 1}, timeout=10).raise_for_status()
        assert wait_for(lambda: ready(pod_named(admin, url, "one-more-gpu")), 90, "one-more-gpu Ready")
    finally:
        kube_cluster.advertise({"nvidia.com/gpu.product": None}, {"nvidia.com/gpu": None})


def test_the_test_pod_is_valid_against_the_official_schema():
    pod = make_pod("valid", "sciencelab.test/probe:1", ["sh"], resources={"limits": {"nvidia.com/gpu": "1"}})
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
