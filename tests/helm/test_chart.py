"""The Helm chart, with the real helm binary: lint, the schema's refusals, every value rendered and
valid for Kubernetes, the NetworkPolicies, RBAC and security contexts exactly, the API versions of
Kubernetes 1.20, and the hub's configuration file run on what the chart renders.

The test cluster's CNI does not enforce NetworkPolicies, so the policies are checked here as text:
selectors, ports and namespaces (docs/admin-deploy.md says which CNIs enforce them).
"""

import base64
import json
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from jupyterhub.app import JupyterHub
from jupyterhub.proxy import ConfigurableHTTPProxy
from kubernetes_validate.utils import all_versions, major_minor
from traitlets.config import PyFileConfigLoader

from sciencelab_spawner.hub_config import OIDC_AUTHENTICATOR
from sciencelab_spawner.kube import KubeProfileSpawner
from sciencelab_spawner.oidc_login import SciencelabOIDCAuthenticator

from ..k8s.apiserver import HUB_CLUSTER_RULES, HUB_NAMESPACED_RULES
from ..k8s.schema import validate_strictly
from ..prerequisites import require
from ..test_kube_spawner import offline_kube_client, pod_for  # noqa: F401 (a fixture)
from .chart import ALL_VALUES, CHART, NAMESPACE, REPO, HelmError, Rendering, helm, render, tools_missing

pytestmark = pytest.mark.helm

