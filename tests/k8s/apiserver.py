"""A real kube-apiserver 1.20 with its etcd, for tests and benchmarks.

The binary is built once by `tests/k8s/install-kubernetes.sh` (`make test` runs it) into the
cache directory; etcd is Debian's `etcd-server`. `KubeApiServer` alone, on 127.0.0.1, has no
controller-manager, scheduler or kubelet: nothing garbage-collects owned objects, binds PVCs or
finalizes namespaces; the inventory benchmark registers fake nodes on it (`fake_nodes.py`).
`cluster.KubeCluster` adds those components and a real node.
"""

import datetime
import ipaddress
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sciencelab_spawner.demo import free_port

VERSION = "1.20.2"
CACHE_DIR = Path(os.environ.get("SCIENCELAB_CACHE_DIR", Path.home() / ".cache" / "sciencelab"))
KUBERNETES_DIR = CACHE_DIR / f"kubernetes-{VERSION}"
KUBE_APISERVER = KUBERNETES_DIR / "kube-apiserver"
INSTALL_SCRIPT = Path(__file__).with_name("install-kubernetes.sh")
START_TIMEOUT = 90  # seconds; etcd plus the API server's post-start hooks on a busy 2-core machine
STOP_TIMEOUT = 15

NAMESPACE = "sciencelab"
HUB_USER = "sciencelab-hub"

# What the hub needs and nothing more: its users' objects in its namespace, per-user
# PersistentVolumes (cluster-scoped) for S3 buckets, and nodes read for the GPU inventory.
HUB_NAMESPACED_RULES = [
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]
HUB_CLUSTER_RULES = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["persistentvolumes"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
]


class KubeApiServerMissing(RuntimeError):
    """The kube-apiserver binary or etcd is not installed; the message says how to install them."""


@dataclass
class KubeCredentials:
    """Where clients find the server and how they prove who they are."""

    url: str
    ca_path: Path
    admin_token: str
    hub_token: str
    namespace: str = NAMESPACE

    def write_kubeconfig(self, path: Path, token: str, namespace: str | None = None) -> Path:
        """Write a kubeconfig for `token` (what `KUBECONFIG` points the hub or kubectl at)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "sciencelab-test", "cluster": {"server": self.url, "certificate-authority": str(self.ca_path)}}
            ],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "sciencelab-test",
                    "context": {"cluster": "sciencelab-test", "user": "user", "namespace": namespace or self.namespace},
                }
            ],
            "current-context": "sciencelab-test",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def session(self, token: str) -> requests.Session:
        """A requests session that talks to the API server as the owner of `token`."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        session.verify = str(self.ca_path)
        # Else REQUESTS_CA_BUNDLE, where set, would win over `verify` (psf/requests#3829).
        session.trust_env = False
        return session


