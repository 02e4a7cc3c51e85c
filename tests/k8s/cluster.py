"""A single-node Kubernetes 1.20 cluster on this host, for the `k8s` tier: a real kubelet decides.

`KubeCluster` runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd with
runc, the kubelet and kube-proxy (binaries from `install-kubernetes.sh`) as root, all in one
mount namespace of their own: its mounts are slaves of the host's, so none reaches the host and
every one ends with the namespace, and its root is shared inside it, so the kubelet's volume
mounts reach the containers and `HostToContainer` propagation works.

- Network: the bridge `BRIDGE` with `NODE_IP`/24 is the node. The API server, the kubelet and,
  in tests, the hub listen on `NODE_IP`, which the host reaches as one of its own addresses and
  pods through their default route; pods get addresses of `POD_CIDR` (CNI bridge, host-local
  IPAM, no masquerading) and Services ClusterIPs of `SERVICE_CIDR` (kube-proxy, iptables), both
  reachable from the host. No cluster DNS (Debian has no CoreDNS): pods find Services through the
  `<NAME>_SERVICE_HOST` variables, as z2jh's pods do.
- Identities: token users for each component; `system:node:<node>` is held to its own pods by the
  Node authorizer; the API server reaches the kubelet with a client certificate. Service accounts
  work (the controller-manager mints their tokens), so pods may call the API as z2jh's hub does.
- Storage: `STORAGE_CLASS` (the default class) is the controller-manager's host-path provisioner:
  a claim becomes a folder /tmp/hostpath_pv/<uuid>. That provisioner makes it root's, mode 0750,
  and takes no options, and the kubelet applies no fsGroup to host paths, so the cluster opens
  each new one to every user (0777), as a site's storage honouring fsGroup would let the pod's
  user write.
- Pod deletion: the 1.20 kubelet removes a deleted pod's object only on its status manager's next
  10-second tick after it has cleaned up, so every stop would take 10 to 16 s; the cluster removes
  a deleted pod (`gracePeriodSeconds: 0`) as soon as none of its containers runs any more, and
  the kubelet cleans up after it as it does for any pod that went away.
- Images: nothing is pulled (no registry): `import_image` puts a docker-archive tar (or an OCI
  archive whose index names its images) into containerd's `k8s.io` namespace, `tag_image` gives
  an image more names (`images.py` writes archives).
- Fake GPUs: `advertise` labels the node and adds extended resources to its capacity, as the
  NVIDIA device plugin and GPU feature discovery would; pods asking for them are scheduled and run.
- Host: everything the cluster changes outside its own state (sysctls, iptables, the bridge,
  cgroups, side directories) is recorded first and restored by `stop`, or by the next start after
  a killed run (`host.py`). One cluster per host: a second start waits for `LOCK_PATH`.
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import yaml
from kubernetes import client
from kubernetes.stream import stream

from sciencelab_spawner.demo import free_port

from ..batch import run, tail, wait_for_unshared_namespace, wait_until
from .apiserver import CACHE_DIR, INSTALL_SCRIPT, KUBERNETES_DIR, KubeApiServer, KubeApiServerMissing, KubeCredentials
from .host import (
    BRIDGE,
    CGROUP_NAME,
    CLUSTER_ROOT,
    create_cgroup_root,
    host_state,
    load_record,
    restore_host,
    save_record,
)
from .images import PAUSE_IMAGE, lab_image_archive, pause_image

NODE_NAME = "sciencelab-node"
NODE_IP = "10.244.0.1"
POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/24"
CNI_NETWORK = "sciencelab-kube"
CNI_BIN = Path("/usr/lib/cni")
STORAGE_CLASS = "host-path"
PROVISIONER_DIR = Path("/tmp/hostpath_pv")
LOCK_PATH = CACHE_DIR / "kube-cluster.lock"
LOCK_TIMEOUT = 1800  # seconds: another test run's whole k8s tier
READY_TIMEOUT = 120  # seconds: the node Ready after the kubelet starts, on a busy 2-core machine
POD_DELETE_TIMEOUT = 60
NODE_COMMANDS = ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
HOST_TOOLS = (
    "containerd",
    "ctr",
    "runc",
    "iptables",
    "ip6tables",
    "nft",
    "ip",
    "unshare",
    "nsenter",
    "conntrack",
    "ldd",
)


def make_containerd_config(root: Path) -> str:
    """containerd's configuration: its files under `root`, the CRI plugin with runc under cgroupfs,
    the local pause image, and the CNI configuration of `make_cni_config` in `root`/cni."""
    return f"""\
