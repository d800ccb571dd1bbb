"""Tests against a real Kubernetes cluster.

They run only when ``KUBECONFIG`` points at a cluster (``make test-cluster``); otherwise every
test in this folder is skipped, except those of modules that start a cluster of their own
(``STARTS_OWN_CLUSTER = True``, e.g. test_real_control_plane.py).

Such modules start ``scripts/real-cluster`` (the upstream control plane, plus the node agent when
given node pools) with the helpers and fixtures below.
"""

from __future__ import annotations

import contextlib
import json
import os
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

_HERE = Path(__file__).parent

ROOT = _HERE.parents[1]
SCRIPT = ROOT / "scripts" / "real-cluster"
BINARY = ROOT / ".tools" / "realcluster" / "bin" / "realcluster"

# The first start may include a cold build of the control plane.
START_TIMEOUT = 3000

T = TypeVar("T")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = None
    if not os.environ.get("KUBECONFIG"):
        skip = pytest.mark.skip(reason="needs a real cluster: set KUBECONFIG")
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.cluster)
            if skip is not None and not getattr(
                getattr(item, "module", None), "STARTS_OWN_CLUSTER", False
            ):
                item.add_marker(skip)


# --- scripts/real-cluster ------------------------------------------------------------------------


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
    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        ready_line: str,
        process: subprocess.Popen[str] | None = None,
        output: list[str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.ready_line = ready_line
        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        self._process = process
        self._output = output if output is not None else []

    @property
    def pki(self) -> Path:
        """The cluster's certificates and keys (``ca.crt``/``ca.key``: the client CA too)."""
        return self.workdir / "state" / "pki"

    def restart_api_server(self, timeout: float = 180) -> None:
        """Restart kube-apiserver (SIGUSR1 to scripts/real-cluster) and wait until it serves
        again; every client's connections and watches drop meanwhile."""
        assert self._process is not None, "not started by run_real_cluster"
        restarts = self._output.count("kube-apiserver restarted\n")
        self._process.send_signal(signal.SIGUSR1)
        wait_for(
            "kube-apiserver to be restarted",
            lambda: self._output.count("kube-apiserver restarted\n") > restarts,
            timeout,
        )


def skip_without_go() -> None:
    if shutil.which("go") is None and not BINARY.exists():
        pytest.skip(
            "the real control plane is built from upstream Go modules and Go is not installed: "
            "install Go >= 1.26 and put `go` on PATH (a Go >= 1.21 with GOTOOLCHAIN=go1.27.3 "
            "works too), then run scripts/build-real-cluster or these tests again"
        )


@contextlib.contextmanager
def run_real_cluster(base: Path, *extra: str) -> Iterator[RunningCluster]:
    """``scripts/real-cluster`` in the background until ready; SIGTERM and checks on exit."""
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
                *extra,
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
        yield RunningCluster(kubeconfig, workdir, ready_line, proc, lines)
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


def fresh_namespace(cluster: RunningCluster, prefix: str) -> Iterator[str]:
    """A new namespace with its default service account (for a fixture), deleted after."""
    core = client.CoreV1Api(cluster.api)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        "the namespace's default service account",
        lambda: any(
            sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items
        ),
    )
    yield name
    core.delete_namespace(name)


# --- with nodes: the node agent (simulated_k8s_cluster/nodeagent.py) --------------------------

BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
NODES_CONFIG = {
    "timeScale": 1,
    "autoscalerScanSeconds": 1,
    "nodePools": [
        {"name": "default", "nodes": 2, "capacity": {"cpu": "8", "memory": "32Gi"}},
        {
            "name": "gpu",
            "nodes": 0,
            "maxNodes": 1,
            "scaleUpSeconds": 5,
            "capacity": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
            "labels": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
            "taints": [GPU_TAINT],
        },
    ],
}


@pytest.fixture(scope="module")
def cluster_with_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """The control plane plus the node agent, with a default pool and an autoscaled GPU pool."""
    with run_cluster_with_nodes(tmp_path_factory, NODES_CONFIG) as cluster:
        yield cluster


@contextlib.contextmanager
def run_cluster_with_nodes(
    tmp_path_factory: pytest.TempPathFactory, nodes_config: dict[str, Any]
) -> Iterator[RunningCluster]:
    """``scripts/real-cluster --config`` with these node pools (see docs/testing.md)."""
    skip_without_go()
    base = tmp_path_factory.mktemp("real-cluster-nodes")
    config_file = base / "cluster.yaml"
    config_file.write_text(json.dumps(nodes_config))
    with run_real_cluster(base, "--config", str(config_file)) as cluster:
        yield cluster


# --- the least-privileged identity of docs/rbac/ --------------------------------------------------

RBAC_ROLE = ROOT / "docs" / "rbac" / "airflow-k8s-jobs.yaml"


def least_privileged_kubeconfig(cluster: RunningCluster, namespace: str, out: Path) -> Path:
    """A kubeconfig for service account ``airflow/airflow``, bound to docs' Role in ``namespace``.

    The Role and RoleBinding are applied from docs/rbac/airflow-k8s-jobs.yaml as they are; the
    token comes from the TokenRequest API (one hour). Returns ``out`` once the API server's
    authorizer lets the account create Jobs in ``namespace``.
    """
    import yaml
    from kubernetes import utils

    core = client.CoreV1Api(cluster.api)
    with contextlib.suppress(client.ApiException):
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="airflow")))
    with contextlib.suppress(client.ApiException):
        core.create_namespaced_service_account(
            "airflow", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="airflow"))
        )
    for document in yaml.safe_load_all(RBAC_ROLE.read_text()):
        utils.create_from_dict(cluster.api, document, namespace=namespace)
    token = core.create_namespaced_service_account_token(
        "airflow",
        "airflow",
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    doc = json.loads(cluster.kubeconfig.read_text())
    doc["users"][0]["user"] = {"token": token}
    doc["contexts"][0]["context"]["namespace"] = namespace
    out.write_text(json.dumps(doc, indent=2) + "\n")

    restricted = config.new_client_from_config(config_file=str(out))
    try:
        wait_for(
            f"the Role in {namespace} to take effect",
            lambda: may_create_jobs(restricted, namespace),
        )
    finally:
        restricted.close()
    return out


def may_create_jobs(api: client.ApiClient, namespace: str) -> bool:
    """Whether the user of ``api`` may create Jobs in ``namespace`` (RBAC takes a moment)."""
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    group="batch", resource="jobs", verb="create", namespace=namespace
                )
            )
        )
    )
    return bool(review.status.allowed)
