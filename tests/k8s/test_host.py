"""The test cluster leaves the host as it found it: after a stop, and after a test run that was
killed, by the next start (`host.py`)."""

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ..batch import processes_in_namespace
from .host import cgroup_processes, host_state, load_record, make_iptables_cleanup, restore_host

REPO = Path(__file__).resolve().parents[2]
# A test run that starts a cluster, runs a pod behind a Service, then is killed before it can stop it.
KILLED_RUN = """\
import sys
from pathlib import Path

from tests.k8s.cluster import KubeCluster
from tests.k8s.hub import wait_for
from tests.k8s.images import probe_image

cluster = KubeCluster(Path(sys.argv[1]))
credentials = cluster.start()
cluster.import_image(probe_image().archive())
admin = credentials.session(credentials.admin_token)
namespace = f"{credentials.url}/api/v1/namespaces/sciencelab"
pod = {
    "metadata": {"name": "left-behind", "labels": {"app": "left-behind"}},
    "spec": {"containers": [{"name": "main", "image": probe_image().reference, "command": ["sleep", "600"]}]},
}
admin.post(f"{namespace}/pods", json=pod, timeout=30).raise_for_status()
service = {"metadata": {"name": "left-behind"}, "spec": {"selector": {"app": "left-behind"}, "ports": [{"port": 80}]}}
admin.post(f"{namespace}/services", json=service, timeout=30).raise_for_status()
wait_for(lambda: admin.get(f"{namespace}/pods/left-behind", timeout=30).json()["status"].get("phase") == "Running", 60)
print("running", flush=True)
sys.stdin.read()
"""
# What the kubelet, kube-proxy and the CNI bridge set while the cluster runs.
CLUSTER_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "net/ipv4/conf/all/route_localnet": "1",
    "net/ipv4/ip_forward": "1",
}


def read_until_line(process: subprocess.Popen, expected: str, timeout: float) -> str:
    """What `process` printed up to the line `expected`; fails with all of it when the process exits
    or `timeout` seconds pass first (the process still waits on its stdin, so reading to its end would
    block). Reads the pipe's descriptor: a buffered reader could hold the line where select misses it."""
    deadline = time.monotonic() + timeout
    printed = b""
    descriptor = process.stdout.fileno()
    with selectors.DefaultSelector() as selector:
        selector.register(descriptor, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0 and selector.select(left):
            if not (chunk := os.read(descriptor, 65536)):
                break
            printed += chunk
            if expected.encode() in printed.splitlines():
                return printed.decode()
    raise AssertionError(f"{expected!r} not printed within {timeout}s; printed:\n{printed.decode(errors='replace')}")


@pytest.mark.k8s
def test_the_next_start_cleans_up_after_a_killed_run_and_a_stop_leaves_the_host_as_before(cluster_of_its_own, tmp_path):
    # A run killed before this one (CI's time limit, say) is cleaned up first, so `before` is the bare host.
    if (leftover := load_record()) is not None:
        restore_host(leftover)
    before = host_state()
    killed = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path / "killed")],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        read_until_line(killed, "running", timeout=300)
        during = host_state()
        assert {name: during["sysctls"][name] for name in CLUSTER_SYSCTLS} == CLUSTER_SYSCTLS
        assert {"KUBE-SERVICES", "KUBE-POSTROUTING"} <= set(during["iptables"]["ipv4"]["nat"])
        assert during["bridge"] and during["cgroups"] and during["paths"]["/var/log/pods"]
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()
    left_behind = set(processes_in_namespace(load_record()["namespace"])) | set(cgroup_processes())
    assert len(left_behind) > 5, "the killed run's cluster and its pod should still run"

    cluster = cluster_of_its_own()
    assert not left_behind & set(psutil.pids())
    cluster.stop()
    assert host_state() == before


SAVED = """\
*mangle
:PREROUTING ACCEPT [0:0]
:KUBE-PROXY-CANARY - [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:CNI-FORWARD - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.88.0.0/16 -j MASQUERADE
COMMIT
"""


def test_the_iptables_cleanup_removes_the_kube_chains_and_the_jumps_to_them_only():
    assert make_iptables_cleanup(SAVED) == (
        "*mangle\n"
        "-F KUBE-PROXY-CANARY\n"
        "-X KUBE-PROXY-CANARY\n"
        "COMMIT\n"
        "*filter\n"
        '-D INPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
        '-D FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD\n'
        "-F KUBE-FORWARD\n"
        "-F KUBE-SERVICES\n"
        "-X KUBE-FORWARD\n"
        "-X KUBE-SERVICES\n"
        "COMMIT\n"
    )
    assert make_iptables_cleanup("*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n") == ""
