"""One profile list, three places: a hub on the local spawner runs one profile as a local process,
one as a pod on the test cluster (`runs_on: kubernetes`, `kubernetes_profiles`) and one as a job
on the test tier's SLURM (`runs_on: slurm`), whose walltime ends it."""

import sys
import textwrap
import time
from pathlib import Path

import pytest

from ..batch.slurm import NODE_NAME, PARTITION
from ..demo_hub import DemoHub
from .apiserver import NAMESPACE
from .cluster import NODE_IP
from .hub import remove_namespace_objects

pytestmark = [pytest.mark.k8s, pytest.mark.hub]

VENV_BIN = Path(sys.executable).parent
LIFETIME = 60
PROFILES = textwrap.dedent(f"""
    profiles:
      - slug: here
        display_name: A process on the hub's machine
        runs_on: local
        default: true
      - slug: pod
        display_name: A pod on Kubernetes
        runs_on: kubernetes
        size: {{cpu_guarantee: 0.1, cpu_limit: 1, mem_guarantee: 128M, mem_limit: 1G}}
      - slug: hpc
        display_name: A SLURM job
        runs_on: slurm
        lifetime: {LIFETIME}s
        slurm: {{partition: {PARTITION}}}
""")


@pytest.fixture(scope="module")
def three_place_hub(shared_kube_cluster, slurm_cluster, tmp_path_factory):
    """The demo hub with `kubernetes_profiles` (pods in the test namespace, from the lab image), the
    test tier's SLURM, a session check every second, and servers kept across a hub restart."""
    cluster = shared_kube_cluster.get()
    state = tmp_path_factory.mktemp("three-place-hub")
    kubeconfig = cluster.credentials.write_kubeconfig(state / "kubeconfig", cluster.credentials.hub_token)
    extra_config = textwrap.dedent(f"""
        import os
        from sciencelab_spawner.demo import free_port
        from sciencelab_spawner.hub_config import configure_sciencelab
        here = os.path.dirname(__file__)
        configure_sciencelab(c, profiles_file=os.path.join(here, "profiles.yaml"), service_port=free_port(),
                             sessions_file=os.path.join(here, "sciencelab-sessions.json"), session_check_interval=1)
        c.JupyterHub.cleanup_servers = False
        # Pods call the hub's API: it listens on the node's address, not on loopback.
        c.JupyterHub.hub_ip = {NODE_IP!r}
        c.LocalProfileSpawner.kubernetes_profiles = True
        c.KubeProfileSpawner.namespace = {NAMESPACE!r}
        c.KubeProfileSpawner.image = {cluster.import_lab_image()!r}
        c.KubeProfileSpawner.cmd = ["jupyterhub-singleuser"]
        c.KubeProfileSpawner.start_timeout = 120
        c.KubeProfileSpawner.http_timeout = 120
        c.SlurmJobSpawner.exec_prefix = ""
        c.SlurmJobSpawner.node_addresses = {{{NODE_NAME!r}: "127.0.0.1"}}
        c.SlurmJobSpawner.job_environment = {{"SLURM_CONF": {str(slurm_cluster.config)!r}}}
        c.SlurmJobSpawner.job_command = [{str(VENV_BIN / "batchspawner-singleuser")!r},
                                         {str(VENV_BIN / "jupyterhub-singleuser")!r}]
    """)
    hub = DemoHub(state, extra_config=extra_config, profiles=PROFILES, env={"KUBECONFIG": str(kubeconfig)})
    admin = cluster.credentials.session(cluster.credentials.admin_token)
    try:
        hub.start()
        yield hub, lambda path: admin.get(cluster.credentials.url + path, timeout=30).json()
        hub.check_log()
    finally:
        for server in ("", "pod", "hpc"):
            if hub.process and hub.process.poll() is None and hub.server_model("alice", server):
                hub.stop_server("alice", server)
        hub.stop()
        remove_namespace_objects(cluster.credentials)


def test_a_local_hub_runs_processes_pods_and_slurm_jobs_from_one_list(three_place_hub, slurm_cluster):
    hub, kube = three_place_hub
    pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
    form = hub.spawn_form(hub.browser_session("alice"), "alice", "")
    assert all(f'value="{slug}"' in form for slug in ("here", "pod", "hpc"))

    started = time.time()
    assert hub.spawn("alice", {"profile": "hpc"}, "hpc").status_code in (201, 202), hub.log_tail()
    assert hub.spawn("alice", {"profile": "pod"}, "pod").status_code in (201, 202), hub.log_tail()
    assert hub.spawn("alice", {"profile": "here"}).status_code in (201, 202), hub.log_tail()
    (job,) = slurm_cluster.jobs()
    assert job["state"] == "RUNNING"
    assert [pod["metadata"]["name"] for pod in kube(pods)["items"]] == ["jupyter-alice--pod"]

    # Each panel says where its server runs and which settings it does not apply.
    where = {}
    for server in ("", "pod", "hpc"):
        prefix = f"/user/alice/{server}/" if server else "/user/alice/"
        info = hub.request("GET", f"{prefix}sciencelab/api/info", "alice").json()
        where[server] = (info["profile"]["slug"], info["batch_job"] is not None, info["profile"]["not_applied"] is None)
    assert where == {"": ("here", False, False), "pod": ("pod", False, True), "hpc": ("hpc", True, False)}

    # A hub restart finds the pod and the job through the servers' state.
    hub.stop()
    hub.start()
    for server in ("pod", "hpc"):
        deadline = time.monotonic() + 60
        while hub.request("GET", f"/user/alice/{server}/api/status", "alice").status_code != 200:
            assert time.monotonic() < deadline, hub.log_tail()
            time.sleep(0.5)

    # The SLURM profile's lifetime is the job's walltime: the hub stops it at the end, cleanly.
    end = started + LIFETIME + 30
    while hub.server_model("alice", "hpc") is not None:
        assert time.time() < end, hub.log_tail()
        time.sleep(0.5)
    print(f"\nthe SLURM server stopped {time.time() - started:.0f} s after its spawn began (lifetime {LIFETIME} s)")
    assert slurm_cluster.jobs() == []
    assert "Stopping alice:hpc's server: stopped because it reached the end of its session" in hub.log_text()

    for server in ("pod", ""):
        hub.stop_server("alice", server)
    assert kube(pods)["items"] == []
