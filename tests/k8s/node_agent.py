"""A test-only kubelet and scheduler for a real kube-apiserver that has neither.

`NodeAgent` registers fake Node objects (labels, allocatable CPU, memory, GPUs, MIG slices) and
keeps them Ready; it watches the pods of one namespace and
- binds each unscheduled pod to the first node that fits (nodeSelector, required node affinity,
  taints, resource requests against what the node's other pods already requested), or marks it
  Unschedulable with a `FailedScheduling` event, as kube-scheduler would;
- runs the first container of each pod bound to its nodes as a local process (`command` +
  `args` with the pod's env, `$(VAR)` expansion, working dir), and reports the pod Running with its
  own IP and a ready container;
- when a pod is deleted gracefully, stops the process (SIGTERM, then SIGKILL after the grace period)
  and removes the pod with gracePeriodSeconds=0, as the kubelet does.

Networking: every pod gets its own loopback address from a random 127.x.0.0/16 block, so two
pods may listen on the same port. In a real pod `0.0.0.0` means the pod's own IP; locally it would
mean every address, so the agent replaces `0.0.0.0` in the command, args and env values with the
pod's IP (kubespawner tells `jupyterhub-singleuser` to bind 0.0.0.0 through
`JUPYTERHUB_SERVICE_URL`).

Not emulated: images (the image's ENTRYPOINT is taken to be a pass-through such as tini),
volumes, probes, init and sidecar containers, restarts (a process that exits leaves the pod
Succeeded or Failed whatever its restartPolicy).
"""

import asyncio
import base64
import datetime
import json
import logging
import os
import random
import re
import shutil
import signal
import ssl
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import aiohttp

from .apiserver import KubeCredentials

log = logging.getLogger("sciencelab.node_agent")

AGENT = "sciencelab-node-agent"
KUBELET_VERSION = "v1.20.2"
HEARTBEAT_SECONDS = 10
WATCH_SECONDS = 60  # the server ends each watch after this long; the agent watches on
MAX_GRACE_SECONDS = 10  # cap on a pod's termination grace period, so tests never wait 30 s
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")  # from the agent's environment, as an image would set them


