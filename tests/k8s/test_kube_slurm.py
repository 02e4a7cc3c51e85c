"""One profile list, two places: a hub on the Kubernetes spawner runs one profile's servers as pods
on the test cluster and another's as SLURM jobs on the test tier's SLURM (`runs_on: slurm`)."""

import sys
import textwrap
from pathlib import Path

import pytest

from ..batch.slurm import NODE_NAME, PARTITION
from .hub import KubeHub, remove_namespace_objects

pytestmark = [pytest.mark.k8s, pytest.mark.hub]

VENV_BIN = Path(sys.executable).parent
PROFILES = textwrap.dedent(f"""
    profiles:
      - slug: pod
        display_name: A pod on Kubernetes
        default: true
        size: {{cpu_guarantee: 0.1, cpu_limit: 1, mem_guarantee: 128M, mem_limit: 1G}}
      - slug: hpc
        display_name: A SLURM job
        runs_on: slurm
        lifetime: 1h
        slurm: {{partition: {PARTITION}}}
""")


@pytest.fixture(scope="module")
def kube_slurm_hub(shared_kube_cluster, slurm_cluster, tmp_path_factory):
    cluster = shared_kube_cluster.get()
    state = tmp_path_factory.mktemp("kube-slurm-hub")
    extra_config = textwrap.dedent(f"""
        c.SlurmJobSpawner.exec_prefix = ""
        c.SlurmJobSpawner.node_addresses = {{{NODE_NAME!r}: "127.0.0.1"}}
        c.SlurmJobSpawner.job_environment = {{"SLURM_CONF": {str(slurm_cluster.config)!r}}}
        # Jobs run as root here (the submitting user), which Jupyter Server refuses unless told.
        c.SlurmJobSpawner.job_command = [{str(VENV_BIN / "batchspawner-singleuser")!r},
                                         {str(VENV_BIN / "jupyterhub-singleuser")!r}, "--ServerApp.allow_root=True"]
        c.KubeProfileSpawner.slurm_workdir_template = {str(state / "home" / "{username}")!r}
    """)
    (state / "home" / "alice").mkdir(parents=True)
    hub = KubeHub(state, cluster.credentials, PROFILES, cluster.import_lab_image(), extra_config=extra_config)
    try:
        hub.start()
        yield hub
        hub.check_log()
    finally:
        hub.stop()
        remove_namespace_objects(cluster.credentials)


def test_a_kubernetes_hub_runs_one_profile_as_pods_and_another_as_slurm_jobs(kube_slurm_hub, slurm_cluster):
    hub = kube_slurm_hub
    assert hub.spawn("alice", {"profile": "hpc"}, "hpc").status_code in (201, 202), hub.log_tail()
    assert hub.spawn("alice", {"profile": "pod"}, "pod").status_code in (201, 202), hub.log_tail()
    (job,) = slurm_cluster.jobs()
    assert job["state"] == "RUNNING"
    pods = hub.kube("/api/v1/namespaces/sciencelab/pods")["items"]
    assert [pod["metadata"]["name"] for pod in pods] == ["jupyter-alice--pod"]
    for server in ("hpc", "pod"):
        assert hub.request("GET", f"/user/alice/{server}/api/status", "alice").status_code == 200
    with hub.kernel("alice", "hpc") as kernel:
        assert kernel.run("import os; print(os.environ['SLURM_JOB_ID'])").strip() == job["id"]
    for server in ("hpc", "pod"):
        hub.stop_server("alice", server)
    assert slurm_cluster.jobs() == []
