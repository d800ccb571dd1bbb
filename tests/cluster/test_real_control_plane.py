"""The upstream control plane that ``scripts/real-cluster`` runs (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, built from the Go modules pinned in realcluster/).

These tests start it themselves, so they do not need ``KUBECONFIG``; they need Go >= 1.26 on
PATH to build it (or a binary already built into .tools/realcluster/bin/). A cold build takes
minutes; ``scripts/build-real-cluster`` does it ahead of time.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

# Not skipped without KUBECONFIG (see conftest.py): the cluster is started here.
STARTS_OWN_CLUSTER = True

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "real-cluster"
BINARY = ROOT / ".tools" / "realcluster" / "bin" / "realcluster"
GO_MOD = ROOT / "realcluster" / "go.mod"

# The first test's setup may include a cold build of the control plane.
START_TIMEOUT = 3000
pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 300)]

T = TypeVar("T")


def pinned_kubernetes_version() -> str:
    match = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", GO_MOD.read_text(), re.M)
    assert match, f"{GO_MOD} pins no k8s.io/kubernetes version"
    return match.group(1)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


class RunningCluster:
    def __init__(self, kubeconfig: Path, workdir: Path, ready_line: str) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.ready_line = ready_line
        self.api = config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    if shutil.which("go") is None and not BINARY.exists():
        pytest.skip(
            "the real control plane is built from upstream Go modules and Go is not installed: "
            "install Go >= 1.26 and put `go` on PATH (a Go >= 1.21 with GOTOOLCHAIN=go1.27.3 "
            "works too), then run scripts/build-real-cluster or these tests again"
        )
    base = tmp_path_factory.mktemp("real-cluster")
    kubeconfig, workdir, stderr_path = base / "kubeconfig.yaml", base / "run", base / "stderr.log"
    lines: list[str] = []
    ready = threading.Event()
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(SCRIPT),
                "--kubeconfig",
                str(kubeconfig),
                "--workdir",
                str(workdir),
                "--namespace",
                "default",
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "ready" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def failure(why: str) -> str:
        return (
            f"scripts/real-cluster {why}\nstdout:\n{''.join(lines)}\n"
            f"stderr (last 4000 characters):\n{stderr_path.read_text(errors='replace')[-4000:]}"
        )

    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.5):
            if proc.poll() is not None:
                pytest.fail(failure(f"exited with status {proc.returncode} before it was ready"))
            if time.monotonic() > deadline:
                pytest.fail(failure(f"was not ready after {START_TIMEOUT}s"))
        ready_line = next(line for line in lines if "ready" in line).strip()
        print(ready_line)
        yield RunningCluster(kubeconfig, workdir, ready_line)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(failure("did not stop within 60s of SIGTERM"))
        reader.join(5)
    assert proc.returncode == 0, failure(f"exited with status {proc.returncode} on SIGTERM")
    assert not (workdir / "state").exists(), "scripts/real-cluster left its state behind"


@pytest.fixture
def namespace(real_cluster: RunningCluster) -> Iterator[str]:
    core = client.CoreV1Api(real_cluster.api)
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        "the namespace's default service account",
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items
        ),
    )
    yield name
    core.delete_namespace(name)


def job_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
                }
            },
            **spec,
        },
    }


def job_pods(core: client.CoreV1Api, namespace: str, job: str) -> list[client.V1Pod]:
    return list(
        core.list_namespaced_pod(
            namespace, label_selector=f"batch.kubernetes.io/job-name={job}"
        ).items
    )


def test_version_is_the_pinned_upstream_release(real_cluster: RunningCluster) -> None:
    info = client.VersionApi(real_cluster.api).get_code()
    assert info.git_version == pinned_kubernetes_version()
    assert (info.major, info.minor) == tuple(info.git_version[1:].split(".")[:2])
    assert info.git_version in real_cluster.ready_line


def test_job_controller_creates_the_pod(real_cluster: RunningCluster, namespace: str) -> None:
    batch, core = client.BatchV1Api(real_cluster.api), client.CoreV1Api(real_cluster.api)
    job = batch.create_namespaced_job(namespace, job_body("hello"))

    pods = wait_for(
        "the Job controller to create a pod", lambda: job_pods(core, namespace, "hello")
    )
    assert len(pods) == 1
    pod = pods[0]
    owner = pod.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "Job",
        "hello",
        job.metadata.uid,
        True,
    )
    # No nodes: the real scheduler leaves it Pending and says why.
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None
    events = wait_for(
        "a FailedScheduling event",
        lambda: [
            e
            for e in core.list_namespaced_event(namespace).items
            if e.reason == "FailedScheduling" and e.involved_object.name == pod.metadata.name
        ],
    )
    assert "no nodes available" in events[0].message
    status = wait_for(
        "the Job's status to count the pod",
        lambda: (
            (s := batch.read_namespaced_job_status("hello", namespace).status) and s.active and s
        ),
    )
    assert status.active == 1


def test_background_deletion_lets_the_garbage_collector_remove_the_pod(
    real_cluster: RunningCluster, namespace: str
) -> None:
    batch, core = client.BatchV1Api(real_cluster.api), client.CoreV1Api(real_cluster.api)
    batch.create_namespaced_job(namespace, job_body("doomed"))
    wait_for("the Job's pod", lambda: job_pods(core, namespace, "doomed"))

    batch.delete_namespaced_job("doomed", namespace, propagation_policy="Background")

    def job_gone() -> bool:
        try:
            batch.read_namespaced_job("doomed", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for("the Job to be deleted", job_gone)
    wait_for(
        "the garbage collector to delete the pod", lambda: not job_pods(core, namespace, "doomed")
    )


def test_strict_field_validation_rejects_an_unknown_field_in_a_dry_run(
    real_cluster: RunningCluster, namespace: str
) -> None:
    batch = client.BatchV1Api(real_cluster.api)
    body = job_body("strict", bogusField=1)

    with pytest.raises(ApiException) as raised:
        batch.create_namespaced_job(namespace, body, dry_run="All", field_validation="Strict")
    # kube-apiserver answers 400 BadRequest (not 422 Invalid) for a strict decoding error.
    status = json.loads(raised.value.body)
    assert (raised.value.status, status["code"], status["reason"]) == (400, 400, "BadRequest")
    assert 'strict decoding error: unknown field "spec.bogusField"' in status["message"]

    # Without Strict the unknown field is dropped and reported as a warning; a dry run stores
    # nothing.
    created = batch.create_namespaced_job(namespace, body, dry_run="All", field_validation="Warn")
    assert created.metadata.uid
    with pytest.raises(ApiException) as missing:
        batch.read_namespaced_job("strict", namespace)
    assert missing.value.status == 404

    # An invalid value is 422 Invalid, with the field named.
    with pytest.raises(ApiException) as invalid:
        batch.create_namespaced_job(
            namespace,
            job_body("invalid", parallelism=-1),
            dry_run="All",
            field_validation="Strict",
        )
    status = json.loads(invalid.value.body)
    assert (invalid.value.status, status["reason"]) == (422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.parallelism"]
