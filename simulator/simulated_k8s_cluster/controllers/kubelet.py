"""The kubelet: runs the pods bound to the simulated cluster's nodes by their behaviours.

What it reproduces of a real kubelet (``pkg/kubelet``, release 1.33):

- Pods bound (``spec.nodeName``) to an existing node that is Ready (a node without a ``Ready``
  condition counts as Ready) start: ``startTime``, ``hostIP``, ``podIP``, the conditions
  ``PodReadyToStartContainers``, ``Initialized``, ``Ready``, ``ContainersReady`` and
  ``PodScheduled``, and per container ``containerStatuses`` (``initContainerStatuses`` for init
  containers, which run one after the other first).
- Native sidecars (init containers with ``restartPolicy: Always``) start in their place among
  the init containers and let the next one start as soon as they run (no ``startupProbe`` is
  run: a sidecar counts as started once running); they run beside the regular containers,
  are ready while running, restart whenever they exit (whatever the pod's ``restartPolicy``)
  and are stopped once every regular container is done for good (``Killing``): one whose
  main process handles SIGTERM exits at once with its handler's code, one that does not (PID 1
  ignores it) runs until ``terminationGracePeriodSeconds`` (default 30 s) have passed and is
  killed (137) — the pod stays Running meanwhile. They never decide the pod's phase: the pod
  then succeeds or fails by its regular containers.
- A container waits ``ContainerCreating`` (``PodInitializing`` while init containers run) for
  half a simulated second — pulling its image when the pull policy is ``Always`` or the node
  does not have it yet (events ``Pulling``/``Pulled``, else ``Pulled`` "already present") — then
  runs (``Created``/``Started``) for its behaviour's ``seconds`` and terminates with its exit
  code (``Completed``/``Error``/``OOMKilled``). ``restartPolicy`` ``OnFailure``/``Always``
  restart it in place (``restartCount``, ``lastState``; the first restart at once, then
  ``CrashLoopBackOff`` 10 s, 20 s, … up to 300 s). The phase follows the kubelet's ``getPhase``.
- An image reference the docker reference grammar rejects waits ``InvalidImageName`` forever
  (events ``InspectFailed`` and ``Failed``); a behaviour's ``imagePull`` failure alternates
  ``ErrImagePull`` (one simulated second) and ``ImagePullBackOff`` until the next attempt
  (back-off 10 s doubling to 300 s), with ``Failed``/``BackOff`` events, and recovers on the
  first attempt ``imagePullSeconds`` after the first one.
- A pod being deleted has its containers stopped at once (exit code 143, reason ``Error``;
  never-started containers ``ContainerStatusUnknown``, 137), gets a terminal phase and is
  removed (``store.finish_deletion``). ``spec.activeDeadlineSeconds`` fails the pod with reason
  ``DeadlineExceeded``.
- :meth:`Kubelet.preempt` does what the scheduler does to a preemption victim: condition
  ``DisruptionTarget`` (``PreemptionByScheduler``), event ``Preempted``, graceful delete — after
  which the kubelet kills it as above (phase ``Failed``).
- Logs (:meth:`Kubelet.lines`) with the API server's and kubelet's errors.
- ``pods/exec`` and ``pods/attach`` (:meth:`Kubelet.exec_session`, :meth:`Kubelet.attach_target`):
  commands run in a running container by :mod:`..shell` against what the container's behaviour
  wrote (``files``, shared through the pod's volumes) and its processes; a signal to PID 1
  stops the container when its main process handles it (``signals``, or a shell ``trap``).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import logging
import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import commands
from ..behaviours import (
    BEHAVIOUR_ANNOTATION,
    DEFAULT_BEHAVIOUR,
    SIGNALS,
    Behaviour,
    ContainerFacts,
    ExecAnswer,
    RuleBook,
    expand,
    parse_annotation,
    runs_forever,
    trapped_signals,
)
from ..config import ConfigError
from ..resources import CONFIGMAPS, NODES, PODS, SECRETS, ApiError, not_found
from ..state import ClusterState

log = logging.getLogger("simulated_k8s_cluster")

Obj = dict[str, Any]

STARTUP_SECONDS = 0.5
"""Seconds (times ``timeScale``) from "start this container" to running (pull or creation)."""
ERR_IMAGE_PULL_SECONDS = 1.0
"""How long a failed pull shows ``ErrImagePull`` before ``ImagePullBackOff``."""
BACKOFF_INITIAL = 10.0
BACKOFF_MAX = 300.0
MAX_TERMINATION_MESSAGE_LENGTH = 4096
MAX_TERMINATION_LOG_BYTES = 2048
MAX_TERMINATION_LOG_LINES = 80
KILLED_EXIT_CODE = 143  # SIGTERM, what a process that exits on the stop signal reports
SIGKILL_EXIT_CODE = 137
DEFAULT_GRACE_SECONDS = 30.0
TERMINAL = ("Succeeded", "Failed")
KUBELET_CONDITIONS = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
FIRST_EXEC_PID = 10
"""Process IDs of exec sessions start here (PID 1 is the main process)."""
STANDARD_DIRS = frozenset(
    {"/", "/bin", "/dev", "/etc", "/home", "/proc", "/root", "/sbin", "/tmp", "/usr", "/var"}
)
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


# --- image references (github.com/distribution/reference) ---------------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = f"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_HOST = rf"(?:{_DOMAIN_NAME}|\[(?:[a-fA-F0-9:]+)\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = f"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE = re.compile(f"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$", re.ASCII)
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")


def _split_docker_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i]
    if i == -1 or (
        not any(ch in first for ch in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = "docker.io", name
    else:
        domain, remainder = first, name[i + 1 :]
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    return domain, remainder


def normalize_image(image: str) -> tuple[str | None, str]:
    """``(error, normalized name)`` of an image reference, as the kubelet parses it.

    The error is the kubelet's ``InvalidImageName`` message (``Failed to apply default image
    tag …``) or None; the name is the fully qualified reference with the default tag applied
    (``busybox`` → ``docker.io/library/busybox:latest``), what ``containerStatuses[].image``
    shows.
    """
    error: str | None = None
    if _IDENTIFIER.match(image):
        error = f"invalid repository name ({image}), cannot specify 64-byte hexadecimal strings"
    domain, remainder = _split_docker_domain(image)
    remote = remainder.split(":", 1)[0]
    if error is None and remote.lower() != remote:
        error = f"invalid reference format: repository name ({remote}) must be lowercase"
    full = f"{domain}/{remainder}"
    found = _REFERENCE.match(full)
    if error is None and found is None:
        if _REFERENCE.match(full.lower()):
            error = "repository name must be lowercase"
        else:
            error = "invalid reference format"
    if error is None and found is not None and len(found.group(1)) > 255:
        error = "repository name must not be more than 255 characters"
    if error is not None:
        return (
            f'Failed to apply default image tag "{image}": couldn\'t parse image name '
            f'"{image}": {error}'
        ), image
    assert found is not None
    if found.group(2) is None and found.group(3) is None:
        full += ":latest"
    return None, full


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _go_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"


# --- runtime state ------------------------------------------------------------------------------


@dataclass
class Instance:
    """One run of a container (a container ID)."""

    container_id: str
    started_at: float
    planned_end: float
    lines: list[tuple[float, str]]
    files: dict[str, str]
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None

    def emitted(self, now: float) -> list[tuple[float, str]]:
        until = now if self.finished_at is None else min(now, self.finished_at)
        return [entry for entry in self.lines if entry[0] <= until]


@dataclass
class ExecSession:
    """A process started in a container with ``pods/exec``."""

    pid: int
    argv: list[str]
    signal: str | None = None
    """The signal that ended it."""


@dataclass
class ContainerRun:
    name: str
    init: bool
    spec: Obj
    behaviour: Behaviour
    env: dict[str, str]
    image_error: str | None
    image_name: str
    argv: list[str] = field(default_factory=list)
    """The main process's command line (``command`` + ``args``, expanded)."""
    signals: Mapping[str, int] = field(default_factory=dict)
    """Signals the main process handles, and the exit code it then exits with."""
    exit_code_override: int | None = None
    kill_at: float | None = None
    """When a sidecar that ignores SIGTERM is killed (the end of the pod's grace period)."""
    """The exit code of the current run when a handled signal ends it early."""
    sessions: dict[int, ExecSession] = field(default_factory=dict)
    next_pid: int = FIRST_EXEC_PID
    stage: str = "pending"
    """pending → creating → running → done, with invalid / pull-failed / pull-backoff /
    backoff (CrashLoopBackOff) on the way."""
    waiting_reason: str = "ContainerCreating"
    waiting_message: str | None = None
    next_at: float | None = None
    current: Instance | None = None
    last: Instance | None = None
    earlier: Instance | None = None
    """The run before ``last`` (what ``lastState`` shows once ``last`` becomes the state)."""
    restart_count: int = 0
    crashes: int = 0
    pull_first_at: float | None = None
    pull_attempts: int = 0
    pull_retry_at: float = 0.0
    pulling: bool = False
    serial: int = 0

    @property
    def sidecar(self) -> bool:
        """A restartable init container (``restartPolicy: Always``): a native sidecar."""
        return self.init and self.spec.get("restartPolicy") == "Always"

    @property
    def field_path(self) -> str:
        return f"spec.{'initContainers' if self.init else 'containers'}{{{self.name}}}"

    @property
    def started(self) -> bool:
        return self.stage == "running"

    def succeeded(self) -> bool:
        return self.stage == "done" and self.current is not None and self.current.exit_code == 0


