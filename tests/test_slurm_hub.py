"""Notebooks on HPC: a demo hub whose profile list has a local profile and a SLURM profile, on the
test tier's real single-node SLURM (tests/batch/slurm.py).

alice (in gpu-users) spawns the SLURM profile through the REST API and the form; JupyterLab runs as
a SLURM job and is reached through the hub's proxy; its kernel sees the job's SLURM_JOB_ID; stopping
leaves the queue empty; a restart of the hub keeps the server; a job held PENDING shows SLURM's
reason in the spawn progress and then a clear error; bob, without the group, is refused.
"""

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from .batch.slurm import HELD_PARTITION, NODE_NAME, PARTITION
from .demo_hub import DemoHub

pytestmark = pytest.mark.hub

VENV_BIN = Path(sys.executable).parent
PROFILES = textwrap.dedent(f"""
    profiles:
      - slug: laptop
        display_name: On this machine
        default: true
      - slug: hpc
        display_name: JupyterLab on the cluster
        description: A SLURM job in the {PARTITION} partition.
        allowed_groups: [gpu-users]
        runs_on: slurm
        lifetime: {{min: 1h, max: 4h, default: 1h}}
        size: {{cpu_limit: 1, mem_limit: 1G}}
        dask_config: DASK_CONFIG
        slurm:
          # `missing` is no partition of the cluster: sbatch refuses it.
          partition: {{choices: [{PARTITION}, {HELD_PARTITION}, missing], default: {PARTITION}}}
          setup: ["echo ScienceLab job starting"]
""")
# The Dask templates the SLURM profile offers: workers in the job's own partition.
DASK_TEMPLATES = textwrap.dedent(f"""
    sciencelab:
      clusters:
        templates:
          same-partition:
            title: Workers in the {PARTITION} partition
            backend: slurm
            options:
              workers: {{default: 1, minimum: 0, maximum: 4}}
            backend_settings:
              log_directory: LOGS
              partition: {PARTITION}
""")
# Above JupyterHub's `slow_spawn_timeout` (10 s), after which a spawn request answers 202 and the
# spawn's progress tells the rest.
PENDING_TIMEOUT = 15


@pytest.fixture(scope="module")
def slurm_hub(slurm_cluster, tmp_path_factory):
    """A demo hub that submits `runs_on: slurm` profiles to the test cluster and keeps servers
    running when it stops (so that a restart finds them)."""
    state = tmp_path_factory.mktemp("slurm-hub")
    dask_config = state / "dask-slurm.yaml"
    dask_config.write_text(DASK_TEMPLATES.replace("LOGS", str(state / "dask-logs")))
    extra_config = textwrap.dedent(f"""
        c.JupyterHub.cleanup_servers = False
        c.SlurmJobSpawner.exec_prefix = ""
        c.SlurmJobSpawner.node_addresses = {{{NODE_NAME!r}: "127.0.0.1"}}
        c.SlurmJobSpawner.job_environment = {{"SLURM_CONF": {str(slurm_cluster.config)!r}}}
        c.SlurmJobSpawner.job_command = [{str(VENV_BIN / "batchspawner-singleuser")!r},
                                         {str(VENV_BIN / "jupyterhub-singleuser")!r}]
        c.SlurmJobSpawner.pending_timeout = {PENDING_TIMEOUT}
    """)
    hub = DemoHub(state, extra_config=extra_config, profiles=PROFILES.replace("DASK_CONFIG", str(dask_config))).start()
    try:
        yield hub
        hub.check_log()
    finally:
        for user, server in (("alice", ""), ("alice", "form")):
            if hub.process and hub.process.poll() is None and hub.server_model(user, server):
                hub.stop_server(user, server)
        hub.stop()


def queue(slurm_cluster) -> list[dict]:
    return slurm_cluster.jobs()


