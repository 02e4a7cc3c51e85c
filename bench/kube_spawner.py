"""KubeProfileSpawner against stock KubeSpawner, on the real test API server (tests/k8s/).

Three measurements, each printed with its goal (run with `make bench-kube`):

1. resolution: resolving a spawn request and building the pod manifest, 50 profiles offering 4
   options of 10 choices (image, size, CVMFS repository, S3 bucket) plus a GPU model, against
   stock KubeSpawner's `profile_list` with the same profiles as `profile_options` and
   `kubespawner_override`s. Same requests for both, alternating in blocks (ABBA); ratio of
   medians, goal <= 1.0. Stock KubeSpawner only applies the overrides; ours also checks groups, the
   GPU quota and the live GPU inventory, and enforces the security contexts.
2. form: the spawn form of those 50 profiles with a live inventory of 100 GPU nodes and 2000 pods
   (fake nodes on a bare API server, pods created bound to them): milliseconds per render (goal
   < 50) and Kubernetes API requests per render (goal 0).
3. spawn: spawn-to-ready of a real pod on the single-node test cluster (tests/k8s/cluster.py,
   root), two hubs side by side (ours with a CPU profile, stock KubeSpawner with the same image,
   size and home claim), ABBA; ratio of medians. The image is the `lab` image of `make images`
   (or tests/k8s/images.py's stand-in where it has not been built, see `lab_image_archive`).

`--smoke` (what `make test` runs) checks in under a minute that all three still work: one round of
5 requests, 20 pods, 5 renders, one spawn each without warm-up; its figures mean nothing.
"""

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import yaml
from kubernetes_asyncio.config import kube_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.k8s.apiserver import NAMESPACE, KubeApiServer
from tests.k8s.cluster import KubeCluster
from tests.k8s.fake_nodes import FakeNode, gpu_node, register_fake_nodes
from tests.k8s.hub import KubeHub, kube_hub_config

CHOICES = 10
PROFILES = 50
PODS = 2000
GPU_PRODUCTS = {"a100": "NVIDIA-A100-SXM4-80GB", "h100": "NVIDIA-H100-80GB-HBM3"}
MIG = "nvidia.com/mig-1g.10gb"


# --- the two equivalent configurations -----------------------------------------------------------


def make_profiles() -> dict:
    """ScienceLab's profile document: catalogs, then 50 profiles choosing from them."""
    names = [f"{index:02d}" for index in range(CHOICES)]
    return {
        "images": {f"image-{n}": {"image": f"registry.example.org/analysis-{n}:2026.11"} for n in names},
        "sizes": {
            f"size-{n}": {
                "cpu_guarantee": 0.5,
                "cpu_limit": int(n) + 1,
                "mem_guarantee": "1G",
                "mem_limit": f"{int(n) + 2}G",
            }
            for n in names
        },
        "gpu_models": {
            "a100": {"node_label": GPU_PRODUCTS["a100"]},
            "h100": {"node_label": GPU_PRODUCTS["h100"]},
            "mig": {"resource": MIG},
        },
        "cvmfs_repositories": {f"repo{n}.cern.ch": {} for n in names},
        "s3_buckets": {f"bucket-{n}": {"endpoint": "https://s3.example.org", "bucket": f"bucket-{n}"} for n in names},
        "profiles": [
            {
                "slug": f"profile-{index}",
                "display_name": f"Profile {index}",
                "description": "A benchmark profile.",
                "image": {"choices": [f"image-{n}" for n in names]},
                "size": {"choices": [f"size-{n}" for n in names]},
                "gpu": {"model": {"choices": ["a100", "h100", "mig"]}, "count": {"min": 0, "max": 1, "default": 0}},
                "cvmfs": {"choices": [f"repo{n}.cern.ch" for n in names]},
                "s3": {"choices": [f"bucket-{n}" for n in names]},
            }
            for index in range(PROFILES)
        ],
    }