version = 2
root = "{root}/containerd"
state = "{root}/containerd-state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{root}/containerd.sock"

[ttrpc]
  address = "{root}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # root here lacks CAP_SYS_RESOURCE: runc could not lower a container's oom_score_adj below its own.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{shutil.which("runc")}"
        Root = "{root}/runc"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{root}/cni"
    max_conf_num = 1
"""


def make_cni_config(root: Path) -> dict:
    """The pod network: `BRIDGE` as the pods' gateway, addresses of POD_CIDR, no NAT (the host and
    the pods reach each other directly; kube-proxy masquerades what Services need)."""
    return {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(root / "cni-ipam"),
                },
            }
        ],
    }


def make_kubelet_config(root: Path, ca_path: Path, port: int, healthz_port: int) -> dict:
    """The kubelet's KubeletConfiguration: serving on NODE_IP to the API server only (client
    certificates, webhook authorization), pods under the `CGROUP_NAME` cgroup, no iptables chains of
    its own, no image garbage collection or eviction (the images cannot be pulled again, and the
    disk is shared), the host's DNS for pods."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_path)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP_NAME}",
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,
        "resolvConf": "/etc/resolv.conf",
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "volumePluginDir": str(root / "volume-plugins"),
        "serializeImagePulls": False,
    }


def make_kube_proxy_config(kubeconfig: Path, healthz_port: int, metrics_port: int) -> dict:
    """kube-proxy's configuration: iptables mode, NodePorts on NODE_IP only, the host's conntrack
    tunables left alone (0 means "do not set")."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "clusterCIDR": POD_CIDR,
        "mode": "iptables",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def acquire_host_lock():
    """The host's one-cluster lock, waited for up to LOCK_TIMEOUT seconds; released when the
    returned file is closed or this process dies."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    lock = open(LOCK_PATH, "a+")  # noqa: SIM115 - held until `stop`
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.seek(0)
                holder = lock.read()
                lock.close()
                raise RuntimeError(
                    f"another test cluster has run on this host for over {LOCK_TIMEOUT}s ({LOCK_PATH}: {holder})"
                ) from None
            time.sleep(1)
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
    lock.flush()
    return lock


class ProvisionedVolumeOpener(threading.Thread):
    """Opens each folder the host-path provisioner creates to every user (see the module docstring)."""

    def __init__(self):
        super().__init__(name="provisioned-volume-opener", daemon=True)
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(0.1):
            try:
                entries = list(os.scandir(PROVISIONER_DIR))
            except FileNotFoundError:
                continue
            for entry in entries:
                try:
                    if entry.stat().st_mode & 0o777 != 0o777:
                        os.chmod(entry.path, 0o777)
                except FileNotFoundError:
                    pass  # deleted with its claim

    def stop(self):
        self.stopped.set()
        self.join()


class TerminatedPodRemover(threading.Thread):
    """Removes deleted pods once none of their containers runs (see the module docstring)."""

    def __init__(self, credentials: KubeCredentials):
        super().__init__(name="terminated-pod-remover", daemon=True)
        self.credentials = credentials
        self.stopped = threading.Event()

    def run(self):
        admin = self.credentials.session(self.credentials.admin_token)
        while not self.stopped.wait(0.3):
            try:
                pods = admin.get(f"{self.credentials.url}/api/v1/pods", timeout=10).json()["items"]
            except (requests.RequestException, ValueError):
                continue  # the API server is stopping
            for pod in pods:
                statuses = pod["status"].get("containerStatuses") or []
                if pod["metadata"].get("deletionTimestamp") and not any("running" in s["state"] for s in statuses):
                    admin.delete(
                        f"{self.credentials.url}/api/v1/namespaces/{pod['metadata']['namespace']}/pods/"
                        f"{pod['metadata']['name']}",
                        json={"gracePeriodSeconds": 0, "preconditions": {"uid": pod["metadata"]["uid"]}},
                        timeout=10,
                    )

    def stop(self):
        self.stopped.set()
        self.join()