NEWEST_SCHEMA = major_minor(all_versions()[-1])
FULLNAME = "lab-sciencelab"
SELECTOR = {"app.kubernetes.io/name": "sciencelab", "app.kubernetes.io/instance": "lab"}
PRIVATE_CIDRS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
DNS_RULE = {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
INTERNET_RULE = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [*PRIVATE_CIDRS, "169.254.169.254/32"]}}]}
PRIVATE_RULE = {"to": [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE_CIDRS]}
METADATA_RULE = {"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}]}
SCHEMA_ERROR = "Error: values don't meet the specifications of the schema(s) in the following chart(s):\nsciencelab:\n"
DASK = {"dask": {"kubernetes": {"enabled": True, "namespace": "physics-dask"}}}
# What a spawner's user has of the hub's settings: the secret each server's access key derives from.
HUB_SETTINGS = {"cookie_secret": b"0" * 32}
# INDIGO-IAM with groups from `wlcg.groups`, as docs/admin-deploy.md configures it.
LOGIN = {
    "enabled": True,
    "issuer": "https://iam.example.org/",
    "clientId": "sciencelab-hub",
    "clientSecret": {"name": "sciencelab-oidc"},
    "groupsClaim": "wlcg.groups",
    "allowedGroups": ["cms", "gpu-users"],
    "adminGroups": ["hub-admins"],
}


def pods_of(component: str) -> dict:
    return {"podSelector": {"matchLabels": {**SELECTOR, "app.kubernetes.io/component": component}}}


def tcp(*ports) -> list[dict]:
    return [{"port": port, "protocol": "TCP"} for port in ports]


@pytest.fixture(scope="module", autouse=True)
def helm_installed():
    """helm and kubectl from tests/helm/install-helm.sh; skip without them (fail under CI=true)."""
    require(tools_missing())


@pytest.fixture(scope="module")
def default_rendering():
    return render()


@pytest.fixture(scope="module")
def all_values_rendering():
    return render(values_files=(ALL_VALUES,))


# --- lint and Kubernetes' schema ---


@pytest.mark.parametrize("values_files", [(), (ALL_VALUES,)], ids=["defaults", "all-values"])
def test_lint_strict(values_files):
    args = [arg for path in values_files for arg in ("--values", str(path))]
    assert "1 chart(s) linted, 0 chart(s) failed" in helm("lint", "--strict", str(CHART), *args)


@pytest.mark.parametrize("rendering", ["default_rendering", "all_values_rendering"])
def test_every_object_is_valid_for_the_newest_kubernetes(rendering, request):
    objects = request.getfixturevalue(rendering).objects
    for item in objects:
        validate_strictly(item, NEWEST_SCHEMA)
    # Objects of other namespaces are the Dask ones; everything else is in the release's.
    assert {item["metadata"].get("namespace", NAMESPACE) for item in objects} <= {NAMESPACE, "physics-dask"}


def test_what_the_defaults_make(default_rendering):
    assert default_rendering.names() == {
        ("NetworkPolicy", f"{FULLNAME}-hub"),
        ("NetworkPolicy", f"{FULLNAME}-proxy"),
        ("NetworkPolicy", f"{FULLNAME}-singleuser"),
        ("ServiceAccount", f"{FULLNAME}-hub"),
        ("ServiceAccount", f"{FULLNAME}-proxy"),
        ("Secret", f"{FULLNAME}-hub"),
        ("ConfigMap", f"{FULLNAME}-hub"),
        ("ConfigMap", f"{FULLNAME}-profiles"),
        ("PersistentVolumeClaim", f"{FULLNAME}-hub-db"),
        ("ClusterRole", f"{FULLNAME}-hub-physics"),
        ("ClusterRoleBinding", f"{FULLNAME}-hub-physics"),
        ("Role", f"{FULLNAME}-hub"),
        ("RoleBinding", f"{FULLNAME}-hub"),
        ("Service", f"{FULLNAME}-hub"),
        ("Service", f"{FULLNAME}-proxy-api"),
        ("Service", f"{FULLNAME}-proxy-public"),
        ("Deployment", f"{FULLNAME}-hub"),
        ("Deployment", f"{FULLNAME}-proxy"),
    }


# --- the values schema ---


def test_values_schema_json_is_generated_from_the_yaml():
    generator = runpy.run_path(str(REPO / "helm" / "generate-values-schema.py"))
    assert (CHART / "values.schema.json").read_text() == generator["render"](), (
        "run python helm/generate-values-schema.py (or make docs)"
    )


def schema_paths(schema: dict, path: str = "") -> dict[str, dict]:
    """Every value the schema names, by dotted path (map entries as `<name>`), with its schema."""
    found = {}
    for name, child in schema.get("properties", {}).items():
        found[f"{path}{name}"] = child
        found.update(schema_paths(child, f"{path}{name}."))
    entries = [*schema.get("patternProperties", {}).values()]
    if isinstance(schema.get("additionalProperties"), dict):
        entries.append(schema["additionalProperties"])
    for entry in entries:
        found.update(schema_paths(entry, f"{path}<name>."))
    return found


def values_schema() -> dict:
    return yaml.safe_load((CHART / "values.schema.yaml").read_text())


def test_every_value_is_documented():
    schema = values_schema()
    undocumented = [path for path, child in schema_paths(schema).items() if not child.get("description")]
    # Values whose schema is shared ($defs) are documented there.
    for name, definition in schema["$defs"].items():
        undocumented += [
            f"$defs.{name}.{path}" for path, child in schema_paths(definition).items() if not child.get("description")
        ]
    assert undocumented == []


def leaf_paths(values: object, path: str = "") -> set[str]:
    if isinstance(values, dict) and values:
        return {leaf for key, value in values.items() for leaf in leaf_paths(value, f"{path}{key}.")}
    return {path.rstrip(".")}


def test_the_ci_values_set_every_value():
    schema = values_schema()
    documented = {path for path, child in schema_paths(schema).items() if "properties" not in child}
    # Open maps and the profile file (its own schema, checked by the spawner's tests) count as set
    # when anything is set under them.
    set_paths = leaf_paths(yaml.safe_load(ALL_VALUES.read_text()))
    unset = [
        path
        for path in documented
        if "<name>" not in path and not any(leaf == path or leaf.startswith(path + ".") for leaf in set_paths)
    ]
    assert sorted(unset) == []


@pytest.mark.usefixtures("offline_kube_client")
async def test_chart_defaults_are_the_spawners():
    """The chart states the spawner's defaults, so that `values.yaml` reads true; this keeps them equal."""
    singleuser = yaml.safe_load((CHART / "values.yaml").read_text())["singleuser"]
    spawner = KubeProfileSpawner(_mock=True)
    chart = {
        "cvmfs_mode": singleuser["cvmfs"]["mode"],
        "cvmfs_storage_class": singleuser["cvmfs"]["storageClass"],
        "cvmfs_pvc_name": singleuser["cvmfs"]["claimName"],
        "cvmfs_host_path": singleuser["cvmfs"]["hostPath"],
        "s3_mount": singleuser["s3"]["mount"],
        "s3_csi_driver": singleuser["s3"]["csiDriver"],
        "s3_csi_volume_attributes": singleuser["s3"]["csiVolumeAttributes"],
        "s3_mount_root": singleuser["s3"]["mountRoot"],
        "s3_credentials_dir": singleuser["s3"]["credentialsDir"],
        "s3_credentials_source": singleuser["s3"]["credentialsSource"],
        "s3_credentials_secret_template": singleuser["s3"]["credentialsSecretTemplate"],
        "s3_auth_state_key": singleuser["s3"]["authStateKey"],
        "group_folders": singleuser["groupFolders"]["groups"],
        "group_folder_storage_class": singleuser["groupFolders"]["storageClass"],
        "group_folder_capacity": singleuser["groupFolders"]["capacity"],
        "group_folders_root": singleuser["groupFolders"]["mountRoot"],
        "gpu_tolerations": singleuser["gpuTolerations"],
    }
    assert chart == {name: getattr(spawner, name) for name in chart}
    assert (singleuser["uid"], singleuser["fsGid"], singleuser["storage"]["capacity"]) == (
        spawner.uid,
        spawner.fs_gid,
        spawner.storage_capacity,
    )


def schema_refusal(*lines: str) -> str:
    return SCHEMA_ERROR + "".join(f"{line}\n" for line in lines) + "\n"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"colour": "blue"}, schema_refusal("- at '': additional properties 'colour' not allowed")),
        ({"hub": {"dbb": {"type": "x"}}}, schema_refusal("- at '/hub': additional properties 'dbb' not allowed")),
        (
            {"hub": {"db": {"type": "mysql"}}},
            schema_refusal("- at '/hub/db/type': value must be one of 'sqlite-pvc', 'sqlite-memory', 'external'"),
        ),
        (
            {"hub": {"db": {"type": "external"}}},
            schema_refusal(
                "- at '/hub/db': 'allOf' failed", "  - at '/hub/db/urlSecret/name': minLength: got 0, want 1"
            ),
        ),
        (
            {"hub": {"config": {"jupyterhub": {"admin_access": True}}}},
            schema_refusal("- at '/hub/config': additional properties 'jupyterhub' not allowed"),
        ),
        (
            {"hub": {"services": {"Gateway": {"url": "http://gateway"}}}},
            schema_refusal("- at '/hub/services': additional properties 'Gateway' not allowed"),
        ),
        (
            {"proxy": {"secretToken": "short"}},
            schema_refusal("- at '/proxy/secretToken': 'short' does not match pattern '^(.{32,})?$'"),
        ),
        ({"singleuser": {"uid": 0}}, schema_refusal("- at '/singleuser/uid': minimum: got 0, want 1")),
        (
            {"hub": {"podSecurityContext": {"runAsUser": 0}}},
            schema_refusal("- at '/hub/podSecurityContext/runAsUser': minimum: got 0, want 1"),
        ),
        (
            {"proxy": {"chp": {"containerSecurityContext": {"privileged": True}}}},
            schema_refusal("- at '/proxy/chp/containerSecurityContext/privileged': value must be false"),
        ),
        (
            {"hub": {"baseUrl": "lab"}},
            schema_refusal("- at '/hub/baseUrl': 'lab' does not match pattern '^/([^/].*/)?$'"),
        ),
        (
            {"dask": {"kubernetes": {"enabled": True}}},
            schema_refusal(
                "- at '/dask/kubernetes': 'allOf' failed",
                "  - at '/dask/kubernetes/namespace': minLength: got 0, want 1",
            ),
        ),
        (
            {"hub": {"login": {**LOGIN, "issuer": ""}}},
            schema_refusal("- at '/hub/login': 'allOf' failed", "  - at '/hub/login/issuer': minLength: got 0, want 1"),
        ),
        (
            {"hub": {"login": {**LOGIN, "clientId": ""}}},
            schema_refusal(
                "- at '/hub/login': 'allOf' failed", "  - at '/hub/login/clientId': minLength: got 0, want 1"
            ),
        ),
        (
            {"hub": {"login": {**LOGIN, "clientSecret": {"name": ""}}}},
            schema_refusal(
                "- at '/hub/login': 'allOf' failed", "  - at '/hub/login/clientSecret/name': minLength: got 0, want 1"
            ),
        ),
        (
            {"hub": {"login": {**LOGIN, "issuer": "iam.example.org"}}},
            schema_refusal(
                "- at '/hub/login/issuer': 'iam.example.org' does not match pattern '^(https?://[^/ ?#]+[^ ?#]*)?$'"
            ),
        ),
        (
            {"hub": {"login": {**LOGIN, "authRefreshAge": 0}}},
            schema_refusal("- at '/hub/login/authRefreshAge': minimum: got 0, want 1"),
        ),
        # The profile file is checked by its own schema, embedded.
        (
            {"singleuser": {"profiles": {"profiles": [{"slug": "cpu", "display_name": "CPU", "gpuu": 1}]}}},
            schema_refusal("- at '/singleuser/profiles/profiles/0': additional properties 'gpuu' not allowed"),
        ),
        (
            {"singleuser": {"profiles": {"profiles": [{"slug": "CPU", "display_name": "CPU"}]}}},
            schema_refusal(
                "- at '/singleuser/profiles/profiles/0/slug': 'CPU' does not match pattern "
                "'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'"
            ),
        ),
    ],
)
def test_bad_values_are_refused_naming_the_key(values, message):
    with pytest.raises(HelmError) as refusal:
        render(values)
    assert str(refusal.value) == message


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"dask": {"kubernetes": {"enabled": True, "namespace": NAMESPACE}}},
            'dask.kubernetes.namespace: "physics" is the release\'s namespace; Dask clusters need a namespace of '
            "their own, where users' servers may manage Secrets",
        ),
        (
            {"hub": {"serviceAccount": {"create": False}}},
            "hub.serviceAccount.name: name the existing service account when hub.serviceAccount.create is false",
        ),
    ],
)
def test_values_the_schema_cannot_judge_are_refused_by_the_templates(values, message):
    with pytest.raises(HelmError) as refusal:
        render(values)
    (line,) = [line for line in str(refusal.value).splitlines() if line.startswith("Error: ")]
    assert line.split(": ", 2)[2] == message


