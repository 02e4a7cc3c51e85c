"""Session lifetimes on a real demo hub with second-scale settings: deadlines, Extend and its cap,
owner-only access, a restart of the hub service, idle stops that know busy kernels and GPUs, and
what the hub's pages tell the user.

The hub, its `sciencelab` service, JupyterLab and its kernels are real; NVML is the tests' stub
(tests/fake_nvml) with one GPU at 0% for one profile and one at 80% for the other.
"""

import os
import signal
import textwrap
import threading
import time
from datetime import datetime

import psutil
import pytest

from .demo_hub import DemoHub
from .fake_gpus import FakeNvml, make_gpu

pytestmark = pytest.mark.hub

CHECK_INTERVAL = 1  # seconds between two passes of the service
LIFETIME = 60
EXTEND_STEP = 20
EXTEND_CAP = 80
IDLE_TIMEOUT = 12
# JupyterHub polls its managed services every 30 s: a killed one is back within that and its start.
SERVICE_RESTART_TIMEOUT = 90
LOOP_SECONDS = 100  # the kernel's busy loop: longer than the idle servers take to stop


def profiles(nvml_idle: FakeNvml, nvml_busy: FakeNvml) -> str:
    def gpu_environment(nvml: FakeNvml) -> str:
        return "{" + ", ".join(f"{name}: {value!r}" for name, value in nvml.environ.items()) + "}"

    return textwrap.dedent(f"""
        gpu_models:
          a100: {{display_name: A100, node_label: NVIDIA-A100-SXM4-80GB}}
        profiles:
          - slug: short
            display_name: One minute
            default: true
            lifetime: {LIFETIME}s
            idle_timeout: 0
            extend: {{step: {EXTEND_STEP}s, cap: {EXTEND_CAP}s}}
          - slug: idle
            display_name: Stops when idle
            idle_timeout: {IDLE_TIMEOUT}s
          - slug: gpu-idle
            display_name: A GPU at 0%
            gpu: {{model: a100, count: 1}}
            idle_timeout: {IDLE_TIMEOUT}s
            environment: {gpu_environment(nvml_idle)}
          - slug: gpu-busy
            display_name: A GPU at 80%
            gpu: {{model: a100, count: 1}}
            idle_timeout: {IDLE_TIMEOUT}s
            environment: {gpu_environment(nvml_busy)}
    """)


@pytest.fixture(scope="module")
def lifetime_hub(tmp_path_factory):
    """A demo hub whose service checks sessions every second and whose servers report activity
    every second; the hub's own GPU inventory sees two stubbed A100s."""
    state = tmp_path_factory.mktemp("lifetime-hub")
    inventory, idle, busy = (FakeNvml(state / f"nvml-{name}.json") for name in ("hub", "idle", "busy"))
    inventory.set([make_gpu(0), make_gpu(1)])
    idle.set([make_gpu(0, utilization=[0, 0])])
    busy.set([make_gpu(1, utilization=[80, 40])])
    # The service only keeps the environment JupyterHub gives it: re-declare it with the stub's.
    extra_config = textwrap.dedent(f"""
        import os
        from sciencelab_spawner.demo import free_port
        from sciencelab_spawner.hub_config import configure_sciencelab
        here = os.path.dirname(__file__)
        configure_sciencelab(c, profiles_file=os.path.join(here, "profiles.yaml"), service_port=free_port(),
                             sessions_file=os.path.join(here, "sciencelab-sessions.json"),
                             session_check_interval={CHECK_INTERVAL})
        c.JupyterHub.services[0]["environment"]["FAKE_PYNVML_STATE"] = {str(inventory.path)!r}
        c.LocalProfileSpawner.environment["JUPYTERHUB_ACTIVITY_INTERVAL"] = "1"
    """)
    hub = DemoHub(state, extra_config=extra_config, profiles=profiles(idle, busy), env=inventory.environ).start()
    try:
        yield hub
        hub.check_log()
    finally:
        hub.stop()


def deadline_path(user: str, server: str = "") -> str:
    where = f"servers/{server}" if server else "server"
    return f"/services/sciencelab/api/users/{user}/{where}/deadline"


def iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wait_for_stop(hub: DemoHub, user: str, server: str, timeout: float) -> float:
    """Seconds since the epoch at which `user`'s `server` was seen gone."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if hub.server_model(user, server) is None:
            return time.time()
        time.sleep(0.5)
    raise AssertionError(f"{user}:{server} still runs after {timeout} s:\n{hub.log_tail()}")


def restart_service(hub: DemoHub, user: str, server: str):
    """SIGKILL the `sciencelab` service; JupyterHub notices at its next poll of the service (every
    30 s) and starts it again, as after a crash; back once it answers for `user`'s `server`."""
    hub_process = psutil.Process(hub.process.pid)
    service = next(
        p for p in hub_process.children(recursive=True) if "sciencelab_spawner.service" in " ".join(p.cmdline())
    )
    os.kill(service.pid, signal.SIGKILL)
    end = time.monotonic() + SERVICE_RESTART_TIMEOUT
    while time.monotonic() < end:
        if hub.request("GET", deadline_path(user, server), user).status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"the service did not come back:\n{hub.log_tail()}")


