"""JupyterHub's configuration in the ScienceLab Helm chart.

Everything it reads sits beside it in the hub pod (/usr/local/etc/jupyterhub/): `secret/`, the hub
Secret (the chart's values for the hub as `values.yaml`, and the generated secrets), `profiles/`,
the profile file's ConfigMap (re-read by the spawner when it changes), `db/url` with an external
database, and `oidc/client-secret` with `hub.login`. Order: the chart's own settings, then `hub.config`
(which wins over `singleuser.*` and over `hub.login`'s username claim, scopes and refresh age), then
`configure_sciencelab` (which keeps the services and roles declared before it, and sets the rest of
`hub.login` and the authenticator class over `hub.config`), then `hub.extraConfig`. A misconfiguration
stops the hub here, naming the value.
"""

import os
from pathlib import Path

import yaml

from sciencelab_spawner.hub_config import configure_sciencelab

c = get_config()  # noqa: F821 (JupyterHub's config loader defines it)

HERE = Path(__file__).parent
SECRET = HERE / "secret"
PROFILES_FILE = HERE / "profiles" / "profiles.yaml"
DB_URL_FILE = HERE / "db" / "url"
OIDC_CLIENT_SECRET_FILE = HERE / "oidc" / "client-secret"
# The chart's ports: the hub's API, and the `sciencelab` service the proxy reaches at the pod's IP.
HUB_PORT = 8081
SERVICE_PORT = 10101
# Where servers find the Dask configuration files a profile's `dask_config` names.
DASK_CONFIG_DIR = "/etc/sciencelab/dask"
SQLITE_URL = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"


def secret(key: str) -> str:
    return (SECRET / key).read_text(encoding="utf-8").strip()


def service_address(name: str) -> str:
    """`host:port` of the Service `name`, from the variables Kubernetes gives pods started after it
    (no cluster DNS needed). Its ClusterIP is kept while the Service exists."""
    prefix = name.upper().replace("-", "_")
    try:
        return f"{os.environ[prefix + '_SERVICE_HOST']}:{os.environ[prefix + '_SERVICE_PORT']}"
    except KeyError as error:
        raise SystemExit(
            f"The hub pod has no {error.args[0]}: the Service {name} did not exist when the pod started, "
            "or the pod's enableServiceLinks is off; delete the hub pod to start it again"
        ) from None


values = yaml.safe_load((SECRET / "values.yaml").read_text(encoding="utf-8"))
names, release, hub, singleuser, dask = (values[key] for key in ("names", "release", "hub", "singleuser", "dask"))

# --- the hub and the proxy, each in its pod ---
c.JupyterHub.base_url = hub["baseUrl"]
c.JupyterHub.hub_bind_url = f"http://:{HUB_PORT}"
c.JupyterHub.hub_connect_url = f"http://{service_address(names['hubService'])}"
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = f"http://{service_address(names['proxyApiService'])}"
c.ConfigurableHTTPProxy.auth_token = secret("proxy-token")
c.JupyterHub.cookie_secret = bytes.fromhex(secret("cookie-secret"))
# Servers outlive a hub restart (an upgrade); a restarted proxy gets its routes back within a minute.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.last_activity_interval = 60

if hub["db"]["type"] == "external":
    c.JupyterHub.db_url = DB_URL_FILE.read_text(encoding="utf-8").strip()
else:
    c.JupyterHub.db_url = {"sqlite-pvc": SQLITE_URL, "sqlite-memory": "sqlite://"}[hub["db"]["type"]]

# --- users' servers ---
spawner = c.KubeProfileSpawner
# The chart's NetworkPolicies select servers by these labels and KubeSpawner's component label.
spawner.common_labels = {
    "app.kubernetes.io/name": release["appName"],
    "app.kubernetes.io/instance": release["name"],
    "app.kubernetes.io/managed-by": "kubespawner",
}
spawner.image = singleuser["image"]["name"]
spawner.image_pull_policy = singleuser["image"]["pullPolicy"]
spawner.image_pull_secrets = values["imagePullSecrets"]
spawner.uid = singleuser["uid"]
spawner.fs_gid = singleuser["fsGid"]
spawner.storage_capacity = singleuser["storage"]["capacity"]
if singleuser["storage"]["dynamic"]["storageClass"]:
    spawner.storage_class = singleuser["storage"]["dynamic"]["storageClass"]