# --- NetworkPolicies, exactly ---


def test_users_servers_accept_only_the_hub_and_the_proxy_and_reach_the_hub_dns_and_the_internet(default_rendering):
    policy = default_rendering.get("NetworkPolicy", f"{FULLNAME}-singleuser")
    assert policy["spec"] == {
        "podSelector": pods_of("singleuser-server")["podSelector"],
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": tcp("notebook-port"), "from": [pods_of("hub"), pods_of("proxy")]}],
        "egress": [{"ports": tcp(8081, 10101), "to": [pods_of("hub")]}, DNS_RULE, INTERNET_RULE],
    }


def test_the_hub_accepts_the_proxy_and_servers_and_reaches_the_proxy_api_servers_and_the_cluster(default_rendering):
    policy = default_rendering.get("NetworkPolicy", f"{FULLNAME}-hub")
    assert policy["spec"] == {
        "podSelector": pods_of("hub")["podSelector"],
        "policyTypes": ["Ingress", "Egress"],
        # The hub's own `sciencelab` service calls the hub through its Service, and the hub checks
        # the service at the pod's IP: a pod's traffic to itself is not allowed everywhere.
        "ingress": [
            {"ports": tcp(8081), "from": [pods_of("proxy"), pods_of("singleuser-server"), pods_of("hub")]},
            # Users' servers ask the service for their session's deadline.
            {"ports": tcp(10101), "from": [pods_of("proxy"), pods_of("singleuser-server"), pods_of("hub")]},
        ],
        # Private addresses include the Kubernetes API, which is no pod a selector could name.
        "egress": [
            {"ports": tcp(8081, 10101), "to": [pods_of("hub")]},
            {"ports": tcp(8001), "to": [pods_of("proxy")]},
            {"ports": tcp("notebook-port"), "to": [pods_of("singleuser-server")]},
            DNS_RULE,
            INTERNET_RULE,
            PRIVATE_RULE,
        ],
    }


