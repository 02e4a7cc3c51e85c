"""Spawn-to-ready: ScienceLab's LocalProfileSpawner vs JupyterHub's own local-process spawner.

Two real demo hubs run side by side, identical but for the spawner class. Spawns alternate between
them (ABBA order, so drift on a noisy machine hits both alike) and the median ratio is printed.
Goal: ratio <= 1.05. Run with `make bench` (BENCH_ARGS="--rounds 20" for more rounds); `--smoke`
(what `make test` runs) checks that it still works: one round, no warm-up, figures meaningless.

The peer is `SimpleLocalProcessSpawner`: JupyterHub's `LocalProcessSpawner` without the switch to a
system account, which is exactly what our embedded mode (`run_as_hub_user`) does; plain
`LocalProcessSpawner` would need system accounts alice and bob on this machine.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.demo_hub import DemoHub

BASELINE_CONFIG = """\
import os
from jupyterhub.spawner import SimpleLocalProcessSpawner

c.JupyterHub.spawner_class = SimpleLocalProcessSpawner
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(os.path.dirname(__file__), "home", "{username}")
if os.geteuid() == 0:
    c.Spawner.args = ["--ServerApp.allow_root=True"]
"""


def spawn_to_ready(hub: DemoHub, user: str, user_options: dict) -> float:
    """Seconds from the spawn request until the server answers through the hub's proxy."""
    start = time.perf_counter()
    response = hub.spawn(user, user_options)
    response.raise_for_status()
    status = hub.request("GET", f"/user/{user}/api/status", user)
    status.raise_for_status()
    elapsed = time.perf_counter() - start
    hub.stop_server(user)
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="spawns per spawner (default: 8)")
    parser.add_argument("--smoke", action="store_true", help="check that it runs: one round, figures meaningless")
    args = parser.parse_args()
    rounds = 1 if args.smoke else args.rounds

    with tempfile.TemporaryDirectory(prefix="sciencelab-bench-") as tmp:
        # label -> (hub, what a user sends it)
        peers = {
            "LocalProfileSpawner": (DemoHub(Path(tmp) / "sciencelab"), {"profile": "cpu"}),
            "SimpleLocalProcessSpawner": (DemoHub(Path(tmp) / "baseline", extra_config=BASELINE_CONFIG), {}),
        }
        timings = {label: [] for label in peers}
        try:
            for hub, user_options in peers.values():
                hub.start()
                if not args.smoke:
                    spawn_to_ready(hub, "bob", user_options)  # warm-up: first imports, disk caches
            for round_ in range(rounds):
                order = list(peers) if round_ % 2 == 0 else list(reversed(peers))
                for label in order:
                    hub, user_options = peers[label]
                    timings[label].append(spawn_to_ready(hub, "alice", user_options))
                print(
                    f"round {round_ + 1:2d}: " + ", ".join(f"{label} {timings[label][-1]:.2f} s" for label in peers),
                    flush=True,
                )
        finally:
            for hub, _ in peers.values():
                hub.stop()

    for label, values in timings.items():
        print(f"{label}: median {statistics.median(values):.2f} s, range {min(values):.2f}-{max(values):.2f} s")
    ours, theirs = timings["LocalProfileSpawner"], timings["SimpleLocalProcessSpawner"]
    print(f"ratio of medians (ours / JupyterHub's): {statistics.median(ours) / statistics.median(theirs):.3f}")
    # Each round's two spawns ran back to back, so their ratio cancels slow drift of the machine.
    paired = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    print(f"median of per-round ratios: {paired:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
