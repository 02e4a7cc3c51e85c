"""The GPU monitor: its pure core exactly, then the extension in a real Jupyter server.

NVML is the stub in tests/fake_nvml, injected as `pynvml`; everything above it is real: the server,
its kernels and sessions, /proc, WebSocket clients.
"""

import asyncio
import base64
import itertools
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado.httpclient import HTTPClientError
from traitlets import TraitError

from sciencelab import SciencelabApp
from sciencelab.gpu.sampler import KernelFinder
from sciencelab.gpu.samples import (
    GpuSettingsError,
    KernelRef,
    attribute_processes,
    describe_nvml_error,
    make_history_point,
    make_host_pid_map,
    make_kernel_owners,
    parse_nspid,
    update_idle,
    validate_settings,
)

from .fake_gpus import (
    GIB,
    HOST_PID_OFFSET,
    FakeNvml,
    load_stub_module,
    make_gpu,
    use_stub_in_this_process,
    write_host_status,
)

INTERVAL = 0.2  # the fastest allowed, so the tests wait little
LINGER = 0.5
MESSAGE_TIMEOUT = 10
TEXT_OPCODE, CLOSE_OPCODE, PING_OPCODE = 0x1, 0x8, 0x9  # RFC 6455

FIT = KernelRef("k-1", "python3", "analysis/fit.ipynb")
PLOT = KernelRef("k-2", "python3", None)


# --- the pure core -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"interval": 0.1}, "interval: must be between 0.2 and 60 seconds, got 0.1"),
        ({"interval": "fast"}, "interval: expected a number of seconds such as 1, got 'fast'"),
        ({"interval": True}, "interval: expected a number of seconds such as 1, got True"),
        ({"idle_threshold": 101}, "idle_threshold: must be between 0 and 100 percent, got 101"),
        ({"idle_duration": 0}, "idle_duration: must be between 1 and 86400 seconds, got 0"),
        ({"history": 60}, "history: not a GPU monitor setting; choose from: interval, idle_threshold, idle_duration"),
        ({}, "body: expected a JSON object with some of: interval, idle_threshold, idle_duration, got {}"),
        ([1], "body: expected a JSON object with some of: interval, idle_threshold, idle_duration, got [1]"),
    ],
)
def test_settings_are_refused_naming_field_value_and_range(body, message):
    with pytest.raises(GpuSettingsError) as error:
        validate_settings(body)
    assert str(error.value) == message


def test_settings_are_accepted_as_floats():
    assert validate_settings({"interval": 2, "idle_threshold": 7.5}) == {"interval": 2.0, "idle_threshold": 7.5}


def test_traits_refuse_out_of_range_values_at_start_up():
    with pytest.raises(TraitError, match=r"SciencelabApp.gpu_interval: must be between 0.2 and 60 seconds, got 0.05"):
        SciencelabApp(gpu_interval=0.05)
    with pytest.raises(TraitError, match=r"SciencelabApp.gpu_history: must be between 10 and 86400 seconds, got 5"):
        SciencelabApp(gpu_history=5)


def test_nspid_maps_host_pids_to_the_container():
    assert parse_nspid("Name:\tpython\nNSpid:\t4242\t17\nPPid:\t1\n") == (4242, 17)
    assert parse_nspid("Name:\told-kernel\n") == ()
    assert make_host_pid_map({4242: "NSpid:\t4242\t17\n", 99: "NSpid:\t99\n", 5: "Name:\tx\n"}) == {
        4242: 17,
        99: 99,
        5: 5,
    }


def test_kernel_owners_cover_the_processes_a_kernel_started():
    parents = {100: 1, 101: 100, 102: 101, 200: 1, 201: 200, 300: 1}
    assert make_kernel_owners(parents, {100: FIT, 200: PLOT}) == {
        100: FIT,
        101: FIT,
        102: FIT,
        200: PLOT,
        201: PLOT,
    }


def test_processes_are_named_by_kernel_and_others_stay_anonymous():
    rows = attribute_processes(
        [(HOST_PID_OFFSET + 101, 2 * GIB), (7777, 30 * GIB), (HOST_PID_OFFSET + 100, 5 * GIB), (8888, None)],
        {HOST_PID_OFFSET + 100: 100, HOST_PID_OFFSET + 101: 101, 7777: 7777},
        {100: FIT, 101: FIT},
    )
    assert rows == [
        {
            "owner": "kernel",
            "pid": 100,
            "memory_used": 5 * GIB,
            "kernel_id": "k-1",
            "kernel_name": "python3",
            "notebook": "analysis/fit.ipynb",
        },
        {
            "owner": "kernel",
            "pid": 101,
            "memory_used": 2 * GIB,
            "kernel_id": "k-1",
            "kernel_name": "python3",
            "notebook": "analysis/fit.ipynb",
        },
        {"owner": "other", "pid": None, "memory_used": 30 * GIB},
        {"owner": "other", "pid": None, "memory_used": None},
    ]


