"""Server CPU to feed 100 WebSocket clients at 1 Hz: ScienceLab's GPU stream vs jupyterlab-nvdashboard.

Two real Jupyter servers run side by side with the same `pynvml` stub (8 GPUs, tests/fake_nvml) and
only one GPU extension each: ours streams `/sciencelab/api/gpu/stream` (one sampler, one message
fanned out), the peer `/nvdashboard/gpu_resource`, nvdashboard's all-GPU feed (utilisation, memory,
PCIe), which reads NVML for every socket. Phases alternate ABBA; in each, 100 clients listen for
`--duration` seconds and the server's CPU time (user + system, all threads) is read from /proc.
Prints CPU per phase and the ratio ours/peer. Goal <= 0.1. Run with `make bench-gpu`.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_gpus import GIB, FakeNvml, make_gpu
from tests.lab_server import LabServer

GPUS = 8
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Only the extension under test on each server; the rest of the stack is the same on both.
OTHER_EXTENSIONS = {
    "jupyterlab": False,
    "jupyter_lsp": False,
    "notebook_shim": False,
    "jupyter_server_terminals": False,
    "jupyter_resource_usage": False,
}
PEERS = {
    "sciencelab": ({"sciencelab": True, "jupyterlab_nvdashboard": False}, "/sciencelab/api/gpu/stream"),
    "nvdashboard": ({"sciencelab": False, "jupyterlab_nvdashboard": True}, "/nvdashboard/gpu_resource"),
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


async def feed(server: LabServer, path: str, clients: int, duration: float) -> tuple[float, int]:
    """CPU seconds the server spent while `clients` sockets listened for `duration` s, and messages received."""
    url = f"ws://127.0.0.1:{server.port}{path}"
    sockets = [
        await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {server.token}"}))
        for _ in range(clients)
    ]
    received = [0] * clients

    async def listen(index: int):
        while await sockets[index].read_message() is not None:
            received[index] += 1

    listeners = [asyncio.create_task(listen(index)) for index in range(clients)]
    await asyncio.sleep(3)  # every socket set up and fed at least once
    counted, cpu = sum(received), cpu_seconds(server.process.pid)
    await asyncio.sleep(duration)
    used, messages = cpu_seconds(server.process.pid) - cpu, sum(received) - counted
    for socket in sockets:
        socket.close()
    await asyncio.gather(*listeners, return_exceptions=True)
    await asyncio.sleep(2)  # let the server tidy up before the next phase
    return used, messages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-path", required=True, help="folder holding the jupyterlab_nvdashboard package")
    parser.add_argument("--clients", type=int, default=100, help="WebSocket clients per server (default: 100)")
    parser.add_argument("--duration", type=float, default=60, help="seconds each phase lasts (default: 60)")
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds (default: 1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sciencelab-bench-stream-") as tmp:
        fake = FakeNvml(Path(tmp) / "fake-nvml.json")
        fake.set([make_gpu(index, processes=[[4_000_000 + index, 4 * GIB]]) for index in range(GPUS)])
        environ = fake.environ
        environ["PYTHONPATH"] = os.pathsep.join([environ["PYTHONPATH"], args.peer_path])
        servers = {
            label: LabServer(
                Path(tmp) / label,
                app="server",
                env=environ,
                config={"ServerApp": {"jpserver_extensions": {**OTHER_EXTENSIONS, **extensions}}},
            )
            for label, (extensions, _) in PEERS.items()
        }
        cpu = {label: [] for label in PEERS}
        try:
            for server in servers.values():
                server.start()
            for round_ in range(args.rounds):
                for label in [*PEERS, *reversed(PEERS)]:  # ABBA
                    used, messages = asyncio.run(feed(servers[label], PEERS[label][1], args.clients, args.duration))
                    cpu[label].append(used)
                    print(
                        f"round {round_ + 1} {label:12s}: {used:6.2f} s CPU for {messages} messages "
                        f"({messages / args.duration / args.clients:.2f} Hz per client)",
                        flush=True,
                    )
        finally:
            for server in servers.values():
                server.stop()

    ours, theirs = cpu["sciencelab"], cpu["nvdashboard"]
    print(f"{args.clients} clients, {GPUS} stubbed GPUs, {args.duration:g} s per phase:")
    for label, values in cpu.items():
        print(f"  {label}: {statistics.fmean(values) / args.duration * 100:.2f}% of one core")
    print(f"ratio of server CPU (ours / nvdashboard): {sum(ours) / sum(theirs):.3f}  (goal <= 0.1)")


if __name__ == "__main__":
    main()
