"""Profile resolution and spawn-form rendering with 50 profiles x 10 choices per option.

What a hub with a large profile file pays per spawn (resolving and checking user_options against
the current profiles, with the user's groups) and per form render (the HTML of every card). Both
are pure functions, timed here directly; `make bench-profiles` runs it. `--smoke` (what `make test`
runs) checks in seconds that it still works: a few calls each, figures meaningless.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sciencelab_spawner.profile_config import make_profile_config
from sciencelab_spawner.spawn_form import make_options_form
from sciencelab_spawner.user_options import resolve_user_options

PROFILES = 50
CHOICES = 10


def make_large_config(edit: int = 0):
    """50 profiles, each offering image, size, GPU model and count, CVMFS, S3 and collaboration,
    10 choices each, a third of them restricted to groups; `edit` changes a description, as an
    admin's edit does, so the check is not a cache hit."""
    names = [f"c{i}" for i in range(CHOICES)]
    config = {
        "images": {n: {"image": f"registry.example.org/{n}:1", "display_name": f"Image {n}"} for n in names},
        "sizes": {n: {"cpu_limit": i + 1, "mem_limit": f"{2 * (i + 1)}G"} for i, n in enumerate(names)},
        "gpu_models": {n: {"node_label": f"GPU-{n}"} for n in names},
        "cvmfs_repositories": {f"{n}.cern.ch": {} for n in names},
        "s3_buckets": {n: {"endpoint": "https://s3.example.org", "bucket": f"bucket-{n}"} for n in names},
        "quotas": {"max_gpus_per_user": 4},
        "profiles": [],
    }

    def choices(values):
        return [{"value": v, "allowed_groups": ["physics"]} if i % 3 == 2 else v for i, v in enumerate(values)]

    for p in range(PROFILES):
        config["profiles"].append(
            {
                "slug": f"profile-{p}",
                "display_name": f"Profile {p}",
                "description": f"A profile of the benchmark, edit {edit}.",
                "image": {"choices": choices(names)},
                "size": {"choices": choices(names)},
                "gpu": {"model": {"choices": choices(names)}, "count": {"min": 1, "max": 4}},
                "cvmfs": {"choices": choices([f"{n}.cern.ch" for n in names])},
                "s3": {"choices": choices(names)},
                "collaborative": {"choices": [False, True]},
            }
        )
    return make_profile_config(config, "benchmark")


def per_call(function, repeat: int) -> list[float]:
    """Seconds per call, `repeat` times."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200, help="calls per measurement (default: 200)")
    parser.add_argument("--smoke", action="store_true", help="check that it runs: 4 calls each, figures meaningless")
    args = parser.parse_args()
    repeat, loads = (4, 1) if args.smoke else (args.repeat, 5)

    # A first check of a new or changed file; the same content again is a cache hit.
    edits = iter(range(1, 100))
    load = per_call(lambda: make_large_config(next(edits)), loads)
    config = make_large_config()
    groups = frozenset({"physics"})
    options = {
        "profile": "profile-49",
        "image": "c2",
        "size": "c5",
        "gpu_model": "c8",
        "gpu_count": 2,
        "cvmfs": ["c0.cern.ch", "c9.cern.ch"],
        "s3": ["c1"],
        "collaborative": False,
    }
    spawn = per_call(lambda: resolve_user_options(config, options, groups), repeat)
    refused = per_call(lambda: _refused(config, {**options, "image": "c2-evil"}, groups), repeat)
    render = per_call(lambda: make_options_form(config, groups, options, {"c8": (3, 8)}), max(1, repeat // 4))

    print(f"{PROFILES} profiles x {CHOICES} choices per option (7 options each)")
    for label, times in [
        ("load and check the profile file", load),
        ("resolve a spawn (accepted)", spawn),
        ("resolve a spawn (refused)", refused),
        ("render the spawn form", render),
    ]:
        print(f"{label}: median {statistics.median(times) * 1e3:.2f} ms, max {max(times) * 1e3:.2f} ms")
    print(f"form size: {len(make_options_form(config, groups, options, {})) / 1024:.0f} KiB")


def _refused(config, options, groups):
    try:
        resolve_user_options(config, options, groups)
    except ValueError:
        return
    raise AssertionError("the benchmark's bad option was accepted")


if __name__ == "__main__":
    main()