def make_stock_profile_list() -> list[dict]:
    """The same profiles for stock KubeSpawner: each option a `profile_options` choice whose
    `kubespawner_override` sets what ScienceLab derives (volumes by key, so choices merge)."""
    names = [f"{index:02d}" for index in range(CHOICES)]
    gpu_toleration = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]

    def affinity(product):
        return [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [product]}]}]

    options = {
        "image": {
            "display_name": "Image",
            "choices": {
                f"image-{n}": {
                    "display_name": f"image-{n}",
                    "kubespawner_override": {"image": f"registry.example.org/analysis-{n}:2026.11"},
                }
                for n in names
            },
        },
        "size": {
            "display_name": "Size",
            "choices": {
                f"size-{n}": {
                    "display_name": f"size-{n}",
                    "kubespawner_override": {
                        "cpu_guarantee": 0.5,
                        "cpu_limit": int(n) + 1,
                        "mem_guarantee": "1G",
                        "mem_limit": f"{int(n) + 2}G",
                    },
                }
                for n in names
            },
        },
        "gpu": {
            "display_name": "GPU",
            "choices": {
                "none": {"display_name": "none", "kubespawner_override": {}},
                **{
                    model: {
                        "display_name": model,
                        "kubespawner_override": {
                            "extra_resource_limits": {"nvidia.com/gpu": "1"},
                            "node_affinity_required": affinity(product),
                            "tolerations": gpu_toleration,
                        },
                    }
                    for model, product in GPU_PRODUCTS.items()
                },
                "mig": {
                    "display_name": "mig",
                    "kubespawner_override": {"extra_resource_limits": {MIG: "1"}, "tolerations": gpu_toleration},
                },
            },
        },
        "cvmfs": {
            "display_name": "CVMFS",
            "choices": {
                f"repo{n}.cern.ch": {
                    "display_name": f"repo{n}.cern.ch",
                    "kubespawner_override": {
                        "volumes": {"cvmfs": {"name": "cvmfs", "persistentVolumeClaim": {"claimName": "cvmfs"}}},
                        "volume_mounts": {
                            "cvmfs": {
                                "name": "cvmfs",
                                "mountPath": f"/cvmfs/repo{n}.cern.ch",
                                "subPath": f"repo{n}.cern.ch",
                                "readOnly": True,
                                "mountPropagation": "HostToContainer",
                            }
                        },
                    },
                }
                for n in names
            },
        },
        "s3": {
            "display_name": "S3",
            "choices": {
                f"bucket-{n}": {
                    "display_name": f"bucket-{n}",
                    "kubespawner_override": {
                        "volumes": {
                            "s3": {"name": "s3", "persistentVolumeClaim": {"claimName": f"{{pod_name}}-s3-{n}"}}
                        },
                        "volume_mounts": {"s3": {"name": "s3", "mountPath": f"/s3/bucket-{n}"}},
                    },
                }
                for n in names
            },
        },
    }
    return [
        {
            "slug": f"profile-{index}",
            "display_name": f"Profile {index}",
            "description": "A benchmark profile.",
            "profile_options": options,
        }
        for index in range(PROFILES)
    ]


def make_requests(count: int, seed: int = 1) -> list[tuple[dict, dict]]:
    """(ScienceLab user_options, stock KubeSpawner user_options) pairs asking for the same thing."""
    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        profile, image, size, repo, bucket = (rng.randrange(PROFILES), *(rng.randrange(CHOICES) for _ in range(4)))
        gpu = rng.choice(["none", "a100", "h100", "mig"])
        ours = {
            "profile": f"profile-{profile}",
            "image": f"image-{image:02d}",
            "size": f"size-{size:02d}",
            "cvmfs": [f"repo{repo:02d}.cern.ch"],
            "s3": [f"bucket-{bucket:02d}"],
        }
        if gpu != "none":
            ours.update(gpu_model=gpu, gpu_count=1)
        stock = {
            "profile": f"profile-{profile}",
            "image": f"image-{image:02d}",
            "size": f"size-{size:02d}",
            "gpu": gpu,
            "cvmfs": f"repo{repo:02d}.cern.ch",
            "s3": f"bucket-{bucket:02d}",
        }
        requests.append((ours, stock))
    return requests


# --- 1 and 2: in this process, with KubeSpawner's client on the test API server -------------------