def gpu_record(uuid: str, utilization: int | None, held: bool) -> dict:
    processes = [{"owner": "kernel"}] if held else [{"owner": "other"}]
    return {
        "uuid": uuid,
        "utilization": None if utilization is None else {"gpu": utilization, "memory": 0},
        "processes": processes,
    }


def test_a_held_gpu_is_flagged_after_the_idle_duration_below_threshold():
    gpus = [
        gpu_record("held-idle", 2, True),
        gpu_record("held-busy", 80, True),
        gpu_record("not-ours", 0, False),
        gpu_record("mig", None, True),
    ]
    state, idle = update_idle({}, gpus, now=1000.0, threshold=5, duration=600)
    assert state == {"held-idle": 1000.0}
    assert idle == {
        "held-idle": {"held": True, "below_threshold_since": 1000.0, "flagged": False},
        "held-busy": {"held": True, "below_threshold_since": None, "flagged": False},
        "not-ours": {"held": False, "below_threshold_since": None, "flagged": False},
        "mig": {"held": True, "below_threshold_since": None, "flagged": False},
    }
    state, idle = update_idle(state, gpus, now=1600.0, threshold=5, duration=600)
    assert idle["held-idle"] == {"held": True, "below_threshold_since": 1000.0, "flagged": True}
    # One busy sample resets the clock.
    state, idle = update_idle(state, [gpu_record("held-idle", 50, True)], now=1601.0, threshold=5, duration=600)
    assert (state, idle["held-idle"]["flagged"]) == ({}, False)


class StubKernelManager:
    """jupyter_server's kernel manager as `KernelFinder` reads it: kernel ids, and a local process per kernel."""

    def __init__(self):
        self.kernels = {}

    def list_kernel_ids(self):
        return list(self.kernels)

    def get_kernel(self, kernel_id):
        return self.kernels[kernel_id]

    def start(self, kernel_id: str, pid: int):
        process = SimpleNamespace(pid=pid)
        self.kernels[kernel_id] = SimpleNamespace(kernel_name="python3", provisioner=SimpleNamespace(process=process))


class StubSessionManager:
    """Sessions by kernel id; counts the reads of the session table."""

    def __init__(self):
        self.paths, self.reads = {}, 0

    async def list_sessions(self):
        self.reads += 1
        return [{"path": path, "kernel": {"id": kernel_id}} for kernel_id, path in self.paths.items()]


async def test_kernel_finder_reads_the_sessions_only_for_new_kernels_and_when_they_are_old():
    kernels, sessions, now = StubKernelManager(), StubSessionManager(), [0.0]
    finder = KernelFinder(kernels, sessions, notebooks_max_age=10, clock=lambda: now[0])
    assert await finder.find() == {}
    assert sessions.reads == 0, "no kernel, nothing to name"

    kernels.start("k-1", 101)  # its session is not saved yet: read again at the next tick
    assert await finder.find() == {101: KernelRef("k-1", "python3", None)}
    sessions.paths["k-1"] = "fit.ipynb"
    assert await finder.find() == {101: KernelRef("k-1", "python3", "fit.ipynb")}
    assert sessions.reads == 2
    assert await finder.find() == {101: KernelRef("k-1", "python3", "fit.ipynb")}
    assert sessions.reads == 2, "the same kernels: the notebooks are known"

    kernels.start("k-1", 102)  # restarted: same id, new process
    sessions.paths["k-1"] = "renamed.ipynb"
    assert await finder.find() == {102: KernelRef("k-1", "python3", "fit.ipynb")}
    now[0] = 10.0
    assert await finder.find() == {102: KernelRef("k-1", "python3", "renamed.ipynb")}
    assert sessions.reads == 3


