"""``pods/exec`` and ``pods/attach`` over websockets, driven by the real clients and kubectl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes
import kubernetes_asyncio
import pytest
from kubernetes.stream import stream
from kubernetes_asyncio.stream import WsApiClient
from websocket import WebSocketBadStatusException

from simulated_k8s_cluster.behaviours import parse_rule, runs_forever, trapped_signals
from simulated_k8s_cluster.config import ConfigError

LOOP = 'trap "exit 0" INT; while true; do sleep 1; done;'
CLUSTER: dict[str, Any] = {
    "timeScale": 0.01,
    "tls": True,
    "namespaces": ["batch"],
    "nodePools": [{"name": "default", "nodes": 1, "capacity": {"cpu": "8", "memory": "32Gi"}}],
    "behaviours": [
        {
            "match": {"image": "etl:1.0"},
            "seconds": 5,
            "stdout": "extracted",
            "files": {"/out/result.json": '{"rows": 42}', "/tmp/private": "mine"},
        },
        {
            "match": {"image": "server:1.0"},
            "seconds": "forever",
            "signals": {"TERM": 143},
            "files": {"/etc/server.conf": "port=8080\n"},
            "exec": [
                {"command": "python -V", "stdout": "Python 3.12.4"},
                {"command": "psql", "stderr": "connection refused", "exitCode": 2},
            ],
        },
        {
            "match": {"image": "ticker:1.0"},
            "seconds": 300,
            "stdout": [f"tick {i}" for i in range(30)],
        },
    ],
}
pytestmark = pytest.mark.simulated_cluster(CLUSTER)
KUBECTL = shutil.which("kubectl", path=os.path.dirname(sys.executable))


def _pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "containers": containers,
            **spec,
        },
    }


def _xcom_pod(name: str = "xcom") -> dict[str, Any]:
    """A main container writing into a shared volume, beside a sidecar that loops forever."""
    return _pod(
        name,
        [
            {
                "name": "base",
                "image": "etl:1.0",
                "volumeMounts": [{"name": "shared", "mountPath": "/out"}],
            },
            {
                "name": "sidecar",
                "image": "alpine:3.20",
                "command": ["sh", "-c", LOOP],
                "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
            },
        ],
    )


def _statuses(v1: kubernetes.client.CoreV1Api, name: str) -> dict[str, Any]:
    pod = v1.read_namespaced_pod(name, "batch")
    return {s.name: s for s in pod.status.container_statuses or []}


def _start(
    cluster: Any, v1: kubernetes.client.CoreV1Api, body: dict[str, Any], running: str
) -> None:
    v1.create_namespaced_pod("batch", body)
    name = body["metadata"]["name"]

    def ready() -> bool:
        status = _statuses(v1, name).get(running)
        return bool(status and status.state.running)

    cluster.wait_for(ready, timeout=15, message=f"container {running} of {name} to run")


def _base_finished(cluster: Any, v1: kubernetes.client.CoreV1Api, name: str) -> None:
    def finished() -> bool:
        status = _statuses(v1, name).get("base")
        return bool(status and status.state.terminated)

    cluster.wait_for(finished, timeout=15, message="the base container to finish")


def _exec(
    v1: kubernetes.client.CoreV1Api, name: str, container: str, command: list[str]
) -> tuple[str, str, int, dict[str, Any]]:
    """stdout, stderr, exit code and the error channel's Status of one exec."""
    resp = stream(
        v1.connect_get_namespaced_pod_exec,
        name,
        "batch",
        container=container,
        command=command,
        stdin=False,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    resp.run_forever(timeout=20)
    assert not resp.is_open()
    out, err = resp.read_stdout() or "", resp.read_stderr() or ""
    status = json.loads(resp.peek_channel(3))
    return out, err, resp.returncode, status


# --- the kubernetes client's stream() -------------------------------------------------------


def test_cat_reads_what_another_container_wrote_into_a_shared_volume(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    _base_finished(simulated_cluster, v1, "xcom")
    script = "if [ -s /shared/result.json ]; then cat /shared/result.json; else echo __empty__; fi"
    out, err, code, status = _exec(v1, "xcom", "sidecar", ["/bin/sh", "-c", script])
    assert (out, err, code) == ('{"rows": 42}', "", 0)
    assert status == {"metadata": {}, "status": "Success"}
    # A file outside the volume stays the writer's own.
    out, err, code, _ = _exec(v1, "xcom", "sidecar", ["cat", "/tmp/private"])
    assert (out, err, code) == (
        "",
        "cat: can't open '/tmp/private': No such file or directory\n",
        1,
    )


def test_exit_codes_on_the_error_channel(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    out, err, code, status = _exec(
        v1, "xcom", "sidecar", ["sh", "-c", "echo out; echo err >&2; exit 3"]
    )
    assert (out, err, code) == ("out\n", "err\n", 3)
    assert status == {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        "[sh -c echo out; echo err >&2; exit 3], exit code 3",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    out, err, code, _ = _exec(v1, "xcom", "sidecar", ["sh", "-c", "frobnicate --all"])
    assert (out, err, code) == ("", "sh: frobnicate: not found\n", 127)
    out, err, code, _ = _exec(
        v1, "xcom", "sidecar", ["sh", "-c", 'X=$(hostname); test -n "$X" && echo "$X" || false']
    )
    assert (out, code) == ("xcom\n", 0)


def test_a_program_the_container_lacks_is_an_internal_error(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    resp = stream(
        v1.connect_get_namespaced_pod_exec,
        "xcom",
        "batch",
        container="sidecar",
        command=["python3", "-V"],
        stderr=True,
        stdout=True,
        _preload_content=False,
    )
    resp.run_forever(timeout=20)
    status = json.loads(resp.read_channel(3))
    assert (status["status"], status["reason"], status["code"]) == ("Failure", "InternalError", 500)
    assert status["message"].startswith("Internal error occurred: error executing command in")
    assert 'exec: "python3": executable file not found in $PATH: unknown' in status["message"]


def test_sigint_to_pid_1_ends_a_trapping_container_and_the_session(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    _base_finished(simulated_cluster, v1, "xcom")
    resp = stream(
        v1.connect_get_namespaced_pod_exec,
        "xcom",
        "batch",
        container="sidecar",
        command=["/bin/sh"],
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    resp.write_stdin("pgrep -f 'sh'\n")
    pids = ""
    while resp.is_open() and len(pids.split()) < 2:
        resp.update(timeout=5)
        pids += resp.read_stdout() or ""
    assert pids.split()[0] == "1"  # the main process, then this shell
    resp.write_stdin("kill -s SIGINT 1\n")
    resp.run_forever(timeout=20)
    assert not resp.is_open()
    assert resp.read_stderr() == ""
    sidecar = _statuses(v1, "xcom")["sidecar"].state.terminated
    assert (sidecar.exit_code, sidecar.reason) == (0, "Completed")
    simulated_cluster.wait_for(
        lambda: v1.read_namespaced_pod("xcom", "batch").status.phase == "Succeeded",
        message="the pod to succeed",
    )


def test_pid_1_ignores_a_signal_it_does_not_handle(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    body = _pod(
        "plain",
        [{"name": "main", "image": "alpine", "command": ["sh", "-c", "while :; do sleep 5; done"]}],
    )
    _start(simulated_cluster, v1, body, "main")
    assert _exec(v1, "plain", "main", ["kill", "-2", "1"])[2] == 0
    assert _exec(v1, "plain", "main", ["kill", "-9", "99"])[1:3] == (
        "sh: can't kill pid 99: No such process\n",
        1,
    )
    simulated_cluster.settle()
    assert _statuses(v1, "plain")["main"].state.running is not None


def test_a_forever_behaviour_with_signals_and_exec_answers(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _pod("srv", [{"name": "srv", "image": "server:1.0"}]), "srv")
    assert _exec(v1, "srv", "srv", ["python", "-V"])[:3] == ("Python 3.12.4\n", "", 0)
    assert _exec(v1, "srv", "srv", ["sh", "-c", "psql -c 'select 1'"])[1:3] == (
        "connection refused\n",
        2,
    )
    assert _exec(v1, "srv", "srv", ["cat", "/etc/server.conf"])[0] == "port=8080\n"
    assert _statuses(v1, "srv")["srv"].state.running is not None
    # SIGINT is not handled; SIGTERM is, with exit code 143 (kill's default signal).
    _exec(v1, "srv", "srv", ["sh", "-c", "kill -INT 1; kill 1"])
    terminated = _statuses(v1, "srv")["srv"].state.terminated
    assert (terminated.exit_code, terminated.reason) == (143, "Error")


# --- errors before the upgrade ----------------------------------------------------------------


def _handshake_error(v1: kubernetes.client.CoreV1Api, name: str, **kwargs: Any) -> tuple[int, Any]:
    """The HTTP status and body refusing the websocket upgrade (the JSON ``Status``, or the
    kubelet's plain text)."""
    with pytest.raises(Exception) as raised:  # the client's own error handling trips over it
        stream(
            v1.connect_get_namespaced_pod_exec,
            name,
            "batch",
            command=["true"],
            stdout=True,
            stderr=True,
            **kwargs,
        )
    error: BaseException | None = raised.value
    while error is not None and not isinstance(error, WebSocketBadStatusException):
        error = error.__context__
    assert isinstance(error, WebSocketBadStatusException), raised.value
    body = (error.resp_body or b"").decode()
    try:
        return error.status_code, json.loads(body)
    except ValueError:
        return error.status_code, body


def _status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        status["details"] = details
    return status


def test_errors_before_the_upgrade(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    assert _handshake_error(v1, "missing") == (
        404,
        _status(404, "NotFound", 'pods "missing" not found', name="missing", group="", kind="pods"),
    )
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    message = "a container name must be specified for pod xcom, choose one of: [base sidecar]"
    assert _handshake_error(v1, "xcom") == (400, _status(400, "BadRequest", message))
    assert _handshake_error(v1, "xcom", container="nope") == (
        400,
        _status(400, "BadRequest", "container nope is not valid for pod xcom"),
    )
    _base_finished(simulated_cluster, v1, "xcom")
    # The kubelet's answer for a container that is not running, passed through as it is.
    assert _handshake_error(v1, "xcom", container="base") == (500, 'container not found ("base")')


@pytest.mark.simulated_cluster({**CLUSTER, "nodePools": []})
def test_a_pod_without_a_node(simulated_cluster: Any, v1: kubernetes.client.CoreV1Api) -> None:
    v1.create_namespaced_pod("batch", _pod("pending", [{"name": "m", "image": "alpine"}]))
    assert _handshake_error(v1, "pending") == (
        400,
        _status(400, "BadRequest", "pod pending does not have a host assigned"),
    )


@pytest.mark.simulated_cluster(
    {**CLUSTER, "rbac": {"deny": [{"verb": "get", "group": "", "resource": "pods/exec"}]}}
)
def test_exec_is_authorized_as_get_on_pods_exec(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    code, status = _handshake_error(v1, "xcom", container="sidecar")
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == (
        'pods "xcom" is forbidden: User "simulated" cannot get resource "pods/exec" in API '
        'group "" in the namespace "batch"'
    )
    assert simulated_cluster.requests(verb="get", resource="pods/exec") == 1
    # Reading the pod is still allowed.
    assert v1.read_namespaced_pod("xcom", "batch").metadata.name == "xcom"


@pytest.mark.simulated_cluster(
    {
        **CLUSTER,
        "kubernetesVersion": "1.35.0",
        "rbac": {"deny": [{"verb": "create", "group": "", "resource": "pods/exec"}]},
    }
)
def test_from_1_35_a_websocket_exec_needs_create(
    simulated_cluster: Any, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    code, status = _handshake_error(v1, "xcom", container="sidecar")
    assert code == 403
    assert 'cannot create resource "pods/exec"' in status["message"]


def test_discovery_lists_exec_and_attach(api: kubernetes.client.ApiClient) -> None:
    resources = kubernetes.client.CoreV1Api(api).get_api_resources().resources
    found = {r.name: (r.kind, sorted(r.verbs)) for r in resources if r.name.startswith("pods/")}
    assert found["pods/exec"] == ("PodExecOptions", ["create", "get"])
    assert found["pods/attach"] == ("PodAttachOptions", ["create", "get"])


# --- kubernetes_asyncio ---------------------------------------------------------------------------


async def test_kubernetes_asyncio_ws_client(
    simulated_cluster: Any, simulated_kubeconfig: Path, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    _base_finished(simulated_cluster, v1, "xcom")
    configuration = kubernetes_asyncio.client.Configuration()
    await kubernetes_asyncio.config.load_kube_config(
        config_file=str(simulated_kubeconfig), client_configuration=configuration
    )
    async with WsApiClient(configuration=configuration) as ws_api:
        core = kubernetes_asyncio.client.CoreV1Api(api_client=ws_api)
        out = await core.connect_get_namespaced_pod_exec(
            "xcom", "batch", container="sidecar", command=["echo", "hello"], stdout=True
        )
        assert out == "hello\n"
        channels: dict[int, bytes] = {}
        connection = await core.connect_get_namespaced_pod_exec(
            "xcom",
            "batch",
            container="sidecar",
            command=["sh", "-c", "cat /shared/result.json; cat /nothing"],
            stderr=True,
            stdout=True,
            _preload_content=False,
        )
        async with connection as ws:
            async for message in ws:
                data = message.data
                channels[data[0]] = channels.get(data[0], b"") + data[1:]
    assert channels[1] == b'{"rows": 42}'
    assert channels[2] == b"cat: can't open '/nothing': No such file or directory\n"
    assert WsApiClient.parse_error_data(channels[3]) == 1


# --- kubectl --------------------------------------------------------------------------------------


def _kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None, "kubectl is installed beside the interpreter"
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "-n", "batch", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kubectl_exec(
    simulated_cluster: Any, simulated_kubeconfig: Path, v1: kubernetes.client.CoreV1Api
) -> None:
    _start(simulated_cluster, v1, _xcom_pod(), "sidecar")
    _base_finished(simulated_cluster, v1, "xcom")
    done = _kubectl(
        simulated_kubeconfig, "exec", "xcom", "-c", "sidecar", "--", "cat", "/shared/result.json"
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, '{"rows": 42}', "")
    done = _kubectl(
        simulated_kubeconfig,
        "exec",
        "xcom",
        "-c",
        "sidecar",
        "--",
        "sh",
        "-c",
        "echo bad >&2; exit 7",
    )
    assert done.returncode == 7
    assert done.stderr == "bad\ncommand terminated with exit code 7\n"
    # stdin through v5.channel.k8s.io: the shell runs each line, and ends when stdin closes.
    done = _kubectl(
        simulated_kubeconfig,
        "exec",
        "-i",
        "xcom",
        "-c",
        "sidecar",
        "--",
        "sh",
        stdin="echo first\ncat /shared/result.json; echo\nexit 4\necho never\n",
    )
    assert (done.returncode, done.stdout) == (4, 'first\n{"rows": 42}\n')
    done = _kubectl(simulated_kubeconfig, "exec", "xcom", "-c", "nope", "--", "true")
    assert done.returncode == 1 and "nope" in done.stderr


@pytest.mark.simulated_cluster({**CLUSTER, "timeScale": 0})
def test_kubectl_attach_follows_the_main_process_until_it_exits(
    simulated_cluster: Any, simulated_kubeconfig: Path, v1: kubernetes.client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("batch", _pod("ticker", [{"name": "t", "image": "ticker:1.0"}]))
    simulated_cluster.advance(1)
    simulated_cluster.wait_for(
        lambda: _statuses(v1, "ticker")["t"].state.running, message="the ticker to run"
    )
    assert KUBECTL is not None
    attach = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(simulated_kubeconfig), "-n", "batch", "attach", "ticker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        simulated_cluster.wait_for(
            lambda: simulated_cluster.requests(verb="get", resource="pods/attach") == 1,
            timeout=30,
            message="kubectl to attach",
        )
        # Time is frozen: the first line was written when the container started, before the
        # attach; the rest come while attached, until the main process exits.
        simulated_cluster.advance(300)
        out, err = attach.communicate(timeout=30)
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.communicate()
    assert attach.returncode == 0, err
    assert out.splitlines() == [f"tick {i}" for i in range(1, 30)]
    terminated = _statuses(v1, "ticker")["t"].state.terminated
    assert terminated is not None and terminated.exit_code == 0


# --- behaviour keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"seconds": "never"}, "r.seconds: must be a number >= 0 or \"forever\", got 'never'"),
        ({"signals": {"KILL": 0}}, "r.signals.KILL: KILL cannot be handled"),
        ({"signals": {"WINCH": 0}}, "r.signals.WINCH: unknown signal"),
        ({"signals": {"INT": 256}}, "r.signals.INT: must be an integer from 0 to 255"),
        ({"exec": [{"stdout": "x"}]}, "r.exec[0].command: required"),
        ({"exec": [{"command": "x", "code": 1}]}, "r.exec[0].code: unknown field"),
    ],
)
def test_exec_behaviour_keys_are_checked(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_rule(rule, "r")
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("command", "forever", "signals"),
    [
        (["sh", "-c", LOOP], True, {"INT": 0}),
        (
            ["/bin/bash", "-c", "trap 'echo bye; exit 3' TERM INT\nwhile :\ndo sleep 1; done"],
            True,
            {"TERM": 3, "INT": 3},
        ),
        (["sh", "-c", "while true; do test -f /done && break; sleep 1; done"], False, {}),
        (["sleep", "infinity"], True, {}),
        (["tail", "-f", "/dev/null"], True, {}),
        (["sh", "-c", "trap '' INT; sleep 10"], False, {}),
        (["python", "main.py"], False, {}),
    ],
)
def test_what_a_command_says_about_its_container(
    command: list[str], forever: bool, signals: dict[str, int]
) -> None:
    assert runs_forever(command) is forever
    assert trapped_signals(command) == signals