@dataclass
class PodRun:
    uid: str
    namespace: str
    name: str
    node: str
    acked_at: float
    host_ip: str
    pod_ip: str
    init: list[ContainerRun]
    main: list[ContainerRun]
    running_since: float | None = None
    preempt_after: float | None = None
    preempt_at: float | None = None
    deadline_at: float | None = None
    killed_at: float | None = None
    deadline_exceeded: bool = False
    initialized: bool = False
    """Whether the regular containers were started (every init container done or started)."""
    sidecars_stopped: bool = False
    """Whether the sidecars were stopped because the pod is done (its phase is then terminal)."""
    terminal: bool = False
    sandbox_ready: bool = True
    images_pulled: set[str] = field(default_factory=set)

    @property
    def containers(self) -> list[ContainerRun]:
        return [*self.init, *self.main]

    def by_name(self, name: str) -> ContainerRun | None:
        for container in self.containers:
            if container.name == name:
                return container
        return None


# --- the controller -----------------------------------------------------------------------------


class Kubelet:
    """Every node's kubelet in one controller (pods of all nodes, by their ``nodeName``)."""

    name = "kubelet"

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.rules = RuleBook(state.config.behaviours)
        self._pods: dict[str, PodRun] = {}
        self._synced: dict[str, tuple[str | None, float | None]] = {}
        """pod uid -> (its resourceVersion after the last sync, when it next needs one)."""
        self._node_images: dict[str, set[str]] = {}
        self._host_ips: dict[str, str] = {}
        self._ip_serial = 0

    # --- public API --------------------------------------------------------------------------

    def add_behaviour(self, rule: dict[str, Any]) -> None:
        """Add a rule, checked before the configured ones (the latest added first)."""
        self.rules.add(rule)

    def files(self, pod: Obj, container: str) -> dict[str, str]:
        """The files the container's latest run wrote (its behaviour's ``files``)."""
        run = self._pods.get(pod["metadata"].get("uid", ""))
        found = run.by_name(container) if run else None
        if found is None:
            return {}
        instance = found.current or found.last
        return dict(instance.files) if instance else {}

    def preempt(self, namespace: str, name: str) -> None:
        """Preempt a pod as the scheduler does: ``DisruptionTarget``, ``Preempted``, delete."""
        store = self.state.store
        pod = store.get(PODS, namespace, name)
        if pod is None:
            raise not_found(PODS, name)
        spec = pod.get("spec") or {}
        status = pod.setdefault("status", {})
        conditions = [
            c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"
        ]
        scheduler = spec.get("schedulerName") or "default-scheduler"
        conditions.insert(
            0,
            {
                "type": "DisruptionTarget",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": self.state.clock.timestamp(),
                "reason": "PreemptionByScheduler",
                "message": f"{scheduler}: preempting to accommodate a higher priority pod",
            },
        )
        status["conditions"] = conditions
        pod = store.update(PODS, pod)
        node = spec.get("nodeName") or ""
        preemptor = _digest("preemptor", pod["metadata"]["uid"])
        preemptor_uid = (
            f"{preemptor[:8]}-{preemptor[8:12]}-{preemptor[12:16]}-"
            f"{preemptor[16:20]}-{preemptor[20:32]}"
        )
        self.state.events.record(
            pod,
            "Normal",
            "Preempted",
            f"Preempted by pod {preemptor_uid} on node {node}",
            component="default-scheduler",
        )
        store.delete(PODS, namespace, name, propagation="Background")

    def lines(
        self, pod: Obj, container: str | None, previous: bool
    ) -> tuple[list[tuple[float, str]], bool]:
        """Log lines of a container, with the API server's and the kubelet's errors."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        name = meta["name"]
        container = choose_container(pod, container)
        if not spec.get("nodeName"):
            return [], True  # not on a node yet: the API server answers with an empty log
        status = pod.get("status") or {}
        statuses = [
            *(status.get("containerStatuses") or []),
            *(status.get("initContainerStatuses") or []),
        ]
        found = next((s for s in statuses if s.get("name") == container), None)
        if found is None:
            raise ApiError(
                400,
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating',
            )
        state, last = found.get("state") or {}, found.get("lastState") or {}
        last_terminated = last.get("terminated") or None
        if previous:
            if not last_terminated or not last_terminated.get("containerID"):
                raise ApiError(
                    400, f'previous terminated container "{container}" in pod "{name}" not found'
                )
            container_id = last_terminated["containerID"]
        elif state.get("running"):
            container_id = found.get("containerID", "")
        elif state.get("terminated"):
            container_id = state["terminated"].get("containerID") or ""
            if not container_id:
                if last_terminated and last_terminated.get("containerID"):
                    container_id = last_terminated["containerID"]
                else:
                    raise ApiError(400, f'container "{container}" in pod "{name}" is terminated')
        elif last_terminated:
            container_id = last_terminated.get("containerID") or ""
            if not container_id:
                raise ApiError(400, f'container "{container}" in pod "{name}" is terminated')
        elif state.get("waiting"):
            reason = state["waiting"].get("reason", "")
            if reason == "ErrImagePull":
                why = "image can't be pulled"
            elif reason == "ImagePullBackOff":
                why = "trying and failing to pull image"
            else:
                why = reason
            raise ApiError(
                400, f'container "{container}" in pod "{name}" is waiting to start: {why}'
            )
        else:
            raise ApiError(
                400, f'container "{container}" in pod "{name}" is waiting to start - no logs yet'
            )
        run = self._pods.get(meta.get("uid", ""))
        crun = run.by_name(container) if run else None
        instance = None
        if crun is not None:
            for candidate in (crun.current, crun.last):
                if candidate is not None and candidate.container_id == container_id:
                    instance = candidate
        if instance is None:
            return [], True
        now = self.state.clock.now()
        finished = instance.finished_at is not None and instance.finished_at <= now
        return instance.emitted(now), finished

    # --- exec and attach ----------------------------------------------------------------------

    def _running(self, pod: Obj, container: str | None) -> tuple[PodRun, ContainerRun, str]:
        """The running container a stream connects to, with the API server's and the kubelet's
        errors (``StreamError`` for the kubelet's plain-text ones)."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        name = choose_container(pod, container)
        if not spec.get("nodeName"):
            raise ApiError(400, f"pod {meta['name']} does not have a host assigned")
        run = self._pods.get(meta.get("uid", ""))
        crun = run.by_name(name) if run is not None else None
        if run is None or crun is None or crun.stage != "running" or crun.current is None:
            raise StreamError(f'container not found ("{name}")')
        return run, crun, name

    def exec_session(self, pod: Obj, container: str | None, argv: list[str]) -> ExecView:
        """Start a process in a running container (what ``pods/exec`` connects to)."""
        run, crun, _ = self._running(pod, container)
        pid = crun.next_pid
        crun.next_pid += 1
        session = ExecSession(pid=pid, argv=list(argv))
        crun.sessions[pid] = session
        return ExecView(self, run, crun, session)

    def attach_target(self, pod: Obj, container: str | None) -> AttachView:
        """The main process of a running container (what ``pods/attach`` connects to)."""
        run, crun, _ = self._running(pod, container)
        return AttachView(self, run, crun)

    def signal_main(self, run: PodRun, crun: ContainerRun, signal: str) -> None:
        """Deliver a signal to a container's main process (PID 1): it exits with the code its
        handler gives, at once; PID 1 ignores signals it has no handler for."""
        if signal not in crun.signals or crun.stage != "running" or crun.current is None:
            return
        now = self.state.clock.now()
        crun.exit_code_override = crun.signals[signal]
        crun.next_at = now
        pod = self.state.store.peek(PODS, run.namespace, run.name)
        if pod is not None:
            self._sync(pod, now)

    def visible_files(self, run: PodRun, crun: ContainerRun) -> dict[str, str]:
        """The files a container sees: its own, and those other containers wrote into volumes
        it mounts too (at its own mount path)."""
        out: dict[str, str] = {}
        own: dict[str, str] = {}
        for other in run.containers:
            instance = other.current or other.last
            if instance is None or not instance.container_id:
                continue
            if other is crun:
                own = {_abs_path(path): content for path, content in instance.files.items()}
                continue
            for path, content in instance.files.items():
                location = _volume_of(other.spec, path)
                if location is None:
                    continue
                for mount_path, volume in _mounts(crun.spec):
                    if volume == location[0]:
                        out[posixpath.join(mount_path, location[1]).rstrip("/")] = content
        out.update(own)
        return out

    # --- the loop ----------------------------------------------------------------------------

    def reconcile(self) -> float | None:
        store = self.state.store
        now = self.state.clock.now()
        wake: float | None = None
        alive: set[str] = set()
        for pod in list(store.objects(PODS)):
            meta = pod["metadata"]
            uid = meta.get("uid", "")
            alive.add(uid)
            synced = self._synced.get(uid)
            if (
                synced is not None
                and synced[0] == meta.get("resourceVersion")
                and (synced[1] is None or synced[1] > now)
            ):
                wanted = synced[1]  # a running pod nobody changed, with nothing due yet
            else:
                try:
                    wanted = self._sync(pod, now)
                except Exception:  # one broken pod must not stop the others
                    log.exception(
                        "kubelet failed on pod %s/%s", meta.get("namespace"), meta["name"]
                    )
                    wanted = now + 1.0
            if wanted is not None and (wake is None or wanted < wake):
                wake = wanted
        for uid in list(self._pods):
            if uid not in alive:
                del self._pods[uid]
        for uid in list(self._synced):
            if uid not in alive:
                del self._synced[uid]
        return wake

    def _sync(self, pod: Obj, now: float) -> float | None:
        """Bring one pod up to ``now``; when it next needs it (None: only once changed).

        A pod the kubelet runs is remembered with its resourceVersion after the pass, so the
        next passes skip it until it changes or its time comes: a pass over thousands of
        running pods then costs a lookup each, as a real kubelet's pod workers sleep too."""
        wanted = self._sync_pod(pod, now)
        meta = pod["metadata"]
        uid = meta.get("uid", "")
        current = self.state.store.peek(PODS, meta.get("namespace", ""), meta["name"])
        if uid in self._pods and current is not None and current["metadata"].get("uid") == uid:
            self._synced[uid] = (current["metadata"].get("resourceVersion"), wanted)
        else:
            self._synced.pop(uid, None)
        return wanted

    def _sync_pod(self, pod: Obj, now: float) -> float | None:
        store = self.state.store
        meta, spec = pod["metadata"], pod.get("spec") or {}
        namespace, name = meta.get("namespace", ""), meta["name"]
        deleting = bool(meta.get("deletionTimestamp"))
        run = self._pods.get(meta.get("uid", ""))
        if run is None:
            node_name = spec.get("nodeName")
            if not node_name:
                return None
            phase = (pod.get("status") or {}).get("phase")
            node = store.peek(NODES, "", node_name)
            if deleting and (phase in TERMINAL or node is None or not _node_ready(node)):
                # Nothing runs: confirm the deletion (the pod GC does it for vanished nodes).
                store.finish_deletion(PODS, namespace, name)
                return None
            if phase in TERMINAL or node is None or not _node_ready(node):
                return None
            run = self._admit(pod, node, now)
            self._pods[run.uid] = run
        if (pod.get("status") or {}).get("phase") in TERMINAL:
            run.terminal = True  # made terminal by someone else (the pod GC of a lost node)
        if run.terminal:
            if deleting:
                store.finish_deletion(PODS, namespace, name)
            return None
        self._advance(pod, run, now)
        if run.preempt_at is not None and now >= run.preempt_at and run.killed_at is None:
            run.preempt_at = None
            self.preempt(namespace, name)
            refreshed = store.peek(PODS, namespace, name)
            if refreshed is None:
                return None
            pod = refreshed
            deleting = bool(pod["metadata"].get("deletionTimestamp"))
        if run.deadline_at is not None and now >= run.deadline_at and run.killed_at is None:
            run.deadline_exceeded = True
            message = "Pod was active on the node longer than the specified deadline"
            self._event(pod, run, "Warning", "DeadlineExceeded", message)
            self._kill(pod, run, now)
        if deleting and run.killed_at is None:
            self._kill(pod, run, now)
        status = self._status(pod, run, now)
        if status["phase"] in TERMINAL:
            run.terminal = True
        if status != pod.get("status"):
            stored = store.peek(PODS, namespace, name)
            if stored is not None:
                # A shallow copy is enough: update() copies what it stores.
                store.update(PODS, {**stored, "status": status})
        if run.terminal:
            if deleting:
                store.finish_deletion(PODS, namespace, name)
            return None
        times = [c.next_at for c in run.containers if c.next_at is not None]
        times += [t for t in (run.preempt_at, run.deadline_at) if t is not None]
        return min(times) if times else None

    # --- starting a pod ----------------------------------------------------------------------

    def _admit(self, pod: Obj, node: Obj, now: float) -> PodRun:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        node_name = node["metadata"]["name"]
        self._ip_serial += 1
        serial = self._ip_serial
        run = PodRun(
            uid=meta.get("uid", ""),
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            node=node_name,
            acked_at=now,
            host_ip=self._host_ip(node),
            pod_ip=f"10.{64 + serial // 62500 % 64}.{serial // 250 % 250}.{serial % 250 + 2}",
            init=[],
            main=[],
        )
        overrides: dict[str, Behaviour] = {}
        annotation = (meta.get("annotations") or {}).get(BEHAVIOUR_ANNOTATION)
        if annotation:
            try:
                overrides = parse_annotation(
                    annotation,
                    [c["name"] for c in spec.get("containers") or []],
                    [c["name"] for c in spec.get("initContainers") or []],
                )
            except ConfigError as exc:
                self.state.events.record(
                    pod,
                    "Warning",
                    "InvalidBehaviour",
                    str(exc),
                    component="kubelet",
                    host=node_name,
                )
        labels = meta.get("labels") or {}
        for group, init in (("initContainers", True), ("containers", False)):
            for container in spec.get(group) or []:
                env = self._container_env(pod, container, run)
                command = [*(container.get("command") or []), *(container.get("args") or [])]
                command_line = " ".join(expand(str(part), env) for part in command)
                facts = ContainerFacts(
                    namespace=run.namespace,
                    pod_name=run.name,
                    container=container["name"],
                    image=str(container.get("image") or ""),
                    command_line=command_line,
                    env=env,
                    labels=labels,
                    init=init,
                )
                argv = [expand(str(part), env) for part in command]
                behaviour = overrides.get(container["name"]) or self.rules.select(run.uid, facts)
                if behaviour is DEFAULT_BEHAVIOUR and runs_forever(argv):
                    behaviour = dataclasses.replace(behaviour, seconds=math.inf)
                signals = behaviour.signals
                if signals is None:
                    signals = trapped_signals(argv)
                error, image_name = normalize_image(facts.image)
                crun = ContainerRun(
                    name=container["name"],
                    init=init,
                    spec=container,
                    behaviour=behaviour,
                    env={
                        "POD_NAME": run.name,
                        "POD_NAMESPACE": run.namespace,
                        "CONTAINER_NAME": container["name"],
                        **env,
                    },
                    image_error=error,
                    image_name=image_name,
                    argv=argv,
                    signals=dict(signals),
                )
                (run.init if init else run.main).append(crun)
                if not init and behaviour.preempt_after_seconds is not None:
                    after = behaviour.preempt_after_seconds
                    run.preempt_after = (
                        after if run.preempt_after is None else min(run.preempt_after, after)
                    )
        waiting = "PodInitializing" if run.init else "ContainerCreating"
        for crun in run.containers:
            crun.waiting_reason = waiting
        first = run.init[:1] or run.main
        run.initialized = not run.init
        for crun in first:
            crun.next_at = now
        deadline = spec.get("activeDeadlineSeconds")
        if isinstance(deadline, (int, float)) and not isinstance(deadline, bool):
            run.deadline_at = now + float(deadline)
        return run

    def _host_ip(self, node: Obj) -> str:
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP" and address.get("address"):
                return str(address["address"])
        name = node["metadata"]["name"]
        if name not in self._host_ips:
            n = len(self._host_ips) + 2
            self._host_ips[name] = f"10.128.{n // 250}.{n % 250}"
        return self._host_ips[name]

    def _container_env(self, pod: Obj, container: Obj, run: PodRun) -> dict[str, str]:
        env: dict[str, str] = {}
        for var in container.get("env") or []:
            if not isinstance(var, dict) or not var.get("name"):
                continue
            if "value" in var and var["value"] is not None:
                env[var["name"]] = expand(str(var["value"]), env)
                continue
            value = self._value_from(pod, var.get("valueFrom") or {}, run)
            if value is not None:
                env[var["name"]] = value
            elif "valueFrom" not in var:
                env[var["name"]] = ""
        return env

    def _value_from(self, pod: Obj, source: Obj, run: PodRun) -> str | None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        field_ref = source.get("fieldRef")
        if field_ref:
            path = str(field_ref.get("fieldPath", ""))
            simple = {
                "metadata.name": meta.get("name"),
                "metadata.namespace": meta.get("namespace"),
                "metadata.uid": meta.get("uid"),
                "spec.nodeName": spec.get("nodeName"),
                "spec.serviceAccountName": spec.get("serviceAccountName"),
                "status.hostIP": run.host_ip,
                "status.podIP": run.pod_ip,
            }
            if path in simple:
                value = simple[path]
                return None if value is None else str(value)
            found = re.match(r"^metadata\.(labels|annotations)\['([^']*)'\]$", path)
            if found:
                value = (meta.get(found.group(1)) or {}).get(found.group(2))
                return None if value is None else str(value)
            return None
        store = self.state.store
        namespace = meta.get("namespace", "")
        for key, resource in (("configMapKeyRef", CONFIGMAPS), ("secretKeyRef", SECRETS)):
            ref = source.get(key)
            if not ref:
                continue
            obj = store.peek(resource, namespace, str(ref.get("name", "")))
            if obj is None:
                return None
            data = obj.get("data") or {}
            if ref.get("key") in data:
                value = data[ref["key"]]
                if resource is SECRETS:
                    try:
                        return base64.b64decode(value).decode()
                    except ValueError:
                        return None
                return str(value)
            string_data = obj.get("stringData") or {}
            if ref.get("key") in string_data:
                return str(string_data[ref["key"]])
            return None
        return None

    # --- the container state machine ---------------------------------------------------------

    def _advance(self, pod: Obj, run: PodRun, now: float) -> None:
        """Apply every container transition due up to ``now``, in time order."""
        for _ in range(100_000):
            due = [c for c in run.containers if c.next_at is not None and c.next_at <= now]
            if not due:
                return
            crun = min(due, key=lambda c: c.next_at or 0.0)
            at = crun.next_at
            assert at is not None
            crun.next_at = None
            self._step(pod, run, crun, at)
            if run.running_since is None and run.main and all(c.started for c in run.main):
                run.running_since = at
                if run.preempt_after is not None:
                    run.preempt_at = at + self.state.clock.scaled(run.preempt_after)

    def _step(self, pod: Obj, run: PodRun, crun: ContainerRun, at: float) -> None:
        stage = crun.stage
        if stage == "pending":
            if crun.image_error is not None:
                crun.stage = "invalid"
                crun.waiting_reason, crun.waiting_message = "InvalidImageName", crun.image_error
                self._event(pod, run, "Warning", "InspectFailed", crun.image_error, crun)
                self._event(pod, run, "Warning", "Failed", "Error: InvalidImageName", crun)
                return
            self._pull(pod, run, crun, at)
        elif stage == "pull-failed":
            crun.stage = "pull-backoff"
            image = crun.spec.get("image", "")
            crun.waiting_reason = "ImagePullBackOff"
            crun.waiting_message = f'Back-off pulling image "{image}"'
            self._event(pod, run, "Normal", "BackOff", crun.waiting_message, crun)
            self._event(pod, run, "Warning", "Failed", "Error: ImagePullBackOff", crun)
            crun.next_at = max(crun.pull_retry_at, at)
        elif stage == "pull-backoff":
            self._pull(pod, run, crun, at)
        elif stage == "creating":
            image = crun.spec.get("image", "")
            if crun.pulling:
                pulled = self.state.clock.scaled(STARTUP_SECONDS)
                self._event(
                    pod,
                    run,
                    "Normal",
                    "Pulled",
                    f'Successfully pulled image "{image}" in '
                    f"{_go_duration(pulled)} ({_go_duration(pulled)} "
                    f"including waiting). Image size: "
                    f"{10_000_000 + int(_digest(image)[:6], 16) * 10} bytes.",
                    crun,
                )
                self._node_images.setdefault(run.node, set()).add(image)
                crun.pulling = False
            self._start(pod, run, crun, at)
        elif stage == "running":
            self._finish(pod, run, crun, at)
        elif stage == "backoff":
            self._start(pod, run, crun, at)

    def _pull(self, pod: Obj, run: PodRun, crun: ContainerRun, at: float) -> None:
        image = str(crun.spec.get("image", ""))
        behaviour, clock = crun.behaviour, self.state.clock
        if crun.pull_first_at is None:
            crun.pull_first_at = at
        failing = behaviour.image_pull is not None and not (
            behaviour.image_pull_seconds is not None
            and at - crun.pull_first_at >= clock.scaled(behaviour.image_pull_seconds)
        )
        present = image in self._node_images.get(run.node, set())
        policy = crun.spec.get("imagePullPolicy", "IfNotPresent")
        crun.stage = "creating"
        crun.waiting_reason = "PodInitializing" if run.init else "ContainerCreating"
        crun.waiting_message = None
        if failing:
            self._event(pod, run, "Normal", "Pulling", f'Pulling image "{image}"', crun)
            _, normalized = normalize_image(image)
            message = behaviour.image_pull_message or (
                f"rpc error: code = NotFound desc = failed to pull and unpack image "
                f'"{normalized}": failed to resolve reference "{normalized}": {normalized}: '
                "not found"
            )
            self._event(
                pod, run, "Warning", "Failed", f'Failed to pull image "{image}": {message}', crun
            )
            self._event(pod, run, "Warning", "Failed", "Error: ErrImagePull", crun)
            crun.pull_attempts += 1
            delay = min(BACKOFF_INITIAL * 2 ** (crun.pull_attempts - 1), BACKOFF_MAX)
            crun.pull_retry_at = at + clock.scaled(delay)
            crun.stage = "pull-failed"
            crun.waiting_reason, crun.waiting_message = "ErrImagePull", message
            crun.next_at = at + clock.scaled(ERR_IMAGE_PULL_SECONDS)
            return
        if policy == "Always" or (policy != "Never" and not present):
            self._event(pod, run, "Normal", "Pulling", f'Pulling image "{image}"', crun)
            crun.pulling = True
        else:
            self._event(
                pod,
                run,
                "Normal",
                "Pulled",
                f'Container image "{image}" already present on machine',
                crun,
            )
        crun.next_at = at + clock.scaled(STARTUP_SECONDS)

    def _start(self, pod: Obj, run: PodRun, crun: ContainerRun, at: float) -> None:
        behaviour = crun.behaviour
        crun.serial += 1
        container_id = "containerd://" + _digest(run.uid, crun.name, str(crun.serial))
        lines = [expand(line, crun.env) for line in behaviour.stdout]
        count = len(lines)
        seconds = self.state.clock.scaled(behaviour.seconds)
        spread = 0.0 if behaviour.forever else seconds
        timed = [(at + spread * i / count, line) for i, line in enumerate(lines)]
        instance = Instance(
            container_id=container_id,
            started_at=at,
            planned_end=at + seconds,
            lines=timed,
            files={k: expand(v, crun.env) for k, v in behaviour.files.items()},
        )
        crun.current = instance
        if self.state.config.run_commands and behaviour is DEFAULT_BEHAVIOUR:
            self._run_command(run, crun, instance, at)
        crun.stage = "running"
        crun.waiting_reason, crun.waiting_message = "", None
        crun.next_at = None if behaviour.forever else instance.planned_end
        self._event(pod, run, "Normal", "Created", f"Created container: {crun.name}", crun)
        self._event(pod, run, "Normal", "Started", f"Started container {crun.name}", crun)
        if crun.sidecar and crun.serial == 1:
            # A sidecar does not block the next init container once it has started (with no
            # startupProbe, which this kubelet does not run, it counts as started at once).
            self._init_next(run, crun, at)

    def _run_command(self, run: PodRun, crun: ContainerRun, instance: Instance, at: float) -> None:
        """``runCommands``: run the container's command now (see :mod:`..commands`)."""
        python = self.state.config.run_python
        argv = commands.main_argv(crun.spec, crun.argv)
        if argv is None or not commands.runnable(argv, python):
            return
        files = {**self.visible_files(run, crun), **commands.staged_files(crun.env)}
        process = commands.MainProcess(
            run.name,
            crun.env,
            files,
            lambda p: p in STANDARD_DIRS or any(m == p for m, _ in _mounts(crun.spec)),
        )
        outcome = commands.run(argv, process, python)
        if outcome is None:
            return
        seconds = crun.behaviour.seconds + outcome.seconds
        lines = commands.lines_of(outcome.stdout)
        instance.lines = [
            (at + seconds * i / max(len(lines), 1), line) for i, line in enumerate(lines)
        ]
        instance.planned_end = at + seconds
        before = self.visible_files(run, crun)
        for path, content in process.files.items():
            if before.get(path) != content:
                instance.files[path] = content
        if outcome.exit_code != 0:
            crun.exit_code_override = outcome.exit_code

    def _terminate(
        self, crun: ContainerRun, instance: Instance, at: float, exit_code: int, reason: str
    ) -> None:
        instance.finished_at = at
        instance.exit_code = exit_code
        instance.reason = reason
        message = crun.behaviour.termination_message
        policy = crun.spec.get("terminationMessagePolicy", "File")
        if message is not None:
            message = expand(message, crun.env)[:MAX_TERMINATION_MESSAGE_LENGTH]
        elif policy == "FallbackToLogsOnError" and exit_code != 0:
            tail = [line for _, line in instance.emitted(at)][-MAX_TERMINATION_LOG_LINES:]
            data = "".join(f"{line}\n" for line in tail).encode()
            message = data[-MAX_TERMINATION_LOG_BYTES:].decode(errors="ignore") or None
        instance.message = message

    def _finish(self, pod: Obj, run: PodRun, crun: ContainerRun, at: float) -> None:
        instance = crun.current
        assert instance is not None
        behaviour = crun.behaviour
        exit_code, reason = behaviour.exit_code, behaviour.reason
        if crun.kill_at is not None and at >= crun.kill_at:
            exit_code, reason = SIGKILL_EXIT_CODE, "Error"
        elif crun.exit_code_override is not None:
            exit_code = crun.exit_code_override
            reason = "Completed" if exit_code == 0 else "Error"
            crun.exit_code_override = None
        self._terminate(crun, instance, at, exit_code, reason)
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        failed = exit_code != 0
        if crun.sidecar:
            # A sidecar restarts whatever the pod's restartPolicy, until the pod is done.
            restart = not run.sidecars_stopped
        else:
            restart = policy == "Always" or (policy == "OnFailure" and failed)
        if not restart:
            crun.stage = "done"
            if crun.init:
                self._init_done(pod, run, crun, at)
            elif all(c.stage == "done" for c in run.main):
                self._stop_sidecars(pod, run, at)
            return
        crun.crashes += 1
        crun.restart_count += 1
        crun.earlier = crun.last
        crun.last = instance
        crun.current = None
        if crun.crashes == 1:
            self._start(pod, run, crun, at)
            return
        delay = self.state.clock.scaled(min(BACKOFF_INITIAL * 2 ** (crun.crashes - 2), BACKOFF_MAX))
        crun.stage = "backoff"
        crun.waiting_reason = "CrashLoopBackOff"
        crun.waiting_message = (
            f"back-off {_go_duration(delay)} restarting failed container="
            f"{crun.name} pod={run.name}_{run.namespace}({run.uid})"
        )
        self._event(
            pod,
            run,
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {crun.name} in pod "
            f"{run.name}_{run.namespace}({run.uid})",
            crun,
        )
        crun.next_at = at + delay

    def _init_done(self, pod: Obj, run: PodRun, crun: ContainerRun, at: float) -> None:
        if crun.sidecar:
            return
        if not crun.succeeded():
            self._stop_sidecars(pod, run, at)  # restartPolicy Never: the pod fails
            return
        self._init_next(run, crun, at)

    def _init_next(self, run: PodRun, crun: ContainerRun, at: float) -> None:
        """Start what comes after an init container: the next one, or the regular containers."""
        if run.initialized:
            return
        index = run.init.index(crun)
        if index + 1 < len(run.init):
            run.init[index + 1].next_at = at
            return
        run.initialized = True
        for main in run.main:
            main.next_at = at

    def _stop_sidecars(self, pod: Obj, run: PodRun, at: float) -> None:
        """Stop the sidecars once the pod is done (all at once; the kubelet goes in reverse
        order). SIGTERM first: a sidecar whose main process handles it exits at once with its
        handler's code; one that ignores it (PID 1 without a handler) runs on until the end of
        ``terminationGracePeriodSeconds`` (or its own end) and is then killed (137)."""
        sidecars = [c for c in run.init if c.sidecar]
        if not sidecars:
            return
        run.sidecars_stopped = True
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        if not isinstance(grace, (int, float)) or isinstance(grace, bool) or grace < 0:
            grace = DEFAULT_GRACE_SECONDS
        for crun in reversed(sidecars):
            if crun.stage == "running" and crun.current is not None:
                self._event(pod, run, "Normal", "Killing", f"Stopping container {crun.name}", crun)
                if "TERM" in crun.signals:
                    crun.next_at = None
                    code = crun.signals["TERM"]
                    self._terminate(
                        crun, crun.current, at, code, "Completed" if code == 0 else "Error"
                    )
                    crun.stage = "done"
                else:
                    crun.kill_at = at + float(grace)
                    if crun.next_at is None or crun.next_at > crun.kill_at:
                        crun.next_at = crun.kill_at
                continue
            crun.next_at = None
            if crun.current is None and crun.last is not None:
                crun.current, crun.last = crun.last, crun.earlier  # stopped while backing off
            elif crun.stage != "done":
                crun.current = Instance(
                    container_id="",
                    started_at=at,
                    planned_end=at,
                    lines=[],
                    files={},
                    finished_at=at,
                    exit_code=137,
                    reason="ContainerStatusUnknown",
                    message="The container could not be located when the pod was terminated",
                )
            crun.stage = "done"

    def _kill(self, pod: Obj, run: PodRun, now: float) -> None:
        run.killed_at = now
        for crun in run.containers:
            crun.next_at = None
            if crun.stage == "running" and crun.current is not None:
                self._event(pod, run, "Normal", "Killing", f"Stopping container {crun.name}", crun)
                self._terminate(crun, crun.current, now, KILLED_EXIT_CODE, "Error")
            elif crun.stage != "done":
                crun.current = Instance(
                    container_id="",
                    started_at=now,
                    planned_end=now,
                    lines=[],
                    files={},
                    finished_at=now,
                    exit_code=137,
                    reason="ContainerStatusUnknown",
                    message="The container could not be located when the pod was terminated",
                )
            crun.stage = "done"

    # --- status ------------------------------------------------------------------------------

    def _container_status(self, crun: ContainerRun) -> Obj:
        state: Obj
        ready = started = False
        image = crun.spec.get("image", "")
        image_id = ""
        container_id = None
        if crun.stage == "running" and crun.current is not None:
            state = {"running": {"startedAt": self._ts(crun.current.started_at)}}
            started = True
            # a regular init container is ready once it has succeeded, not while it runs
            ready = not crun.init or crun.sidecar
            container_id = crun.current.container_id
        elif crun.stage == "done" and crun.current is not None:
            state = {"terminated": self._terminated(crun.current)}
            container_id = crun.current.container_id or None
            ready = crun.init and not crun.sidecar and crun.current.exit_code == 0
        else:
            waiting: Obj = {"reason": crun.waiting_reason}
            if crun.waiting_message:
                waiting["message"] = crun.waiting_message
            state = {"waiting": waiting}
        if (crun.current is not None and crun.current.container_id) or crun.last is not None:
            image = crun.image_name
            repo = crun.image_name.split("@", 1)[0]
            if "@" not in crun.image_name:
                repo = repo.rsplit(":", 1)[0]
            image_id = f"{repo}@sha256:{_digest('image', crun.image_name)}"
        status: Obj = {
            "name": crun.name,
            "state": state,
            "lastState": {},
            "ready": ready,
            "restartCount": crun.restart_count,
            "image": image,
            "imageID": image_id,
        }
        if crun.last is not None:
            status["lastState"] = {"terminated": self._terminated(crun.last)}
        if container_id:
            status["containerID"] = container_id
        status["started"] = started
        return status

    def _terminated(self, instance: Instance) -> Obj:
        state: Obj = {"exitCode": instance.exit_code, "reason": instance.reason}
        if instance.message:
            state["message"] = instance.message
        if instance.container_id:
            state["startedAt"] = self._ts(instance.started_at)
        state["finishedAt"] = self._ts(
            instance.started_at if instance.finished_at is None else instance.finished_at
        )
        if instance.container_id:
            state["containerID"] = instance.container_id
        return state

    def _ts(self, at: float) -> str:
        return self.state.clock.timestamp(at)

    def _status(self, pod: Obj, run: PodRun, now: float) -> Obj:
        old = pod.get("status") or {}
        spec = pod.get("spec") or {}
        init_statuses = [self._container_status(c) for c in run.init]
        main_statuses = [self._container_status(c) for c in run.main]
        terminal = run.killed_at is not None or run.sidecars_stopped
        sidecars = [c.sidecar for c in run.init]
        phase = _phase(spec, init_statuses, sidecars, main_statuses, terminal, run.initialized)
        if phase not in TERMINAL and old.get("phase") in TERMINAL:
            phase = old["phase"]
        status: Obj = {
            k: v
            for k, v in old.items()
            if k not in ("conditions", "initContainerStatuses", "containerStatuses")
        }
        status["phase"] = phase
        if run.deadline_exceeded:
            status["reason"] = "DeadlineExceeded"
            status["message"] = "Pod was active on the node longer than the specified deadline"
        status["conditions"] = self._conditions(
            old, run, phase, init_statuses, sidecars, main_statuses
        )
        status["hostIP"] = run.host_ip
        status["hostIPs"] = [{"ip": run.host_ip}]
        status["podIP"] = run.pod_ip
        status["podIPs"] = [{"ip": run.pod_ip}]
        status["startTime"] = self._ts(run.acked_at)
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        status["containerStatuses"] = main_statuses
        return status

    def _conditions(
        self,
        old: Obj,
        run: PodRun,
        phase: str,
        init_statuses: list[Obj],
        sidecars: list[bool],
        main_statuses: list[Obj],
    ) -> list[Obj]:
        previous = {c.get("type"): c for c in old.get("conditions") or []}
        out = [c for c in old.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS]
        now = self.state.clock.timestamp()

        def condition(
            kind: str, ok: bool, reason: str | None = None, message: str | None = None
        ) -> Obj:
            value = "True" if ok else "False"
            before = previous.get(kind)
            since = (
                before.get("lastTransitionTime")
                if before and before.get("status") == value
                else now
            )
            cond: Obj = {
                "type": kind,
                "status": value,
                "lastProbeTime": None,
                "lastTransitionTime": since,
            }
            if reason:
                cond["reason"] = reason
            if message:
                cond["message"] = message
            return cond

        out.append(condition("PodReadyToStartContainers", phase not in TERMINAL))
        # a regular init container is done once ready (succeeded), a sidecar once started
        incomplete = [
            s["name"]
            for s, sidecar in zip(init_statuses, sidecars, strict=True)
            if not (s["started"] if sidecar else s["ready"])
        ]
        regular_started = any(
            "running" in s["state"]
            or "terminated" in s["state"]
            or "terminated" in (s.get("lastState") or {})
            for s in main_statuses
        )
        if not init_statuses:
            out.append(
                condition("Initialized", True, "PodCompleted" if phase == "Succeeded" else None)
            )
        elif phase == "Succeeded":
            out.append(condition("Initialized", True, "PodCompleted"))
        elif incomplete and not regular_started:
            out.append(
                condition(
                    "Initialized",
                    False,
                    "ContainersNotInitialized",
                    f"containers with incomplete status: [{' '.join(incomplete)}]",
                )
            )
        else:
            out.append(condition("Initialized", True))
        unready = [
            s["name"]
            for s, sidecar in zip(init_statuses, sidecars, strict=True)
            if sidecar and not s["ready"]
        ]
        unready += [s["name"] for s in main_statuses if not s["ready"]]
        ready: list[tuple[str, bool, str | None, str | None]]
        if phase == "Succeeded":
            ready = [
                ("Ready", False, "PodCompleted", None),
                ("ContainersReady", False, "PodCompleted", None),
            ]
        elif unready:
            unready_message = f"containers with unready status: [{' '.join(unready)}]"
            ready = [
                ("Ready", False, "ContainersNotReady", unready_message),
                ("ContainersReady", False, "ContainersNotReady", unready_message),
            ]
        else:
            ready = [("Ready", True, None, None), ("ContainersReady", True, None, None)]
        for kind, ok, reason, why in ready:
            out.append(condition(kind, ok, reason, why))
        out.append(condition("PodScheduled", True))
        return out

    # --- events ------------------------------------------------------------------------------

    def _event(
        self,
        pod: Obj,
        run: PodRun,
        kind: str,
        reason: str,
        message: str,
        crun: ContainerRun | None = None,
    ) -> None:
        current = self.state.store.peek(PODS, run.namespace, run.name) or pod
        self.state.events.record(
            current,
            kind,
            reason,
            message,
            component="kubelet",
            host=run.node,
            field_path=crun.field_path if crun is not None else None,
        )


def _node_ready(node: Obj) -> bool:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return True


def _phase(
    spec: Obj,
    init_statuses: list[Obj],
    sidecars: list[bool],
    main_statuses: list[Obj],
    terminal: bool,
    initialized: bool,
) -> str:
    """The kubelet's ``getPhase``: regular init containers, sidecars (restartable init
    containers, which never make the pod fail or succeed) and regular containers."""
    pending_init = failed_init = 0
    pending_sidecars = 0
    running = waiting = stopped = succeeded = 0
    for status, sidecar in zip(init_statuses, sidecars, strict=True):
        state, last = status["state"], status.get("lastState") or {}
        if sidecar:
            if "running" in state:
                if not status.get("started"):
                    pending_sidecars += 1
                running += 1
            elif "waiting" in state and "terminated" not in last:
                pending_sidecars += 1
                waiting += 1
            continue  # a terminated sidecar does not count
        if "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode") != 0:
                failed_init += 1
        elif "waiting" in state:
            if "terminated" in last:
                if last["terminated"].get("exitCode") != 0:
                    failed_init += 1
            else:
                pending_init += 1
        else:
            pending_init += 1
    for status in main_statuses:
        state, last = status["state"], status.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "terminated" in last:
            stopped += 1
        else:
            waiting += 1
    policy = spec.get("restartPolicy", "Always")
    if failed_init > 0 and policy == "Never":
        return "Failed"
    regular_started = any(
        "running" in s["state"]
        or "terminated" in s["state"]
        or "terminated" in (s.get("lastState") or {})
        for s in main_statuses
    )
    if pending_init > 0 and not regular_started:
        return "Pending"
    if pending_sidecars > 0 and not (initialized or regular_started):
        return "Pending"
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