def write_certificates(directory: Path, addresses: list[str], dns_names: list[str]) -> dict[str, Path]:
    """A throw-away CA; the API server's serving certificate for `addresses` and `dns_names`; its
    client certificate for kubelets (group system:masters); the key that signs service-account
    tokens (1.20 requires one even where no pod mounts a token)."""

    def write_key(name, key):
        path = directory / name
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return path

    def certificate(subject, issuer, public_key, signing_key, extensions):
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    def write_certificate(name, cert):
        path = directory / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sciencelab-test-ca")])
    ca = certificate(
        ca_name,
        ca_name,
        ca_key.public_key(),
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
        ],
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        ca_name,
        server_key.public_key(),
        ca_key,
        [
            (
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
                    + [x509.DNSName(name) for name in dns_names]
                ),
                False,
            ),
            (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = certificate(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
                x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-kubelet-client"),
            ]
        ),
        ca_name,
        client_key.public_key(),
        ca_key,
        [(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
    )
    service_account_key = ec.generate_private_key(ec.SECP256R1())
    paths = {
        "ca": write_certificate("ca.crt", ca),
        "server_cert": write_certificate("apiserver.crt", server),
        "server_key": write_key("apiserver.key", server_key),
        "kubelet_client_cert": write_certificate("apiserver-kubelet-client.crt", client),
        "kubelet_client_key": write_key("apiserver-kubelet-client.key", client_key),
        "service_account_key": write_key("service-account.key", service_account_key),
        "service_account_public_key": directory / "service-account.pub",
    }
    paths["service_account_public_key"].write_bytes(
        service_account_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return paths


class KubeApiServer:
    """etcd and kube-apiserver processes with their data, certificates and logs under `state_dir`.

    Token authentication: `admin_token` (group `system:masters`) and `hub_token` (user
    `sciencelab-hub`, allowed by RBAC only what the hub needs in namespace `sciencelab`).
    Subclasses add users (`users`), flags (`mode_flags`), an address other than 127.0.0.1, and a
    `command_prefix` every process is started through.
    """

    address = "127.0.0.1"
    service_cluster_ip_range = "10.96.0.0/24"

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.processes: dict[str, subprocess.Popen] = {}  # in start order
        self.credentials: KubeCredentials | None = None
        self.start_seconds: float | None = None
        self.command_prefix: list[str] = []
        self.tokens: dict[str, str] = {}  # by name in `users()`
        self.certificates: dict[str, Path] = {}

    @staticmethod
    def missing() -> str | None:
        """Why the server cannot start here, or None when both binaries are installed."""
        absent = [
            name
            for name, path in (("kube-apiserver", KUBE_APISERVER), ("etcd", shutil.which("etcd")))
            if not (path and os.access(path, os.X_OK))
        ]
        if absent:
            return f"{' and '.join(absent)} not installed: run {INSTALL_SCRIPT} (`make test` does)"
        return None

    def users(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Token users by name: (user name, groups)."""
        return {"admin": ("admin", ("system:masters",)), "hub": (HUB_USER, ())}

    def mode_flags(self) -> list[str]:
        """kube-apiserver flags of an API server without controller-manager and nodes."""
        return [
            "--authorization-mode=RBAC",
            # No controller-manager mints service-account tokens, so pods must not wait for one.
            "--disable-admission-plugins=ServiceAccount",
            # A loopback address is no valid endpoint for the `kubernetes` service.
            "--endpoint-reconciler-type=none",
        ]

    def start(self) -> KubeCredentials:
        if reason := self.missing():
            raise KubeApiServerMissing(reason)
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # 10.96.0.1: the `kubernetes` service, as pods reach the server.
        service_ip = str(ipaddress.ip_network(self.service_cluster_ip_range)[1])
        self.certificates = write_certificates(
            self.state_dir,
            [self.address, service_ip],
            ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
        )
        token_file = self.state_dir / "tokens.csv"
        lines = []
        for name, (user, groups) in self.users().items():
            self.tokens[name] = secrets.token_urlsafe(32)
            groups_column = f',"{",".join(groups)}"' if groups else ""
            lines.append(f"{self.tokens[name]},{user},{user}{groups_column}\n")
        token_file.write_text("".join(lines))
        token_file.chmod(0o600)

        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._spawn(
            "etcd",
            [
                shutil.which("etcd"),
                "--name=sciencelab-test",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=sciencelab-test=http://127.0.0.1:{peer_port}",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                str(KUBE_APISERVER),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={api_port}",
                f"--cert-dir={self.state_dir / 'certs'}",
                f"--tls-cert-file={self.certificates['server_cert']}",
                f"--tls-private-key-file={self.certificates['server_key']}",
                f"--token-auth-file={token_file}",
                "--anonymous-auth=false",
                f"--service-account-key-file={self.certificates['service_account_public_key']}",
                f"--service-account-signing-key-file={self.certificates['service_account_key']}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-cluster-ip-range={self.service_cluster_ip_range}",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                *self.mode_flags(),
            ],
        )
        credentials = KubeCredentials(
            f"https://{self.address}:{api_port}", self.certificates["ca"], self.tokens["admin"], self.tokens["hub"]
        )
        self._wait_ready(credentials)
        self._grant_hub(credentials)
        self.credentials = credentials
        self.start_seconds = time.monotonic() - started
        return credentials

    def _spawn(self, name: str, command: list[str]):
        with open(self.state_dir / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                [*self.command_prefix, *command], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def _wait_ready(self, credentials: KubeCredentials):
        admin = credentials.session(credentials.admin_token)
        deadline = time.monotonic() + START_TIMEOUT
        answer = "no answer"
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")
            try:
                # /readyz waits for the post-start hooks, among them the RBAC bootstrap roles.
                response = admin.get(f"{credentials.url}/readyz?verbose", timeout=5)
                if response.status_code == 200:
                    return
                answer = response.text
            except (requests.ConnectionError, requests.Timeout) as error:
                answer = str(error)
            time.sleep(0.2)
        raise RuntimeError(
            f"kube-apiserver was not ready in {START_TIMEOUT}s; /readyz: {answer}\n{self.log_tail('kube-apiserver')}"
        )

    def _grant_hub(self, credentials: KubeCredentials):
        admin = credentials.session(credentials.admin_token)
        rbac = f"{credentials.url}/apis/rbac.authorization.k8s.io/v1"
        subject = [{"kind": "User", "name": HUB_USER, "apiGroup": "rbac.authorization.k8s.io"}]
        for url, body in [
            (f"{credentials.url}/api/v1/namespaces", {"metadata": {"name": credentials.namespace}}),
            (
                f"{rbac}/namespaces/{credentials.namespace}/roles",
                {"metadata": {"name": HUB_USER}, "rules": HUB_NAMESPACED_RULES},
            ),
            (
                f"{rbac}/namespaces/{credentials.namespace}/rolebindings",
                {
                    "metadata": {"name": HUB_USER},
                    "subjects": subject,
                    "roleRef": {"kind": "Role", "name": HUB_USER, "apiGroup": "rbac.authorization.k8s.io"},
                },
            ),
            (f"{rbac}/clusterroles", {"metadata": {"name": HUB_USER}, "rules": HUB_CLUSTER_RULES}),
            (
                f"{rbac}/clusterrolebindings",
                {
                    "metadata": {"name": HUB_USER},
                    "subjects": subject,
                    "roleRef": {"kind": "ClusterRole", "name": HUB_USER, "apiGroup": "rbac.authorization.k8s.io"},
                },
            ),
        ]:
            admin.post(url, json=body, timeout=30).raise_for_status()

    def stop(self):
        """Stop every process, the last started first (the API server, then etcd)."""
        for name in reversed(list(self.processes)):
            self.stop_process(name)

    def stop_process(self, name: str):
        """Stop process `name`: SIGTERM, and SIGKILL after STOP_TIMEOUT seconds."""
        process = self.processes.pop(name, None)
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, name: str, lines: int = 40) -> str:
        return "\n".join((self.state_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
