"""The cluster's GPUs, free and total per model, from a watch-based cache of nodes and pods.

`GpuLedger` is the pure core: it takes Node and Pod objects (a listing, then one watch event at a
time) and keeps per-node counts, so asking for availability costs no API call and no pass over
the pods. `KubeGpuInventory` feeds one ledger per process and namespace from two watches (all
nodes; the hub namespace's pods), in the manner of KubeSpawner's reflectors: list, watch from the
listing's resourceVersion, list again after an error.

A GPU is taken when a pod that is neither Succeeded nor Failed is bound to its node and requests it
(an `nvidia.com/*` extended resource). Pods of other namespaces are not watched (the hub may not
read them): dedicate GPU nodes to the hub's namespace, or their free count is optimistic.
"""

import asyncio
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

from kubernetes_asyncio import watch
from kubespawner.clients import shared_client

from .kube_objects import GPU_PRODUCT_LABEL
from .profile_config import GpuModel, ProfileConfig

log = logging.getLogger("sciencelab.kube_inventory")

GPU_RESOURCE_PREFIX = "nvidia.com/"
WATCH_SECONDS = 300  # the API server ends each watch after this long; the watch goes on from there
READY_TIMEOUT = 30  # seconds a first form or spawn waits for the first listing


@dataclass(frozen=True)
class GpuAvailability:
    free: int
    total: int
    # The most that fit on one node: a pod's GPUs all come from one node.
    largest: int


@dataclass(frozen=True)
class _NodeGpus:
    product: str | None
    allocatable: dict[str, int]
    schedulable: bool


def _count(quantity) -> int:
    """Extended resources are whole numbers; anything else counts as none."""
    try:
        return int(str(quantity))
    except ValueError:
        return 0


def node_gpus(node: dict) -> _NodeGpus:
    status, spec = node.get("status") or {}, node.get("spec") or {}
    ready = any(
        condition.get("type") == "Ready" and condition.get("status") == "True"
        for condition in status.get("conditions") or []
    )
    allocatable = {
        name: _count(quantity)
        for name, quantity in (status.get("allocatable") or {}).items()
        if name.startswith(GPU_RESOURCE_PREFIX)
    }
    return _NodeGpus(
        (node["metadata"].get("labels") or {}).get(GPU_PRODUCT_LABEL),
        allocatable,
        ready and not spec.get("unschedulable"),
    )


def pod_gpus(pod: dict) -> dict[str, int]:
    """The GPUs a pod holds, by resource: its containers' sum, or an init container's if larger."""

    def requested(container):
        resources = container.get("resources") or {}
        # Extended resources are requested through limits; requests equal them when given.
        merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        return Counter(
            {name: _count(quantity) for name, quantity in merged.items() if name.startswith(GPU_RESOURCE_PREFIX)}
        )

    spec = pod.get("spec") or {}
    total = Counter()
    for container in spec.get("containers") or []:
        total += requested(container)
    for container in spec.get("initContainers") or []:
        total |= requested(container)
    return {name: count for name, count in total.items() if count > 0}


def shares_devices(a: GpuModel, b: GpuModel) -> bool:
    """Whether a pod of model `a` may take a device that model `b` counts."""
    return a.resource == b.resource and (a.node_label is None or b.node_label is None or a.node_label == b.node_label)


class GpuLedger:
    """GPUs per node, and which pods hold how many where. Pure: objects in, counts out."""

    def __init__(self):
        self._nodes: dict[str, _NodeGpus] = {}
        self._pods: dict[str, tuple[str, dict[str, int]]] = {}  # by namespace/name: (node, GPUs)
        self._bound: set[str] = set()
        self._used: dict[str, Counter] = defaultdict(Counter)

    # nodes
    def replace_nodes(self, nodes: Iterable[dict]):
        self._nodes = {node["metadata"]["name"]: node_gpus(node) for node in nodes}

    def apply_node_event(self, kind: str, node: dict):
        name = node["metadata"]["name"]
        if kind == "DELETED":
            self._nodes.pop(name, None)
        else:
            self._nodes[name] = node_gpus(node)

    # pods
    def replace_pods(self, pods: Iterable[dict]):
        self._pods.clear()
        self._bound.clear()
        self._used.clear()
        for pod in pods:
            self.apply_pod_event("ADDED", pod)

    def apply_pod_event(self, kind: str, pod: dict):
        metadata = pod["metadata"]
        key = f"{metadata['namespace']}/{metadata['name']}"
        held = self._pods.pop(key, None)
        if held is not None:
            self._used[held[0]].subtract(held[1])
        self._bound.discard(key)
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if kind == "DELETED" or phase in ("Succeeded", "Failed") or not node:
            return
        self._bound.add(key)
        gpus = pod_gpus(pod)
        if gpus:
            self._pods[key] = (node, gpus)
            self._used[node].update(gpus)

    def is_bound(self, key: str) -> bool:
        """Whether pod `namespace/name` is bound to a node (its GPUs then count as used)."""
        return key in self._bound

    def availability(self, model: GpuModel, pending: Iterable[tuple[GpuModel, int]] = ()) -> GpuAvailability:
        """Free and total devices of `model` on ready, schedulable nodes; `pending` are
        (model, count) of spawns that hold a claim but whose pod is not bound yet."""
        total = free = largest = 0
        for name, node in self._nodes.items():
            if not node.schedulable or (model.node_label is not None and node.product != model.node_label):
                continue
            allocatable = node.allocatable.get(model.resource, 0)
            node_free = max(0, allocatable - self._used.get(name, Counter())[model.resource])
            total += allocatable
            free += node_free
            largest = max(largest, node_free)
        claimed = sum(count for other, count in pending if shares_devices(model, other))
        free = max(0, free - claimed)
        return GpuAvailability(free, total, min(largest, free))


