"""A cluster as the API shows it, and its record on disk (pure).

The JSON of a cluster::

    {"id", "name", "template", "backend", "status", "error", "managed",
     "scheduler_address", "dashboard_url", "created",
     "workers": {"requested", "pending", "running"},     # running: connected to the scheduler
     "worker_states": {"connected": 3, "queued": 2, ...}, # every state present, see WORKER_STATES
     "adapt": null | {"minimum", "maximum"},
     "cores", "memory",                                   # of the running workers: threads, bytes
     "options": {...},                                    # the validated options it was made with
     "worker_list": [{"name", "state", "reason", "detail", "log", "address", "job_id", "threads", "memory",
                      "memory_limit", "cpu", "gpu_utilization", "gpu_memory_used", "gpu_memory_total"}],
     "connect_code": "from dask.distributed import Client\n..."}
"""

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

# Per-worker states, in the order a worker goes through them. Backends without a batch system only
# report `pending` (asked for, not connected yet) and `connected`; batch backends report the job's
# state: `queued` (with the batch system's reason), `held`, `running` (job started, worker not yet
# connected), then `finished` or `failed` (exit code and last log lines in `reason`).
WORKER_STATES = ("pending", "queued", "held", "running", "connected", "finished", "failed")
NOT_CONNECTED_YET = ("pending", "queued", "held", "running")

CLUSTER_STATUSES = ("starting", "running", "stopping", "stopped", "failed")


@dataclass(frozen=True)
class WorkerInfo:
    """One worker (or batch job meant to become one) and, once connected, its scheduler metrics."""

    name: str
    state: str
    address: str | None = None
    reason: str | None = None  # short, in the batch system's words: "Idle", "Resources", a hold reason
    detail: str | None = None  # the longer story for a tooltip: what the batch system adds, last log lines
    log: str | None = None  # the key of this worker's job log in the cluster's logs
    job_id: str | None = None
    threads: int | None = None
    memory: int | None = None  # bytes in use
    memory_limit: int | None = None
    cpu: float | None = None  # percent of one core
    gpu_utilization: float | None = None  # percent
    gpu_memory_used: int | None = None
    gpu_memory_total: int | None = None


@dataclass
class ClusterRecord:
    """What is persisted about a cluster, so that a restarted server can reattach it or clean it up.

    `backend_state` is the backend's own (JSON) note: a gateway cluster name, a Kubernetes resource,
    the process ids of local workers. `server` identifies the server process that owns the cluster.
    """

    id: str
    owner: str
    name: str
    template: str
    backend: str
    options: dict
    created: float
    server: dict
    backend_state: dict = field(default_factory=dict)
    requested: int = 0
    adapt: tuple[int, int] | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["adapt"] = list(self.adapt) if self.adapt else None
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> "ClusterRecord":
        values = dict(data)
        values["adapt"] = tuple(values["adapt"]) if values.get("adapt") else None
        return cls(**values)


@dataclass(frozen=True)
class ClusterView:
    """A cluster's live state, as its backend and scheduler reported it at the last refresh."""

    status: str
    scheduler_address: str | None = None
    dashboard_url: str | None = None
    workers: tuple[WorkerInfo, ...] = ()
    connect_code: str | None = None
    error: str | None = None
    updated: float = field(default_factory=time.time)


def workers_from_identity(identity: Mapping) -> list[WorkerInfo]:
    """The connected workers in a scheduler's `identity()` answer, with their heartbeat metrics.

    distributed puts memory and CPU in `metrics`; with NVML it adds `metrics["gpu"]`
    (`utilization`, `memory-used`) and, at start-up, `gpu` (`memory-total`, `name`).
    """
    workers = []
    for address, worker in identity.get("workers", {}).items():
        metrics = worker.get("metrics", {})
        gpu = metrics.get("gpu") or {}
        gpu_startup = worker.get("gpu") or {}
        workers.append(
            WorkerInfo(
                name=str(worker.get("name", address)),
                state="connected",
                address=address,
                threads=worker.get("nthreads"),
                memory=metrics.get("memory"),
                memory_limit=worker.get("memory_limit"),
                cpu=metrics.get("cpu"),
                gpu_utilization=gpu.get("utilization"),
                gpu_memory_used=gpu.get("memory-used"),
                gpu_memory_total=gpu_startup.get("memory-total"),
            )
        )
    return sorted(workers, key=lambda w: w.name)


def pending_workers(requested: int, connected: int) -> list[WorkerInfo]:
    """Placeholders for workers asked for but not connected yet, for backends that cannot say more."""
    return [WorkerInfo(name=f"pending-{i}", state="pending") for i in range(max(0, requested - connected))]


def make_cluster_json(record: ClusterRecord, view: ClusterView) -> dict:
    """The API's JSON for one cluster (see the module docstring)."""
    states = Counter(worker.state for worker in view.workers)
    connected = [worker for worker in view.workers if worker.state == "connected"]
    not_yet = sum(states[state] for state in NOT_CONNECTED_YET)
    # Fixed size: what was asked for. Adaptive: what the adaptive loop asks for right now.
    requested = len(connected) + not_yet if record.adapt else record.requested
    return {
        "id": record.id,
        "name": record.name,
        "template": record.template,
        "backend": record.backend,
        "status": view.status,
        "error": view.error,
        "managed": True,
        "scheduler_address": view.scheduler_address,
        "dashboard_url": view.dashboard_url,
        "created": record.created,
        "workers": {"requested": requested, "pending": max(0, requested - len(connected)), "running": len(connected)},
        "worker_states": {state: states[state] for state in WORKER_STATES if states[state]},
        "adapt": {"minimum": record.adapt[0], "maximum": record.adapt[1]} if record.adapt else None,
        "cores": sum(worker.threads or 0 for worker in connected),
        "memory": sum(worker.memory_limit or 0 for worker in connected),
        "options": record.options,
        "worker_list": [asdict(worker) for worker in view.workers],
        "connect_code": view.connect_code,
    }


def make_discovered_json(template: str, backend: str, name: str, status: str, dashboard_url: str | None) -> dict:
    """A cluster the backend runs for this user but this server does not manage: listed, adoptable."""
    return {
        "id": None,
        "name": name,
        "template": template,
        "backend": backend,
        "status": status,
        "managed": False,
        "dashboard_url": dashboard_url,
    }