def test_deadlines_extend_idle_and_gpus(lifetime_hub):
    hub = lifetime_hub
    began = time.time()
    # A kernel running a loop (no output, no request) keeps bob's "busy" server active.
    assert hub.spawn("bob", {"profile": "idle"}, "busy").status_code in (201, 202), hub.log_tail()

    def run_loop():
        with hub.kernel("bob", "busy") as kernel:
            kernel.run(f"import time\nend = time.time() + {LOOP_SECONDS}\nwhile time.time() < end: time.sleep(0.2)")

    loop = threading.Thread(target=run_loop, daemon=True)
    loop.start()
    for user, server, profile in [
        ("alice", "", "short"),
        ("alice", "fixed", "short"),
        ("alice", "gpubusy", "gpu-busy"),
        ("bob", "idle", "idle"),
        ("alice", "gpuidle", "gpu-idle"),
    ]:
        assert hub.spawn(user, {"profile": profile}, server).status_code in (201, 202), hub.log_tail()

    # The deadline: the start plus the lifetime, the cap, the step; alice's own and nobody else's.
    document = hub.request("GET", deadline_path("alice"), "alice").json()
    started = iso(document["started"])
    assert (iso(document["deadline"]) - started).total_seconds() == LIFETIME
    assert (iso(document["extend_until"]) - started).total_seconds() == EXTEND_CAP
    assert (document["extend_step"], document["idle_timeout"], document["exempt"]) == (EXTEND_STEP, None, False)
    for method in ("GET", "POST"):
        refused = hub.request(method, deadline_path("alice"), "bob", json={})
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"] == "bob may not see or change alice's session: only its owner and admins may"

    # Extend: one step, then up to the cap, then 409 naming the cap.
    extended = hub.request("POST", deadline_path("alice"), "alice", json={})
    assert extended.status_code == 200, extended.text
    assert (iso(extended.json()["deadline"]) - started).total_seconds() == LIFETIME + EXTEND_STEP == EXTEND_CAP
    refused = hub.request("POST", deadline_path("alice"), "alice", json={})
    assert refused.status_code == 409
    assert "the cap of its profile (1 min 20 s in all since it started)" in refused.json()["message"]

    # While they run, the home page shows each server's deadline.
    browser = hub.browser_session("alice")
    home = browser.get(f"{hub.url}/hub/home", timeout=30).text
    assert 'data-server-name="fixed"' in home and "left)." in home

    # The idle server stops after its idle timeout, the busy one does not; same for the GPUs.
    fixed = hub.request("GET", deadline_path("alice", "fixed"), "alice").json()
    idle_stopped = wait_for_stop(hub, "bob", "idle", IDLE_TIMEOUT + 30)
    gpu_stopped = wait_for_stop(hub, "alice", "gpuidle", IDLE_TIMEOUT + 30)
    assert hub.server_model("bob", "busy") is not None
    assert hub.server_model("alice", "gpubusy") is not None

    # The unextended server stops within 10 s of its deadline; the extended one outlives it.
    fixed_stopped = wait_for_stop(hub, "alice", "fixed", LIFETIME + 30)
    fixed_late = fixed_stopped - iso(fixed["deadline"]).timestamp()
    assert 0 <= fixed_late < 10
    assert hub.server_model("alice", "") is not None
    extended_stopped = wait_for_stop(hub, "alice", "", EXTEND_CAP)
    extended_late = extended_stopped - iso(extended.json()["deadline"]).timestamp()
    assert 0 <= extended_late < 10
    print(
        f"\nstop accuracy: lifetime {fixed_late:.1f} s after the deadline, extended {extended_late:.1f} s; "
        f"the idle servers stopped {idle_stopped - began:.0f} s (plain) and {gpu_stopped - began:.0f} s (GPU at 0%) "
        f"after the test began, with a {IDLE_TIMEOUT} s idle timeout"
    )

    # After the stop, the next visit says why.
    home = browser.get(f"{hub.url}/hub/home", timeout=30).text
    assert "Your server was stopped because it reached the end of its session (1 min since it started" in home
    not_running = browser.get(f"{hub.url}/hub/user/alice/fixed/", timeout=30).text
    assert 'id="sciencelab-stop-reason"' in not_running
    log = hub.log_text()
    assert "Stopping bob:idle's server: stopped because it was idle for" in log

    # Admins see every session on the service's page (linked from the hub's admin page) and may
    # stop a server there; its user is told who stopped it. Others may not.
    assert hub.request("GET", "/services/sciencelab/sessions", "bob").status_code == 403
    page = hub.request("GET", "/services/sciencelab/sessions", "admin")
    assert page.status_code == 200 and 'data-server="alice:gpubusy"' in page.text
    refused = hub.request("DELETE", "/services/sciencelab/api/users/bob/servers/busy", "bob")
    assert (refused.status_code, refused.json()["message"]) == (403, "only admins stop servers here; bob is not one")
    stopping = hub.request("DELETE", "/services/sciencelab/api/users/alice/servers/gpubusy", "admin")
    assert stopping.status_code == 202, stopping.text
    wait_for_stop(hub, "alice", "gpubusy", 60)
    home = browser.get(f"{hub.url}/hub/home", timeout=30).text
    assert "Your server was stopped by the admin admin, at" in home
    admin_page = hub.browser_session("admin").get(f"{hub.url}/hub/admin", timeout=30).text
    assert 'id="sciencelab-sessions-link" href="/services/sciencelab/sessions"' in admin_page

    loop.join(LOOP_SECONDS)  # stopping a server whose kernel runs a cell logs the kernel's traceback
    hub.stop_server("bob", "busy")


def test_the_deadline_survives_a_crash_of_the_service(lifetime_hub):
    hub = lifetime_hub
    assert hub.spawn("bob", {"profile": "short"}, "persist").status_code in (201, 202), hub.log_tail()
    extended = hub.request("POST", deadline_path("bob", "persist"), "bob", json={})
    assert extended.status_code == 200, extended.text
    restart_service(hub, "bob", "persist")  # its file keeps the deadline and the extension
    again = hub.request("GET", deadline_path("bob", "persist"), "bob").json()
    assert again["deadline"] == extended.json()["deadline"]
    hub.stop_server("bob", "persist")