class ResourceWatch:
    """Keeps a ledger up to date with one kind of object: list, then watch from there."""

    def __init__(self, kind: str, list_method, on_listing, on_event, **list_arguments):
        self.kind = kind
        self.list_method = list_method
        self.on_listing = on_listing
        self.on_event = on_event
        self.list_arguments = list_arguments
        self.problem: str | None = None  # why the last listing or watch failed, for people
        self.listed = asyncio.Event()

    async def run(self):
        delay = 0.1
        while True:
            try:
                response = await self.list_method(_preload_content=False, **self.list_arguments)
                listing = json.loads(await response.read())
                if "items" not in listing:
                    raise RuntimeError(listing.get("message") or f"cannot list {self.kind}")
                self.on_listing(listing["items"])
                version = listing["metadata"]["resourceVersion"]
                self.problem = None
                self.listed.set()
                delay = 0.1
                while True:
                    # A partial keeps the raw JSON: no model objects for thousands of pods.
                    method = partial(self.list_method, _preload_content=False)
                    stream = watch.Watch().stream(
                        method,
                        resource_version=version,
                        allow_watch_bookmarks=True,
                        timeout_seconds=WATCH_SECONDS,
                        _request_timeout=WATCH_SECONDS + 30,
                        **self.list_arguments,
                    )
                    async with stream:
                        async for event in stream:
                            kind, raw = event["type"], event["raw_object"]
                            version = raw["metadata"]["resourceVersion"]
                            if kind != "BOOKMARK":
                                self.on_event(kind, raw)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a 410 Gone, a dropped connection, a refusal: list again
                self.problem = f"cannot watch {self.kind}: {getattr(error, 'reason', None) or error}"
                log.warning("GPU inventory: %s; listing again in %.1fs", self.problem, delay)
                self.listed.set()  # waiters learn of the problem instead of waiting forever
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)


class KubeGpuInventory:
    """The live GPU inventory of one namespace, shared by every spawner of the process.

    `ready()` starts the watches once and waits for their first listing; `availability()` and
    `problem` then answer from memory.
    """

    def __init__(self, namespace: str, api):
        self.namespace = namespace
        self.ledger = GpuLedger()
        self.watches = [
            ResourceWatch("nodes", api.list_node, self.ledger.replace_nodes, self.ledger.apply_node_event),
            ResourceWatch(
                f"pods in {namespace}",
                api.list_namespaced_pod,
                self.ledger.replace_pods,
                self.ledger.apply_pod_event,
                namespace=namespace,
            ),
        ]
        self._tasks: list[asyncio.Task] = []

    async def ready(self):
        if not self._tasks:
            self._tasks = [asyncio.create_task(watch.run()) for watch in self.watches]
        try:
            await asyncio.wait_for(asyncio.gather(*(watch.listed.wait() for watch in self.watches)), READY_TIMEOUT)
        except TimeoutError:
            log.warning("GPU inventory: no listing after %ss", READY_TIMEOUT)

    @property
    def problem(self) -> str | None:
        """Why the inventory cannot be trusted right now, or None."""
        if not all(watch.listed.is_set() for watch in self.watches):
            return "the GPU inventory is still loading"
        return next((watch.problem for watch in self.watches if watch.problem), None)

    async def stop(self):
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []


def gpu_status(
    config: ProfileConfig,
    inventory: KubeGpuInventory,
    pending: Iterable[tuple[GpuModel, int]] = (),
) -> tuple[dict[str, tuple[int, int]], str | None]:
    """(free, total) per GPU model of `config`, or why the inventory cannot say (the form and the
    profiles API show it)."""
    if inventory.problem:
        return {}, f"the cluster's GPUs cannot be counted right now ({inventory.problem})"
    pending = list(pending)
    return {
        name: (available.free, available.total)
        for name, model in config.gpu_models.items()
        for available in [inventory.ledger.availability(model, pending)]
    }, None


_inventories: dict[tuple, KubeGpuInventory] = {}


def shared_gpu_inventory(namespace: str) -> KubeGpuInventory:
    """The one inventory of `namespace` on the running event loop (KubeSpawner's client must be
    configured first: `kubespawner.clients.load_config`)."""
    key = (asyncio.get_running_loop(), namespace)
    if key not in _inventories:
        _inventories[key] = KubeGpuInventory(namespace, shared_client("CoreV1Api"))
    return _inventories[key]
