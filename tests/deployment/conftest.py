"""Real Airflow deployments (scheduler, triggerer, LocalExecutor, PostgreSQL) for the tests in
this folder; see deployment.py.

Each test module names the DAG files its deployment serves (``DAGS``: file name → source) and
shares one deployment and one simulated cluster between its tests, each test running DAGs of its
own: starting Airflow's components costs far more than a run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from demo import CONN_ID, EXAMPLES_CLUSTER, NAMESPACE, install_workflow_templates

from simulated_k8s_cluster import SimulatedCluster

from .deployment import AirflowDeployment, PostgresServer, deployment, throwaway_postgres

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"
DEPLOYMENT_DAGS = Path(__file__).resolve().parent / "dags"

INLINE_CONN_ID = "gke_batch_inline"
"""A second connection to the same cluster, its kubeconfig and token inline."""

MINIMUM_CONTAINER_SECONDS = 1500
"""Every container of the example cluster runs at least this long in simulated time (15 wall
seconds at its time scale). A trigger that fires within moments of its deferral races the
scheduler's handling of the deferring worker's exit, and Airflow then fails the resumed task as
"state changed externally"; on a real cluster Jobs run for minutes."""


def deployment_cluster() -> dict[str, Any]:
    """The example DAGs' cluster (scripts/demo.py), its containers running a little longer."""
    config = copy.deepcopy(EXAMPLES_CLUSTER)
    for rule in config["behaviours"]:
        if isinstance(rule.get("seconds"), (int, float)):
            rule["seconds"] = max(rule["seconds"], MINIMUM_CONTAINER_SECONDS)
    return config


@dataclass
class Deployed:
    airflow: AirflowDeployment
    cluster: SimulatedCluster
    kubeconfig: Path
    """The connection's kubeconfig file (rewritten with a new token by ``expire_token``)."""


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def deployed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresServer,
) -> Iterator[Deployed]:
    """The module's deployment, its ``gke_batch`` connection pointing at a simulated cluster."""
    tmp = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    dags: dict[str, Path] = request.module.DAGS
    with SimulatedCluster(deployment_cluster()) as cluster:
        install_workflow_templates(cluster, EXAMPLE_DAGS)
        kubeconfig = cluster.write_kubeconfig(tmp / "kubeconfig.yaml")
        conn = {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
        }
        # The same cluster, the kubeconfig (with its token) inline in the connection: what
        # must never leak (tests/deployment/test_example_dags_deployed.py). A test that rotates
        # the token leaves this one stale.
        inline = {
            "conn_type": "k8sjobs",
            "extra": {
                "kubeconfig": cluster.kubeconfig(namespace=NAMESPACE),
                "namespace": NAMESPACE,
            },
        }
        extra_env = {
            # A killed triggerer's triggers move to a live one once its heartbeat is this old.
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
        }
        connections = {CONN_ID: conn, INLINE_CONN_ID: inline}
        with deployment(tmp, postgres, dags, connections, extra_env) as airflow:
            yield Deployed(airflow, cluster, kubeconfig)