def test_history_keeps_utilisation_and_memory_per_gpu():
    sample = {
        "time": 5.0,
        "gpus": [
            {"uuid": "a", "utilization": {"gpu": 45, "memory": 30}, "memory": {"used": 7, "total": 80}},
            {"uuid": "b", "utilization": None, "memory": {"used": 1, "total": 10}},
        ],
    }
    assert make_history_point(sample) == {
        "time": 5.0,
        "gpus": [
            {"uuid": "a", "utilization": 45, "memory_used": 7},
            {"uuid": "b", "utilization": None, "memory_used": 1},
        ],
    }
    assert make_history_point({"available": False, "time": 6.0, "reason": "x"}) == {"time": 6.0, "gpus": []}


def test_nvml_errors_read_as_sentences():
    stub = load_stub_module()
    assert describe_nvml_error(stub.NVMLError_LibraryNotFound("x")).startswith("No NVIDIA driver: the NVML library")
    assert describe_nvml_error(stub.NVMLError("Unknown Error")) == (
        "NVML failed: Unknown Error. The monitor retries every sample."
    )


# --- the extension in a real Jupyter server ------------------------------------------------------

MIG_GPU = make_gpu(
    1,
    name="NVIDIA A100-SXM4-40GB",
    utilization=None,
    memory=[3 * GIB, 40 * GIB],
    mig=[
        {"uuid": "MIG-aaaa", "name": "NVIDIA A100-SXM4-40GB MIG 3g.20gb", "memory": [2 * GIB, 20 * GIB]},
        {"uuid": "MIG-bbbb", "name": "NVIDIA A100-SXM4-40GB MIG 3g.20gb", "memory": [1 * GIB, 20 * GIB]},
    ],
)


@pytest.fixture
def fake_nvml(tmp_path, monkeypatch) -> FakeNvml:
    """The `pynvml` stub in `sys.modules` for this test, with an A100 and an A100 in MIG mode.

    `fake_nvml.module.calls` counts NVML calls; `fake_nvml.set(...)` changes the GPUs under the
    running server.
    """
    fake = FakeNvml(tmp_path / "fake-nvml.json")
    fake.set([make_gpu(0), MIG_GPU])
    fake.module = use_stub_in_this_process(monkeypatch, fake)
    return fake


@pytest.fixture
def host_proc(tmp_path) -> Path:
    """The NSpid mapping fixture: a folder standing for the host's /proc mounted into a container.

    Tests add `<host pid>/status` files with `NSpid: <host pid> <local pid>` through
    `write_host_status`, and the stub reports the host PID, as NVML does inside a container.
    """
    folder = tmp_path / "host-proc"
    folder.mkdir()
    return folder


@pytest.fixture
def jp_server_config(host_proc):
    """Our extension with a fast sampler that pauses quickly, mapping PIDs through `host_proc`."""
    return {
        "ServerApp": {"jpserver_extensions": {"sciencelab": True}},
        "SciencelabApp": {"gpu_interval": INTERVAL, "gpu_linger": LINGER, "gpu_host_proc": str(host_proc)},
    }


@pytest.fixture
def sampler(jp_serverapp):
    """The server's one `GpuSampler`, to check when it samples."""
    return jp_serverapp.web_app.settings["sciencelab_gpu_sampler"]


async def get_gpu(jp_fetch) -> dict:
    return json.loads((await jp_fetch("sciencelab", "api", "gpu")).body)


async def next_sample(ws, until=lambda sample: True) -> dict:
    """The next stream message for which `until` holds."""
    deadline = time.monotonic() + MESSAGE_TIMEOUT
    while time.monotonic() < deadline:
        message = await asyncio.wait_for(ws.read_message(), MESSAGE_TIMEOUT)
        assert message is not None, "the server closed the GPU stream"
        sample = json.loads(message)
        if until(sample):
            return sample
    raise AssertionError(f"no matching GPU sample in {MESSAGE_TIMEOUT}s")