def test_the_proxy_is_public_its_api_is_the_hubs_and_it_reaches_only_the_hub_and_servers(default_rendering):
    policy = default_rendering.get("NetworkPolicy", f"{FULLNAME}-proxy")
    assert policy["spec"] == {
        "podSelector": pods_of("proxy")["podSelector"],
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"ports": tcp(8000)}, {"ports": tcp(8001), "from": [pods_of("hub")]}],
        "egress": [
            {"ports": tcp(8081, 10101), "to": [pods_of("hub")]},
            {"ports": tcp("notebook-port"), "to": [pods_of("singleuser-server")]},
        ],
    }


def test_servers_reach_their_dask_schedulers_and_dask_pods_accept_only_servers_each_other_and_the_operator():
    rendering = render(DASK)
    servers = rendering.get("NetworkPolicy", f"{FULLNAME}-singleuser")["spec"]["egress"]
    assert servers[1] == {
        "ports": tcp(8786, 8787),
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "physics-dask"}},
                "podSelector": {
                    "matchLabels": {"app.kubernetes.io/managed-by": "sciencelab", "dask.org/component": "scheduler"}
                },
            }
        ],
    }
    dask_pods = rendering.get("NetworkPolicy", f"{FULLNAME}-dask-physics")
    assert dask_pods["metadata"]["namespace"] == "physics-dask"
    assert dask_pods["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "sciencelab"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "sciencelab"}}}]}],
    }
    schedulers = rendering.get("NetworkPolicy", f"{FULLNAME}-dask-scheduler-physics")
    assert schedulers["metadata"]["namespace"] == "physics-dask"
    assert schedulers["spec"] == {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/managed-by": "sciencelab", "dask.org/component": "scheduler"}
        },
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "ports": tcp(8786, 8787),
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                        **pods_of("singleuser-server"),
                    }
                ],
            },
            {
                "ports": tcp(8787),
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dask-operator"}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "dask-kubernetes-operator"}},
                    }
                ],
            },
        ],
    }


def test_dask_pods_carry_the_labels_the_policies_select():
    from sciencelab.dask.backends.kubernetes import make_labels

    assert make_labels("0123abcd")["app.kubernetes.io/managed-by"] == "sciencelab"


def test_egress_switches_and_extra_rules(all_values_rendering):
    servers = all_values_rendering.get("NetworkPolicy", "physics-lab-singleuser")["spec"]
    extra_egress = {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}], "ports": tcp(443)}
    assert servers["egress"][2:] == [DNS_RULE, PRIVATE_RULE, METADATA_RULE, extra_egress]
    assert servers["ingress"][1] == {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": tcp(9100),
    }
    hub = all_values_rendering.get("NetworkPolicy", "physics-lab-hub")["spec"]
    assert hub["egress"][3:] == [METADATA_RULE, {"to": [{"ipBlock": {"cidr": "192.0.2.10/32"}}], "ports": tcp(443)}]


def test_no_network_policy_when_disabled():
    off = {"enabled": False}
    rendering = render(
        {
            "hub": {"networkPolicy": off},
            "proxy": {"chp": {"networkPolicy": off}},
            "singleuser": {"networkPolicy": off},
            **DASK,
        }
    )
    assert rendering.of_kind("NetworkPolicy") == {}


# --- RBAC, exactly ---


def test_the_hub_gets_what_the_k8s_tier_proves_it_needs(default_rendering):
    role = default_rendering.get("Role", f"{FULLNAME}-hub")
    cluster_role = default_rendering.get("ClusterRole", f"{FULLNAME}-hub-physics")
    assert role["rules"] == HUB_NAMESPACED_RULES
    assert cluster_role["rules"] == HUB_CLUSTER_RULES
    subject = [{"kind": "ServiceAccount", "name": f"{FULLNAME}-hub", "namespace": NAMESPACE}]
    binding = default_rendering.get("RoleBinding", f"{FULLNAME}-hub")
    assert (binding["subjects"], binding["roleRef"]) == (
        subject,
        {"kind": "Role", "name": f"{FULLNAME}-hub", "apiGroup": "rbac.authorization.k8s.io"},
    )
    cluster_binding = default_rendering.get("ClusterRoleBinding", f"{FULLNAME}-hub-physics")
    assert (cluster_binding["subjects"], cluster_binding["roleRef"]) == (
        subject,
        {"kind": "ClusterRole", "name": f"{FULLNAME}-hub-physics", "apiGroup": "rbac.authorization.k8s.io"},
    )


def test_without_s3_volumes_the_hub_creates_no_persistent_volumes(all_values_rendering):
    cluster_role = all_values_rendering.get("ClusterRole", "physics-lab-hub-physics")
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]


def test_servers_may_manage_only_dask_objects_and_only_in_the_dask_namespace():
    rendering = render(DASK)
    role = rendering.get("Role", f"{FULLNAME}-singleuser-physics")
    assert role["metadata"]["namespace"] == "physics-dask"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]},
        {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]},
        {
            "apiGroups": ["kubernetes.dask.org"],
            "resources": ["daskclusters"],
            "verbs": ["get", "create", "patch", "delete"],
        },
        {"apiGroups": ["kubernetes.dask.org"], "resources": ["daskautoscalers"], "verbs": ["create", "delete"]},
    ]
    binding = rendering.get("RoleBinding", f"{FULLNAME}-singleuser-physics")
    assert binding["metadata"]["namespace"] == "physics-dask"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": f"{FULLNAME}-singleuser", "namespace": NAMESPACE}]
    # Nothing else grants the servers' account anything.
    roles = [item for item in rendering.objects if item["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert [b["metadata"]["name"] for b in roles if b["subjects"][0]["name"] == f"{FULLNAME}-singleuser"] == [
        f"{FULLNAME}-singleuser-physics"
    ]


def test_rbac_create_false_makes_no_roles():
    rendering = render({"rbac": {"create": False}, **DASK})
    assert {kind for kind, _ in rendering.names()} & {
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    } == set()


# --- pods: unprivileged, no secret in an environment literal ---

POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}