@dataclass
class FakeNode:
    """A node the agent registers. `allocatable` holds Kubernetes quantities by resource name."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    allocatable: dict[str, str] = field(default_factory=lambda: {"cpu": "8", "memory": "32Gi", "pods": "110"})
    taints: list[dict] = field(default_factory=list)


def gpu_node(name: str, product: str, gpus: int, **resources: str) -> FakeNode:
    """A node with `gpus` whole GPUs of model `product` (the NVIDIA GPU operator's labels);
    `resources` adds MIG slices, e.g. `**{"nvidia.com/mig-1g.10gb": "7"}`."""
    return FakeNode(
        name=name,
        labels={"nvidia.com/gpu.product": product, "nvidia.com/gpu.count": str(gpus)},
        allocatable={"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": str(gpus), **resources},
    )


# --- pure core: quantities, scheduling, manifests -------------------------------------------------

_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|)$")


def parse_quantity(quantity) -> Decimal:
    """`"500m"` -> 0.5, `"1Gi"` -> 1073741824, `2` -> 2 (Kubernetes resource quantities)."""
    match = _QUANTITY.match(str(quantity).strip())
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    return Decimal(match[1]) * _SUFFIXES[match[2]]


def pod_requests(pod: dict) -> Counter:
    """What the pod asks of a node, summed over its containers; a limit without a request counts
    as the request, as the API server's defaulting makes it."""
    total = Counter()
    for container in pod["spec"]["containers"]:
        resources = container.get("resources") or {}
        for name, quantity in {**(resources.get("limits") or {}), **(resources.get("requests") or {})}.items():
            total[name] += parse_quantity(quantity)
    return total


def _expression_matches(expression: dict, labels: dict[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt"):
        try:
            value, bound = int(labels[key]), int(values[0])
        except (KeyError, ValueError):
            return False
        return value > bound if operator == "Gt" else value < bound
    raise ValueError(f"unknown node selector operator {operator!r}")


def _term_matches(term: dict, node: FakeNode) -> bool:
    fields = {"metadata.name": node.name}
    return all(
        _expression_matches(expression, node.labels) for expression in term.get("matchExpressions") or []
    ) and all(_expression_matches(expression, fields) for expression in term.get("matchFields") or [])


def _tolerates(tolerations: list[dict], taint: dict) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint["effect"]:
            continue
        if toleration.get("operator") == "Exists":
            if not toleration.get("key") or toleration["key"] == taint["key"]:
                return True
        elif toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def unfit_reason(pod: dict, node: FakeNode, requested_on_node: Counter) -> str | None:
    """Why `pod` cannot go to `node`, in kube-scheduler's words, or None when it fits.
    `requested_on_node` is what the node's other live pods requested."""
    spec = pod["spec"]
    if any(node.labels.get(key) != value for key, value in (spec.get("nodeSelector") or {}).items()):
        return "node(s) didn't match node selector"
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required and not any(_term_matches(term, node) for term in required["nodeSelectorTerms"]):
        return "node(s) didn't match node selector"
    for taint in node.taints:
        if taint["effect"] in ("NoSchedule", "NoExecute") and not _tolerates(spec.get("tolerations") or [], taint):
            return "node(s) had taint that the pod didn't tolerate"
    for resource, amount in sorted(pod_requests(pod).items()):
        free = parse_quantity(node.allocatable.get(resource, 0)) - requested_on_node[resource]
        if amount > 0 and amount > free:
            return f"Insufficient {resource}"
    return None


def choose_node(pod: dict, nodes: list[FakeNode], requested: dict[str, Counter]) -> tuple[FakeNode | None, str]:
    """The first node that fits, or None and kube-scheduler's message saying why none does.
    `requested` maps node names to what their live pods requested."""
    reasons = Counter()
    for node in nodes:
        reason = unfit_reason(pod, node, requested.get(node.name, Counter()))
        if reason is None:
            return node, ""
        reasons[reason] += 1
    summary = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return None, f"0/{len(nodes)} nodes are available: {summary}."


def timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_node(node: FakeNode, now: str) -> dict:
    """The Node object a kubelet registers for `node`, Ready."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": {
                "kubernetes.io/hostname": node.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **node.labels,
            },
        },
        "spec": {"taints": node.taints} if node.taints else {},
        "status": {
            "capacity": node.allocatable,
            "allocatable": node.allocatable,
            "conditions": make_node_conditions(now),
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": node.name}],
            "nodeInfo": {
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": f"{AGENT}://0",
                "osImage": "",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


def make_node_conditions(now: str) -> list[dict]:
    return [
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": f"{AGENT} is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
    ]


def make_running_status(pod: dict, pod_ip: str, pid: int, now: str) -> dict:
    """The status a kubelet reports once the pod's first container runs (no probes: ready at once)."""
    container = pod["spec"]["containers"][0]
    return {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": now,
        "conditions": [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "containerID": f"{AGENT}://{pid}",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
        ],
    }


def make_terminated_status(pod: dict, exit_code: int, now: str) -> dict:
    """The status after the first container exited with `exit_code` (the pod is not restarted)."""
    container = pod["spec"]["containers"][0]
    return {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "conditions": [
            {"type": kind, "status": "False", "reason": "PodCompleted", "lastTransitionTime": now}
            for kind in ("ContainersReady", "Ready")
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Completed" if exit_code == 0 else "Error",
                        "finishedAt": now,
                    }
                },
            }
        ],
    }


def make_waiting_status(pod: dict, reason: str, message: str) -> dict:
    """The status of a pod whose container cannot be created (a missing Secret, no command)."""
    container = pod["spec"]["containers"][0]
    return {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ],
    }


