"""A real Airflow deployment against the upstream control plane.

The deployment of tests/deployment/deployment.py (scheduler, triggerer, LocalExecutor,
PostgreSQL, and on Airflow 3 the API server and DAG processor) runs the DAGs of
tests/cluster/dags/real_cluster_deployed.py against ``scripts/real-cluster`` with its node agent.
Every DAG runs once as soon as it is parsed, all at once; while the fault scenarios' tasks are
deferred, the ``faults`` fixture injects their faults on one timeline (the Job deleted, the
scheduler SIGKILLed and restarted, kube-apiserver restarted, the triggerer SIGKILLed and
restarted after the Job finished), and each test checks its scenario's outcome: the fault came
mid-wait, a final state within a deadline, no retry spent, exactly one Job (none recreated),
the XCom kept.

The connections are inline kubeconfigs: ``real_cluster`` authenticates with a client
certificate and key signed by the control plane's client CA, ``real_cluster_token`` with the
token of the service account bound to docs/rbac/airflow-k8s-jobs.yaml. Trigger rows are
recorded while tasks are deferred; the last test searches every log, every metadata-table row
and those trigger rows for the key and the token.
"""

from __future__ import annotations

import base64
import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from kubernetes import client, config

from tests.deployment.deployment import (
    AirflowDeployment,
    PostgresServer,
    deployment,
    throwaway_postgres,
    wait_until,
)
from tests.secret_scan import Secrets, as_text, decrypted_trigger_kwargs, deployment_kept

from .conftest import (
    RunningCluster,
    least_privileged_kubeconfig,
    may_create_jobs,
    run_cluster_with_nodes,
)

# Not skipped without KUBECONFIG (see conftest.py): the cluster is started here.
STARTS_OWN_CLUSTER = True

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

DAG_FILE = Path(__file__).parent / "dags" / "real_cluster_deployed.py"
NAMESPACE = "jobs"
DAG_ID_LABEL = "airflow-k8s-jobs.io/dag-id"
CERT_USER = "airflow-k8s-jobs-client"
"""The client certificate's common name: the user the API server authenticates."""
RUN_TIMEOUT = 300
"""No task may take longer than this to reach its final state (no hung task)."""

NODES_CONFIG = {
    "namespaces": [NAMESPACE],
    "timeScale": 1,
    "nodePools": [{"name": "default", "nodes": 1, "capacity": {"cpu": "16", "memory": "64Gi"}}],
}