# --- exec and attach ----------------------------------------------------------------------------


class StreamError(Exception):
    """An error the kubelet answers a stream request with (plain text, HTTP 500)."""


def choose_container(pod: Obj, container: str | None) -> str:
    """The container a log/exec/attach request means, with the API server's ``400`` errors."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    name = meta["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    init_containers = [c["name"] for c in spec.get("initContainers") or []]
    if not container:
        if len(containers) == 1:
            return str(containers[0])
        if not containers:
            raise ApiError(400, f"a container name must be specified for pod {name}")
        message = (
            f"a container name must be specified for pod {name}, choose one of: "
            f"[{' '.join(containers)}]"
        )
        if init_containers:
            message += f" or one of the init containers: [{' '.join(init_containers)}]"
        raise ApiError(400, message)
    if container not in containers and container not in init_containers:
        raise ApiError(400, f"container {container} is not valid for pod {name}")
    return container


def _abs_path(path: str) -> str:
    """An absolute, normalized path (relative paths start at ``/``)."""
    return posixpath.normpath("/" + path.lstrip("/"))


def _mounts(spec: Obj) -> list[tuple[str, tuple[str, str]]]:
    """``(mount path, (volume, subPath))`` of a container's volume mounts."""
    out = []
    for mount in spec.get("volumeMounts") or []:
        path = _abs_path(str(mount.get("mountPath") or ""))
        out.append((path, (str(mount.get("name") or ""), str(mount.get("subPath") or ""))))
    return out