def bench_nodes() -> list[FakeNode]:
    """100 GPU nodes: 50 with 8 A100, 30 with 8 H100, 20 A100 nodes cut into 7 MIG slices each."""
    return (
        [gpu_node(f"a100-{index}", GPU_PRODUCTS["a100"], gpus=8) for index in range(50)]
        + [gpu_node(f"h100-{index}", GPU_PRODUCTS["h100"], gpus=8) for index in range(30)]
        + [gpu_node(f"mig-{index}", GPU_PRODUCTS["a100"], gpus=0, **{MIG: "7"}) for index in range(20)]
    )


def create_bound_pods(credentials, nodes: list[FakeNode], count: int):
    """`count` sleeping pods bound to `nodes` round-robin; every third holds a GPU of its node."""
    admin = credentials.session(credentials.admin_token)

    def create(index):
        node = nodes[index % len(nodes)]
        limits = {"cpu": "100m"}
        if index % 3 == 0:
            resource = MIG if node.name.startswith("mig") else "nvidia.com/gpu"
            limits[resource] = "1"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"load-{index}", "labels": {"app": "load"}},
            "spec": {
                "nodeName": node.name,
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "python:3.11-slim",
                        "command": ["sleep", "infinity"],
                        "resources": {"limits": limits},
                    }
                ],
            },
        }
        admin.post(f"{credentials.url}/api/v1/namespaces/{NAMESPACE}/pods", json=pod, timeout=60).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))


def count_api_requests() -> Counter:
    """Count every request KubeSpawner's Kubernetes client sends from now on, by method."""
    from kubernetes_asyncio.client import rest

    counts = Counter()
    send = rest.RESTClientObject.request

    async def counted(self, method, url, *args, **kwargs):
        counts[method] += 1
        return await send(self, method, url, *args, **kwargs)

    rest.RESTClientObject.request = counted
    return counts


def make_user(name: str, groups=()):
    return SimpleNamespace(
        name=name, id=1, url=f"/user/{name}/", groups=[SimpleNamespace(name=g) for g in groups], spawners={}
    )


async def first_listing() -> float:
    """Seconds until the process's GPU inventory has listed the nodes and pods (and caught up)."""
    from kubespawner.clients import load_config

    from sciencelab_spawner.kube_inventory import shared_gpu_inventory

    load_config()
    started = time.perf_counter()
    await shared_gpu_inventory(NAMESPACE).ready()
    listed = time.perf_counter() - started
    await asyncio.sleep(2)  # let the watch deliver what happened during the listing
    return listed