@dataclass
class TriggerRecorder:
    """Records every trigger row (every column as stored, and the kwargs decrypted) while the
    tasks are deferred: Airflow deletes the rows once their tasks resume."""

    airflow: AirflowDeployment
    rows: dict[Any, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def record(self) -> None:
        fernet_key = self.airflow.env["AIRFLOW__CORE__FERNET_KEY"]
        for row in self.airflow.query("SELECT * FROM trigger"):
            self.rows[row[0]] = "\n".join(as_text(value) for value in row)
        for trigger_id, _, kwargs in self.airflow.trigger_rows():
            decrypted = decrypted_trigger_kwargs(as_text(kwargs), fernet_key)
            self.rows[trigger_id] = self.rows.get(trigger_id, "") + "\n" + decrypted

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.record()
            except psycopg2.Error:  # a connection refused or cut: the next round records
                continue

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


@dataclass
class Deployed:
    airflow: AirflowDeployment
    cluster: RunningCluster
    secrets: Secrets
    triggers: TriggerRecorder

    def run_id(self, dag_id: str) -> str:
        return self.airflow.first_run(dag_id)

    def deferred(self, dag_id: str) -> str:
        """Wait until the DAG's task is deferred; returns the run id."""
        run_id = self.run_id(dag_id)
        state = self.airflow.wait_for_task_state(
            dag_id, run_id, "work", {"deferred", "success", "failed"}, timeout=RUN_TIMEOUT
        )
        assert state == "deferred", (
            f"{dag_id} ended ({state}) instead of deferring:\n" + self.log(dag_id, run_id)[-5000:]
        )
        return run_id

    def jobs(self, dag_id: str) -> list[client.V1Job]:
        batch = client.BatchV1Api(self.cluster.api)
        selector = f"{DAG_ID_LABEL}={dag_id}"
        return list(batch.list_namespaced_job(NAMESPACE, label_selector=selector).items)

    def job_finished(self, dag_id: str) -> bool:
        (job,) = self.jobs(dag_id)
        return any(
            c.type in ("Complete", "Failed") and c.status == "True"
            for c in job.status.conditions or []
        )

    def log(self, dag_id: str, run_id: str) -> str:
        return self.airflow.task_log(dag_id, run_id, "work")

    def assert_succeeded_once(self, dag_id: str, run_id: str) -> None:
        """Success within the deadline, on the first try, one Job, the XCom kept."""
        state = self.airflow.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
        task = self.airflow.tasks(dag_id, run_id)["work"]
        assert (state, task.state) == ("success", "success"), (
            task,
            self.log(dag_id, run_id)[-5000:],
            self.airflow.component_logs()[-5000:],
        )
        assert task.try_number == 1, "a retry was spent"
        assert len(self.jobs(dag_id)) == 1, "the Job was created twice"
        assert self.airflow.xcom(dag_id, run_id, "work") == [f"{dag_id}-result"]
        assert f"{dag_id}: done" in self.log(dag_id, run_id)


# --- credentials -----------------------------------------------------------------------------


def client_certificate(cluster: RunningCluster, common_name: str) -> tuple[bytes, bytes]:
    """A client certificate for user ``common_name``, signed by the control plane's client CA
    (``--client-ca-file``, scripts/real-cluster's ``ca.crt``); returns (certificate, key) PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate((cluster.pki / "ca.crt").read_bytes())
    ca_key: Any = serialization.load_pem_private_key((cluster.pki / "ca.key").read_bytes(), None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=2))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_kubeconfig(
    cluster: RunningCluster, token_kubeconfig: dict[str, Any]
) -> tuple[dict[str, Any], bytes]:
    """``token_kubeconfig`` with the token replaced by a client certificate and key (inline)
    for ``CERT_USER``, bound to docs' Role in ``NAMESPACE`` as the service account is; returns
    the kubeconfig and the key's PEM once the user may create Jobs there."""
    cert_pem, key_pem = client_certificate(cluster, CERT_USER)
    doc = json.loads(json.dumps(token_kubeconfig))
    doc["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode(cert_pem).decode(),
        "client-key-data": base64.b64encode(key_pem).decode(),
    }
    client.RbacAuthorizationV1Api(cluster.api).create_namespaced_role_binding(
        NAMESPACE,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "airflow-k8s-jobs-client-certificate"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "airflow-k8s-jobs",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": CERT_USER}
            ],
        },
    )
    as_user = config.new_client_from_config_dict(doc)
    try:
        wait_until(
            lambda: may_create_jobs(as_user, NAMESPACE),
            60,
            f"{CERT_USER} to be allowed to create Jobs",
        )
    finally:
        as_user.close()
    return doc, key_pem


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with run_cluster_with_nodes(tmp_path_factory, NODES_CONFIG) as running:
        yield running