async def test_get_reports_every_gpu_field_and_mig_devices(fake_nvml, jp_fetch):
    body = await get_gpu(jp_fetch)
    current = body["current"]
    assert current["available"] is True
    assert current["driver"] == "550.54.15"
    assert body["settings"] == {
        "interval": INTERVAL,
        "history_seconds": 900.0,
        "idle_threshold": 5.0,
        "idle_duration": 600.0,
    }
    plain, mig = current["gpus"]
    assert plain == {
        "index": 0,
        "uuid": "GPU-00000000-fake",
        "name": "NVIDIA A100-SXM4-80GB",
        "utilization": {"gpu": 45, "memory": 30},
        "utilization_note": None,
        "memory": {"used": 12 * GIB, "total": 80 * GIB},
        "temperature_c": 55,
        "power_w": 250.0,
        "power_limit_w": 400.0,
        "sm_clock_mhz": 1410,
        "pcie_rx_kib_s": 1024,
        "pcie_tx_kib_s": 2048,
        "mig_devices": [],
        "processes": [],
        "idle": {"held": False, "below_threshold_since": None, "flagged": False},
    }
    assert (mig["utilization"], mig["utilization_note"]) == (None, "not reported for MIG")
    assert mig["mig_devices"] == [
        {
            "index": 0,
            "uuid": "MIG-aaaa",
            "name": "NVIDIA A100-SXM4-40GB MIG 3g.20gb",
            "memory": {"used": 2 * GIB, "total": 20 * GIB},
            "utilization": None,
            "utilization_note": "not reported for MIG",
        },
        {
            "index": 1,
            "uuid": "MIG-bbbb",
            "name": "NVIDIA A100-SXM4-40GB MIG 3g.20gb",
            "memory": {"used": 1 * GIB, "total": 20 * GIB},
            "utilization": None,
            "utilization_note": "not reported for MIG",
        },
    ]
    assert body["history"][-1] == {
        "time": current["time"],
        "gpus": [
            {"uuid": "GPU-00000000-fake", "utilization": 45, "memory_used": 12 * GIB},
            {"uuid": "GPU-00000001-fake", "utilization": None, "memory_used": 3 * GIB},
        ],
    }


async def test_a_kernel_holding_gpu_memory_is_named_by_its_notebook(fake_nvml, host_proc, jp_fetch, jp_serverapp):
    created = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps({"path": "analysis/fit.ipynb", "type": "notebook", "kernel": {"name": "python3"}}),
    )
    kernel_id = json.loads(created.body)["kernel"]["id"]
    kernel_pid = jp_serverapp.kernel_manager.get_kernel(kernel_id).provisioner.process.pid
    # As inside a container: NVML reports the host PID, the host's /proc maps it to the kernel.
    write_host_status(host_proc, HOST_PID_OFFSET + kernel_pid, kernel_pid)
    fake_nvml.set([make_gpu(0, processes=[[HOST_PID_OFFSET + kernel_pid, 5 * GIB], [4_000_123, 7 * GIB]]), MIG_GPU])

    async def processes() -> list:
        return (await get_gpu(jp_fetch))["current"]["gpus"][0]["processes"]

    deadline = time.monotonic() + MESSAGE_TIMEOUT
    while not (rows := await processes()) and time.monotonic() < deadline:
        await asyncio.sleep(INTERVAL)
    assert rows == [
        {
            "owner": "kernel",
            "pid": kernel_pid,
            "memory_used": 5 * GIB,
            "kernel_id": kernel_id,
            "kernel_name": "python3",
            "notebook": "analysis/fit.ipynb",
        },
        {"owner": "other", "pid": None, "memory_used": 7 * GIB},
    ]

    # Held at 0% utilisation: flagged idle once the (shortened) idle duration has passed.
    await jp_fetch("sciencelab", "api", "gpu", method="PATCH", body=json.dumps({"idle_duration": 1}))
    fake_nvml.set([make_gpu(0, utilization=[0, 0], processes=[[HOST_PID_OFFSET + kernel_pid, 5 * GIB]]), MIG_GPU])
    deadline = time.monotonic() + MESSAGE_TIMEOUT
    while not (idle := (await get_gpu(jp_fetch))["current"]["gpus"][0]["idle"])["flagged"]:
        assert time.monotonic() < deadline, f"never flagged idle: {idle}"
        await asyncio.sleep(INTERVAL)
    assert idle["held"] is True


async def read_sample(ws) -> dict:
    message = await asyncio.wait_for(ws.read_message(), MESSAGE_TIMEOUT)
    assert message is not None, "the server closed the GPU stream"
    return json.loads(message)


async def sample_now(jp_fetch):
    """Make the sampler tick now: a changed setting ends its wait at once, as when the panel sets one."""
    await jp_fetch("sciencelab", "api", "gpu", method="PATCH", body=json.dumps({"idle_threshold": 5}))


