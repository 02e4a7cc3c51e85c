"""Create-to-first-worker: a local Dask cluster through our REST API vs `LocalCluster` vs dask-labextension.

Three ways to get a `LocalCluster` with one worker, timed from the request until the scheduler
reports the worker, alternating in one run (ABC, then CBA, ... so drift of a busy machine hits all
alike):

- ours: `POST sciencelab/api/dask/clusters` on a real `jupyter server`, then `GET .../clusters/<id>`
  until `workers.running` is 1;
- LocalCluster: `await LocalCluster(n_workers=1)` in a warm, lean Python process
  (`local_cluster_peer.py`), until `scheduler_info` lists the worker;
- dask-labextension: `POST dask/clusters` of its server extension on a real `jupyter server` from
  the bench environment (dask-labextension installed from PyPI there), then `GET dask/clusters/<id>`
  until `workers` is 1.

Goal: ours / LocalCluster <= 1.1. Run with `make bench-dask` (BENCH_ARGS="--rounds 10"); `--smoke`
(what `make test` runs) checks that it still works: one round, no warm-up, figures meaningless.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import require_peers_venv

from tests.lab_server import LabServer

POLL = 0.01  # seconds between two GETs while waiting for the worker
WORKER = {"threads": 1, "memory_gib": 1}
OURS_CONFIG = {
    "ClusterManager": {
        "templates": {
            "bench": {
                "backend": "local",
                "options": {
                    "workers": {"default": 1, "minimum": 0, "maximum": 1},
                    "memory": {
                        "default": WORKER["memory_gib"],
                        "minimum": WORKER["memory_gib"],
                        "maximum": WORKER["memory_gib"],
                    },
                },
            }
        }
    }
}
# dask-labextension's cluster factory: the same LocalCluster, one worker from the start.
LABEXTENSION_ENV = {
    "DASK_LABEXTENSION__FACTORY__MODULE": "dask.distributed",
    "DASK_LABEXTENSION__FACTORY__CLASS": "LocalCluster",
    "DASK_LABEXTENSION__FACTORY__KWARGS": repr(
        {"n_workers": 1, "threads_per_worker": WORKER["threads"], "memory_limit": f"{WORKER['memory_gib']}GiB"}
    ),
}


def wait_for_worker(server: LabServer, path: str, running) -> float:
    while True:
        response = server.request("GET", path)
        response.raise_for_status()
        if running(response.json()):
            return time.perf_counter()
        time.sleep(POLL)


def ours(server: LabServer) -> float:
    start = time.perf_counter()
    response = server.request("POST", "sciencelab/api/dask/clusters", {"template": "bench", "options": {}})
    response.raise_for_status()
    cluster_id = response.json()["id"]
    end = wait_for_worker(server, f"sciencelab/api/dask/clusters/{cluster_id}", lambda c: c["workers"]["running"] >= 1)
    server.request("DELETE", f"sciencelab/api/dask/clusters/{cluster_id}").raise_for_status()
    return end - start


def dask_labextension(server: LabServer) -> float:
    start = time.perf_counter()
    response = server.request("PUT", "dask/clusters")
    response.raise_for_status()
    cluster_id = response.json()["id"]
    end = wait_for_worker(server, f"dask/clusters/{cluster_id}", lambda c: c["workers"] >= 1)
    server.request("DELETE", f"dask/clusters/{cluster_id}").raise_for_status()
    return end - start


def local_cluster(peer: subprocess.Popen) -> float:
    peer.stdin.write("go\n")
    peer.stdin.flush()
    return float(peer.stdout.readline())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="clusters per way (default: 8)")
    parser.add_argument("--smoke", action="store_true", help="check that it runs: one round, figures meaningless")
    args = parser.parse_args()
    rounds = 1 if args.smoke else args.rounds
    peer_jupyter = require_peers_venv() / "bin" / "jupyter"

    peer = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "local_cluster_peer.py"),
            json.dumps({"threads_per_worker": WORKER["threads"], "memory_limit": f"{WORKER['memory_gib']}GiB"}),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    with tempfile.TemporaryDirectory(prefix="sciencelab-bench-") as tmp:
        servers = {
            "ours": LabServer(Path(tmp) / "ours", config=OURS_CONFIG, app="server"),
            "dask-labextension": LabServer(
                Path(tmp) / "labextension",
                app="server",
                jupyter=peer_jupyter,
                env=LABEXTENSION_ENV,
                config={"ServerApp": {"jpserver_extensions": {"dask_labextension": True}}},
            ),
        }
        ways = {
            "ours": lambda: ours(servers["ours"]),
            "LocalCluster": lambda: local_cluster(peer),
            "dask-labextension": lambda: dask_labextension(servers["dask-labextension"]),
        }
        timings = {label: [] for label in ways}
        try:
            for server in servers.values():
                server.start()
            if not args.smoke:
                for way in ways.values():
                    way()  # warm-up: imports, disk caches, the bokeh dashboard
            for round_ in range(rounds):
                order = list(ways) if round_ % 2 == 0 else list(reversed(ways))
                for label in order:
                    timings[label].append(ways[label]())
                print(
                    f"round {round_ + 1:2d}: " + ", ".join(f"{label} {timings[label][-1]:.3f} s" for label in ways),
                    flush=True,
                )
        except requests.HTTPError as error:
            sys.exit(f"{error}: {error.response.text}")
        finally:
            for server in servers.values():
                server.stop()
            peer.stdin.close()
            peer.wait()

    for label, values in timings.items():
        print(f"{label}: median {statistics.median(values):.3f} s, range {min(values):.3f}-{max(values):.3f} s")
    for peer, goal in (("LocalCluster", " (goal <= 1.1)"), ("dask-labextension", "")):
        ratio = statistics.median(timings["ours"]) / statistics.median(timings[peer])
        paired = statistics.median(a / b for a, b in zip(timings["ours"], timings[peer], strict=True))
        print(f"ours / {peer}: ratio of medians {ratio:.3f}, median of per-round ratios {paired:.3f}{goal}")


if __name__ == "__main__":
    main()