def test_a_slurm_profile_runs_jupyterlab_as_a_job(slurm_hub, slurm_cluster):
    hub = slurm_hub
    started = time.monotonic()
    response = hub.spawn("alice", {"profile": "hpc", "lifetime_hours": 2})
    assert response.status_code in (201, 202), hub.log_tail()
    ready = time.monotonic() - started
    (job,) = queue(slurm_cluster)
    assert (job["state"], job["name"]) == ("RUNNING", "sciencelab-alice")

    # Reached through the hub's proxy, and its kernels run inside the job.
    lab = hub.request("GET", "/user/alice/api/status", "alice")
    assert lab.status_code == 200, lab.text
    with hub.kernel("alice") as kernel:
        assert kernel.run("import os; print(os.environ['SLURM_JOB_ID'])").strip() == job["id"]
    # The panel says where it runs, and offers the profile's Dask templates.
    info = hub.request("GET", "/user/alice/sciencelab/api/info", "alice").json()
    assert info["batch_job"] == {"scheduler": "slurm", "job_id": job["id"], "node": NODE_NAME, "partition": PARTITION}
    templates = hub.request("GET", "/user/alice/sciencelab/api/dask/templates", "alice").json()
    assert [t["title"] for t in templates] == [f"Workers in the {PARTITION} partition"]
    # The walltime is the session's lifetime: 2 h, as alice chose.
    limit = slurm_cluster.tool("squeue", "-h", "-j", job["id"], "-o", "%l").stdout.strip()
    assert limit == "2:00:00"
    print(f"\nSLURM profile: spawn to ready {ready:.1f} s, job {job['id']} on {NODE_NAME}")

    # A restart of the hub finds the job through the server's state and keeps the server.
    hub.stop()
    assert [j["id"] for j in queue(slurm_cluster)] == [job["id"]]
    hub.start()
    deadline = time.monotonic() + 60
    while hub.request("GET", "/user/alice/api/status", "alice").status_code != 200:
        assert time.monotonic() < deadline, hub.log_tail()
        time.sleep(0.5)

    hub.stop_server("alice")
    assert queue(slurm_cluster) == []


def test_the_spawn_form_offers_the_partition_and_submits(slurm_hub, slurm_cluster):
    hub = slurm_hub
    session = hub.browser_session("alice")
    form = hub.spawn_form(session, "alice", "form")
    assert 'name="hpc.partition"' in form and 'name="hpc.lifetime_hours"' in form
    hub.submit_spawn_form(
        session, "alice", {"profile": "hpc", "hpc.partition": PARTITION, "hpc.lifetime_hours": "1"}, "form"
    )
    hub.wait_until_ready("alice", "form")
    assert [j["state"] for j in queue(slurm_cluster)] == ["RUNNING"]
    hub.stop_server("alice", "form")
    assert queue(slurm_cluster) == []


def test_a_held_job_shows_its_reason_then_a_clear_error(slurm_hub, slurm_cluster):
    hub = slurm_hub
    response = hub.request(
        "POST", "/hub/api/users/alice/servers/held", "alice", json={"profile": "hpc", "partition": HELD_PARTITION}
    )
    assert response.status_code == 202, response.text
    events = []
    with requests.get(
        f"{hub.url}/hub/api/users/alice/servers/held/progress",
        headers={"Authorization": f"token {hub.token('alice')}"},
        stream=True,
        timeout=PENDING_TIMEOUT + 60,
    ) as progress:
        for line in progress.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    messages = [event.get("message", "") for event in events]
    assert any("is waiting in the queue (reason: PartitionDown)" in message for message in messages), messages
    assert events[-1]["failed"] is True
    assert "is waiting in the queue (reason: PartitionDown) after 15 s; the job was cancelled" in messages[-1]
    assert "SpawnException" not in messages[-1] and "Traceback" not in messages[-1]
    assert queue(slurm_cluster) == []


def test_a_job_sbatch_refuses_is_a_clear_spawn_error(slurm_hub, slurm_cluster):
    response = slurm_hub.spawn("alice", {"profile": "hpc", "partition": "missing"}, "refused")
    assert response.status_code == 503
    assert response.json()["message"].startswith(
        "SLURM refused the job: sbatch: error: invalid partition specified: missing"
    )
    assert queue(slurm_cluster) == []


def test_bob_without_the_group_is_refused(slurm_hub, slurm_cluster):
    response = slurm_hub.spawn("bob", {"profile": "hpc"})
    assert response.status_code == 403
    assert response.json()["message"] == "profile: 'hpc' is only for members of gpu-users; choose one of: laptop"
    assert queue(slurm_cluster) == []