@pytest.fixture(scope="module")
def deployed(
    cluster: RunningCluster,
    postgres: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    tmp = tmp_path_factory.mktemp("deployment")
    token_file = least_privileged_kubeconfig(cluster, NAMESPACE, tmp / "token-kubeconfig.yaml")
    token_kubeconfig = json.loads(token_file.read_text())
    token_file.unlink()  # inline only: nothing on disk for the deployment to read
    cert_kubeconfig, key_pem = certificate_kubeconfig(cluster, token_kubeconfig)
    token = token_kubeconfig["users"][0]["user"]["token"]
    connections = {
        "real_cluster": {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig": cert_kubeconfig, "namespace": NAMESPACE},
        },
        "real_cluster_token": {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig": token_kubeconfig, "namespace": NAMESPACE},
        },
    }
    extra_env = {
        # Every DAG runs once as soon as it is parsed.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # Six workers start at once on two shared cores: each parses the DAG file slowly.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        # ... and, on Airflow 3, the API server answers them slowly meanwhile (5s by default).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        # A killed triggerer's triggers move to a live one once its heartbeat is this old.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
    }
    dags = {DAG_FILE.name: DAG_FILE}
    with deployment(tmp, postgres, dags, connections, extra_env) as airflow:
        recorder = TriggerRecorder(airflow)
        recorder.start()
        try:
            yield Deployed(airflow, cluster, Secrets(token, key_pem), recorder)
        finally:
            recorder.stop()


# --- the faults -------------------------------------------------------------------------------

FAULT_SCENARIOS = (
    "rd_job_deleted",
    "rd_scheduler_restarted",
    "rd_api_server_restarted",
    "rd_triggerer_killed",
)


@dataclass
class Faults:
    """What the timeline did: each scenario's run and Job, and whether its Job was still
    running when its fault came (the fault came mid-wait)."""

    run_ids: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, client.V1Job] = field(default_factory=dict)
    mid_wait: dict[str, bool] = field(default_factory=dict)

    def before_fault(self, deployed: Deployed, dag_id: str) -> None:
        jobs = deployed.jobs(dag_id)
        run_id = self.run_ids[dag_id]
        assert len(jobs) == 1, (
            f"{dag_id} has {len(jobs)} Jobs before its fault; its task is "
            f"{deployed.airflow.task_state(dag_id, run_id, 'work')}:\n"
            + deployed.log(dag_id, run_id)[-5000:]
        )
        self.jobs[dag_id] = jobs[0]
        self.mid_wait[dag_id] = deployed.airflow.task_state(
            dag_id, self.run_ids[dag_id], "work"
        ) == "deferred" and not deployed.job_finished(dag_id)


@pytest.fixture(scope="module")
def faults(deployed: Deployed) -> Faults:
    """The faults, on one timeline (the runs overlap: one deployment's start is all the module
    can afford). Once every fault scenario's task is deferred: its Job is deleted (foreground);
    the scheduler is SIGKILLed and started again; kube-apiserver restarts. Once the run whose
    trigger lived through that restart has ended, the triggerer is SIGKILLed, and started again
    only after the last scenario's Job has finished."""
    airflow = deployed.airflow
    done = Faults()
    for dag_id in FAULT_SCENARIOS:
        done.run_ids[dag_id] = deployed.deferred(dag_id)

    done.before_fault(deployed, "rd_job_deleted")
    client.BatchV1Api(deployed.cluster.api).delete_namespaced_job(
        done.jobs["rd_job_deleted"].metadata.name, NAMESPACE, propagation_policy="Foreground"
    )

    done.before_fault(deployed, "rd_scheduler_restarted")
    old_scheduler = airflow.wait_for_job("SchedulerJob")
    airflow.kill("scheduler", signal.SIGKILL)
    airflow.start("scheduler")

    done.before_fault(deployed, "rd_api_server_restarted")
    deployed.cluster.restart_api_server()
    airflow.wait_for_job("SchedulerJob", newer_than=old_scheduler)
    airflow.wait_for_run(
        "rd_api_server_restarted", done.run_ids["rd_api_server_restarted"], timeout=RUN_TIMEOUT
    )

    done.before_fault(deployed, "rd_triggerer_killed")
    old_triggerer = airflow.wait_for_job("TriggererJob")
    airflow.kill("triggerer", signal.SIGKILL)
    wait_until(
        lambda: deployed.job_finished("rd_triggerer_killed"), RUN_TIMEOUT, "the Job to finish"
    )
    airflow.start("triggerer")
    airflow.wait_for_job("TriggererJob", newer_than=old_triggerer)
    return done


# --- the tests --------------------------------------------------------------------------------


def test_job_deleted_behind_the_tasks_back_fails_the_task_once_saying_so(
    deployed: Deployed, faults: Faults
) -> None:
    assert faults.mid_wait["rd_job_deleted"], "the Job finished before it was deleted"
    run_id, name = faults.run_ids["rd_job_deleted"], faults.jobs["rd_job_deleted"].metadata.name
    state = deployed.airflow.wait_for_run("rd_job_deleted", run_id, timeout=RUN_TIMEOUT)
    task = deployed.airflow.tasks("rd_job_deleted", run_id)["work"]
    log = deployed.log("rd_job_deleted", run_id)
    assert (state, task.state, task.try_number) == ("failed", "failed", 1), log[-5000:]
    assert f"{name} was deleted while the task was waiting for it" in log, log[-5000:]
    wait_until(lambda: not deployed.jobs("rd_job_deleted"), 120, "the deleted Job to be gone")
    assert deployed.jobs("rd_job_deleted") == [], "the Job was recreated"


