"""The `kubernetes` backend's `DaskCluster` resources: exact output, checked against the operator's CRD.

The CRD ships in the dask-kubernetes package (its Helm chart's `crds/`), so its OpenAPI v3 schema
validates what we would send the API server, without one.
"""

import asyncio
import time
from importlib import resources

import jsonschema
import pytest
import yaml

from sciencelab.dask.backends.kubernetes import KubernetesBackend, make_autoscaler, make_dask_cluster, make_tls_secret
from sciencelab.dask.manager import ClusterManager
from sciencelab.dask.options import validate_options
from sciencelab.dask.templates import TemplateError, make_templates

SETTINGS = {"namespace": "sciencelab-alice", "env": {"EXTRA_PIP_PACKAGES": ""}}
# The CRDs the operator's Helm chart installs; they ship in the dask-kubernetes package.
CRD_FILES = ("daskcluster.yaml", "daskworkergroup.yaml", "daskautoscaler.yaml")
TEMPLATE = {
    "backend": "kubernetes",
    "options": {
        "workers": {"default": 2, "minimum": 0, "maximum": 20},
        "cores": {"default": 1, "minimum": 1, "maximum": 4},
        "memory": {"default": 2, "minimum": 1, "maximum": 16},
        "gpus": {"default": 0, "minimum": 0, "maximum": 1},
    },
    "environments": [
        {"name": "dask", "title": "Dask 2026.8", "value": "ghcr.io/dask/dask:2026.8.0", "kernels": ["python3"]}
    ],
    "backend_settings": SETTINGS,
}


def daskcluster_schema() -> dict:
    crd = operator_crds()[0]
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def kube_template():
    schemas = {"kubernetes": KubernetesBackend.settings_schema}
    return make_templates({"k8s": TEMPLATE}, {"k8s": "test"}, schemas)["k8s"]