async def bench_resolution(profiles_path: Path, rounds: int, per_round: int):
    from kubespawner import KubeSpawner

    from sciencelab_spawner.kube import KubeProfileSpawner

    ours = KubeProfileSpawner(
        _mock=True,
        user=make_user("alice"),
        namespace=NAMESPACE,
        cmd=["jupyterhub-singleuser"],
        profiles_file=str(profiles_path),
        s3_credentials_source="auth_state",
    )
    stock = KubeSpawner(
        _mock=True,
        user=make_user("bob"),
        namespace=NAMESPACE,
        cmd=["jupyterhub-singleuser"],
        profile_list=make_stock_profile_list(),
        storage_pvc_ensure=True,
        volumes={"home": {"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}},
        volume_mounts={"home": {"name": "home", "mountPath": "/home/jovyan"}},
    )
    await ours.gpu_inventory.ready()
    auth_state = {"s3_credentials": {"access_key_id": "AK", "secret_access_key": "SK"}}

    async def spawn_ours(options):
        ours.clear_state()
        ours.user_options = options
        await ours.run_auth_state_hook(auth_state)
        await ours.run_pre_spawn_hook()
        return await ours.get_pod_manifest()

    async def spawn_stock(options):
        stock.clear_state()
        stock.user_options = options
        await stock.load_user_options()
        return await stock.get_pod_manifest()

    requests = make_requests(per_round)
    for our_options, stock_options in requests[:20]:  # warm-up: imports, caches
        await spawn_ours(our_options)
        await spawn_stock(stock_options)
    timings = {"KubeProfileSpawner": [], "KubeSpawner profile_list": []}
    for round_ in range(rounds):
        order = ["ours", "stock"] if round_ % 2 == 0 else ["stock", "ours"]
        for who in order:
            started = time.perf_counter()
            for our_options, stock_options in requests:
                if who == "ours":
                    await spawn_ours(our_options)
                else:
                    await spawn_stock(stock_options)
            elapsed = (time.perf_counter() - started) / len(requests) * 1000
            timings["KubeProfileSpawner" if who == "ours" else "KubeSpawner profile_list"].append(elapsed)
    print(
        "\n1. resolution + pod manifest, 50 profiles x 4 options of 10 choices + GPU model "
        f"({rounds} rounds of {per_round} requests, ABBA)"
    )
    for label, values in timings.items():
        print(
            f"   {label}: median {statistics.median(values):.2f} ms per spawn "
            f"(range {min(values):.2f}-{max(values):.2f})"
        )
    ratio = statistics.median(timings["KubeProfileSpawner"]) / statistics.median(timings["KubeSpawner profile_list"])
    paired = statistics.median(a / b for a, b in zip(*timings.values(), strict=True))
    print(f"   ratio of medians (ours / stock): {ratio:.3f}; median of per-round ratios: {paired:.3f} (goal <= 1.0)")


async def bench_form(profiles_path: Path, renders: int, pods: int, counts: Counter):
    from sciencelab_spawner.kube import KubeProfileSpawner

    spawner = KubeProfileSpawner(
        _mock=True, user=make_user("alice", ["gpu-users"]), namespace=NAMESPACE, profiles_file=str(profiles_path)
    )
    free = spawner.gpu_status(spawner.profile_config)[0]
    await spawner.render_options_form()  # warm-up
    before = sum(counts.values())
    timings = []
    for _ in range(renders):
        started = time.perf_counter()
        form = await spawner.render_options_form()
        timings.append((time.perf_counter() - started) * 1000)
    requests = sum(counts.values()) - before
    timings.sort()
    print(f"\n2. spawn form, 50 profiles, live inventory of 100 GPU nodes and {pods} pods ({renders} renders)")
    print(f"   free/total per model: {free}")
    print(
        f"   per render: median {statistics.median(timings):.2f} ms, 95th percentile "
        f"{timings[int(len(timings) * 0.95)]:.2f} ms, form {len(form) // 1024} KiB (goal < 50 ms)"
    )
    print(f"   Kubernetes API requests per render: {requests / renders:g} (goal 0)")


# --- 3: two hubs ---------------------------------------------------------------------------------

# The image both hubs' pods run: a name of the lab image on the node.
SPAWN_IMAGE = "ghcr.io/sciencelab/user-python:2026.11"
STOCK_CONFIG = (
    kube_hub_config(SPAWN_IMAGE, spawner="KubeSpawner")
    + """
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = "sciencelab"
c.KubeSpawner.pod_name_template = "stock-{user_server}"
c.KubeSpawner.pvc_name_template = "stock-claim-{user_server}"
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "10Gi"
c.KubeSpawner.volumes = {"home": {"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}}
c.KubeSpawner.volume_mounts = {"home": {"name": "home", "mountPath": "/home/jovyan"}}
c.KubeSpawner.cpu_guarantee = 0.1
c.KubeSpawner.cpu_limit = 1
c.KubeSpawner.mem_guarantee = "128M"
c.KubeSpawner.mem_limit = "1G"
"""
)
SPAWN_PROFILES = f"""\
images: {{python: {{image: "{SPAWN_IMAGE}"}}}}
sizes: {{small: {{cpu_guarantee: 0.1, cpu_limit: 1, mem_guarantee: 128M, mem_limit: 1G}}}}
profiles: [{{slug: cpu, display_name: CPU, image: python, size: small}}]
"""


def spawn_to_ready(hub, user: str, user_options: dict) -> float:
    started = time.perf_counter()
    hub.spawn(user, user_options).raise_for_status()
    hub.request("GET", f"/user/{user}/api/status", user).raise_for_status()
    elapsed = time.perf_counter() - started
    hub.stop_server(user)
    return elapsed


def bench_spawn(tmp: Path, rounds: int, warm_up: bool = True):
    cluster = KubeCluster(tmp / "cluster")
    if reason := cluster.missing():
        sys.exit(f"bench/kube_spawner.py: {reason}")
    credentials = cluster.start()
    print(f"(the test cluster started in {cluster.start_seconds:.1f} s)", flush=True)
    peers = {}
    try:
        cluster.tag_image(cluster.import_lab_image(), SPAWN_IMAGE)
        peers = {
            "KubeProfileSpawner": (KubeHub(tmp / "ours", credentials, SPAWN_PROFILES, SPAWN_IMAGE), {"profile": "cpu"}),
            "KubeSpawner": (
                KubeHub(tmp / "stock", credentials, SPAWN_PROFILES, SPAWN_IMAGE, base_config=STOCK_CONFIG),
                {},
            ),
        }
        timings = {label: [] for label in peers}
        for hub, user_options in peers.values():
            hub.start()
            if warm_up:
                spawn_to_ready(hub, "bob", user_options)
        for round_ in range(rounds):
            order = list(peers) if round_ % 2 == 0 else list(reversed(peers))
            for label in order:
                hub, user_options = peers[label]
                timings[label].append(spawn_to_ready(hub, "alice", user_options))
            print(
                f"   round {round_ + 1}: " + ", ".join(f"{label} {timings[label][-1]:.2f} s" for label in peers),
                flush=True,
            )
    finally:
        for hub, _ in peers.values():
            hub.stop()
        cluster.stop()
    print(f"\n3. spawn-to-ready of a real pod on the single-node test cluster ({rounds} rounds, ABBA)")
    for label, values in timings.items():
        print(f"   {label}: median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f})")
    ours, stock = timings["KubeProfileSpawner"], timings["KubeSpawner"]
    print(
        f"   ratio of medians (ours / stock): {statistics.median(ours) / statistics.median(stock):.3f}; "
        f"median of per-round ratios: {statistics.median(a / b for a, b in zip(ours, stock, strict=True)):.3f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        choices=["resolution", "form", "spawn"],
        action="append",
        help="run only these measurements (default: all three)",
    )
    parser.add_argument("--rounds", type=int, default=10, help="ABBA rounds of 1. and 3. (default: 10, 3. uses half)")
    parser.add_argument("--requests", type=int, default=200, help="requests per round of 1. (default: 200)")
    parser.add_argument("--renders", type=int, default=200, help="form renders of 2. (default: 200)")
    parser.add_argument("--smoke", action="store_true", help="check that it runs: tiny sizes, figures meaningless")
    args = parser.parse_args()
    only = set(args.only or ["resolution", "form", "spawn"])
    if args.smoke:
        rounds, requests, renders, pods, spawn_rounds = 1, 5, 5, 20, 1
    else:
        rounds, requests, renders, pods, spawn_rounds = (
            args.rounds,
            args.requests,
            args.renders,
            PODS,
            max(2, args.rounds // 2),
        )

    with tempfile.TemporaryDirectory(prefix="sciencelab-bench-kube-") as tmp:
        tmp = Path(tmp)
        if only & {"resolution", "form"}:
            bench_on_api_server(tmp, only, rounds, requests, renders, pods)
        if "spawn" in only:
            bench_spawn(tmp, spawn_rounds, warm_up=not args.smoke)


def bench_on_api_server(tmp: Path, only: set[str], rounds: int, requests: int, renders: int, pods: int):
    """1. and 2., on a bare API server with the fake GPU nodes of `bench_nodes`."""
    server = KubeApiServer(tmp / "apiserver")
    if reason := server.missing():
        sys.exit(f"bench/kube_spawner.py: {reason}")
    credentials = server.start()
    try:
        # KubeSpawner's client took its default kubeconfig path from KUBECONFIG at import.
        kubeconfig = credentials.write_kubeconfig(tmp / "kubeconfig", credentials.hub_token)
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
        profiles_path = tmp / "profiles.yaml"
        profiles_path.write_text(yaml.safe_dump(make_profiles()))
        nodes = bench_nodes()
        register_fake_nodes(credentials, nodes)
        if "form" in only:
            started = time.perf_counter()
            create_bound_pods(credentials, nodes, pods)
            print(f"({pods} pods created in {time.perf_counter() - started:.1f} s)", flush=True)
        counts = count_api_requests()
        loop = asyncio.new_event_loop()
        listed = loop.run_until_complete(first_listing())
        print(f"(the GPU inventory's first listing of the nodes and pods: {listed:.2f} s)", flush=True)
        if "resolution" in only:
            loop.run_until_complete(bench_resolution(profiles_path, rounds, requests))
        if "form" in only:
            loop.run_until_complete(bench_form(profiles_path, renders, pods, counts))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