@pytest.mark.parametrize(
    "jp_server_config",
    # The longest interval: the sampler ticks only when the test says so, however slow the machine.
    [{"ServerApp": {"jpserver_extensions": {"sciencelab": True}}, "SciencelabApp": {"gpu_interval": 60}}],
)
async def test_stream_sends_the_current_sample_then_each_tick_at_one_nvml_cost(fake_nvml, jp_fetch, jp_ws_fetch):
    first = await jp_ws_fetch("sciencelab", "api", "gpu", "stream")
    sample = await read_sample(first)  # the first listener starts the sampler
    assert sample["available"] is True and len(sample["gpus"]) == 2
    calls = fake_nvml.module.calls
    await sample_now(jp_fetch)
    current = await read_sample(first)
    assert current["time"] > sample["time"]
    calls_per_tick = fake_nvml.module.calls - calls
    assert calls_per_tick > 0

    # Nine more clients: each gets the current sample at once, without an NVML call of its own...
    others = [await jp_ws_fetch("sciencelab", "api", "gpu", "stream") for _ in range(9)]
    for client in others:
        assert await read_sample(client) == current
    assert fake_nvml.module.calls == calls + calls_per_tick
    # ...and a tick for ten clients costs the NVML calls of a tick for one: every client gets the same sample.
    await sample_now(jp_fetch)
    received = [await read_sample(client) for client in [first, *others]]
    assert received[0]["time"] > current["time"]
    assert all(later == received[0] for later in received)
    assert fake_nvml.module.calls == calls + 2 * calls_per_tick
    for client in [first, *others]:
        client.close()


async def open_silent_websocket(port: int, path: str, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that reads frames and never answers a ping, as a vanished laptop would."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: token {token}\r\n\r\n".encode()
    )
    response = await reader.readuntil(b"\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 101"), response
    return reader, writer


async def read_opcodes_until_closed(reader: asyncio.StreamReader) -> list[int]:
    """The opcodes of the frames the server sends, up to its close frame or the end of the stream."""
    opcodes = []
    while not opcodes or opcodes[-1] != CLOSE_OPCODE:
        try:
            header = await reader.readexactly(2)
        except asyncio.IncompleteReadError:
            break
        length = header[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2))
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8))
        await reader.readexactly(length)
        opcodes.append(header[0] & 0x0F)
    return opcodes


async def read_all(ws, samples: list):
    while (message := await ws.read_message()) is not None:
        samples.append(json.loads(message))


async def test_pings_ride_on_the_samples_and_a_client_that_never_pongs_is_closed(
    fake_nvml, jp_ws_fetch, jp_serverapp, jp_http_port, jp_base_url
):
    # jupyter_server's WebSocket settings, in milliseconds, shortened so the test waits little; the
    # timeout is ten samples long, so a busy machine does not drop the client that answers.
    jp_serverapp.web_app.settings.update(ws_ping_interval=400, ws_ping_timeout=2000)
    answering = await jp_ws_fetch("sciencelab", "api", "gpu", "stream")
    # Tornado's client reads the next frame, and so answers a ping, only once the last message was read.
    samples = []
    listening = asyncio.create_task(read_all(answering, samples))
    silent, writer = await open_silent_websocket(
        jp_http_port, f"{jp_base_url}sciencelab/api/gpu/stream", jp_serverapp.identity_provider.token
    )

    opcodes = await asyncio.wait_for(read_opcodes_until_closed(silent), MESSAGE_TIMEOUT)
    writer.close()
    assert opcodes[0] == TEXT_OPCODE and PING_OPCODE in opcodes and opcodes[-1] == CLOSE_OPCODE
    # A ping goes out right after a sample, never on a timer of its own.
    assert all(opcode == TEXT_OPCODE for opcode, after in itertools.pairwise(opcodes) if after == PING_OPCODE)

    # The client that answers the pings is still fed after the silent one was dropped.
    dropped = time.time()
    while not samples or samples[-1]["time"] < dropped + 1:
        assert not listening.done(), "the server closed the GPU stream of a client that answers pings"
        assert time.time() < dropped + MESSAGE_TIMEOUT, "no GPU sample after the silent client was dropped"
        await asyncio.sleep(INTERVAL)
    answering.close()
    await listening


async def test_sampling_pauses_without_listeners_and_resumes_on_demand(fake_nvml, jp_fetch, jp_ws_fetch, sampler):
    ws = await jp_ws_fetch("sciencelab", "api", "gpu", "stream")
    await next_sample(ws)
    ws.close()
    deadline = time.monotonic() + MESSAGE_TIMEOUT
    while sampler.running:
        assert time.monotonic() < deadline, "the sampler kept running with nobody listening"
        await asyncio.sleep(INTERVAL)
    calls = fake_nvml.module.calls
    await asyncio.sleep(5 * INTERVAL)
    assert fake_nvml.module.calls == calls, "NVML was called while nobody listened"

    body = await get_gpu(jp_fetch)  # a GET resumes sampling and waits for a fresh sample
    assert body["current"]["available"] is True and time.time() - body["current"]["time"] < 2
    assert sampler.running