def test_hub_and_proxy_pods_are_unprivileged(default_rendering):
    for name, automount in ((f"{FULLNAME}-hub", True), (f"{FULLNAME}-proxy", False)):
        pod = default_rendering.get("Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"] == POD_SECURITY
        (container,) = pod["containers"]
        assert container["securityContext"] == CONTAINER_SECURITY
        # Only the hub calls the Kubernetes API.
        assert pod["automountServiceAccountToken"] is automount


def test_values_add_to_the_security_contexts(all_values_rendering):
    hub = all_values_rendering.get("Deployment", "physics-lab-hub")["spec"]["template"]["spec"]
    assert hub["securityContext"] == {**POD_SECURITY, "runAsUser": 1001, "runAsGroup": 1001, "fsGroup": 1001}
    assert hub["containers"][0]["securityContext"] == {**CONTAINER_SECURITY, "runAsUser": 1001}


@pytest.mark.parametrize("rendering", ["default_rendering", "all_values_rendering"])
def test_credentials_reach_pods_only_through_secrets(rendering, request):
    env = {}
    for deployment in request.getfixturevalue(rendering).of_kind("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            env.update({variable["name"]: variable for variable in container.get("env", [])})
    literal = {name for name, variable in env.items() if "value" in variable}
    assert literal <= {"SCIENCELAB_SITE"}  # all-values' one non-secret literal
    assert env["CONFIGPROXY_AUTH_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {
            "name": env["CONFIGPROXY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"],
            "key": "proxy-token",
        }
    }
    assert env["JUPYTERHUB_CRYPT_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "crypt-key"


def test_generated_secrets_are_64_hex_characters_and_given_ones_are_kept(default_rendering, all_values_rendering):
    generated = default_rendering.get("Secret", f"{FULLNAME}-hub")["data"]
    for key in ("proxy-token", "cookie-secret", "crypt-key"):
        value = base64.b64decode(generated[key]).decode()
        assert len(value) == 64 and int(value, 16) >= 0, key
    given = all_values_rendering.get("Secret", "physics-lab-hub")["data"]
    values = yaml.safe_load(ALL_VALUES.read_text())
    assert base64.b64decode(given["proxy-token"]).decode() == values["proxy"]["secretToken"]
    assert base64.b64decode(given["cookie-secret"]).decode() == values["hub"]["cookieSecret"]
    assert (
        base64.b64decode(given["services.dask-gateway.apiToken"]).decode()
        == values["hub"]["services"]["dask-gateway"]["apiToken"]
    )


def test_the_profile_file_change_does_not_restart_the_hub_but_the_configuration_does():
    def hub_annotations(values):
        return render(values).get("Deployment", f"{FULLNAME}-hub")["spec"]["template"]["metadata"]["annotations"]

    base = hub_annotations({})
    other_profiles = {"singleuser": {"profiles": {"profiles": [{"slug": "gpu", "display_name": "GPU"}]}}}
    assert hub_annotations(other_profiles) == base
    assert hub_annotations({"hub": {"config": {"JupyterHub": {"admin_access": True}}}}) != base


def test_the_profile_file_is_mounted_as_a_folder_that_the_kubelet_updates(default_rendering):
    pod = default_rendering.get("Deployment", f"{FULLNAME}-hub")["spec"]["template"]["spec"]
    (mount,) = [mount for mount in pod["containers"][0]["volumeMounts"] if mount["name"] == "profiles"]
    assert mount == {"name": "profiles", "mountPath": "/usr/local/etc/jupyterhub/profiles", "readOnly": True}
    profiles = default_rendering.get("ConfigMap", f"{FULLNAME}-profiles")["data"]["profiles.yaml"]
    assert yaml.safe_load(profiles) == yaml.safe_load((CHART / "values.yaml").read_text())["singleuser"]["profiles"]


# --- Kubernetes 1.20 ---


def test_api_versions_follow_the_clusters_version():
    pdbs = {"hub": {"pdb": {"enabled": True}}, "proxy": {"chp": {"pdb": {"enabled": True}}}}
    old = render(pdbs, kube_version="1.20.2")
    assert {item["apiVersion"] for item in old.of_kind("PodDisruptionBudget").values()} == {"policy/v1beta1"}
    new = render(pdbs, kube_version="1.21.0")
    assert {item["apiVersion"] for item in new.of_kind("PodDisruptionBudget").values()} == {"policy/v1"}
    # Everything else is the same on 1.20 and valid for the oldest schema kubernetes-validate has (1.25).
    oldest = major_minor(all_versions()[0])
    for item in old.objects:
        if item["kind"] != "PodDisruptionBudget":
            validate_strictly(item, oldest)


def test_kubernetes_older_than_1_20_is_refused():
    with pytest.raises(HelmError) as refusal:
        render(kube_version="1.19.0")
    assert str(refusal.value).startswith(
        "Error: chart requires kubeVersion: >=1.20.0-0 which is incompatible with Kubernetes v1.19.0\n"
    )


# --- the hub's configuration file, run on what the chart renders ---


def hub_config_of(rendering: Rendering, fullname: str, folder: Path, monkeypatch, services=None) -> object:
    """Lay out the hub pod's /usr/local/etc/jupyterhub/ from `rendering` in `folder`, with the
    environment Kubernetes gives the pod (the variables of `services`, default the hub's and the
    proxy API's), and load jupyterhub_config.py as JupyterHub does."""
    config_map = rendering.get("ConfigMap", f"{fullname}-hub")["data"]
    (folder / "jupyterhub_config.py").write_text(config_map["jupyterhub_config.py"])
    (folder / "secret").mkdir()
    for key, value in rendering.get("Secret", f"{fullname}-hub")["data"].items():
        (folder / "secret" / key).write_bytes(base64.b64decode(value))
    (folder / "profiles").mkdir()
    profiles = rendering.get("ConfigMap", f"{fullname}-profiles")["data"]["profiles.yaml"]
    (folder / "profiles" / "profiles.yaml").write_text(profiles)
    addresses = {f"{fullname}-hub": ("10.96.0.10", "8081"), f"{fullname}-proxy-api": ("10.96.0.11", "8001")}
    for service in addresses if services is None else services:
        address = addresses[service]
        prefix = service.upper().replace("-", "_")
        monkeypatch.setenv(f"{prefix}_SERVICE_HOST", address[0])
        monkeypatch.setenv(f"{prefix}_SERVICE_PORT", address[1])
    monkeypatch.setenv("POD_IP", "10.244.0.7")
    monkeypatch.setenv("POD_NAMESPACE", NAMESPACE)
    return PyFileConfigLoader("jupyterhub_config.py", path=str(folder)).load_config()


@pytest.mark.usefixtures("offline_kube_client")
async def test_the_hub_configuration_and_the_pods_it_makes_match_the_policies(default_rendering, tmp_path, monkeypatch):
    c = hub_config_of(default_rendering, FULLNAME, tmp_path, monkeypatch)
    # JupyterHub and its proxy take every setting (traitlets validate them as they load).
    hub = JupyterHub(config=c)
    proxy = ConfigurableHTTPProxy(config=c)
    assert (hub.base_url, hub.hub_bind_url, hub.cleanup_servers) == ("/", "http://:8081", False)
    assert (proxy.should_start, proxy.api_url) == (False, "http://10.96.0.11:8001")
    assert c.JupyterHub.hub_connect_url == "http://10.96.0.10:8081"
    assert c.ConfigurableHTTPProxy.api_url == "http://10.96.0.11:8001"
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.JupyterHub.db_url == "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
    assert c.JupyterHub.spawner_class == "sciencelab-kube"
    assert "authenticator_class" not in c.JupyterHub  # hub.login is off: the admin's, in hub.config
    assert c.KubeProfileSpawner.namespace == NAMESPACE
    assert c.KubeProfileSpawner.profiles_file == str(tmp_path / "profiles" / "profiles.yaml")
    secret = default_rendering.get("Secret", f"{FULLNAME}-hub")["data"]
    assert c.ConfigurableHTTPProxy.auth_token == base64.b64decode(secret["proxy-token"]).decode()
    (service,) = c.JupyterHub.services
    # The proxy, in its own pod, reaches the service at the hub pod's IP (the hub's policy allows 10101).
    assert (service["name"], service["url"]) == ("sciencelab", "http://10.244.0.7:10101")
    # Servers reach it through the hub's Service; deadlines are kept beside the hub's database.
    assert c.KubeProfileSpawner.environment["SCIENCELAB_SERVICE_URL"] == "http://10.96.0.10:10101"
    assert service["environment"]["SCIENCELAB_SESSIONS_FILE"] == "/srv/jupyterhub/sciencelab-sessions.json"
    # hub.sharing.groups is null: every user may share.
    (user_role,) = [role for role in c.JupyterHub.load_roles if role["name"] == "user"]
    assert "shares!user" in user_role["scopes"]

    user = SimpleNamespace(name="alice", id=1, url="/user/alice/", groups=[], spawners={}, settings=HUB_SETTINGS)
    spawner = KubeProfileSpawner(_mock=True, user=user, config=c, cmd=["jupyterhub-singleuser"])
    user.spawners[""] = spawner
    pod = await pod_for(spawner, {"profile": "default"})
    validate_strictly(pod, NEWEST_SCHEMA)
    policy = default_rendering.get("NetworkPolicy", f"{FULLNAME}-singleuser")["spec"]
    labels = pod["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert [port["name"] for port in pod["spec"]["containers"][0]["ports"]] == ["notebook-port"]
    assert pod["spec"]["containers"][0]["image"] == "ghcr.io/sciencelab/lab:0.1.0"
    assert pod["spec"]["containers"][0]["securityContext"]["runAsUser"] == 1000
    # No Dask backend on Kubernetes: no service account token in users' pods.
    assert pod["spec"]["automountServiceAccountToken"] is False


@pytest.mark.usefixtures("offline_kube_client")
async def test_every_value_reaches_the_hub_configuration(all_values_rendering, tmp_path, monkeypatch):
    c = hub_config_of(all_values_rendering, "physics-lab", tmp_path, monkeypatch)
    values = yaml.safe_load(ALL_VALUES.read_text())
    assert c.JupyterHub.base_url == "/lab/"
    assert c.JupyterHub.authenticator_class == OIDC_AUTHENTICATOR
    assert c.SciencelabOIDCAuthenticator == {
        "issuer": "https://iam.example.org/",
        "client_id": "sciencelab",
        "client_secret_file": str(tmp_path / "oidc" / "client-secret"),
        "groups_claim": "wlcg.groups",
        "allowed_groups": {"cms"},
        "admin_groups": {"cms/admins"},
        "username_claim": "sub",
        "scope": ["openid", "profile", "offline_access", "wlcg.groups"],
        "auth_refresh_age": 600,
        "token_renewal_margin": 120,  # hub.config
    }
    assert c.KubeProfileSpawner.http_timeout == 60  # hub.extraConfig
    gateway, sciencelab = c.JupyterHub.services
    assert gateway == {
        "name": "dask-gateway",
        "api_token": values["hub"]["services"]["dask-gateway"]["apiToken"],
        "url": "http://dask-gateway-api.dask-gateway:8000",
        "display": False,
        "oauth_no_confirm": True,
    }
    assert sciencelab["name"] == "sciencelab"
    # serverAccess: servers' tokens may call the gateway.
    assert "access:services!service=dask-gateway" in c.Spawner.server_token_scopes

    user = SimpleNamespace(name="alice", id=1, url="/lab/user/alice/", groups=[], spawners={}, settings=HUB_SETTINGS)
    spawner = KubeProfileSpawner(_mock=True, user=user, config=c, cmd=["jupyterhub-singleuser"])
    user.spawners[""] = spawner
    assert (spawner.cvmfs_mode, spawner.cvmfs_host_path, spawner.s3_mount, spawner.s3_credentials_source) == (
        "hostpath",
        "/mnt/cvmfs",
        "credentials-file",
        "auth_state",
    )
    assert (spawner.group_folders, spawner.group_folder_storage_class, spawner.group_folders_root) == (
        ["cms-higgs"],
        "cephfs",
        "/home/jovyan/groups",
    )
    assert (spawner.storage_class, spawner.storage_capacity, spawner.start_timeout) == ("cephfs-homes", "20Gi", 600)
    pod = await pod_for(spawner, {"profile": "cpu"})
    validate_strictly(pod, NEWEST_SCHEMA)
    spec = pod["spec"]
    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert spec["containers"][0]["securityContext"]["runAsUser"] == 1001
    assert spec["securityContext"]["fsGroup"] == 1001
    assert spec["nodeSelector"] == {"node-role.example.org/users": "true"}
    # The Dask configuration files, beside the home, and the account of the kubernetes backend.
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["dask-config"] == {"name": "dask-config", "configMap": {"name": "physics-lab-dask"}}
    assert "home" in volumes
    mounts = {mount["name"]: mount for mount in spec["containers"][0]["volumeMounts"]}
    assert mounts["dask-config"] == {"name": "dask-config", "mountPath": "/etc/sciencelab/dask", "readOnly": True}
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"]) == ("physics-lab-singleuser", True)
    dask_config = all_values_rendering.get("ConfigMap", "physics-lab-dask")["data"]
    assert yaml.safe_load(dask_config["cms.yaml"]) == values["dask"]["configs"]["cms"]
    env = {variable["name"]: variable.get("value") for variable in spec["containers"][0]["env"]}
    assert env["SCIENCELAB_SITE"] == "example"
    assert json.loads(env["SCIENCELAB_PROFILE"])["slug"] == "cpu"


@pytest.mark.usefixtures("offline_kube_client")
def test_an_external_database_url_comes_from_its_secret_as_a_file(tmp_path, monkeypatch):
    rendering = render({"hub": {"db": {"type": "external", "urlSecret": {"name": "hub-database"}}}})
    assert "PersistentVolumeClaim" not in {kind for kind, _ in rendering.names()}
    pod = rendering.get("Deployment", f"{FULLNAME}-hub")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["db-url"] == {
        "name": "db-url",
        "secret": {"secretName": "hub-database", "defaultMode": 0o400, "items": [{"key": "url", "path": "url"}]},
    }
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    mounts = {mount["name"]: mount for mount in pod["containers"][0]["volumeMounts"]}
    assert mounts["db-url"] == {"name": "db-url", "mountPath": "/usr/local/etc/jupyterhub/db", "readOnly": True}
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "url").write_text("postgresql://hub:secret@db.example.org/hub\n")
    c = hub_config_of(rendering, FULLNAME, tmp_path, monkeypatch)
    assert c.JupyterHub.db_url == "postgresql://hub:secret@db.example.org/hub"


def test_login_mounts_the_client_secret_as_a_file_and_gives_the_hub_its_values(default_rendering):
    rendering = render({"hub": {"login": LOGIN}})
    pod = rendering.get("Deployment", f"{FULLNAME}-hub")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["oidc-client-secret"] == {
        "name": "oidc-client-secret",
        "secret": {
            "secretName": "sciencelab-oidc",
            "defaultMode": 0o400,
            "items": [{"key": "client-secret", "path": "client-secret"}],
        },
    }
    mounts = {mount["name"]: mount for mount in pod["containers"][0]["volumeMounts"]}
    assert mounts["oidc-client-secret"] == {
        "name": "oidc-client-secret",
        "mountPath": "/usr/local/etc/jupyterhub/oidc",
        "readOnly": True,
    }
    secret = rendering.get("Secret", f"{FULLNAME}-hub")["data"]
    assert yaml.safe_load(base64.b64decode(secret["values.yaml"]))["hub"]["login"] == {
        **LOGIN,
        "clientSecret": {"name": "sciencelab-oidc", "key": "client-secret"},
        "scopes": [],
        "usernameClaim": "preferred_username",
        "authRefreshAge": 300,
    }
    # Without login, no volume: the Secret need not exist.
    default_pod = default_rendering.get("Deployment", f"{FULLNAME}-hub")["spec"]["template"]["spec"]
    assert "oidc-client-secret" not in {volume["name"] for volume in default_pod["volumes"]}
    assert "oidc-client-secret" not in {mount["name"] for mount in default_pod["containers"][0]["volumeMounts"]}


@pytest.mark.usefixtures("offline_kube_client")
def test_login_makes_the_oidc_authenticator_and_hub_config_overrides_what_configure_sciencelab_does_not_set(
    tmp_path, monkeypatch
):
    hub_config = {"SciencelabOIDCAuthenticator": {"username_claim": "email", "issuer": "https://other.example.org/"}}
    rendering = render({"hub": {"login": LOGIN, "config": hub_config}})
    (tmp_path / "oidc").mkdir()
    (tmp_path / "oidc" / "client-secret").write_text("the-client-secret\n")
    c = hub_config_of(rendering, FULLNAME, tmp_path, monkeypatch)
    assert c.JupyterHub.authenticator_class == OIDC_AUTHENTICATOR
    # The scope is the authenticator's default, which follows the groups claim.
    assert c.SciencelabOIDCAuthenticator == {
        "issuer": "https://iam.example.org/",  # configure_sciencelab's, after hub.config
        "client_id": "sciencelab-hub",
        "client_secret_file": str(tmp_path / "oidc" / "client-secret"),
        "groups_claim": "wlcg.groups",
        "allowed_groups": {"cms", "gpu-users"},
        "admin_groups": {"hub-admins"},
        "username_claim": "email",  # hub.config's, after the chart's
        "auth_refresh_age": 300,
    }
    authenticator = SciencelabOIDCAuthenticator(config=c)
    assert (authenticator.client_secret, authenticator.scope, authenticator.enable_auth_state) == (
        "the-client-secret",
        ["openid", "profile", "email", "offline_access", "wlcg.groups"],
        True,
    )


def test_the_hub_stops_naming_a_service_it_cannot_find(default_rendering, tmp_path, monkeypatch):
    monkeypatch.delenv("LAB_SCIENCELAB_PROXY_API_SERVICE_HOST", raising=False)
    with pytest.raises(SystemExit) as stop:
        hub_config_of(default_rendering, FULLNAME, tmp_path, monkeypatch, services=(f"{FULLNAME}-hub",))
    assert str(stop.value) == (
        "The hub pod has no LAB_SCIENCELAB_PROXY_API_SERVICE_HOST: the Service lab-sciencelab-proxy-api did not "
        "exist when the pod started, or the pod's enableServiceLinks is off; delete the hub pod to start it again"
    )


def test_the_ingress_sends_the_site_to_the_public_service(all_values_rendering):
    ingress = all_values_rendering.get("Ingress", "physics-lab")
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert ingress["spec"] == {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": "lab.example.org",
                "http": {
                    "paths": [
                        {
                            "path": "/lab/*",
                            "pathType": "ImplementationSpecific",
                            "backend": {"service": {"name": "physics-lab-proxy-public", "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ],
        "tls": [{"hosts": ["lab.example.org"], "secretName": "lab-tls"}],
    }
    public = all_values_rendering.get("Service", "physics-lab-proxy-public")["spec"]
    assert public["type"] == "LoadBalancer"
    assert public["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": 30080}]
    assert public["loadBalancerSourceRanges"] == ["192.0.2.0/24"]


def test_the_values_in_the_deploy_guide_install():
    guide = (REPO / "docs" / "admin-deploy.md").read_text()
    examples = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", guide, re.S)]
    assert len(examples) == 3
    for values in examples:
        for item in render(values).objects:
            validate_strictly(item, NEWEST_SCHEMA)


def test_the_hub_database_claim(all_values_rendering):
    claim = all_values_rendering.get("PersistentVolumeClaim", "physics-lab-hub-db")
    # keepOnUninstall: helm leaves it, with the users and their state, for a later install.
    assert claim["metadata"]["annotations"] == {
        "backup.example.org/schedule": "daily",
        "helm.sh/resource-policy": "keep",
    }
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "fast-ssd",
        "selector": {"matchLabels": {"volume": "hub-db"}},
        "resources": {"requests": {"storage": "2Gi"}},
    }


def test_the_proxy_finds_the_hub_by_its_services_variables(default_rendering):
    (proxy,) = default_rendering.get("Deployment", f"{FULLNAME}-proxy")["spec"]["template"]["spec"]["containers"]
    hub_service = default_rendering.get("Service", f"{FULLNAME}-hub")
    assert hub_service["spec"]["ports"] == [
        {"name": "hub", "port": 8081, "targetPort": "http", "protocol": "TCP"},
        {"name": "sciencelab", "port": 10101, "targetPort": "sciencelab", "protocol": "TCP"},
    ]
    # Kubernetes expands $(VAR) in args with the Service variables of pods started after the Service.
    assert proxy["args"] == [
        "configurable-http-proxy",
        "--ip=",
        "--port=8000",
        "--api-ip=",
        "--api-port=8001",
        "--default-target=http://$(LAB_SCIENCELAB_HUB_SERVICE_HOST):$(LAB_SCIENCELAB_HUB_SERVICE_PORT)",
        "--error-target=http://$(LAB_SCIENCELAB_HUB_SERVICE_HOST):$(LAB_SCIENCELAB_HUB_SERVICE_PORT)/hub/error",
    ]