def test_daskcluster_resource_is_exact():
    options = validate_options(kube_template(), {"workers": 3, "cores": 2, "memory": 4, "gpus": 1})
    tls_args = [
        "--tls-ca-file",
        "/etc/sciencelab/dask-tls/cert.pem",
        "--tls-cert",
        "/etc/sciencelab/dask-tls/cert.pem",
        "--tls-key",
        "/etc/sciencelab/dask-tls/key.pem",
    ]
    tls_volume = [{"name": "dask-tls", "secret": {"secretName": "sciencelab-0123456789ab-tls", "defaultMode": 0o400}}]
    tls_mount = [{"name": "dask-tls", "mountPath": "/etc/sciencelab/dask-tls", "readOnly": True}]
    pip = {"name": "EXTRA_PIP_PACKAGES", "value": ""}
    encryption = {"name": "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "value": "True"}
    worker_args = [
        "dask",
        "worker",
        "--nthreads",
        "2",
        "--memory-limit",
        str(4 * 2**30),
        *tls_args,
        "--name",
        "$(DASK_WORKER_NAME)",
        "--dashboard",
        "--dashboard-address",
        "8788",
    ]
    assert make_dask_cluster("0123456789ab", options, SETTINGS) == {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {
            "name": "sciencelab-0123456789ab",
            "namespace": "sciencelab-alice",
            "labels": {"app.kubernetes.io/managed-by": "sciencelab", "sciencelab.org/cluster-id": "0123456789ab"},
        },
        "spec": {
            "idleTimeout": 3600,
            "worker": {
                "replicas": 3,
                "spec": {
                    "containers": [
                        {
                            "name": "worker",
                            "image": "ghcr.io/dask/dask:2026.8.0",
                            "args": worker_args,
                            "env": [
                                pip,
                                encryption,
                                {
                                    "name": "DASK_SCHEDULER_ADDRESS",
                                    "value": "tls://sciencelab-0123456789ab-scheduler.sciencelab-alice.svc.cluster.local:8786",
                                },
                            ],
                            "resources": {
                                "requests": {"cpu": "2", "memory": "4096Mi"},
                                "limits": {"cpu": "2", "memory": "4096Mi", "nvidia.com/gpu": "1"},
                            },
                            "ports": [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
                            "volumeMounts": tls_mount,
                        }
                    ],
                    "volumes": tls_volume,
                },
            },
            "scheduler": {
                "spec": {
                    "containers": [
                        {
                            "name": "scheduler",
                            "image": "ghcr.io/dask/dask:2026.8.0",
                            "args": ["dask", "scheduler", "--host", "0.0.0.0", "--protocol", "tls", *tls_args],
                            "env": [
                                pip,
                                encryption,
                                {
                                    "name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES",
                                    "value": "['distributed.http.scheduler.prometheus', 'distributed.http.scheduler.info', "
                                    "'distributed.http.scheduler.json', 'distributed.http.health', "
                                    "'distributed.http.proxy', 'distributed.http.statics', "
                                    "'distributed.http.scheduler.api']",
                                },
                            ],
                            "resources": {},
                            "ports": [
                                {"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
                                {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"},
                            ],
                            "readinessProbe": {
                                "httpGet": {"port": "http-dashboard", "path": "/health"},
                                "initialDelaySeconds": 0,
                                "periodSeconds": 1,
                                "timeoutSeconds": 300,
                            },
                            "livenessProbe": {
                                "httpGet": {"port": "http-dashboard", "path": "/health"},
                                "initialDelaySeconds": 15,
                                "periodSeconds": 20,
                            },
                            "volumeMounts": tls_mount,
                        }
                    ],
                    "volumes": tls_volume,
                },
                "service": {
                    "type": "ClusterIP",
                    "selector": {"dask.org/cluster-name": "sciencelab-0123456789ab", "dask.org/component": "scheduler"},
                    "ports": [
                        {"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
                        {"name": "http-dashboard", "protocol": "TCP", "port": 8787, "targetPort": "http-dashboard"},
                    ],
                },
            },
        },
    }


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"workers": 0, "idle_timeout": 0},
        {"workers": 20, "cores": 4, "memory": 16, "gpus": 1},
        {"adaptive": True, "adapt_minimum": 1, "adapt_maximum": 20, "memory": 1.5},
    ],
)
def test_daskcluster_resources_validate_against_the_operators_crd(options):
    resource = make_dask_cluster("c0ffee", validate_options(kube_template(), options), SETTINGS)
    jsonschema.Draft7Validator(daskcluster_schema()).validate(resource)


def test_the_crd_schema_catches_what_the_api_server_would_refuse():
    resource = make_dask_cluster("c0ffee", validate_options(kube_template(), {}), SETTINGS)
    resource["spec"]["worker"]["replicas"] = "3"
    with pytest.raises(jsonschema.ValidationError, match="'3' is not of type 'integer'"):
        jsonschema.Draft7Validator(daskcluster_schema()).validate(resource)


def test_a_kubernetes_template_needs_its_namespace():
    manager = ClusterManager(config_paths=[], environ={}, templates={"k8s": TEMPLATE})
    assert manager.cluster_templates["k8s"].backend == "kubernetes"
    broken = {**TEMPLATE, "backend_settings": {"env": {}}}
    with pytest.raises(TemplateError, match="template 'k8s': backend_settings: 'namespace' is a required property"):
        ClusterManager(config_paths=[], environ={}, templates={"k8s": broken})


def operator_crds() -> list[dict]:
    folder = (
        resources.files("dask_kubernetes") / "operator" / "deployment" / "helm" / "dask-kubernetes-operator" / "crds"
    )
    return [yaml.safe_load((folder / name).read_text()) for name in CRD_FILES]


@pytest.fixture
def dask_crds(kube_apiserver):
    """The dask-kubernetes operator's CRDs (from its package) on the real API server; deleted after the test."""
    session = kube_apiserver.session(kube_apiserver.admin_token)
    url = f"{kube_apiserver.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    crds = operator_crds()
    for crd in crds:
        response = session.post(url, json=crd, timeout=30)
        assert response.status_code in (201, 409), response.text
    deadline = time.monotonic() + 30
    for crd in crds:
        while not any(
            c["type"] == "Established" and c["status"] == "True"
            for c in session.get(f"{url}/{crd['metadata']['name']}", timeout=10)
            .json()
            .get("status", {})
            .get("conditions")
            or []
        ):
            assert time.monotonic() < deadline, f"CRD {crd['metadata']['name']} not established"
            time.sleep(0.2)
    yield session
    for crd in crds:
        session.delete(f"{url}/{crd['metadata']['name']}", timeout=30)


@pytest.fixture
def kubeconfig(kube_apiserver, tmp_path, monkeypatch):
    """KUBECONFIG for the real API server (admin), as a server in a user pod would have its own."""
    path = kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig", kube_apiserver.admin_token)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def jp_server_config(kubeconfig, kube_apiserver):
    template = {**TEMPLATE, "backend_settings": {"namespace": kube_apiserver.namespace, "resource_timeout": 3}}
    return {
        "ServerApp": {"jpserver_extensions": {"sciencelab": True}},
        "ClusterManager": {"templates": {"k8s": template}},
    }


@pytest.mark.k8s
async def test_daskcluster_is_created_on_the_real_api_server_and_removed_when_no_operator_runs(
    dask_api, dask_crds, kube_apiserver
):
    """No operator runs here: the API server stores (and validates) our DaskCluster, the operator
    never answers, the API says so with 503 in bounded time, and the resource is deleted again."""
    clusters_url = (
        f"{kube_apiserver.url}/apis/kubernetes.dask.org/v1/namespaces/{kube_apiserver.namespace}/daskclusters"
    )
    created = asyncio.ensure_future(dask_api("clusters", "POST", {"template": "k8s", "options": {"workers": 3}}))

    def secrets():
        url = f"{kube_apiserver.url}/api/v1/namespaces/{kube_apiserver.namespace}/secrets"
        selector = "app.kubernetes.io/managed-by=sciencelab"
        return dask_crds.get(url, params={"labelSelector": selector}, timeout=10).json().get("items")

    def stored():
        while not created.done():
            items = dask_crds.get(clusters_url, timeout=10).json().get("items", [])
            if items:
                return items[0]
            time.sleep(0.1)
        return None

    resource = await asyncio.to_thread(stored)
    [secret] = await asyncio.to_thread(secrets)  # the certificate the scheduler and worker pods mount
    assert secret["metadata"]["name"] == f"{resource['metadata']['name']}-tls"
    assert sorted(secret["data"]) == ["cert.pem", "key.pem"]
    status, body = await created
    assert resource is not None, f"no DaskCluster appeared on the API server; the API answered {status} {body}"
    cluster_id = resource["metadata"]["labels"]["sciencelab.org/cluster-id"]
    expected = make_dask_cluster(
        cluster_id, validate_options(kube_template(), {"workers": 3}), {"namespace": kube_apiserver.namespace}
    )
    assert resource["spec"] == expected["spec"]
    assert (status, body["message"]) == (
        503,
        (
            f"starting a k8s cluster: the dask-kubernetes operator did not start DaskCluster sciencelab-{cluster_id} "
            f"in namespace {kube_apiserver.namespace} within 3 s; is the operator running and watching that namespace?"
        ),
    )

    def gone():
        deadline = time.monotonic() + 30
        while dask_crds.get(clusters_url, timeout=10).json().get("items") or secrets():
            assert time.monotonic() < deadline, "the DaskCluster or its Secret was left on the API server"
            time.sleep(0.2)

    await asyncio.to_thread(gone)
    assert (await dask_api("clusters")) == (200, [])


def test_tls_secret_and_autoscaler_are_exact():
    assert make_tls_secret("0123456789ab", "sciencelab-alice", "CERT", "KEY") == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "sciencelab-0123456789ab-tls",
            "namespace": "sciencelab-alice",
            "labels": {"app.kubernetes.io/managed-by": "sciencelab", "sciencelab.org/cluster-id": "0123456789ab"},
        },
        "type": "Opaque",
        "stringData": {"cert.pem": "CERT", "key.pem": "KEY"},
    }
    autoscaler = make_autoscaler("0123456789ab", "sciencelab-alice", 1, 20)
    assert autoscaler == {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskAutoscaler",
        "metadata": {
            "name": "sciencelab-0123456789ab",
            "namespace": "sciencelab-alice",
            "labels": {"app.kubernetes.io/managed-by": "sciencelab", "sciencelab.org/cluster-id": "0123456789ab"},
        },
        "spec": {"cluster": "sciencelab-0123456789ab", "minimum": 1, "maximum": 20},
    }
    [version] = [v for v in operator_crds()[2]["spec"]["versions"] if v["name"] == "v1"]
    jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"]).validate(autoscaler)
