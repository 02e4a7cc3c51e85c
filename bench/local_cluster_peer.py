"""The peer of the create-to-first-worker benchmark: `LocalCluster` called directly, as in a notebook.

A lean, warm Python process: for every line on stdin it creates a `LocalCluster` with one worker,
prints the seconds until the scheduler reports the worker, and closes it. Spawned worker
processes re-import only this small module, as they would a user's script.
"""

import asyncio
import json
import sys
import time

from distributed import LocalCluster

POLL = 0.01


async def first_worker(kwargs: dict) -> float:
    start = time.perf_counter()
    cluster = await LocalCluster(
        n_workers=1, host="127.0.0.1", dashboard_address="127.0.0.1:0", asynchronous=True, **kwargs
    )
    while not cluster.scheduler_info["workers"]:
        await asyncio.sleep(POLL)
    elapsed = time.perf_counter() - start
    await cluster.close()
    return elapsed


def main():
    kwargs = json.loads(sys.argv[1])
    for _ in sys.stdin:
        print(asyncio.run(first_worker(kwargs)), flush=True)


if __name__ == "__main__":
    main()