async def test_no_driver_is_reported_and_the_stream_recovers_when_it_comes(fake_nvml, jp_fetch, jp_ws_fetch):
    fake_nvml.set([], library_missing=True)
    body = await get_gpu(jp_fetch)
    assert body["current"]["available"] is False
    assert body["current"]["reason"] == (
        "No NVIDIA driver: the NVML library (libnvidia-ml.so.1) is not installed on this server, "
        "so there is no GPU to monitor."
    )
    ws = await jp_ws_fetch("sciencelab", "api", "gpu", "stream")
    assert (await next_sample(ws))["available"] is False

    fake_nvml.set([])  # a driver without GPUs
    sample = await next_sample(ws, lambda sample: "no GPU" in sample.get("reason", ""))
    assert sample["reason"] == "No GPU: the NVIDIA driver is loaded but NVML sees no GPU on this server."

    fake_nvml.set([make_gpu(0)])
    assert len((await next_sample(ws, lambda sample: sample["available"]))["gpus"]) == 1
    ws.close()


async def test_a_gpu_that_disappears_and_comes_back_keeps_the_stream_up(fake_nvml, jp_fetch, jp_ws_fetch):
    ws = await jp_ws_fetch("sciencelab", "api", "gpu", "stream")
    await next_sample(ws, lambda sample: sample["available"])
    fake_nvml.set([make_gpu(0), {**MIG_GPU, "lost": True}])
    lost = await next_sample(ws, lambda sample: not sample["available"])
    assert lost["reason"] == "A GPU fell off the bus or stopped answering; the monitor retries every sample."
    assert (await jp_fetch("sciencelab", "api", "gpu")).code == 200

    fake_nvml.set([make_gpu(0), MIG_GPU])
    back = await next_sample(ws, lambda sample: sample["available"])
    assert [gpu["uuid"] for gpu in back["gpus"]] == ["GPU-00000000-fake", "GPU-00000001-fake"]
    history = (await get_gpu(jp_fetch))["history"]
    assert any(point["gpus"] == [] for point in history), "the outage is a gap in the history"
    ws.close()


async def test_patch_changes_the_interval_and_refuses_bad_values(fake_nvml, jp_fetch):
    response = await jp_fetch("sciencelab", "api", "gpu", method="PATCH", body=json.dumps({"interval": 0.5}))
    assert json.loads(response.body)["interval"] == 0.5
    assert (await get_gpu(jp_fetch))["settings"]["interval"] == 0.5

    for body, message in [
        (json.dumps({"interval": 0.1}), "interval: must be between 0.2 and 60 seconds, got 0.1"),
        (json.dumps({"interval": "100%"}), "interval: expected a number of seconds such as 1, got '100%'"),
        (
            json.dumps({"colour": "red"}),
            "colour: not a GPU monitor setting; choose from: interval, idle_threshold, idle_duration",
        ),
        ("{not json", "body: not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ]:
        with pytest.raises(HTTPClientError) as error:
            await jp_fetch("sciencelab", "api", "gpu", method="PATCH", body=body)
        assert error.value.code == 400
        assert json.loads(error.value.response.body)["message"] == message


async def test_stream_refuses_unauthenticated_clients(fake_nvml, jp_ws_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_ws_fetch("sciencelab", "api", "gpu", "stream", headers={"Authorization": ""})
    assert error.value.code == 403


async def test_info_says_the_gpu_monitor_is_on(jp_fetch):
    info = json.loads((await jp_fetch("sciencelab", "api", "info")).body)
    assert info["features"]["gpu_monitor"] is True


@pytest.mark.parametrize(
    "jp_server_config",
    [
        {
            "ServerApp": {"jpserver_extensions": {"sciencelab": True}},
            "SciencelabApp": {"gpu_monitor": False},
        }
    ],
)
async def test_switched_off_the_monitor_has_no_routes(jp_fetch):
    info = json.loads((await jp_fetch("sciencelab", "api", "info")).body)
    assert info["features"]["gpu_monitor"] is False
    with pytest.raises(HTTPClientError) as error:
        await jp_fetch("sciencelab", "api", "gpu")
    assert error.value.code == 404
