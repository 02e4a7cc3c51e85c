"""The `kubernetes` backend's `DaskCluster` resources: exact output, checked against the operator's CRD.

The CRD ships in the dask-kubernetes package (its Helm chart's `crds/`), so its OpenAPI v3 schema
validates what we would send the API server, without one.
"""

from importlib import resources

import jsonschema
import pytest
import yaml

from sciencelab.dask.backends.kubernetes import KubernetesBackend, make_dask_cluster
from sciencelab.dask.manager import ClusterManager
from sciencelab.dask.options import validate_options
from sciencelab.dask.templates import TemplateError, make_templates

SETTINGS = {"namespace": "sciencelab-alice", "env": {"EXTRA_PIP_PACKAGES": ""}}
TEMPLATE = {
    "backend": "kubernetes",
    "options": {
        "workers": {"default": 2, "minimum": 0, "maximum": 20},
        "cores": {"default": 1, "minimum": 1, "maximum": 4},
        "memory": {"default": 2, "minimum": 1, "maximum": 16},
        "gpus": {"default": 0, "minimum": 0, "maximum": 1},
    },
    "environments": [{"name": "dask", "title": "Dask 2026.8", "value": "ghcr.io/dask/dask:2026.8.0",
                      "kernels": ["python3"]}],
    "backend_settings": SETTINGS,
}


def daskcluster_schema() -> dict:
    crd_path = (resources.files("dask_kubernetes") / "operator" / "deployment" / "helm"
                / "dask-kubernetes-operator" / "crds" / "daskcluster.yaml")
    crd = yaml.safe_load(crd_path.read_text())
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def kube_template():
    schemas = {"kubernetes": KubernetesBackend.settings_schema}
    return make_templates({"k8s": TEMPLATE}, {"k8s": "test"}, schemas)["k8s"]


def test_daskcluster_resource_is_exact():
    options = validate_options(kube_template(), {"workers": 3, "cores": 2, "memory": 4, "gpus": 1})
    worker_args = ["dask", "worker", "--nthreads", "2", "--memory-limit", str(4 * 2**30),
                   "--name", "$(DASK_WORKER_NAME)", "--dashboard", "--dashboard-address", "8788"]
    assert make_dask_cluster("0123456789ab", options, SETTINGS) == {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {"name": "sciencelab-0123456789ab", "namespace": "sciencelab-alice",
                     "labels": {"app.kubernetes.io/managed-by": "sciencelab",
                                "sciencelab.org/cluster-id": "0123456789ab"}},
        "spec": {
            "idleTimeout": 3600,
            "worker": {
                "replicas": 3,
                "spec": {"containers": [{
                    "name": "worker",
                    "image": "ghcr.io/dask/dask:2026.8.0",
                    "args": worker_args,
                    "env": [{"name": "EXTRA_PIP_PACKAGES", "value": ""}],
                    "resources": {"requests": {"cpu": "2", "memory": "4096Mi"},
                                  "limits": {"cpu": "2", "memory": "4096Mi", "nvidia.com/gpu": "1"}},
                    "ports": [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}],
                }]},
            },
            "scheduler": {
                "spec": {"containers": [{
                    "name": "scheduler",
                    "image": "ghcr.io/dask/dask:2026.8.0",
                    "args": ["dask", "scheduler", "--host", "0.0.0.0"],
                    "env": [{"name": "EXTRA_PIP_PACKAGES", "value": ""}],
                    "resources": {},
                    "ports": [{"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
                              {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"}],
                    "readinessProbe": {"httpGet": {"port": "http-dashboard", "path": "/health"},
                                       "initialDelaySeconds": 0, "periodSeconds": 1, "timeoutSeconds": 300},
                    "livenessProbe": {"httpGet": {"port": "http-dashboard", "path": "/health"},
                                      "initialDelaySeconds": 15, "periodSeconds": 20},
                }]},
                "service": {
                    "type": "ClusterIP",
                    "selector": {"dask.org/cluster-name": "sciencelab-0123456789ab", "dask.org/component": "scheduler"},
                    "ports": [{"name": "tcp-comm", "protocol": "TCP", "port": 8786, "targetPort": "tcp-comm"},
                              {"name": "http-dashboard", "protocol": "TCP", "port": 8787,
                               "targetPort": "http-dashboard"}],
                },
            },
        },
    }


@pytest.mark.parametrize("options", [
    {},
    {"workers": 0, "idle_timeout": 0},
    {"workers": 20, "cores": 4, "memory": 16, "gpus": 1},
    {"adaptive": True, "adapt_minimum": 1, "adapt_maximum": 20, "memory": 1.5},
])
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
