"""Fixtures of the `k8s` tier: a real single-node Kubernetes cluster (`cluster.py`).

Registered for every test by `tests/conftest.py`. The cluster starts once per session, on first
use (about 20 s): tests take it from `kube_cluster`, module- and session-scoped fixtures from
`shared_kube_cluster.get()`. Without the binaries and tools (`tests/k8s/install-kubernetes.sh`,
which `make test` runs) or without root, the fixtures skip with the reason, except under CI=true,
where they fail.
"""

import pytest

from ..prerequisites import require
from .cluster import KubeCluster
from .images import probe_image


class SharedCluster:
    """The session's cluster, started on first use; `stop()` lets a test that needs the host to
    itself (one cluster per host) stop it, and the next `get()` starts a new one."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.cluster: KubeCluster | None = None

    def get(self) -> KubeCluster:
        if self.cluster is None:
            cluster = KubeCluster(self.tmp_path_factory.mktemp("kube-cluster"))
            require(cluster.missing())
            cluster.start()
            print(f"test cluster started in {cluster.start_seconds:.1f}s; logs in {cluster.state_dir}")
            self.cluster = cluster
        return self.cluster

    def stop(self):
        if self.cluster is not None:
            cluster, self.cluster = self.cluster, None
            cluster.stop()


@pytest.fixture(scope="session")
def shared_kube_cluster(tmp_path_factory):
    """The `SharedCluster` of the session; its cluster is stopped at the end, and the host restored."""
    shared = SharedCluster(tmp_path_factory)
    yield shared
    shared.stop()


@pytest.fixture
def kube_cluster(shared_kube_cluster) -> KubeCluster:
    """The single-node cluster (`cluster.KubeCluster`), started once for the session: etcd,
    kube-apiserver, kube-controller-manager (host-path provisioner, default StorageClass
    `host-path`), kube-scheduler, containerd, kubelet and kube-proxy. The node `sciencelab-node`
    is the bridge address 10.244.0.1, where the API server listens; pods get 10.244.0.0/24 and
    Services 10.96.0.0/24, both reachable from the host. `import_image(archive)`,
    `import_lab_image()` (JupyterLab and ScienceLab: the `lab` image of `make images`, see
    `images.lab_image_archive`) and `tag_image(reference, *names)` put local images on
    the node (nothing is pulled), `advertise(labels, resources)` fakes GPUs, `ctr(...)` runs
    containerd's client. Tests delete the objects they create; at the end every pod is deleted and
    the host restored (`host.py`)."""
    return shared_kube_cluster.get()


@pytest.fixture
def kube_apiserver(kube_cluster):
    """The cluster's API server as `KubeCredentials`: `url`, `ca_path`, `admin_token`
    (system:masters), `hub_token` (user `sciencelab-hub`, RBAC-limited to what the hub needs in
    `namespace` "sciencelab"), `write_kubeconfig(path, token)` for `KUBECONFIG`, and
    `session(token)` for requests."""
    return kube_cluster.credentials


@pytest.fixture
def probe_image_on_node(kube_cluster) -> str:
    """The reference of the busybox image (`images.probe_image`), imported on the node."""
    image = probe_image()
    kube_cluster.import_image(image.archive())
    return image.reference


@pytest.fixture
def cluster_of_its_own(shared_kube_cluster, tmp_path_factory):
    """For tests of the cluster's own start and stop: the session's cluster is stopped first (one
    per host; `pytest_collection_modifyitems` runs these tests before the others, so it has not
    started yet), and `start()` returns a new `KubeCluster`, stopped after the test."""
    shared_kube_cluster.stop()
    started = []

    def start() -> KubeCluster:
        cluster = KubeCluster(tmp_path_factory.mktemp("own-kube-cluster"))
        require(cluster.missing())
        started.append(cluster)
        cluster.start()
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


def pytest_collection_modifyitems(items):
    """Tests that stop and start clusters of their own run first, before the shared one starts."""
    items.sort(key=lambda item: "cluster_of_its_own" not in getattr(item, "fixturenames", ()))