def make_event(pod: dict, kind: str, reason: str, message: str, node: str, now: str) -> dict:
    metadata = pod["metadata"]
    return {
        "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
        },
        "type": kind,
        "reason": reason,
        "message": message,
        "source": {"component": AGENT, "host": node},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand_references(text: str, variables: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined variables are replaced, `$$` escapes a `$`,
    undefined references stay as they are."""

    def replace(match):
        if match[0] == "$$":
            return "$"
        return variables.get(match[1], match[0])

    return _REFERENCE.sub(replace, text)


class PodStartError(Exception):
    """The container cannot be created; `reason` is the kubelet's waiting reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# --- I/O: the API client, the processes, the agent --------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


class KubeApi:
    """Just enough of a Kubernetes client: JSON verbs and a watch, as one bearer token."""

    def __init__(self, credentials: KubeCredentials, token: str):
        self.url = credentials.url
        self._ssl = ssl.create_default_context(cafile=str(credentials.ca_path))
        # A watch event is one line holding a whole pod: allow big ones (the default stops at 128 KiB).
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}"},
            read_bufsize=2**20,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )

    async def close(self):
        await self._session.close()

    async def request(self, method: str, path: str, body=None, params=None, content_type="application/json"):
        data = json.dumps(body) if body is not None else None
        async with self._session.request(
            method, self.url + path, data=data, params=params, ssl=self._ssl, headers={"Content-Type": content_type}
        ) as response:
            result = await response.json(content_type=None)
            if response.status >= 400:
                raise ApiError(response.status, result.get("message", "") if isinstance(result, dict) else result)
            return result

    async def merge_patch(self, path: str, body: dict):
        return await self.request("PATCH", path, body, content_type="application/merge-patch+json")

    async def watch(self, path: str, params: dict):
        """Yield the watch events of `path` until the server ends the watch."""
        params = {**params, "watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(WATCH_SECONDS)}
        async with self._session.get(self.url + path, params=params, ssl=self._ssl) as response:
            if response.status >= 400:
                raise ApiError(response.status, await response.text())
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)


@dataclass
class PodProcess:
    process: asyncio.subprocess.Process
    pod: dict
    terminating: bool = False