spawner.start_timeout = singleuser["startTimeout"]
spawner.node_selector = singleuser["nodeSelector"]
spawner.environment = singleuser["extraEnv"]
spawner.gpu_tolerations = singleuser["gpuTolerations"]
cvmfs, s3, group_folders = singleuser["cvmfs"], singleuser["s3"], singleuser["groupFolders"]
spawner.cvmfs_mode = cvmfs["mode"]
spawner.cvmfs_storage_class = cvmfs["storageClass"]
spawner.cvmfs_pvc_name = cvmfs["claimName"]
spawner.cvmfs_host_path = cvmfs["hostPath"]
spawner.s3_mount = s3["mount"]
spawner.s3_csi_driver = s3["csiDriver"]
spawner.s3_csi_volume_attributes = s3["csiVolumeAttributes"]
spawner.s3_mount_root = s3["mountRoot"]
spawner.s3_credentials_dir = s3["credentialsDir"]
spawner.s3_credentials_source = s3["credentialsSource"]
spawner.s3_credentials_secret_template = s3["credentialsSecretTemplate"]
spawner.s3_auth_state_key = s3["authStateKey"]
spawner.group_folders = group_folders["groups"]
spawner.group_folder_storage_class = group_folders["storageClass"]
spawner.group_folder_capacity = group_folders["capacity"]
spawner.group_folders_root = group_folders["mountRoot"]
if dask["configs"]:
    # Added to ScienceLab's default volumes (the home), not in place of them.
    spawner.volumes.update({"dask-config": {"name": "dask-config", "configMap": {"name": names["daskConfigMap"]}}})
    spawner.volume_mounts.update(
        {"dask-config": {"name": "dask-config", "mountPath": DASK_CONFIG_DIR, "readOnly": True}}
    )
if dask["kubernetes"]["enabled"]:
    # The `kubernetes` Dask backend calls the API as this account (Dask objects in its namespace only).
    spawner.service_account = names["singleuserServiceAccount"]
    spawner.automount_service_account_token = True

# --- hub.login: what configure_sciencelab does not set, so that hub.config may override it ---
login = hub["login"]
if login["enabled"]:
    authenticator = c.SciencelabOIDCAuthenticator
    authenticator.username_claim = login["usernameClaim"]
    if login["scopes"]:  # else the authenticator's own, which follow the groups claim
        authenticator.scope = login["scopes"]
    authenticator.auth_refresh_age = login["authRefreshAge"]

# --- hub.config: the admin's traitlets configuration, by class ---
for section, traits in hub["config"].items():
    c[section].update(traits)

# --- hub.services: external services, their tokens generated once in the hub Secret ---
services = list(c.JupyterHub.services) if "services" in c.JupyterHub else []
for name, service in sorted(hub["services"].items()):
    entry = {"name": name, "api_token": secret(f"services.{name}.apiToken")}
    entry.update({key: service[key] for key in ("url", "display", "oauth_no_confirm") if key in service})
    services.append(entry)
c.JupyterHub.services = services

configure_sciencelab(
    c,
    spawner="kubernetes",
    profiles_file=str(PROFILES_FILE),
    namespace=os.environ["POD_NAMESPACE"],
    service_port=SERVICE_PORT,
    service_host=os.environ["POD_IP"],
    # Servers reach the service through the hub's Service; deadlines live beside the hub's database.
    service_url=f"http://{service_address(names['hubService']).rpartition(':')[0]}:{SERVICE_PORT}",
    sessions_file="/srv/jupyterhub/sciencelab-sessions.json",
    session_check_interval=hub["sessions"]["checkInterval"],
    sharing_groups=hub["sharing"]["groups"],
    server_services=[name for name, service in sorted(hub["services"].items()) if service.get("serverAccess")],
    login="oidc" if login["enabled"] else None,
    issuer=login["issuer"],
    client_id=login["clientId"],
    client_secret_file=str(OIDC_CLIENT_SECRET_FILE),
    groups_claim=login["groupsClaim"],
    allowed_groups=login["allowedGroups"],
    admin_groups=login["adminGroups"],
)

# --- hub.extraConfig: Python snippets, in the order of their names ---
for name, code in sorted(hub["extraConfig"].items()):
    exec(compile(code, f"hub.extraConfig.{name}", "exec"), {"c": c})