def _volume_of(spec: Obj, path: str) -> tuple[tuple[str, str], str] | None:
    """``((volume, subPath), path inside the mount)`` of a path a container writes, if it lies
    in one of its volume mounts (the deepest one)."""
    path = _abs_path(path)
    best: tuple[str, tuple[str, str]] | None = None
    for mount_path, volume in _mounts(spec):
        inside = mount_path == "/" or path == mount_path or path.startswith(mount_path + "/")
        if inside and (best is None or len(mount_path) > len(best[0])):
            best = (mount_path, volume)
    if best is None:
        return None
    return best[1], posixpath.relpath(path, best[0]) if path != best[0] else ""


class _ContainerView:
    """A running container as a stream request sees it."""

    def __init__(self, kubelet: Kubelet, run: PodRun, crun: ContainerRun) -> None:
        self.kubelet = kubelet
        self.run = run
        self.crun = crun
        self.instance = crun.current
        self.hostname = run.name
        self.env: Mapping[str, str] = {
            k: v
            for k, v in crun.env.items()
            if k not in ("POD_NAME", "POD_NAMESPACE", "CONTAINER_NAME") or _declared(crun.spec, k)
        }

    def alive(self) -> bool:
        """Whether the container still runs the instance the stream connected to."""
        crun = self.crun
        return (
            crun.stage == "running"
            and crun.current is self.instance
            and self.kubelet._pods.get(self.run.uid) is self.run
            and self.run.killed_at is None
        )