class KubeCluster(KubeApiServer):
    """The single-node cluster (see the module docstring); logs and configuration in `state_dir`,
    the node's state in CLUSTER_ROOT. `start()` returns the API server's `KubeCredentials`."""

    address = NODE_IP
    service_cluster_ip_range = SERVICE_CIDR

    def __init__(self, state_dir: Path):
        super().__init__(state_dir)
        self.record: dict | None = None
        self.namespace: str | None = None
        self._lock = None
        self._holder: subprocess.Popen | None = None
        self._opener: ProvisionedVolumeOpener | None = None
        self._remover: TerminatedPodRemover | None = None
        self.imported: set[Path] = set()

    @staticmethod
    def missing() -> str | None:
        """Why the cluster cannot run here (binaries, tools, root), or None."""
        absent = [command for command in (*NODE_COMMANDS, "pause") if not os.access(KUBERNETES_DIR / command, os.X_OK)]
        absent += [tool for tool in HOST_TOOLS if not shutil.which(tool)]
        absent += [
            f"CNI plugin {plugin}" for plugin in ("bridge", "host-local", "loopback") if not (CNI_BIN / plugin).exists()
        ]
        if not Path("/bin/busybox").exists():
            absent.append("busybox")
        if absent:
            return f"{', '.join(absent)} not installed: run {INSTALL_SCRIPT} (`make test` does)"
        if os.geteuid() != 0:
            return "the test cluster needs root (containerd, the kubelet, iptables)"
        return KubeApiServer.missing()

    def users(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        return {
            **super().users(),
            "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes",)),
            "kube-controller-manager": ("system:kube-controller-manager", ()),
            "kube-scheduler": ("system:kube-scheduler", ()),
            "kube-proxy": ("system:kube-proxy", ()),
        }

    def mode_flags(self) -> list[str]:
        return [
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={self.certificates['kubelet_client_cert']}",
            f"--kubelet-client-key={self.certificates['kubelet_client_key']}",
            "--kubelet-preferred-address-types=InternalIP",
        ]

    # --- start -----------------------------------------------------------------------------------

    def start(self) -> KubeCredentials:
        if reason := self.missing():
            raise KubeApiServerMissing(reason)
        started = time.monotonic()
        self._lock = acquire_host_lock()
        try:
            if (leftover := load_record()) is not None:
                print(f"restoring the host after a test cluster that did not stop ({CLUSTER_ROOT})")
                restore_host(leftover)
            self.record = host_state()
            save_record(self.record)
            self._start_namespace()
            save_record(self.record, self._holder.pid, self.namespace)
            run(["ip", "link", "add", BRIDGE, "type", "bridge"])
            run(["ip", "address", "add", f"{NODE_IP}/24", "dev", BRIDGE])
            run(["ip", "link", "set", BRIDGE, "up"])
            create_cgroup_root()
            self._start_containerd()
            credentials = super().start()
            wait_until(
                self._containerd_answers, 30, "containerd answering", describe=lambda: self.log_tail("containerd")
            )
            self.import_image(pause_image().archive())
            self._start_node(credentials)
            self._wait_node_ready(credentials)
            self._create_cluster_objects(credentials)
            self._opener = ProvisionedVolumeOpener()
            self._opener.start()
            self._remover = TerminatedPodRemover(credentials)
            self._remover.start()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return credentials

    def _start_namespace(self):
        """The mount namespace every process of the cluster runs in: a copy of the host's whose
        mounts are slaves of the host's (none of its mounts reaches the host, even under a mount
        the host shares, such as the /run/netns that `ip netns` and podman make), with `/` then
        made rshared inside (for the kubelet's volumes and HostToContainer propagation)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "namespace.log", "wb") as log:
            self._holder = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "slave",
                    "--",
                    "sh",
                    "-c",
                    "mount --make-rshared / && exec sleep infinity",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def check_alive():
            if self._holder.poll() is not None:
                raise RuntimeError(f"the cluster's mount namespace ended:\n{tail(self.state_dir / 'namespace.log')}")

        self.namespace = wait_for_unshared_namespace(self._holder, self.state_dir, check_alive)
        wait_until(
            lambda: check_alive() or Path(f"/proc/{self._holder.pid}/cmdline").read_bytes().startswith(b"sleep"),
            10,
            "/ made rshared in the cluster's mount namespace",
        )
        self.command_prefix = ["nsenter", f"--target={self._holder.pid}", "--mount", "--"]

    def _start_containerd(self):
        (CLUSTER_ROOT / "cni").mkdir(parents=True, exist_ok=True)
        (CLUSTER_ROOT / "cni" / "10-sciencelab.conflist").write_text(json.dumps(make_cni_config(CLUSTER_ROOT)))
        config = CLUSTER_ROOT / "containerd.toml"
        config.write_text(make_containerd_config(CLUSTER_ROOT))
        self._spawn("containerd", ["containerd", f"--config={config}"])

    def _containerd_answers(self) -> bool:
        self._check_processes()
        return self.ctr_result("version").returncode == 0

    def _start_node(self, credentials: KubeCredentials):
        kubeconfigs = {
            name: credentials.write_kubeconfig(self.state_dir / f"{name}.kubeconfig", self.tokens[name])
            for name in NODE_COMMANDS
        }
        self._spawn(
            "kube-controller-manager",
            [
                str(KUBERNETES_DIR / "kube-controller-manager"),
                f"--kubeconfig={kubeconfigs['kube-controller-manager']}",
                "--bind-address=127.0.0.1",
                "--port=0",
                "--secure-port=0",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.certificates['service_account_key']}",
                f"--root-ca-file={self.certificates['ca']}",
                "--enable-hostpath-provisioner=true",
                f"--flex-volume-plugin-dir={CLUSTER_ROOT / 'volume-plugins'}",
                # Without the cloud or a CSR signer, these controllers have nothing to do.
                "--controllers=*,-bootstrapsigner,-tokencleaner,-csrsigning,-csrapproving,-cloud-node-lifecycle",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(KUBERNETES_DIR / "kube-scheduler"),
                f"--kubeconfig={kubeconfigs['kube-scheduler']}",
                "--bind-address=127.0.0.1",
                "--port=0",
                "--secure-port=0",
                "--leader-elect=false",
            ],
        )
        kubelet_config = self.state_dir / "kubelet.yaml"
        kubelet_config.write_text(
            yaml.safe_dump(make_kubelet_config(CLUSTER_ROOT, self.certificates["ca"], free_port(), free_port()))
        )
        self._spawn(
            "kubelet",
            [
                str(KUBERNETES_DIR / "kubelet"),
                f"--config={kubelet_config}",
                f"--kubeconfig={kubeconfigs['kubelet']}",
                "--container-runtime=remote",
                f"--container-runtime-endpoint=unix://{CLUSTER_ROOT / 'containerd.sock'}",
                f"--pod-infra-container-image={PAUSE_IMAGE}",
                f"--root-dir={CLUSTER_ROOT / 'kubelet'}",
                f"--cert-dir={CLUSTER_ROOT / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
            ],
        )
        proxy_config = self.state_dir / "kube-proxy.yaml"
        proxy_config.write_text(
            yaml.safe_dump(make_kube_proxy_config(kubeconfigs["kube-proxy"], free_port(), free_port()))
        )
        self._spawn("kube-proxy", [str(KUBERNETES_DIR / "kube-proxy"), f"--config={proxy_config}"])

    def _check_processes(self):
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def _wait_node_ready(self, credentials: KubeCredentials):
        admin = credentials.session(credentials.admin_token)

        def ready():
            self._check_processes()
            response = admin.get(f"{credentials.url}/api/v1/nodes/{NODE_NAME}", timeout=10)
            if response.status_code != 200:
                return False
            conditions = response.json()["status"].get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        wait_until(
            ready, READY_TIMEOUT, f"node {NODE_NAME} Ready", interval=0.3, describe=lambda: self.log_tail("kubelet")
        )

    def _create_cluster_objects(self, credentials: KubeCredentials):
        """The default StorageClass; then wait for the service accounts pods need (admission
        refuses a pod until its namespace's `default` account has a token)."""
        admin = credentials.session(credentials.admin_token)
        admin.post(
            f"{credentials.url}/apis/storage.k8s.io/v1/storageclasses",
            json={
                "metadata": {
                    "name": STORAGE_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "kubernetes.io/host-path",
                "reclaimPolicy": "Delete",
            },
            timeout=30,
        ).raise_for_status()
        for namespace in ("default", credentials.namespace):

            def has_token(namespace=namespace):
                self._check_processes()
                response = admin.get(
                    f"{credentials.url}/api/v1/namespaces/{namespace}/serviceaccounts/default", timeout=10
                )
                return response.status_code == 200 and response.json().get("secrets")

            wait_until(has_token, 60, f"the service account {namespace}/default with its token")

    # --- what tests use --------------------------------------------------------------------------

    def ctr_result(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.command_prefix, "ctr", f"--address={CLUSTER_ROOT / 'containerd.sock'}", "--namespace=k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=600,
        )

    def ctr(self, *args: str) -> str:
        """`ctr` on the cluster's containerd, in the `k8s.io` namespace the kubelet uses; its output."""
        result = self.ctr_result(*args)
        if result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} exited with {result.returncode}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def import_image(self, archive: Path):
        """Make the images of `archive` (a docker-archive tar, e.g. from `buildah push ...
        docker-archive:` or `images.py`) available to pods, under the names it holds; once per
        archive."""
        if archive not in self.imported:
            self.ctr("images", "import", str(archive))
            self.imported.add(archive)

    def import_lab_image(self) -> str:
        """Import an image with JupyterLab and ScienceLab (`images.lab_image_archive`); its reference."""
        archive, reference = lab_image_archive()
        self.import_image(archive)
        return reference

    def tag_image(self, reference: str, *names: str):
        """Give the imported image `reference` more names (pods name it by any of them)."""
        for name in names:
            self.ctr("images", "tag", "--force", reference, name)

    def advertise(self, labels: dict[str, str | None], resources: dict[str, str | None]):
        """Label the node and set extended resources in its capacity (e.g. {"nvidia.com/gpu": "4"});
        a None value removes the label or resource."""
        admin = self.credentials.session(self.credentials.admin_token)
        url = f"{self.credentials.url}/api/v1/nodes/{NODE_NAME}"
        headers = {"Content-Type": "application/merge-patch+json"}
        admin.patch(url, json={"metadata": {"labels": labels}}, headers=headers, timeout=30).raise_for_status()
        admin.patch(
            f"{url}/status",
            json={"status": {"capacity": resources, "allocatable": resources}},
            headers=headers,
            timeout=30,
        ).raise_for_status()

    # --- stop ------------------------------------------------------------------------------------

    def stop(self):
        """Delete every pod (so the kubelet tears their sandboxes down), stop the components, then
        restore the host (`host.restore_host`) and release the lock; safe after a failed start."""
        try:
            if self.credentials and all(
                name in self.processes and self.processes[name].poll() is None for name in ("kube-apiserver", "kubelet")
            ):
                self._delete_pods()
            for helper in (self._opener, self._remover):
                if helper:
                    helper.stop()
            self._opener = self._remover = None
            for name in ("kube-proxy", "kube-scheduler", "kube-controller-manager", "kubelet"):
                self.stop_process(name)
            if "containerd" in self.processes and self.processes["containerd"].poll() is None:
                self._delete_containers()
            super().stop()
            if self._holder:
                self._holder.kill()
                self._holder.wait()
                self._holder = None
        finally:
            if self.record is not None:
                restore_host(load_record() or self.record)
                self.record = None
            if self._lock:
                self._lock.close()
                self._lock = None

    def _delete_pods(self):
        admin = self.credentials.session(self.credentials.admin_token)
        url = self.credentials.url
        for namespace in admin.get(f"{url}/api/v1/namespaces", timeout=30).json()["items"]:
            admin.delete(
                f"{url}/api/v1/namespaces/{namespace['metadata']['name']}/pods",
                json={"gracePeriodSeconds": 1},
                timeout=30,
            )
        try:
            wait_until(
                lambda: not admin.get(f"{url}/api/v1/pods", timeout=30).json()["items"],
                POD_DELETE_TIMEOUT,
                "every pod deleted by the kubelet",
            )
        except RuntimeError as error:
            print(f"{error}; the host restore kills what is left")

    def _delete_containers(self):
        """Kill and delete every container task, then the containers: containerd's shims would
        outlive containerd."""
        for task in self.ctr_result("tasks", "list", "--quiet").stdout.split():
            self.ctr_result("tasks", "delete", "--force", task)
        containers = self.ctr_result("containers", "list", "--quiet").stdout.split()
        if containers:
            self.ctr_result("containers", "delete", *containers)


def exec_in_pod(credentials: KubeCredentials, pod: str, command: list[str], namespace: str | None = None) -> str:
    """What `command` prints (stdout, then stderr) in the first container of `pod`, run through
    the API server and the kubelet as `kubectl exec` does."""
    configuration = client.Configuration()
    configuration.host = credentials.url
    configuration.ssl_ca_cert = str(credentials.ca_path)
    configuration.api_key = {"authorization": f"Bearer {credentials.admin_token}"}
    with client.ApiClient(configuration) as api_client:
        return stream(
            client.CoreV1Api(api_client).connect_get_namespaced_pod_exec,
            pod,
            namespace or credentials.namespace,
            command=command,
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
