"""Cost of one GPU sampler tick: NVML reads for every GPU, process attribution, the pure core.

By default NVML is the stub of tests/fake_nvml with 8 A100s, each with a notebook kernel and
another user's process on it, so the tick also maps PIDs through NSpid and walks /proc. With
`--real-nvml` it times the real nvidia-ml-py against this machine's GPUs instead (a GPU machine).
Prints the median wall and CPU time per tick. Run with `make bench-gpu`; `--smoke` times 20 ticks
(a second), to check that it runs.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sciencelab.gpu.sampler import GpuSampler, import_pynvml
from sciencelab.gpu.samples import KernelRef
from tests.fake_gpus import GIB, HOST_PID_OFFSET, FakeNvml, load_stub_module, make_gpu, write_host_status

GPUS = 8


def make_stub_sampler(folder: Path, kernel_pids: list[int]) -> tuple[GpuSampler, dict[int, KernelRef]]:
    """A sampler on the stub: GPU i is held by kernel i (mapped via NSpid) and by another user's process."""
    fake = FakeNvml(folder / "fake-nvml.json")
    host_proc = folder / "host-proc"
    kernels = {}
    gpus = []
    for index, local_pid in enumerate(kernel_pids):
        write_host_status(host_proc, HOST_PID_OFFSET + local_pid, local_pid)
        kernels[local_pid] = KernelRef(f"kernel-{index}", "python3", f"analysis/fit-{index}.ipynb")
        gpus.append(make_gpu(index, processes=[[HOST_PID_OFFSET + local_pid, 4 * GIB], [4_000_000 + index, GIB]]))
    fake.set(gpus)
    os.environ["FAKE_PYNVML_STATE"] = str(fake.path)
    stub = load_stub_module()
    return make_sampler(lambda: stub, str(host_proc)), kernels


def make_sampler(load_nvml, host_proc: str = "/proc") -> GpuSampler:
    async def no_kernels():
        return {}

    return GpuSampler(
        interval=1,
        history_seconds=900,
        idle_threshold=5,
        idle_duration=600,
        linger=0,
        find_kernels=no_kernels,
        host_proc=host_proc,
        load_nvml=load_nvml,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2000, help="ticks to time (default: 2000)")
    parser.add_argument("--real-nvml", action="store_true", help="time the real NVML of this machine's GPUs")
    parser.add_argument("--smoke", action="store_true", help="time 20 ticks only: checks that it runs")
    args = parser.parse_args()
    if args.smoke:
        args.ticks = 20

    # Stand-ins for kernels: real processes, so the sampler walks real process trees in /proc.
    stand_ins = [] if args.real_nvml else [subprocess.Popen(["sleep", "600"]) for _ in range(GPUS)]
    try:
        with tempfile.TemporaryDirectory(prefix="sciencelab-bench-gpu-") as tmp:
            if args.real_nvml:
                sampler, kernels, label = make_sampler(import_pynvml), {}, "real NVML"
            else:
                sampler, kernels = make_stub_sampler(Path(tmp), [stand_in.pid for stand_in in stand_ins])
                label = f"{GPUS} stubbed GPUs"
            first = sampler.read_sample(kernels)  # nvmlInit and first imports, not timed
            if not first["available"]:
                sys.exit(f"no GPU sample: {first['reason']}")
            walls, cpus = [], []
            for _ in range(args.ticks):
                wall, cpu = time.perf_counter(), time.process_time()
                sampler.read_sample(kernels)
                cpus.append(time.process_time() - cpu)
                walls.append(time.perf_counter() - wall)
            asyncio.run(sampler.stop())
    finally:
        for stand_in in stand_ins:
            stand_in.kill()
            stand_in.wait()

    gpus = len(first["gpus"])
    named = sum(row["owner"] == "kernel" for gpu in first["gpus"] for row in gpu["processes"])
    print(f"sampler tick, {label} ({gpus} GPUs, {named} processes named by notebook), {args.ticks} ticks:")
    print(
        f"  wall: median {statistics.median(walls) * 1e3:.3f} ms, p95 {sorted(walls)[int(0.95 * len(walls))] * 1e3:.3f} ms"
    )
    print(
        f"  CPU:  mean {statistics.fmean(cpus) * 1e3:.3f} ms per tick = {statistics.fmean(cpus) * 100:.3f}% of one core at 1 Hz"
    )


if __name__ == "__main__":
    main()
