"""The simulated kubelet through the real clients: pod lifecycle and status, events, logs,
image pull failures, restarts, init containers, deletion, preemption and behaviour rules.

Most tests freeze simulated time (``timeScale: 0``) and move it with ``advance()``, so every
intermediate state can be looked at; pods are bound to a node the test creates, which keeps
them independent of the scheduler. One test runs a pod end to end through the scheduler.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from kubernetes.client.rest import ApiException

from simulated_k8s_cluster.cluster import SimulatedCluster

NS = "batch"
NODE = "node-a"
FROZEN = {"timeScale": 0, "namespaces": [NS], "nodePools": []}
pytestmark = pytest.mark.simulated_cluster(FROZEN)

Obj = dict[str, Any]


@pytest.fixture
def node(core: kubernetes.client.CoreV1Api) -> str:
    """A Ready node created through the API (the pods of these tests are bound to it)."""
    core.create_node(
        {
            "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
            },
        }
    )
    return NODE


def pod_body(
    name: str,
    image: str = "task:1.0",
    *,
    node: str | None = NODE,
    restart: str = "Never",
    command: list[str] | None = None,
    args: list[str] | None = None,
    env: list[Obj] | None = None,
    containers: list[Obj] | None = None,
    init: list[Obj] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Obj:
    main: Obj = {"name": "main", "image": image}
    if command is not None:
        main["command"] = command
    if args is not None:
        main["args"] = args
    if env is not None:
        main["env"] = env
    body: Obj = {
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"restartPolicy": restart, "containers": containers or [main], **spec},
    }
    if node:
        body["spec"]["nodeName"] = node
    if init:
        body["spec"]["initContainers"] = init
    return body


def status_of(cluster: SimulatedCluster, name: str) -> Obj:
    pod = cluster.get("pods", NS, name)
    assert pod is not None, f"pod {name} is gone"
    return pod.get("status") or {}


def wait_status(
    cluster: SimulatedCluster,
    name: str,
    check: Callable[[Obj], bool],
    message: str,
    timeout: float = 10.0,
) -> Obj:
    def ready() -> Obj | None:
        pod = cluster.get("pods", NS, name)
        status = (pod or {}).get("status") or {}
        return status if pod is not None and check(status) else None

    result: Obj = cluster.wait_for(ready, timeout=timeout, message=f"{name}: {message}")
    return result


def container(status: Obj, name: str = "main", init: bool = False) -> Obj:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next(c for c in status.get(key) or [] if c["name"] == name)


def waiting_reason(status: Obj, name: str = "main", init: bool = False) -> str | None:
    statuses = status.get("initContainerStatuses" if init else "containerStatuses") or []
    for entry in statuses:
        if entry["name"] == name:
            return (entry["state"].get("waiting") or {}).get("reason")
    return None


def phase_is(phase: str) -> Callable[[Obj], bool]:
    return lambda status: status.get("phase") == phase


def conditions(status: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in status.get("conditions") or []}


def events(cluster: SimulatedCluster, name: str) -> list[tuple[str, str, str]]:
    found = sorted(cluster.events(NS, name), key=lambda e: e["metadata"]["name"])
    return [(e["type"], e["reason"], e["message"]) for e in found]


def api_error(exc: ApiException) -> tuple[int, str]:
    return exc.status, json.loads(exc.body)["message"]


def text(body: Any) -> str:
    return body.decode() if isinstance(body, bytes) else str(body)


def read_log(core: kubernetes.client.CoreV1Api, name: str, **kwargs: Any) -> str:
    """The log as text (the sync client turns a preloaded log body into ``str(bytes)``)."""
    response = core.read_namespaced_pod_log(name, NS, _preload_content=False, **kwargs)
    return text(response.data)


# --- lifecycle ----------------------------------------------------------------------------------


def test_pod_lifecycle_and_status(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    core.create_namespaced_pod(NS, pod_body("p", "busybox:1.36", command=["true"]))

    status = wait_status(
        cluster, "p", lambda s: waiting_reason(s) == "ContainerCreating", "ContainerCreating"
    )
    assert status["phase"] == "Pending"
    assert status["hostIP"] == "10.0.0.5" and status["hostIPs"] == [{"ip": "10.0.0.5"}]
    assert status["podIP"] and status["podIPs"] == [{"ip": status["podIP"]}]
    assert status["startTime"]
    cond = conditions(status)
    assert list(cond) == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    assert cond["Ready"]["status"] == "False"
    assert cond["Ready"]["reason"] == "ContainersNotReady"
    assert cond["Ready"]["message"] == "containers with unready status: [main]"
    assert cond["Initialized"]["status"] == "True"
    main = container(status)
    assert main["ready"] is False and main["started"] is False and main["restartCount"] == 0
    assert main["image"] == "busybox:1.36" and "containerID" not in main

    cluster.advance(0.5)
    status = wait_status(cluster, "p", phase_is("Running"), "Running")
    main = container(status)
    assert set(main["state"]) == {"running"}
    assert main["ready"] is True and main["started"] is True
    assert main["image"] == "docker.io/library/busybox:1.36"
    assert main["imageID"].startswith("docker.io/library/busybox@sha256:")
    assert main["containerID"].startswith("containerd://")
    cond = conditions(status)
    assert cond["Ready"]["status"] == cond["ContainersReady"]["status"] == "True"

    cluster.advance(1)
    status = wait_status(cluster, "p", phase_is("Succeeded"), "Succeeded")
    terminated = container(status)["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert terminated["containerID"] == main["containerID"]
    assert terminated["startedAt"] == main["state"]["running"]["startedAt"]
    assert terminated["finishedAt"] >= terminated["startedAt"]
    cond = conditions(status)
    assert cond["Ready"]["status"] == "False" and cond["Ready"]["reason"] == "PodCompleted"
    assert cond["PodReadyToStartContainers"]["status"] == "False"

    assert events(cluster, "p") == [
        ("Normal", "Pulling", 'Pulling image "busybox:1.36"'),
        ("Normal", "Pulled", events(cluster, "p")[1][2]),
        ("Normal", "Created", "Created container: main"),
        ("Normal", "Started", "Started container main"),
    ]
    pulled = events(cluster, "p")[1][2]
    assert pulled.startswith(
        'Successfully pulled image "busybox:1.36" in 500ms (500ms including waiting). Image size: '
    )
    started = cluster.events(NS, "p", reason="Started")[0]
    assert started["source"] == {"component": "kubelet", "host": NODE}
    assert started["involvedObject"]["fieldPath"] == "spec.containers{main}"

    # The node has the image now: the next pod does not pull it.
    core.create_namespaced_pod(NS, pod_body("q", "busybox:1.36"))
    cluster.wait_for(lambda: cluster.events(NS, "q", reason="Pulled"), message="q pulled")
    assert cluster.events(NS, "q", reason="Pulled")[0]["message"] == (
        'Container image "busybox:1.36" already present on machine'
    )
    assert not cluster.events(NS, "q", reason="Pulling")


def test_phases_seen_by_a_watch(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    created = core.create_namespaced_pod(NS, pod_body("w"))
    cluster.advance(0.5)
    cluster.advance(1)
    seen: list[tuple[str, str]] = []
    watch = kubernetes.watch.Watch()
    for event in watch.stream(
        core.list_namespaced_pod,
        NS,
        field_selector="metadata.name=w",
        resource_version=created.metadata.resource_version,
        timeout_seconds=5,
    ):
        pod = event["object"]
        statuses = pod.status.container_statuses or []
        state = "none"
        if statuses:
            current = statuses[0].state
            state = (
                "running"
                if current.running
                else "terminated"
                if current.terminated
                else current.waiting.reason
            )
        if not seen or seen[-1] != (pod.status.phase, state):
            seen.append((pod.status.phase, state))
        if pod.status.phase == "Succeeded":
            watch.stop()
    assert seen == [
        ("Pending", "ContainerCreating"),
        ("Running", "running"),
        ("Succeeded", "terminated"),
    ]


def test_pods_wait_for_their_node(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api
) -> None:
    cluster = simulated_cluster
    core.create_namespaced_pod(NS, pod_body("early"))
    cluster.advance(5)
    assert status_of(cluster, "early") == {"phase": "Pending", "qosClass": "BestEffort"}
    core.create_node(
        {
            "metadata": {"name": NODE},
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]
            },
        }
    )
    cluster.advance(5)
    assert "containerStatuses" not in status_of(cluster, "early")
    core.patch_node_status(
        NODE,
        {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}},
    )
    wait_status(
        cluster,
        "early",
        lambda s: waiting_reason(s) == "ContainerCreating",
        "started once the node is Ready",
    )


def test_failure_exit_code_and_termination_messages(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour(
        {"match": {"args": "fail"}, "exitCode": 3, "stdout": [f"line {i}" for i in range(100)]}
    )
    cluster.add_behaviour(
        {
            "match": {"args": "explain"},
            "exitCode": 2,
            "terminationMessage": "bad input in $(POD_NAME)",
        }
    )
    fallback = {
        "name": "main",
        "image": "task:1.0",
        "args": ["fail"],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    core.create_namespaced_pod(NS, pod_body("logs-fallback", containers=[fallback]))
    core.create_namespaced_pod(NS, pod_body("file-policy", args=["fail"]))
    core.create_namespaced_pod(NS, pod_body("explained", args=["explain"]))
    cluster.advance(0.5)
    cluster.advance(1)
    for name in ("logs-fallback", "file-policy", "explained"):
        wait_status(cluster, name, phase_is("Failed"), "Failed")

    terminated = container(status_of(cluster, "logs-fallback"))["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    message = terminated["message"]
    assert message.endswith("line 99\n")
    assert len(message.encode()) <= 2048
    assert len(message.splitlines()) <= 80
    assert "line 19\n" not in message  # only the last 80 lines count

    assert "message" not in container(status_of(cluster, "file-policy"))["state"]["terminated"]
    explained = container(status_of(cluster, "explained"))["state"]["terminated"]
    assert explained["message"] == "bad input in explained"
    cond = conditions(status_of(cluster, "explained"))
    assert cond["Ready"]["reason"] == "ContainersNotReady"


def test_oom_killed(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"oomKilled": True, "seconds": 2})
    core.create_namespaced_pod(NS, pod_body("oom"))
    cluster.advance(3)
    status = wait_status(cluster, "oom", phase_is("Failed"), "Failed")
    terminated = container(status)["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "OOMKilled")


# --- logs ---------------------------------------------------------------------------------------


def test_logs_tail_and_timestamps(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour(
        {
            "match": {"image": "task-python:*"},
            "seconds": 4,
            "stdout": "first\nsecond $(POD_NAME) in $(POD_NAMESPACE)\nthird $(DAY)\nfourth",
        }
    )
    core.create_namespaced_pod(
        NS, pod_body("logged", "task-python:1.0", env=[{"name": "DAY", "value": "2026-01-01"}])
    )
    cluster.advance(0.5)
    wait_status(cluster, "logged", phase_is("Running"), "Running")
    assert read_log(core, "logged") == "first\n"
    cluster.advance(2)
    cluster.wait_for(lambda: "second" in read_log(core, "logged"))
    assert read_log(core, "logged") == ("first\nsecond logged in batch\nthird 2026-01-01\n")
    cluster.advance(2)
    wait_status(cluster, "logged", phase_is("Succeeded"), "Succeeded")

    tail = read_log(core, "logged", tail_lines=2, timestamps=True)
    lines = tail.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["third 2026-01-01", "fourth"]
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert all(stamp.endswith("Z") and "T" in stamp for stamp in stamps)
    assert stamps[0] < stamps[1]
    assert read_log(core, "logged", limit_bytes=5) == "first"


def test_logs_follow_streams_until_the_container_ends(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"seconds": 10, "stdout": [f"tick {i}" for i in range(5)]})
    core.create_namespaced_pod(NS, pod_body("follow"))
    cluster.advance(0.5)
    wait_status(cluster, "follow", phase_is("Running"), "Running")
    stream = core.read_namespaced_pod_log("follow", NS, follow=True, _preload_content=False)
    received: list[str] = []

    def read() -> None:
        for chunk in stream.stream(64):
            received.append(chunk.decode())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    cluster.wait_for(lambda: "".join(received) == "tick 0\n", message="first line")
    for _ in range(5):
        cluster.advance(2)
    reader.join(timeout=10)
    assert not reader.is_alive(), "the log stream did not end with the container"
    assert "".join(received) == "".join(f"tick {i}\n" for i in range(5))
    stream.release_conn()


def test_log_errors(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    two = [{"name": "a", "image": "task:1.0"}, {"name": "b", "image": "task:1.0"}]
    init = [{"name": "setup", "image": "task:1.0"}]
    core.create_namespaced_pod(NS, pod_body("two", containers=two, init=init))
    core.create_namespaced_pod(NS, pod_body("one"))
    wait_status(cluster, "one", lambda s: waiting_reason(s) == "ContainerCreating", "creating")

    cases = [
        (
            dict(name="two"),
            "a container name must be specified for pod two, choose one of: "
            "[a b] or one of the init containers: [setup]",
        ),
        (dict(name="two", container="c"), "container c is not valid for pod two"),
        (dict(name="one"), 'container "main" in pod "one" is waiting to start: ContainerCreating'),
        (
            dict(name="two", container="a"),
            'container "a" in pod "two" is waiting to start: PodInitializing',
        ),
        (
            dict(name="one", previous=True),
            'previous terminated container "main" in pod "one" not found',
        ),
    ]
    for kwargs, message in cases:
        name = kwargs.pop("name")
        with pytest.raises(ApiException) as err:
            core.read_namespaced_pod_log(name, NS, **kwargs)
        assert api_error(err.value) == (400, message)

    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("nope", NS)
    assert err.value.status == 404

    # Logs of terminated containers stay readable until the pod is deleted.
    cluster.add_behaviour({"stdout": "kept"})
    core.create_namespaced_pod(NS, pod_body("done"))
    cluster.advance(2)
    wait_status(cluster, "done", phase_is("Succeeded"), "Succeeded")
    cluster.advance(3600)
    assert read_log(core, "done") == "kept\n"


def test_unscheduled_pod_has_an_empty_log(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api
) -> None:
    core.create_namespaced_pod(NS, pod_body("floating", node=None))
    assert read_log(core, "floating") == ""


# --- images -------------------------------------------------------------------------------------


def test_invalid_image_name(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    core.create_namespaced_pod(NS, pod_body("bad", "Task Python:1.0"))
    status = wait_status(
        cluster, "bad", lambda s: waiting_reason(s) == "InvalidImageName", "InvalidImageName"
    )
    message = (
        'Failed to apply default image tag "Task Python:1.0": couldn\'t parse image '
        'name "Task Python:1.0": invalid reference format: repository name '
        "(library/Task Python) must be lowercase"
    )
    assert container(status)["state"]["waiting"]["message"] == message
    assert ("Warning", "InspectFailed", message) in events(cluster, "bad")
    assert ("Warning", "Failed", "Error: InvalidImageName") in events(cluster, "bad")
    cluster.advance(3600)
    status = status_of(cluster, "bad")
    assert status["phase"] == "Pending" and waiting_reason(status) == "InvalidImageName"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("bad", NS)
    assert api_error(err.value) == (
        400,
        'container "main" in pod "bad" is waiting to start: InvalidImageName',
    )


def test_image_pull_backoff_and_recovery(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour(
        {"match": {"image": "flaky:1"}, "imagePull": "ErrImagePull", "imagePullSeconds": 30}
    )
    core.create_namespaced_pod(NS, pod_body("flaky", "flaky:1"))
    status = wait_status(
        cluster, "flaky", lambda s: waiting_reason(s) == "ErrImagePull", "ErrImagePull"
    )
    assert "failed to pull and unpack image" in container(status)["state"]["waiting"]["message"]
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("flaky", NS)
    assert api_error(err.value)[1] == (
        'container "main" in pod "flaky" is waiting to start: image can\'t be pulled'
    )
    cluster.advance(1)
    status = wait_status(
        cluster, "flaky", lambda s: waiting_reason(s) == "ImagePullBackOff", "ImagePullBackOff"
    )
    assert container(status)["state"]["waiting"]["message"] == 'Back-off pulling image "flaky:1"'
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("flaky", NS)
    assert api_error(err.value)[1] == (
        'container "main" in pod "flaky" is waiting to start: trying and failing to pull image'
    )
    # The second attempt (10 s after the first) fails again; the third (30 s) succeeds.
    cluster.advance(9)
    wait_status(cluster, "flaky", lambda s: waiting_reason(s) == "ErrImagePull", "retry")
    cluster.advance(1)
    wait_status(cluster, "flaky", lambda s: waiting_reason(s) == "ImagePullBackOff", "backoff")
    cluster.advance(19)
    wait_status(cluster, "flaky", lambda s: waiting_reason(s) == "ContainerCreating", "pulling")
    cluster.advance(0.5)
    wait_status(cluster, "flaky", phase_is("Running"), "Running")
    assert cluster.events(NS, "flaky", reason="Pulling")[0]["count"] == 3
    failed = [m for kind, reason, m in events(cluster, "flaky") if reason == "Failed"]
    assert failed[0].startswith('Failed to pull image "flaky:1": rpc error: code = NotFound')
    assert "Error: ErrImagePull" in failed and "Error: ImagePullBackOff" in failed
    backoff = cluster.events(NS, "flaky", reason="BackOff")[0]
    assert backoff["count"] == 2 and backoff["message"] == 'Back-off pulling image "flaky:1"'


def test_image_pull_that_never_recovers(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour(
        {
            "imagePull": "ImagePullBackOff",
            "imagePullMessage": "rpc error: code = Unknown desc = 403 Forbidden",
        }
    )
    core.create_namespaced_pod(NS, pod_body("denied"))
    status = wait_status(
        cluster, "denied", lambda s: waiting_reason(s) == "ErrImagePull", "ErrImagePull"
    )
    assert container(status)["state"]["waiting"]["message"] == (
        "rpc error: code = Unknown desc = 403 Forbidden"
    )
    cluster.advance(3600)
    status = wait_status(
        cluster,
        "denied",
        lambda s: waiting_reason(s) in ("ImagePullBackOff", "ErrImagePull"),
        "still failing",
    )
    assert status["phase"] == "Pending"


# --- restarts and init containers ---------------------------------------------------------------


def test_on_failure_restarts_in_place(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"exitCode": 1, "seconds": 2, "stdout": "crashing"})
    core.create_namespaced_pod(NS, pod_body("crashy", restart="OnFailure"))
    cluster.advance(0.5)
    first = container(wait_status(cluster, "crashy", phase_is("Running"), "Running"))
    cluster.advance(2)  # first crash: restarted at once
    status = wait_status(
        cluster, "crashy", lambda s: container(s)["restartCount"] == 1, "first restart"
    )
    main = container(status)
    assert status["phase"] == "Running" and "running" in main["state"]
    assert main["lastState"]["terminated"]["exitCode"] == 1
    assert main["lastState"]["terminated"]["containerID"] == first["containerID"]
    assert main["containerID"] != first["containerID"]
    assert read_log(core, "crashy", previous=True) == "crashing\n"
    cluster.advance(2)  # second crash: CrashLoopBackOff for 10 s
    status = wait_status(
        cluster, "crashy", lambda s: waiting_reason(s) == "CrashLoopBackOff", "CrashLoopBackOff"
    )
    main = container(status)
    assert main["restartCount"] == 2 and status["phase"] == "Running"
    uid = core.read_namespaced_pod("crashy", NS).metadata.uid
    assert main["state"]["waiting"]["message"] == (
        f"back-off 10s restarting failed container=main pod=crashy_batch({uid})"
    )
    assert (
        "Warning",
        "BackOff",
        f"Back-off restarting failed container main in pod crashy_batch({uid})",
    ) in events(cluster, "crashy")
    # Logs of a waiting container with a previous run are that run's.
    assert read_log(core, "crashy") == "crashing\n"
    cluster.advance(10)
    wait_status(cluster, "crashy", lambda s: "running" in container(s)["state"], "restarted")


def test_init_containers_run_first(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    init = [
        {"name": "fetch", "image": "task:1.0", "args": ["fetch"]},
        {"name": "unpack", "image": "task:1.0", "args": ["unpack"]},
    ]
    cluster.add_behaviour({"match": {"container": "fetch"}, "seconds": 3, "stdout": "fetched"})
    core.create_namespaced_pod(NS, pod_body("staged", init=init))
    status = wait_status(cluster, "staged", lambda s: "initContainerStatuses" in s, "statuses")
    assert waiting_reason(status, "main") == "PodInitializing"
    cond = conditions(status)["Initialized"]
    assert cond["status"] == "False" and cond["reason"] == "ContainersNotInitialized"
    assert cond["message"] == "containers with incomplete status: [fetch unpack]"
    cluster.advance(0.5)
    status = wait_status(
        cluster,
        "staged",
        lambda s: "running" in container(s, "fetch", init=True)["state"],
        "fetch running",
    )
    assert status["phase"] == "Pending"
    assert waiting_reason(status, "unpack", init=True) == "PodInitializing"
    cluster.advance(3)
    wait_status(
        cluster,
        "staged",
        lambda s: "terminated" in container(s, "fetch", init=True)["state"],
        "fetched",
    )
    cluster.advance(0.5 + 1)
    cluster.advance(0.5)
    status = wait_status(cluster, "staged", phase_is("Running"), "main running")
    assert conditions(status)["Initialized"]["status"] == "True"
    assert read_log(core, "staged", container="fetch") == "fetched\n"
    cluster.advance(1)
    wait_status(cluster, "staged", phase_is("Succeeded"), "Succeeded")


def test_failing_init_container_fails_the_pod(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"match": {"container": "setup"}, "exitCode": 4})
    core.create_namespaced_pod(
        NS, pod_body("broken", init=[{"name": "setup", "image": "task:1.0"}])
    )
    cluster.advance(0.5)
    cluster.advance(1)
    status = wait_status(cluster, "broken", phase_is("Failed"), "Failed")
    assert container(status, "setup", init=True)["state"]["terminated"]["exitCode"] == 4
    assert waiting_reason(status, "main") == "PodInitializing"


def test_native_sidecar_runs_beside_the_main_container(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    """An init container with ``restartPolicy: Always`` starts, lets the next init container
    and the main container start, restarts when it exits, and is stopped once the main
    container is done; the pod then succeeds by its main container."""
    cluster = simulated_cluster
    init = [
        {"name": "proxy", "image": "task:1.0", "restartPolicy": "Always"},
        {"name": "setup", "image": "task:1.0"},
    ]
    cluster.add_behaviour({"match": {"container": "proxy"}, "seconds": 5, "exitCode": 1})
    cluster.add_behaviour({"match": {"container": "main"}, "seconds": 6})
    core.create_namespaced_pod(NS, pod_body("sidecar", init=init))
    status = wait_status(cluster, "sidecar", lambda s: "initContainerStatuses" in s, "statuses")
    assert conditions(status)["Initialized"]["message"] == (
        "containers with incomplete status: [proxy setup]"
    )
    cluster.advance(0.5)  # the sidecar runs; the next init container starts at once
    status = wait_status(
        cluster,
        "sidecar",
        lambda s: "running" in container(s, "proxy", init=True)["state"],
        "sidecar running",
    )
    proxy = container(status, "proxy", init=True)
    assert (proxy["started"], proxy["ready"]) == (True, True)
    assert status["phase"] == "Pending"
    cluster.advance(0.5)
    status = wait_status(
        cluster,
        "sidecar",
        lambda s: "running" in container(s, "setup", init=True)["state"],
        "setup running",
    )
    setup = container(status, "setup", init=True)
    assert (setup["started"], setup["ready"]) == (True, False)
    cluster.advance(1)  # setup done: the main container starts
    cluster.advance(0.5)
    status = wait_status(cluster, "sidecar", phase_is("Running"), "main running")
    setup = container(status, "setup", init=True)
    assert (setup["started"], setup["ready"]) == (False, True)
    assert setup["state"]["terminated"]["reason"] == "Completed"
    assert conditions(status)["Initialized"]["status"] == "True"
    assert conditions(status)["Ready"]["status"] == "True"
    cluster.advance(3)  # the sidecar exits after 5 s: restarted at once, the pod runs on
    status = wait_status(
        cluster,
        "sidecar",
        lambda s: container(s, "proxy", init=True)["restartCount"] == 1,
        "sidecar restarted",
    )
    proxy = container(status, "proxy", init=True)
    assert "running" in proxy["state"] and proxy["lastState"]["terminated"]["exitCode"] == 1
    assert status["phase"] == "Running"
    cluster.advance(3)  # the main container is done: the sidecar is asked to stop
    status = wait_status(
        cluster, "sidecar", lambda s: "terminated" in container(s)["state"], "main done"
    )
    assert container(status)["state"]["terminated"]["reason"] == "Completed"
    assert ("Normal", "Killing", "Stopping container proxy") in events(cluster, "sidecar")
    # It ignores SIGTERM: it runs on (the pod too) until it ends by itself, not restarted.
    assert status["phase"] == "Running"
    assert "running" in container(status, "proxy", init=True)["state"]
    cluster.advance(2)
    status = wait_status(cluster, "sidecar", phase_is("Succeeded"), "Succeeded")
    proxy = container(status, "proxy", init=True)
    assert (proxy["state"]["terminated"]["exitCode"], proxy["ready"]) == (1, False)
    assert proxy["restartCount"] == 1
    assert conditions(status)["Initialized"]["reason"] == "PodCompleted"


def test_native_sidecar_pod_fails_by_its_main_container(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    init = [{"name": "log", "image": "task:1.0", "restartPolicy": "Always"}]
    cluster.add_behaviour({"match": {"container": "log"}, "seconds": "forever"})
    cluster.add_behaviour({"match": {"container": "main"}, "seconds": 1, "exitCode": 3})
    core.create_namespaced_pod(
        NS, pod_body("sidecar-fails", init=init, terminationGracePeriodSeconds=10)
    )
    cluster.advance(0.5)
    cluster.advance(0.5)
    cluster.advance(1)
    status = wait_status(
        cluster, "sidecar-fails", lambda s: "terminated" in container(s)["state"], "main done"
    )
    assert status["phase"] == "Running"
    cluster.advance(10)  # the end of the grace period: killed
    status = wait_status(cluster, "sidecar-fails", phase_is("Failed"), "Failed")
    assert container(status)["state"]["terminated"]["exitCode"] == 3
    log = container(status, "log", init=True)["state"]["terminated"]
    assert (log["exitCode"], log["reason"]) == (137, "Error")


def test_native_sidecar_handling_sigterm_exits_at_once(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    script = "trap 'exit 0' TERM; while true; do sleep 1; done"
    init = [
        {
            "name": "proxy",
            "image": "task:1.0",
            "restartPolicy": "Always",
            "command": ["sh", "-c", script],
        }
    ]
    core.create_namespaced_pod(NS, pod_body("sidecar-term", init=init))
    cluster.advance(0.5)
    cluster.advance(0.5)
    cluster.advance(1)
    status = wait_status(cluster, "sidecar-term", phase_is("Succeeded"), "Succeeded")
    proxy = container(status, "proxy", init=True)["state"]["terminated"]
    assert (proxy["exitCode"], proxy["reason"]) == (0, "Completed")


# --- behaviours ---------------------------------------------------------------------------------


@pytest.mark.simulated_cluster(
    {
        **FROZEN,
        "behaviours": [
            {"match": {"env": {"JOB_COMPLETION_INDEX": "3"}}, "exitCode": 7},
            {
                "match": {"args": "pre-task.py 2026-01-01"},
                "stdout": "[1, 2, 3]",
                "files": {"/tmp/results": "[1, 2, 3] from $(POD_NAME)"},
            },
            {"match": {"namespace": NS}, "times": 1, "exitCode": 9},
        ],
    }
)
def test_configured_behaviours(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    index_env = [
        {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {
                    "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                }
            },
        }
    ]
    indexed = pod_body(
        "indexed-3", env=index_env, annotations={"batch.kubernetes.io/job-completion-index": "3"}
    )
    core.create_namespaced_pod(NS, indexed)
    day_env = [{"name": "DAY", "value": "2026-01-01"}]
    core.create_namespaced_pod(
        NS, pod_body("pre", command=["python"], args=["pre-task.py", "$(DAY)"], env=day_env)
    )
    core.create_namespaced_pod(NS, pod_body("first-other"))
    cluster.advance(0.5 + 1)
    for name in ("indexed-3", "pre", "first-other"):
        wait_status(cluster, name, lambda s: s.get("phase") in ("Succeeded", "Failed"), "done")
    assert container(status_of(cluster, "indexed-3"))["state"]["terminated"]["exitCode"] == 7
    assert status_of(cluster, "pre")["phase"] == "Succeeded"
    assert read_log(core, "pre") == "[1, 2, 3]\n"
    pre = cluster.get("pods", NS, "pre")
    assert pre is not None
    assert cluster.kubelet.files(pre, "main") == {"/tmp/results": "[1, 2, 3] from pre"}
    assert container(status_of(cluster, "first-other"))["state"]["terminated"]["exitCode"] == 9
    # ``times: 1`` is used up: the next pod gets the default behaviour.
    core.create_namespaced_pod(NS, pod_body("second-other"))
    cluster.advance(0.5 + 1)
    wait_status(cluster, "second-other", phase_is("Succeeded"), "Succeeded")


def test_behaviour_annotation(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    annotation = "sim.airflow-k8s-jobs/behaviour"
    core.create_namespaced_pod(
        NS, pod_body("plain", annotations={annotation: json.dumps({"seconds": 5, "exitCode": 2})})
    )
    both = [{"name": "main", "image": "task:1.0"}, {"name": "side", "image": "task:1.0"}]
    core.create_namespaced_pod(
        NS,
        pod_body(
            "keyed",
            containers=both,
            annotations={annotation: json.dumps({"side": {"stdout": "from side", "seconds": 2}})},
        ),
    )
    core.create_namespaced_pod(NS, pod_body("invalid", annotations={annotation: "{oops"}))
    cluster.advance(0.5 + 1)
    status = wait_status(
        cluster, "keyed", lambda s: "terminated" in container(s)["state"], "main done"
    )
    assert status["phase"] == "Running"  # side still runs
    assert status_of(cluster, "plain")["phase"] == "Running"
    cluster.advance(1)
    wait_status(cluster, "keyed", phase_is("Succeeded"), "Succeeded")
    assert read_log(core, "keyed", container="side") == "from side\n"
    cluster.advance(3)
    status = wait_status(cluster, "plain", phase_is("Failed"), "Failed")
    assert container(status)["state"]["terminated"]["exitCode"] == 2
    warning = cluster.events(NS, "invalid", reason="InvalidBehaviour")
    assert warning and "not valid JSON" in warning[0]["message"]
    assert status_of(cluster, "invalid")["phase"] == "Succeeded"


# --- deletion, deadlines, preemption ------------------------------------------------------------


def test_deleting_a_running_pod(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"seconds": 600, "stdout": "working"})
    created = core.create_namespaced_pod(NS, pod_body("victim"))
    cluster.advance(1)
    wait_status(cluster, "victim", phase_is("Running"), "Running")
    core.delete_namespaced_pod("victim", NS)
    seen: list[Obj] = []
    watch = kubernetes.watch.Watch()
    for event in watch.stream(
        core.list_namespaced_pod,
        NS,
        field_selector="metadata.name=victim",
        resource_version=created.metadata.resource_version,
        timeout_seconds=5,
        _preload_content=False,
    ):
        seen.append(event)
        if event["type"] == "DELETED":
            watch.stop()
    assert seen[-1]["type"] == "DELETED"
    final = seen[-1]["raw_object"]["status"]
    terminated = container(final)["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (143, "Error")
    assert final["phase"] == "Failed"
    assert ("Normal", "Killing", "Stopping container main") in events(cluster, "victim")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("victim", NS)
    assert err.value.status == 404


def test_deleting_a_starting_pod(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    core.create_namespaced_pod(
        NS, {**pod_body("young"), "metadata": {"name": "young", "finalizers": ["example.com/keep"]}}
    )
    wait_status(cluster, "young", lambda s: waiting_reason(s) == "ContainerCreating", "creating")
    core.delete_namespaced_pod("young", NS)
    status = wait_status(cluster, "young", phase_is("Failed"), "Failed")
    terminated = container(status)["state"]["terminated"]
    assert terminated["reason"] == "ContainerStatusUnknown" and terminated["exitCode"] == 137
    core.patch_namespaced_pod("young", NS, {"metadata": {"finalizers": None}})
    cluster.wait_for(lambda: cluster.get("pods", NS, "young") is None, message="removed")


def test_active_deadline(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"seconds": 600})
    core.create_namespaced_pod(NS, pod_body("slow", activeDeadlineSeconds=30))
    cluster.advance(29)
    wait_status(cluster, "slow", phase_is("Running"), "Running")
    cluster.advance(1)
    status = wait_status(cluster, "slow", phase_is("Failed"), "Failed")
    assert status["reason"] == "DeadlineExceeded"
    assert status["message"] == "Pod was active on the node longer than the specified deadline"


def _keep(body: Obj) -> Obj:
    body["metadata"]["finalizers"] = ["example.com/keep"]
    return body


def test_preempt_pod(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"seconds": 600})
    core.create_namespaced_pod(NS, _keep(pod_body("low")))
    cluster.advance(1)
    wait_status(cluster, "low", phase_is("Running"), "Running")
    cluster.preempt_pod(NS, "low")
    status = wait_status(cluster, "low", phase_is("Failed"), "Failed")
    disruption = conditions(status)["DisruptionTarget"]
    assert disruption["status"] == "True"
    assert disruption["reason"] == "PreemptionByScheduler"
    assert disruption["message"] == (
        "default-scheduler: preempting to accommodate a higher priority pod"
    )
    assert container(status)["state"]["terminated"]["exitCode"] == 143
    pod = core.read_namespaced_pod("low", NS)
    assert pod.metadata.deletion_timestamp is not None
    preempted = cluster.events(NS, "low", reason="Preempted")
    assert preempted and preempted[0]["source"]["component"] == "default-scheduler"
    assert preempted[0]["message"].endswith(f"on node {NODE}")
    core.patch_namespaced_pod("low", NS, {"metadata": {"finalizers": None}})
    cluster.wait_for(lambda: cluster.get("pods", NS, "low") is None, message="deleted")


def test_preempt_after_seconds_hits_the_first_pod_only(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"match": {"image": "spot:*"}, "seconds": 20, "preemptAfterSeconds": 5})
    core.create_namespaced_pod(NS, _keep(pod_body("spot-1", "spot:1")))
    cluster.advance(0.5)
    wait_status(cluster, "spot-1", phase_is("Running"), "Running")
    cluster.advance(4.9)
    assert "DisruptionTarget" not in conditions(status_of(cluster, "spot-1"))
    cluster.advance(0.1)
    status = wait_status(cluster, "spot-1", phase_is("Failed"), "preempted")
    assert conditions(status)["DisruptionTarget"]["reason"] == "PreemptionByScheduler"
    core.create_namespaced_pod(NS, pod_body("spot-2", "spot:1"))
    cluster.advance(0.5)
    cluster.advance(20)
    status = wait_status(cluster, "spot-2", phase_is("Succeeded"), "replacement succeeds")
    assert "DisruptionTarget" not in conditions(status)


# --- wake-ups and other clients -----------------------------------------------------------------


def test_unchanged_status_is_not_rewritten(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"seconds": 600})
    core.create_namespaced_pod(NS, pod_body("steady"))
    cluster.advance(0.5)
    wait_status(cluster, "steady", phase_is("Running"), "Running")
    version = core.read_namespaced_pod("steady", NS).metadata.resource_version
    for _ in range(3):
        cluster.advance(100)
    # A pod the kubelet starts after the advances proves it has reconciled since.
    core.create_namespaced_pod(NS, pod_body("probe-1"))
    wait_status(cluster, "probe-1", lambda s: "containerStatuses" in s, "probe-1 seen")
    assert core.read_namespaced_pod("steady", NS).metadata.resource_version == version
    cluster.advance(300)
    wait_status(cluster, "steady", phase_is("Succeeded"), "Succeeded")
    version = core.read_namespaced_pod("steady", NS).metadata.resource_version
    cluster.advance(1000)
    core.create_namespaced_pod(NS, pod_body("probe-2"))
    wait_status(cluster, "probe-2", lambda s: "containerStatuses" in s, "probe-2 seen")
    assert core.read_namespaced_pod("steady", NS).metadata.resource_version == version


@pytest.mark.simulated_cluster({"timeScale": 0.01, "namespaces": [NS], "nodePools": []})
def test_wakes_when_the_container_ends(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api, node: str
) -> None:
    """Nothing kicks the loop while a container runs: the kubelet's wake-up time ends it.

    A behaviour of 200 s at ``timeScale: 0.01`` runs for 2 wall seconds, and its timestamps
    (wall time, second precision) say so."""
    cluster = simulated_cluster
    cluster.add_behaviour({"seconds": 200})
    core.create_namespaced_pod(NS, pod_body("timed"))
    status = wait_status(cluster, "timed", phase_is("Succeeded"), "Succeeded", timeout=10)
    terminated = container(status)["state"]["terminated"]
    assert cluster.clock.parse(terminated["finishedAt"]) - cluster.clock.parse(
        terminated["startedAt"]
    ) == pytest.approx(2, abs=1)


async def test_async_client(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path, node: str
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"stdout": "hello from asyncio", "seconds": 2})
    client = await kubernetes_asyncio.config.new_client_from_config(
        config_file=str(simulated_kubeconfig)
    )
    try:
        v1 = kubernetes_asyncio.client.CoreV1Api(client)
        created = await v1.create_namespaced_pod(NS, pod_body("aio"))
        await asyncio.to_thread(cluster.advance, 3)
        watch = kubernetes_asyncio.watch.Watch()
        phases = []
        async for event in watch.stream(
            v1.list_namespaced_pod,
            NS,
            field_selector="metadata.name=aio",
            resource_version=created.metadata.resource_version,
            timeout_seconds=5,
        ):
            phases.append(event["object"].status.phase)
            if event["object"].status.phase == "Succeeded":
                watch.stop()
        assert phases[-1] == "Succeeded"
        log = await v1.read_namespaced_pod_log("aio", NS, timestamps=True)
        assert text(log).split(" ", 1)[1] == "hello from asyncio\n"
        with pytest.raises(kubernetes_asyncio.client.ApiException) as err:
            await v1.read_namespaced_pod_log("aio", NS, container="other")
        assert err.value.status == 400
    finally:
        await client.close()


@pytest.mark.simulated_cluster({"timeScale": 0.01, "namespaces": [NS]})
def test_end_to_end_through_the_scheduler(
    simulated_cluster: SimulatedCluster, core: kubernetes.client.CoreV1Api
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"stdout": "scheduled and run"})
    core.create_namespaced_pod(NS, pod_body("e2e", node=None))
    status = wait_status(cluster, "e2e", phase_is("Succeeded"), "Succeeded")
    pod = core.read_namespaced_pod("e2e", NS)
    assert pod.spec.node_name
    assert conditions(status)["PodScheduled"]["status"] == "True"
    assert cluster.events(NS, "e2e", reason="Scheduled")
    started = cluster.events(NS, "e2e", reason="Started")[0]
    assert started["source"]["host"] == pod.spec.node_name
    assert read_log(core, "e2e") == "scheduled and run\n"
