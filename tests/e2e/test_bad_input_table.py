"""Bad input, table-driven: each mistake of ``dags/bad_input_table.py`` (a manifest, a parameter,
a connection or a template) run by real Airflow (``dag.test()``) against the simulated cluster
fails on its first try whatever its ``retries``, before anything is created (the cluster counts
no write but dry runs), with a message that names the field or object and says what to do.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from airflow_k8s_jobs.errors import InvalidInputError
from simulated_k8s_cluster import SimulatedCluster
from simulated_k8s_cluster.tls import self_signed

from .conftest import E2E_CLUSTER

pytestmark = pytest.mark.e2e

TABLE = Path(__file__).parent / "dags" / "bad_input_table.py"
RAW_ERRORS = (
    "UnicodeDecodeError",
    "TemplateSyntaxError",
    "UndefinedError",
    "TemplateNotFound",
    "MaxRetryError",
    "KubeApiError",
    "SSLError",
)

CLUSTER: dict[str, Any] = {
    **copy.deepcopy(E2E_CLUSTER),
    "namespaces": ["batch", "locked"],
    "kueue": {},
    "rbac": {
        "deny": [
            {"verb": "create", "group": "batch", "resource": "jobs", "namespace": "locked"},
        ]
    },
}


def load_table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bad_input_table", TABLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, kubeconfig: Path, **extra: Any
) -> None:
    conn = {
        "conn_type": "k8sjobs",
        "extra": {"kubeconfig_path": str(kubeconfig), "namespace": "batch", **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[SimulatedCluster]:
    with SimulatedCluster({"timeScale": 0.01, "tls": True, "namespaces": ["batch"]}) as cluster:
        yield cluster


@pytest.fixture
def bad_input_cluster(
    airflow_db: None,
    tls_cluster: SimulatedCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SimulatedCluster]:
    """The cluster, and the connections the table's tasks use."""
    with SimulatedCluster(CLUSTER) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
        set_connection(monkeypatch, "gke_batch", kubeconfig)
        set_connection(
            monkeypatch, "bad_input_restricted", kubeconfig, allowed_namespaces=["batch"]
        )
        dead = cluster.kubeconfig()
        dead["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{closed_port()}"
        set_connection(monkeypatch, "bad_input_dead_endpoint", write(tmp_path / "dead.yaml", dead))
        no_ca = tls_cluster.kubeconfig()
        del no_ca["clusters"][0]["cluster"]["certificate-authority-data"]
        set_connection(monkeypatch, "bad_input_tls_no_ca", write(tmp_path / "no-ca.yaml", no_ca))
        wrong_ca = tls_cluster.kubeconfig()
        import base64

        other_ca = base64.b64encode(self_signed("127.0.0.1")[0]).decode()
        wrong_ca["clusters"][0]["cluster"]["certificate-authority-data"] = other_ca
        set_connection(
            monkeypatch, "bad_input_tls_wrong_ca", write(tmp_path / "wrong-ca.yaml", wrong_ca)
        )
        yield cluster


def test_table_has_at_least_forty_cases() -> None:
    table = load_table()
    assert len(table.CASES) + len(table.PARSE_TIME_CASES) >= 40


@pytest.mark.parametrize("dag_id", ["bad_input_jobs", "bad_input_argo", "bad_input_cleanup"])
def test_each_mistake_fails_on_the_first_try_before_anything_is_created(
    dag_id: str, bad_input_cluster: SimulatedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    table = load_table()
    dag = getattr(table, dag_id)
    bad_input_cluster.reset_counters()
    capsys.readouterr()
    dag_run = dag.test()
    log = "".join(capsys.readouterr())
    problems = []
    for case in [c for c in table.CASES if c.dag_id == dag_id]:
        failures = table.FAILURES.get((dag_id, case.task_id))
        ti = dag_run.get_task_instance(case.task_id)
        if not failures:
            problems.append(f"{case.task_id}: no failure recorded (state {ti.state})")
            continue
        kind, message, try_number = failures[-1]
        if len(failures) != 1 or try_number != 1 or str(ti.state) != "failed":
            problems.append(f"{case.task_id}: {len(failures)} tries, state {ti.state}: {message}")
        if kind != "FatalInvalidInputError":
            problems.append(f"{case.task_id}: {kind}: {message}")
        missing = [w for w in case.words if w not in message]
        if missing:
            problems.append(f"{case.task_id}: {missing} not in: {message}")
        raw = [r for r in RAW_ERRORS if r in message]
        if raw:
            problems.append(f"{case.task_id}: raw {raw} in: {message}")
    assert not problems, "\n".join(problems) + "\n" + log[-3000:]
    for resource in ("jobs", "workflows", "pods", "workloads"):
        assert bad_input_cluster.writes(resource) == 0, bad_input_cluster.counters.snapshot()
    assert bad_input_cluster.list("jobs") == []
    assert bad_input_cluster.list("workflows") == []


@pytest.mark.parametrize("case", load_table().PARSE_TIME_CASES, ids=lambda c: c.task_id)
def test_mistakes_in_constant_arguments_fail_when_the_dag_is_parsed(case: Any) -> None:
    from airflow import DAG

    with (
        DAG(f"bad_input_parse_{case.task_id}", schedule=None),
        pytest.raises(InvalidInputError) as raised,
    ):
        case.operator(task_id=case.task_id, **case.kwargs)
    message = str(raised.value)
    assert all(w in message for w in case.words), message