def test_scheduler_killed_and_restarted_while_deferred(deployed: Deployed, faults: Faults) -> None:
    assert faults.mid_wait["rd_scheduler_restarted"], "the Job finished before the restart"
    deployed.assert_succeeded_once(
        "rd_scheduler_restarted", faults.run_ids["rd_scheduler_restarted"]
    )


def test_kube_apiserver_restarted_while_deferred(deployed: Deployed, faults: Faults) -> None:
    """Every watch and connection drops while kube-apiserver restarts; the trigger reconnects
    and the task succeeds once."""
    assert faults.mid_wait["rd_api_server_restarted"], "the Job finished before the restart"
    run_id = faults.run_ids["rd_api_server_restarted"]
    deployed.assert_succeeded_once("rd_api_server_restarted", run_id)


def test_triggerer_killed_while_the_job_finishes(deployed: Deployed, faults: Faults) -> None:
    """SIGKILL the triggerer; the Job finishes while no triggerer runs; a new triggerer takes
    the orphaned trigger over and fires from the Job's current state."""
    assert faults.mid_wait["rd_triggerer_killed"], "the Job finished before the triggerer died"
    deployed.assert_succeeded_once("rd_triggerer_killed", faults.run_ids["rd_triggerer_killed"])


def test_a_job_that_succeeds_returns_its_termination_message(deployed: Deployed) -> None:
    """Through the token connection; the other scenarios go through the client certificate."""
    run_id = deployed.run_id("rd_ok")
    state = deployed.airflow.wait_for_run("rd_ok", run_id, timeout=RUN_TIMEOUT)
    task = deployed.airflow.tasks("rd_ok", run_id)["work"]
    log = deployed.log("rd_ok", run_id)
    assert (state, task.state, task.try_number) == ("success", "success", 1), log[-5000:]
    assert deployed.airflow.xcom("rd_ok", run_id, "work") == ["ok-42"]
    assert len(deployed.jobs("rd_ok")) == 1
    assert "rd_ok: done" in log
    assert "deferr" in log.lower(), log[-5000:]


def test_a_job_that_fails_fails_the_task_once_naming_the_cause(deployed: Deployed) -> None:
    run_id = deployed.run_id("rd_fails")
    state = deployed.airflow.wait_for_run("rd_fails", run_id, timeout=RUN_TIMEOUT)
    task = deployed.airflow.tasks("rd_fails", run_id)["work"]
    log = deployed.log("rd_fails", run_id)
    assert (state, task.state, task.try_number) == ("failed", "failed", 1), log[-5000:]
    (job,) = deployed.jobs("rd_fails")
    assert f"Job {NAMESPACE}/{job.metadata.name}" in log, log[-5000:]
    assert "BackoffLimitExceeded" in log and "exited with code 3" in log, log[-5000:]
    assert "rd_fails: done" in log


def test_the_client_key_and_the_token_are_nowhere_in_what_the_deployment_keeps(
    deployed: Deployed,
) -> None:
    """After every run has ended: the task and component logs, every row of every metadata
    table, and the trigger rows recorded while the tasks were deferred (raw and decrypted)."""
    airflow = deployed.airflow
    for dag_id in ("rd_ok", "rd_fails", "rd_job_deleted"):
        airflow.wait_for_run(dag_id, deployed.run_id(dag_id), timeout=RUN_TIMEOUT)
    deployed.triggers.stop()
    deployed.triggers.record()
    secrets = deployed.secrets
    # The connections do hold both: the search would find them.
    assert set(secrets.found_in(airflow.env["AIRFLOW_CONN_REAL_CLUSTER"])) == {
        "client key (base64, as in the kubeconfig)"
    }
    assert secrets.found_in(airflow.env["AIRFLOW_CONN_REAL_CLUSTER_TOKEN"]) == ["token"]
    searched, database, rows = deployment_kept(airflow, deployed.triggers.rows.values())
    assert not secrets.leaks(searched)
    # What was searched holds what the runs left.
    assert len(deployed.triggers.rows) >= 2, deployed.triggers.rows
    assert rows["xcom"] > 0 and rows["task_instance"] >= 6, rows
    assert "real_cluster" in database