def _declared(spec: Obj, name: str) -> bool:
    return any(isinstance(v, dict) and v.get("name") == name for v in spec.get("env") or [])


class ExecView(_ContainerView):
    """One exec session in a running container: what :class:`..shell.Shell` runs against."""

    def __init__(
        self, kubelet: Kubelet, run: PodRun, crun: ContainerRun, session: ExecSession
    ) -> None:
        super().__init__(kubelet, run, crun)
        self.session = session
        self.pid = session.pid

    def close(self) -> None:
        self.crun.sessions.pop(self.session.pid, None)

    def read_file(self, path: str) -> str | None:
        path = _abs_path(path)
        files = self.kubelet.visible_files(self.run, self.crun)
        if path in files:
            return files[path]
        if path == "/etc/hostname":
            return self.hostname + "\n"
        mounted = any(p == SERVICE_ACCOUNT_DIR for p, _ in _mounts(self.crun.spec))
        if path == SERVICE_ACCOUNT_DIR + "/namespace" and mounted:
            return self.run.namespace
        return None

    def is_dir(self, path: str) -> bool:
        path = _abs_path(path)
        if path in STANDARD_DIRS or any(p == path for p, _ in _mounts(self.crun.spec)):
            return True
        prefix = path.rstrip("/") + "/"
        files = self.kubelet.visible_files(self.run, self.crun)
        mounts = [p + "/" for p, _ in _mounts(self.crun.spec)]
        return any(f.startswith(prefix) for f in files) or any(m.startswith(prefix) for m in mounts)

    def write_file(self, path: str, content: str, append: bool = False) -> None:
        instance = self.crun.current
        if instance is None:
            return
        path = _abs_path(path)
        if append:
            content = (self.read_file(path) or "") + content
        instance.files[path] = content
        # a write into a volume is seen by every container that mounts it
        location = _volume_of(self.crun.spec, path)
        if location is None:
            return
        for other in self.run.containers:
            other_instance = other.current or other.last
            if other is self.crun or other_instance is None:
                continue
            for key in list(other_instance.files):
                if _volume_of(other.spec, key) == location:
                    del other_instance.files[key]

    def processes(self) -> list[tuple[int, str]]:
        crun = self.crun
        main = (
            " ".join(crun.argv) or posixpath.basename(crun.image_name.split("@")[0]).split(":")[0]
        )
        out = [(1, main)]
        out += [(pid, " ".join(s.argv)) for pid, s in sorted(crun.sessions.items())]
        return out

    def signal(self, pid: int, signal: str) -> bool:
        if pid == 1:
            self.kubelet.signal_main(self.run, self.crun, signal)
            return True
        session = self.crun.sessions.get(pid)
        if session is None:
            return False
        session.signal = signal
        return True

    def signalled(self) -> str | None:
        return self.session.signal

    def answer(self, words: list[str]) -> ExecAnswer | None:
        line = " ".join(words)
        for answer in self.crun.behaviour.exec_answers:
            if line == answer.command or line.startswith(answer.command + " "):
                return answer
        return None

    async def sleep(self, seconds: float) -> None:
        clock = self.kubelet.state.clock
        until = clock.now() + clock.scaled(seconds)
        while clock.now() < until:
            delay = clock.wall_delay(until - clock.now())
            await asyncio.sleep(min(delay if delay is not None else 0.05, 0.05))

    def exit_code(self, signal: str) -> int:
        """The status of a process ended by a signal."""
        return 128 + SIGNALS[signal]


class AttachView(_ContainerView):
    """The main process of a running container, for ``pods/attach``."""

    def __init__(self, kubelet: Kubelet, run: PodRun, crun: ContainerRun) -> None:
        super().__init__(kubelet, run, crun)
        self.attached_at = self.written()
        """How many lines the main process had written when the client attached."""

    def output(self, since: int) -> list[str]:
        """Lines the main process has written, from the ``since``-th on."""
        instance = self.instance
        if instance is None:
            return []
        return [line for _, line in instance.emitted(self.kubelet.state.clock.now())][since:]

    def written(self) -> int:
        instance = self.instance
        if instance is None:
            return 0
        return len(instance.emitted(self.kubelet.state.clock.now()))