class NodeAgent:
    """Plays kubelet and scheduler for `nodes` in `namespace` (see the module docstring).

    Runs on its own event loop in a background thread: `start()` returns once the nodes are
    registered and the pods listed; `stop()` stops every process it started, removes the pods
    bound to its nodes (the pod garbage collector's job once a node is gone) and the nodes.
    Pod logs go to `work_dir/<pod>.log`; each pod's HOME and default working dir is
    `work_dir/<pod>/`. `commands` maps a command name (the first word of `command` + `args`) to
    the local words that play it, e.g. `{"jupyterhub-singleuser": ["/venv/bin/jupyterhub-singleuser"]}`;
    other names are looked up on PATH. With `run_processes=False` pods are reported Running at once,
    on the node's address, without a process: thousands of pods for inventory benchmarks (create
    them with `spec.nodeName` set, which spares the scheduling, one pod listing per pod).
    """

    def __init__(
        self,
        credentials: KubeCredentials,
        nodes: list[FakeNode],
        work_dir: Path,
        namespace: str | None = None,
        label_selector: str = "",
        commands: dict[str, list[str]] | None = None,
        run_processes: bool = True,
    ):
        self.credentials = credentials
        self.nodes = list(nodes)
        self._node_names = {node.name for node in nodes}
        self.work_dir = work_dir
        self.namespace = namespace or credentials.namespace
        self.label_selector = label_selector
        self.commands = dict(commands or {})
        self.run_processes = run_processes
        self.processes: dict[str, PodProcess] = {}  # by pod uid
        self._started: set[str] = set()  # uids of the pods started, running or not
        self.unschedulable: dict[str, dict] = {}  # by pod uid: pods waiting for room
        # Each pod a fresh address of 127.<block>.0.0/16, apart from other agents on this machine;
        # never reused, so nothing still connected to a stopped pod reaches its successor.
        block = random.randrange(1, 255)
        self._pod_ips = (f"127.{block}.{high}.{low}" for high in range(256) for low in range(1, 255))
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()
        self._scheduling: asyncio.Lock | None = None  # one binding decision at a time, as kube-scheduler
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # lifecycle -------------------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> "NodeAgent":
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._thread_main, name=AGENT, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the node agent did not start in {timeout}s")
        if self._error:
            error, self._error = self._error, None
            raise RuntimeError(f"the node agent failed to start: {error}") from error
        return self

    def stop(self, timeout: float = 60):
        if self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout)
        if self._error:
            raise RuntimeError(f"the node agent failed: {self._error}") from self._error

    def _thread_main(self):
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as error:  # reported by start() or stop() in the caller's thread
            log.exception("node agent failed")
            self._error = error
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self):
        self._stopping = asyncio.Event()
        self._scheduling = asyncio.Lock()
        self.api = KubeApi(self.credentials, self.credentials.admin_token)
        try:
            for node in self.nodes:
                await self._register(node)
            listed = asyncio.Event()
            loops = [asyncio.create_task(self._watch_pods(listed)), asyncio.create_task(self._heartbeat())]
            waits = [asyncio.create_task(listed.wait()), asyncio.create_task(self._stopping.wait())]
            try:
                await asyncio.wait([*loops, waits[0]], return_when=asyncio.FIRST_COMPLETED)
                if listed.is_set():
                    self._ready.set()
                    await asyncio.wait([*loops, waits[1]], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (*loops, *waits, *self._tasks):
                    task.cancel()
                await asyncio.gather(*loops, *waits, *self._tasks, return_exceptions=True)
            for task in loops:
                if not task.cancelled() and task.exception():
                    raise task.exception()
        finally:
            await self._shutdown()
            await self.api.close()

    async def _shutdown(self):
        await asyncio.gather(
            *(self._stop_process(running, MAX_GRACE_SECONDS / 2) for running in self.processes.values())
        )
        self.processes.clear()
        pods = await self.api.request("GET", "/api/v1/pods")
        for pod in pods["items"]:
            if pod["spec"].get("nodeName") in self._node_names:
                await self._delete_pod(pod)
        for name in self._node_names:
            try:
                await self.api.request("DELETE", f"/api/v1/nodes/{name}")
            except ApiError as error:
                if error.status != 404:
                    raise

    def _spawn_task(self, coroutine):
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task):
        self._tasks.discard(task)
        if not task.cancelled() and task.exception():
            log.error("node agent task failed", exc_info=task.exception())

    # nodes -----------------------------------------------------------------------------------------

    async def _register(self, node: FakeNode):
        manifest = make_node(node, timestamp())
        try:
            await self.api.request("POST", "/api/v1/nodes", manifest)
        except ApiError as error:
            if error.status != 409:
                raise
            # Left by an agent that did not stop cleanly: this one's description wins.
            await self.api.request("DELETE", f"/api/v1/nodes/{node.name}")
            await self.api.request("POST", "/api/v1/nodes", manifest)
        await self.api.merge_patch(f"/api/v1/nodes/{node.name}/status", {"status": manifest["status"]})

    async def _heartbeat(self):
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            for name in self._node_names:
                try:
                    await self.api.merge_patch(
                        f"/api/v1/nodes/{name}/status", {"status": {"conditions": make_node_conditions(timestamp())}}
                    )
                except ApiError as error:
                    log.warning("node %s: heartbeat refused: %s", name, error)

    # pods ------------------------------------------------------------------------------------------

    async def _watch_pods(self, listed: asyncio.Event):
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        params = {"labelSelector": self.label_selector} if self.label_selector else {}
        while True:
            listing = await self.api.request("GET", path, params=params)
            version = listing["metadata"]["resourceVersion"]
            present = {pod["metadata"]["uid"] for pod in listing["items"]}
            for uid in set(self.processes) - present:
                await self._forget(uid)
            for pod in listing["items"]:
                await self._on_pod_event(pod)
            listed.set()
            while version:
                try:
                    async for event in self.api.watch(path, {**params, "resourceVersion": version}):
                        kind, pod = event["type"], event["object"]
                        if kind == "ERROR":  # usually 410 Gone: the version is too old, list again
                            version = None
                            break
                        version = pod["metadata"]["resourceVersion"]
                        if kind == "DELETED":
                            await self._forget(pod["metadata"]["uid"])
                        elif kind != "BOOKMARK":
                            await self._on_pod_event(pod)
                except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                    log.info("pod watch interrupted; watching again from %s", version)

    async def _on_pod_event(self, pod: dict):
        """A refusal concerns one pod (deleted meanwhile, say); the agent goes on with the others."""
        try:
            await self._on_pod(pod)
        except ApiError as error:
            log.warning("pod %s: %s", pod["metadata"]["name"], error)

    async def _on_pod(self, pod: dict):
        metadata, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
        uid = metadata["uid"]
        if metadata.get("deletionTimestamp"):
            self.unschedulable.pop(uid, None)
            running = self.processes.get(uid)
            if running and not running.terminating:
                running.terminating = True
                self._spawn_task(self._terminate(running, metadata.get("deletionGracePeriodSeconds")))
            elif not running and spec.get("nodeName") in self._node_names:
                await self._delete_pod(pod)
        elif status.get("phase") in ("Succeeded", "Failed"):
            return
        elif not spec.get("nodeName"):
            await self._schedule(pod)
        # Once per pod: a late event from before its start must not start it again.
        elif spec["nodeName"] in self._node_names and not status.get("containerStatuses") and uid not in self._started:
            self._started.add(uid)
            await self._start(pod)

    async def _requested_by_node(self) -> dict[str, Counter]:
        pods = await self.api.request(
            "GET", "/api/v1/pods", params={"fieldSelector": "status.phase!=Succeeded,status.phase!=Failed"}
        )
        requested: dict[str, Counter] = {}
        for pod in pods["items"]:
            if pod["spec"].get("nodeName"):
                requested.setdefault(pod["spec"]["nodeName"], Counter()).update(pod_requests(pod))
        return requested

    async def _schedule(self, pod: dict):
        async with self._scheduling:
            await self._bind(pod)

    async def _bind(self, pod: dict):
        metadata = pod["metadata"]
        node, why = choose_node(pod, self.nodes, await self._requested_by_node())
        if node is None:
            if self.unschedulable.get(metadata["uid"], {}).get("why") != why:
                await self._post_event(pod, "Warning", "FailedScheduling", why, "")
                await self.api.merge_patch(
                    f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/status",
                    {
                        "status": {
                            "phase": "Pending",
                            "conditions": [
                                {
                                    "type": "PodScheduled",
                                    "status": "False",
                                    "reason": "Unschedulable",
                                    "message": why,
                                    "lastTransitionTime": timestamp(),
                                }
                            ],
                        }
                    },
                )
            self.unschedulable[metadata["uid"]] = {"pod": pod, "why": why}
            return
        self.unschedulable.pop(metadata["uid"], None)
        try:
            await self.api.request(
                "POST",
                f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/binding",
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": metadata["name"], "uid": metadata["uid"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node.name},
                },
            )
        except ApiError as error:
            if error.status in (404, 409):  # deleted, or bound already by an earlier decision
                return
            raise
        await self._post_event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {metadata['namespace']}/{metadata['name']} to {node.name}",
            "",
        )

    async def _retry_unschedulable(self):
        """Room was freed: try the waiting pods again, as kube-scheduler does on cluster events."""
        for waiting in list(self.unschedulable.values()):
            await self._on_pod_event(waiting["pod"])

    async def _start(self, pod: dict):
        metadata = pod["metadata"]
        status_path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/status"
        if not self.run_processes:
            await self.api.merge_patch(status_path, {"status": make_running_status(pod, "127.0.0.1", 0, timestamp())})
            return
        ip = next(self._pod_ips)
        try:
            argv, env, cwd = await self._container_process(pod, ip)
        except PodStartError as error:
            await self._post_event(pod, "Warning", "Failed", str(error), pod["spec"]["nodeName"])
            await self.api.merge_patch(status_path, {"status": make_waiting_status(pod, error.reason, str(error))})
            return
        log_path = self.work_dir / f"{metadata['name']}.log"
        with open(log_path, "ab") as log_file:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        running = self.processes[metadata["uid"]] = PodProcess(process, pod)
        self._spawn_task(self._await_exit(running))
        await self.api.merge_patch(status_path, {"status": make_running_status(pod, ip, process.pid, timestamp())})
        await self._post_event(
            pod,
            "Normal",
            "Started",
            f"Started container {pod['spec']['containers'][0]['name']}",
            pod["spec"]["nodeName"],
        )

    async def _container_process(self, pod: dict, ip: str) -> tuple[list[str], dict[str, str], str]:
        """argv, environment and working dir of the pod's first container, as this machine runs it."""
        metadata, container = pod["metadata"], pod["spec"]["containers"][0]
        home = self.work_dir / metadata["name"]
        home.mkdir(exist_ok=True)
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env["HOME"] = str(home)
        env["HOSTNAME"] = metadata["name"]
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            kind, reference = (
                ("secrets", source["secretRef"]) if "secretRef" in source else ("configmaps", source["configMapRef"])
            )
            data = await self._referenced_data(metadata["namespace"], kind, reference)
            env.update({prefix + key: value for key, value in data.items()})
        for variable in container.get("env") or []:
            value = await self._env_value(pod, variable, ip, env)
            if value is not None:
                env[variable["name"]] = value
        words = (container.get("command") or []) + (container.get("args") or [])
        argv = [expand_references(word, env) for word in words]
        if not argv:
            raise PodStartError(
                "RunContainerError",
                "the container has neither command nor args; the image's own command is unknown to the node agent",
            )
        if argv[0] in self.commands:
            argv = self.commands[argv[0]] + argv[1:]
        elif executable := shutil.which(argv[0], path=env.get("PATH")):
            argv[0] = executable
        else:
            raise PodStartError(
                "RunContainerError",
                f"{argv[0]!r} is neither mapped to a local command "
                f"(NodeAgent commands: {sorted(self.commands)}) nor on PATH",
            )
        # 0.0.0.0 inside a pod means the pod's own address (see the module docstring).
        argv = [word.replace("0.0.0.0", ip) for word in argv]
        env = {name: value.replace("0.0.0.0", ip) for name, value in env.items()}
        return argv, env, container.get("workingDir") or str(home)

    async def _env_value(self, pod: dict, variable: dict, ip: str, env: dict[str, str]) -> str | None:
        if "valueFrom" not in variable:
            return expand_references(variable.get("value", ""), env)
        source = variable["valueFrom"]
        if "secretKeyRef" in source or "configMapKeyRef" in source:
            kind, reference = (
                ("secrets", source["secretKeyRef"])
                if "secretKeyRef" in source
                else ("configmaps", source["configMapKeyRef"])
            )
            data = await self._referenced_data(pod["metadata"]["namespace"], kind, reference)
            if reference["key"] not in data:
                if reference.get("optional"):
                    return None
                raise PodStartError(
                    "CreateContainerConfigError", f"couldn't find key {reference['key']} in {reference['name']}"
                )
            return data[reference["key"]]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            fields = {
                "metadata.name": pod["metadata"]["name"],
                "metadata.namespace": pod["metadata"]["namespace"],
                "metadata.uid": pod["metadata"]["uid"],
                "spec.nodeName": pod["spec"]["nodeName"],
                "status.podIP": ip,
                "status.hostIP": "127.0.0.1",
            }
            if path not in fields:
                raise PodStartError("CreateContainerConfigError", f"fieldRef {path} is not emulated")
            return fields[path]
        raise PodStartError("CreateContainerConfigError", f"env {variable['name']}: {sorted(source)} is not emulated")

    async def _referenced_data(self, namespace: str, kind: str, reference: dict) -> dict[str, str]:
        """The data of the Secret or ConfigMap (`kind`: "secrets" or "configmaps") `reference` names."""
        try:
            found = await self.api.request("GET", f"/api/v1/namespaces/{namespace}/{kind}/{reference['name']}")
        except ApiError as error:
            if error.status == 404 and reference.get("optional"):
                return {}
            raise PodStartError("CreateContainerConfigError", f"{kind} {reference['name']!r}: {error}") from error
        if kind == "secrets":
            return {key: base64.b64decode(value).decode() for key, value in (found.get("data") or {}).items()}
        return found.get("data") or {}

    async def _await_exit(self, running: PodProcess):
        exit_code = await running.process.wait()
        if running.terminating or not self.processes.pop(running.pod["metadata"]["uid"], None):
            return
        metadata = running.pod["metadata"]
        try:
            await self.api.merge_patch(
                f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/status",
                {"status": make_terminated_status(running.pod, _container_exit_code(exit_code), timestamp())},
            )
        except ApiError as error:
            if error.status != 404:
                raise
        await self._retry_unschedulable()

    async def _terminate(self, running: PodProcess, grace_seconds: int | None):
        """Graceful deletion: stop the process, then remove the pod object, as the kubelet does."""
        await self._stop_process(running, min(grace_seconds if grace_seconds is not None else 30, MAX_GRACE_SECONDS))
        self.processes.pop(running.pod["metadata"]["uid"], None)
        await self._delete_pod(running.pod)
        await self._retry_unschedulable()

    async def _forget(self, uid: str):
        """The pod is gone from the API (deleted at once, or while the agent was not watching)."""
        self.unschedulable.pop(uid, None)
        if running := self.processes.get(uid):
            await self._stop_process(running, 0)
            self.processes.pop(uid, None)
        await self._retry_unschedulable()

    async def _stop_process(self, running: PodProcess, grace_seconds: float):
        """SIGTERM to the process group, SIGKILL after `grace_seconds`."""
        running.terminating = True
        process = running.process
        for sent, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, None)):
            if process.returncode is not None:
                return
            try:
                os.killpg(process.pid, sent)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(process.wait(), wait)
            except TimeoutError:
                log.warning("pod %s ignored SIGTERM for %ss", running.pod["metadata"]["name"], grace_seconds)

    async def _delete_pod(self, pod: dict):
        metadata = pod["metadata"]
        try:
            await self.api.request(
                "DELETE",
                f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}",
                {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": metadata["uid"]},
                },
            )
        except ApiError as error:
            if error.status not in (404, 409):  # gone already, or a new pod of the same name
                raise

    async def _post_event(self, pod: dict, kind: str, reason: str, message: str, node: str):
        await self.api.request(
            "POST",
            f"/api/v1/namespaces/{pod['metadata']['namespace']}/events",
            make_event(pod, kind, reason, message, node, timestamp()),
        )


def _container_exit_code(returncode: int) -> int:
    """A container runtime reports death by signal N as exit code 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def local_commands() -> dict[str, list[str]]:
    """Commands a pod may name, played by this virtual environment's executables.

    A pod runs as its `runAsUser`; the agent runs it as whoever runs the tests, root on CI, where
    Jupyter servers refuse to start without `--allow-root`.
    """
    singleuser = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
    if os.geteuid() == 0:
        singleuser.append("--allow-root")
    return {"python": [sys.executable], "python3": [sys.executable], "jupyterhub-singleuser": singleuser}
