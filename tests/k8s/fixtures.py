"""Fixtures of the `k8s` tier: a real kube-apiserver and the test-only node agent.

Registered for every test by `tests/conftest.py`. Without the binaries (`make test` installs them)
the fixtures skip with a reason, except under CI=true, where they fail.
"""

import pytest

from ..prerequisites import require
from .apiserver import KubeApiServer
from .node_agent import FakeNode, NodeAgent, gpu_node, local_commands

A100 = "NVIDIA-A100-SXM4-80GB"

# A small site: a CPU node, an A100 node with whole GPUs and an A100 node cut into MIG slices.
DEFAULT_NODES = (
    FakeNode(name="cpu-1"),
    gpu_node("gpu-a100-1", A100, gpus=4),
    gpu_node("gpu-a100-mig-1", A100, gpus=0, **{"nvidia.com/mig-1g.10gb": "7", "nvidia.com/mig-3g.40gb": "2"}),
)


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory):
    """A real kube-apiserver 1.20 and its etcd on 127.0.0.1 (free ports, data and logs in a
    temporary directory), for the whole session; both are always stopped.

    Yields `KubeCredentials`: `url`, `ca_path`, `admin_token` (system:masters), `hub_token`
    (user `sciencelab-hub`, RBAC-limited to what the hub needs in `namespace` "sciencelab"),
    `write_kubeconfig(path, token)` for `KUBECONFIG`, and `session(token)` for requests.
    Skips without the binaries, or fails under CI=true; `tests/k8s/install-kube-apiserver.sh`
    installs them.
    """
    server = KubeApiServer(tmp_path_factory.mktemp("kube-apiserver"))
    require(server.missing())
    try:
        yield server.start()
    finally:
        server.stop()
        print(f"kube-apiserver and etcd logs: {server.state_dir}; started in {server.start_seconds}s")


@pytest.fixture
def start_node_agent(kube_apiserver, tmp_path_factory):
    """Factory: `start_node_agent(nodes, **options)` starts a `NodeAgent` (the kubelet and
    scheduler stand-in) for `nodes` in the `sciencelab` namespace; `options` are NodeAgent's
    (`label_selector`, `commands`, `run_processes`), `commands` defaulting to this virtual
    environment's `python` and `jupyterhub-singleuser`. Every agent started is stopped after the
    test, with its processes, its nodes and their pods."""
    agents = []

    def start(nodes, **options):
        options.setdefault("commands", local_commands())
        agent = NodeAgent(kube_apiserver, nodes, tmp_path_factory.mktemp("node-agent"), **options)
        agents.append(agent)
        return agent.start()

    yield start
    errors = []
    for agent in agents:
        try:
            agent.stop()
        except RuntimeError as error:
            errors.append(error)
    if errors:
        raise errors[0]


@pytest.fixture
def node_agent(start_node_agent):
    """A `NodeAgent` for DEFAULT_NODES (cpu-1; gpu-a100-1 with 4 A100; gpu-a100-mig-1 with 7
    mig-1g.10gb and 2 mig-3g.40gb slices), watching every pod of the `sciencelab` namespace."""
    return start_node_agent(DEFAULT_NODES)
