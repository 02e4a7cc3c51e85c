"""Server CPU to feed 5 and 100 WebSocket clients at 1 Hz: ScienceLab's GPU stream vs jupyterlab-nvdashboard.

Two real Jupyter servers run side by side with the same `pynvml` stub (8 GPUs, tests/fake_nvml) and
only one GPU extension each: ours streams `/sciencelab/api/gpu/stream` (one sampler, one message
fanned out through tornado's `write_message`, the keep-alive pings riding on the samples), the peer
`/nvdashboard/gpu_resource`, nvdashboard's all-GPU feed (utilisation, memory, PCIe), which reads
NVML for every socket. For each number of clients, phases alternate ABBA; in each, the clients
listen for `--duration` seconds and the server's CPU time (user + system, all threads) is read from
/proc. Prints CPU per phase and the ratio ours/peer per number of clients; goal <= 0.2 at 100
clients. Run with `make bench-gpu`; `--smoke` runs one short AB phase pair per number of clients
(seconds, numbers too noisy to quote) and fails when a client got no sample.
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


async def feed(server: LabServer, path: str, clients: int, duration: float, settle: float) -> tuple[float, int]:
    """CPU seconds the server spent while `clients` sockets listened for `duration` s, and messages received.

    `settle` seconds before the count let every socket be set up and fed once; as long after it,
    the server tidies up before the next phase.
    """
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
    await asyncio.sleep(settle)
    counted, cpu = sum(received), cpu_seconds(server.process.pid)
    await asyncio.sleep(duration)
    used, messages = cpu_seconds(server.process.pid) - cpu, sum(received) - counted
    for socket in sockets:
        socket.close()
    await asyncio.gather(*listeners, return_exceptions=True)
    await asyncio.sleep(settle)
    return used, messages


def ratio_line(clients: int, ours: list[float], theirs: list[float]) -> str:
    ratio = f"{sum(ours) / sum(theirs):.3f}" if sum(theirs) else "n/a (the peer used no measurable CPU)"
    return f"ratio of server CPU at {clients} clients (ours / nvdashboard): {ratio}  (goal <= 0.2 at 100 clients)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-path", required=True, help="folder holding the jupyterlab_nvdashboard package")
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[5, 100], help="WebSocket clients per server (default: 5 100)"
    )
    parser.add_argument("--duration", type=float, default=60, help="seconds each phase lasts (default: 60)")
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds (default: 1)")
    parser.add_argument("--smoke", action="store_true", help="one AB round of 2 s phases: checks that it runs")
    args = parser.parse_args()
    order = [*PEERS] if args.smoke else [*PEERS, *reversed(PEERS)]  # AB, or ABBA
    duration, settle, rounds = (2, 1, 1) if args.smoke else (args.duration, 3, args.rounds)

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
        cpu = {(clients, label): [] for clients in args.clients for label in PEERS}
        starved = []
        try:
            for server in servers.values():
                server.start()
            for clients in args.clients:
                for round_ in range(rounds):
                    for label in order:
                        used, messages = asyncio.run(feed(servers[label], PEERS[label][1], clients, duration, settle))
                        cpu[clients, label].append(used)
                        print(
                            f"{clients} clients, round {round_ + 1} {label:12s}: {used:6.2f} s CPU for "
                            f"{messages} messages ({messages / duration / clients:.2f} Hz per client)",
                            flush=True,
                        )
                        if messages < clients:
                            starved.append(f"{label} with {clients} clients")
        finally:
            for server in servers.values():
                server.stop()

    print(
        f"{GPUS} stubbed GPUs, {duration:g} s per phase, {rounds} round(s) of {''.join('AB'[list(PEERS).index(label)] for label in order)}:"
    )
    for clients in args.clients:
        for label in PEERS:
            print(
                f"  {clients} clients, {label}: {statistics.fmean(cpu[clients, label]) / duration * 100:.2f}% of one core"
            )
    for clients in args.clients:
        print(ratio_line(clients, cpu[clients, "sciencelab"], cpu[clients, "nvdashboard"]))
    if starved:
        sys.exit(f"some clients got no sample: {', '.join(starved)}")


if __name__ == "__main__":
    main()
