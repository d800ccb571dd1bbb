"""``KubeCleanupOperator`` against the simulated cluster, through an Airflow connection.

Simulated time is frozen (``timeScale: 0``): the old Jobs run and finish, ``advance`` moves the
cluster eight days on, then the young Jobs run. The operator measures ages with a clock that
reads the cluster's simulated time, and its rate limiter and retries sleep on a fake clock, so
nothing here waits for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs import KubeCleanupOperator
from airflow_k8s_jobs.errors import InvalidInputError
from airflow_k8s_jobs.manifests.names import MANAGED_BY
from simulated_k8s_cluster import SimulatedCluster

BATCH, ETL = "batch", "etl"
CONN_ID = "sim_cleanup"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"
DAY = 86400

OLD_COMPLETE, OLD_FAILED, RUNNING, YOUNG, LEGACY, OLD_ETL = 280, 20, 3, 10, 5, 40

pytestmark = pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": [BATCH, ETL],
        "nodePools": [
            {"name": "default", "nodes": 6, "capacity": {"cpu": "64", "memory": "256Gi"}}
        ],
    }
)


def job(
    name: str,
    namespace: str = BATCH,
    labels: dict[str, str] | None = None,
    behaviour: dict[str, Any] | None = None,
) -> dict[str, Any]:
    template_meta = {"annotations": {BEHAVIOUR: json.dumps(behaviour)}} if behaviour else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(MANAGED_BY) if labels is None else labels,
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": template_meta,
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                },
            },
        },
    }


def create_all(cluster: SimulatedCluster, jobs: list[dict[str, Any]]) -> None:
    """Create many Jobs in one turn of the cluster's loop (fast for hundreds)."""
    cluster.call(lambda: [cluster.create(j) for j in jobs])


def names(cluster: SimulatedCluster, namespace: str = BATCH) -> set[str]:
    return {j["metadata"]["name"] for j in cluster.list("jobs", namespace)}


def pods_of(cluster: SimulatedCluster, name: str, namespace: str = BATCH) -> list[Any]:
    return cluster.list("pods", namespace, {JOB_NAME_LABEL: name})


def finished(cluster: SimulatedCluster, namespace: str, count: int) -> bool:
    done = 0
    for j in cluster.list("jobs", namespace):
        conditions = (j.get("status") or {}).get("conditions") or []
        done += any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions
        )
    return done == count


OLD = {f"old-{i:03d}" for i in range(OLD_COMPLETE + OLD_FAILED)}
OLD_FAILED_NAMES = {f"old-{i:03d}" for i in range(OLD_COMPLETE, OLD_COMPLETE + OLD_FAILED)}
RUNNING_NAMES = {f"running-{i}" for i in range(RUNNING)}
YOUNG_NAMES = {f"young-{i:02d}" for i in range(YOUNG)}
LEGACY_NAMES = {f"legacy-{i}" for i in range(LEGACY)}
ETL_NAMES = {f"etl-{i:02d}" for i in range(OLD_ETL)}


@pytest.fixture
def populated(simulated_cluster: SimulatedCluster) -> SimulatedCluster:
    """300 old finished Jobs of ours (20 failed), 3 running, 10 young, 5 not ours (batch);
    40 old finished Jobs of ours in ``etl``."""
    cluster = simulated_cluster
    old = [
        job(name, behaviour={"exitCode": 1} if name in OLD_FAILED_NAMES else None)
        for name in sorted(OLD)
    ]
    running = [job(name, behaviour={"seconds": 100 * DAY}) for name in sorted(RUNNING_NAMES)]
    legacy = [job(name, labels={"app": "legacy-etl"}) for name in sorted(LEGACY_NAMES)]
    etl = [job(name, ETL) for name in sorted(ETL_NAMES)]
    create_all(cluster, old + running + legacy + etl)
    cluster.advance(10)
    cluster.wait_for(lambda: finished(cluster, BATCH, len(OLD) + LEGACY), message="old Jobs")
    cluster.wait_for(lambda: finished(cluster, ETL, OLD_ETL), message="etl Jobs")
    cluster.advance(8 * DAY)
    create_all(cluster, [job(name) for name in sorted(YOUNG_NAMES)])
    cluster.advance(10)
    cluster.wait_for(
        lambda: finished(cluster, BATCH, len(OLD) + LEGACY + YOUNG), message="young Jobs"
    )
    cluster.reset_counters()
    return cluster


@pytest.fixture
def connection(
    simulated_cluster: SimulatedCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    kubeconfig = simulated_cluster.write_kubeconfig(tmp_path / "kubeconfig.yaml")
    extra = {
        "kubeconfig_path": str(kubeconfig),
        "namespace": BATCH,
        "allowed_namespaces": [BATCH, ETL],
    }
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "k8sjobs", "extra": extra}),
    )
    return CONN_ID


class FakeTime:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] | None = None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def operator(cluster: SimulatedCluster, fake: FakeTime | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("cluster_conn_id", CONN_ID)
    kwargs.setdefault("older_than", timedelta(days=7))
    kwargs.setdefault("clock", lambda: cluster.clock.datetime_at(cluster.now()))
    op = KubeCleanupOperator(task_id="cleanup", **kwargs)
    fake = fake or FakeTime()
    op._monotonic, op._sleep = fake.monotonic, fake.sleep
    return op


def run(op: Any) -> dict[str, Any]:
    summary: dict[str, Any] = op.execute({})
    json.dumps(summary)  # it goes to XCom
    return summary


def test_deletes_old_finished_jobs_of_ours_and_their_pods(
    populated: SimulatedCluster, connection: str
) -> None:
    cluster = populated
    assert pods_of(cluster, "old-000") and pods_of(cluster, "old-299")
    summary = run(operator(cluster))

    ns = summary["namespaces"][BATCH]
    assert ns["deleted"] == len(OLD) == summary["deleted"] == 300
    assert ns["kept_running"] == RUNNING
    assert ns["kept_too_young"] == YOUNG
    assert ns["listed"] == len(OLD) + RUNNING + YOUNG  # the legacy Jobs are not ours
    assert ns["already_gone"] == ns["kept_recreated"] == 0
    assert ns["clock"] == "given clock"
    assert ns["names"] == sorted(OLD)[:100] and ns["names_truncated"]
    assert summary["label_selector"] == "app.kubernetes.io/managed-by=airflow-k8s-jobs"
    assert not summary["dry_run"] and not summary["max_deletions_reached"]

    assert names(cluster) == RUNNING_NAMES | YOUNG_NAMES | LEGACY_NAMES
    assert names(cluster, ETL) == ETL_NAMES  # only the namespace asked for

    # Background propagation: the garbage collector removes the pods of the deleted Jobs.
    def old_pods() -> list[Any]:
        return [p for p in cluster.list("pods", BATCH) if p["metadata"]["name"][:4] == "old-"]

    cluster.wait_for(lambda: not old_pods(), message="the old Jobs' pods to be deleted")
    for name in RUNNING_NAMES | YOUNG_NAMES | LEGACY_NAMES:
        assert pods_of(cluster, name), name
    assert cluster.requests(verb="delete", resource="jobs") == 300
    assert cluster.requests(verb="list", resource="jobs") == 1  # 313 Jobs fit in one page


def test_dry_run_deletes_nothing(populated: SimulatedCluster, connection: str) -> None:
    cluster = populated
    before = names(cluster)
    summary = run(operator(cluster, dry_run=True, include_failed=False))
    ns = summary["namespaces"][BATCH]
    assert summary["dry_run"]
    assert ns["deleted"] == OLD_COMPLETE  # what would be deleted
    assert ns["kept_failed"] == OLD_FAILED
    assert not set(ns["names"]) & OLD_FAILED_NAMES
    assert names(cluster) == before
    assert cluster.requests(verb="delete") == 0


def test_failed_jobs_can_be_kept(populated: SimulatedCluster, connection: str) -> None:
    cluster = populated
    summary = run(operator(cluster, include_failed=False))
    assert summary["deleted"] == OLD_COMPLETE
    assert names(cluster) == OLD_FAILED_NAMES | RUNNING_NAMES | YOUNG_NAMES | LEGACY_NAMES


def test_pages_through_the_jobs(populated: SimulatedCluster, connection: str) -> None:
    cluster = populated
    summary = run(operator(cluster, page_size=50))
    ns = summary["namespaces"][BATCH]
    # 313 Jobs at 50 per page; deleting while paging skips nothing (the continue token is a key).
    assert ns["pages"] == 7
    assert cluster.requests(verb="list", resource="jobs") == 7
    assert ns["deleted"] == 300 and ns["listed"] == 313
    assert names(cluster) == RUNNING_NAMES | YOUNG_NAMES | LEGACY_NAMES


def test_max_deletions(populated: SimulatedCluster, connection: str) -> None:
    cluster = populated
    summary = run(operator(cluster, max_deletions=25, page_size=50, namespaces=[BATCH, ETL]))
    assert summary["deleted"] == 25 and summary["max_deletions_reached"]
    ns = summary["namespaces"][BATCH]
    assert ns["names"] == sorted(OLD)[:25]
    assert ns["kept_max_deletions"] == 275
    assert summary["not_visited"] == [ETL]
    assert len(names(cluster)) == len(OLD) + RUNNING + YOUNG + LEGACY - 25
    assert names(cluster, ETL) == ETL_NAMES
    assert cluster.requests(verb="delete", resource="jobs") == 25
    assert cluster.requests(verb="list", resource="jobs") == 7  # batch is listed whole, etl not


def test_expired_continue_token_lists_again(populated: SimulatedCluster, connection: str) -> None:
    cluster = populated
    fake = FakeTime()

    def restart(sleep_number: int) -> None:
        if sleep_number == 1:  # before the second page: a write, then the history is lost
            cluster.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "x", "namespace": ETL},
                }
            )
            cluster.restart_api_server()

    fake.on_sleep = restart
    summary = run(operator(cluster, fake, page_size=50))
    ns = summary["namespaces"][BATCH]
    assert ns["listed"] == 313 and ns["deleted"] == 300 and ns["pages"] == 7
    # 1 page, the refused continuation (410 Expired), then all 7 pages again.
    assert cluster.requests(verb="list", resource="jobs") == 9
    assert names(cluster) == RUNNING_NAMES | YOUNG_NAMES | LEGACY_NAMES


def test_rate_limit_bounds_requests_per_second(
    populated: SimulatedCluster, connection: str
) -> None:
    cluster = populated
    fake = FakeTime()
    rate = 4.0
    summary = run(operator(cluster, fake, requests_per_second=rate, page_size=100))
    requests = cluster.requests(verb="delete", resource="jobs") + cluster.requests(
        verb="list", resource="jobs"
    )
    assert requests == summary["requests"] == 300 + 4
    # Time moved only by the limiter's sleeps: N requests at r per second need (N - 1) / r.
    assert sum(fake.sleeps) == pytest.approx((requests - 1) / rate)
    assert all(s == pytest.approx(1 / rate) for s in fake.sleeps)
    assert fake.now - 1000.0 == pytest.approx((requests - 1) / rate)


def test_several_namespaces_checked_against_the_allow_list(
    populated: SimulatedCluster, connection: str
) -> None:
    cluster = populated
    summary = run(operator(cluster, namespaces=f"{BATCH}, {ETL}"))
    assert summary["namespaces"][BATCH]["deleted"] == 300
    assert summary["namespaces"][ETL]["deleted"] == OLD_ETL
    assert summary["deleted"] == 300 + OLD_ETL
    assert names(cluster, ETL) == set()

    with pytest.raises(InvalidInputError, match="'kube-system' is not allowed by connection"):
        run(operator(cluster, namespaces=[BATCH, "kube-system"]))
    assert cluster.requests(verb="list", resource="jobs") == 2  # none for the refused run


def test_widened_selector_cleans_jobs_made_otherwise(
    populated: SimulatedCluster, connection: str
) -> None:
    cluster = populated
    summary = run(operator(cluster, only_managed=False, label_selector="app=legacy-etl"))
    assert summary["label_selector"] == "app=legacy-etl"
    assert set(summary["namespaces"][BATCH]["names"]) == LEGACY_NAMES
    assert names(cluster) == OLD | RUNNING_NAMES | YOUNG_NAMES

    narrowed = run(operator(cluster, label_selector="app=legacy-etl"))  # ours AND legacy: none
    assert narrowed["deleted"] == 0


def test_recreated_and_vanished_jobs(populated: SimulatedCluster, connection: str) -> None:
    """Between the LIST and the DELETEs, old-000 is recreated and old-001 deleted by someone
    else: the uid precondition spares the new old-000, the 404 counts as gone."""
    cluster = populated
    fake = FakeTime()

    def meddle(sleep_number: int) -> None:
        if sleep_number == 1:  # the limiter's wait before the first DELETE
            cluster.delete("jobs", BATCH, "old-000")
            cluster.wait_for(lambda: cluster.get("jobs", BATCH, "old-000") is None)
            cluster.create(job("old-000"))
            cluster.delete("jobs", BATCH, "old-001")

    fake.on_sleep = meddle
    summary = run(operator(cluster, fake))
    ns = summary["namespaces"][BATCH]
    assert ns["kept_recreated"] == 1
    assert ns["already_gone"] == 1
    assert ns["deleted"] == 298
    assert "old-000" in names(cluster)


def test_transient_errors_are_retried(populated: SimulatedCluster, connection: str) -> None:
    cluster = populated
    fake = FakeTime()
    cluster.fail_next(count=1, status=500, retry_after=7, verb="list", resource="jobs")
    cluster.fail_next(count=2, status=500, verb="delete", resource="jobs")
    summary = run(operator(cluster, fake, requests_per_second=1000))
    assert summary["deleted"] == 300
    assert 7.0 in fake.sleeps  # the server's Retry-After
    assert cluster.requests(verb="list", resource="jobs") == 2
    assert cluster.requests(verb="delete", resource="jobs") == 302


def test_age_from_the_clusters_date_header(
    simulated_cluster: SimulatedCluster, connection: str
) -> None:
    """Without a clock the operator reads the cluster's ``Date`` header, which follows the
    cluster's (here manual) clock like its timestamps."""
    cluster = simulated_cluster
    create_all(cluster, [job(f"done-{i}") for i in range(3)])
    cluster.advance(2)
    cluster.wait_for(lambda: finished(cluster, BATCH, 3))
    op = operator(cluster, older_than=timedelta(days=1), clock=None)
    summary = run(op)
    assert summary["namespaces"][BATCH]["clock"] == "cluster's Date header"
    assert summary["namespaces"][BATCH]["kept_too_young"] == 3

    summary = run(operator(cluster, older_than=timedelta(0), clock=None))
    assert summary["deleted"] == 3
    stamp = datetime.fromisoformat(summary["namespaces"][BATCH]["now"].replace("Z", "+00:00"))
    assert stamp == cluster.clock.datetime_at(cluster.now())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"propagation_policy": "Orphan"}, "would leave the Jobs' pods behind"),
        ({"propagation_policy": "background"}, "must be one of Background, Foreground"),
        ({"only_managed": False}, "needs a label_selector"),
        ({"requests_per_second": 0}, "requests_per_second must be > 0"),
        ({"older_than": timedelta(days=-1)}, "older_than must be >= 0"),
        ({"max_deletions": -1}, "max_deletions must be >= 0"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        KubeCleanupOperator(task_id="cleanup", cluster_conn_id=CONN_ID, **kwargs)


def test_expired_token_is_reloaded(populated: SimulatedCluster, connection: str) -> None:
    cluster = populated
    fake = FakeTime()

    def expire(sleep_number: int) -> None:
        if sleep_number == 1:  # after the LIST: the token is rotated, the kubeconfig rewritten
            cluster.expire_token()

    fake.on_sleep = expire
    summary = run(operator(cluster, fake))
    assert summary["deleted"] == 300
    assert summary["requests"] == 1 + 300 + 1  # the DELETE refused with 401, sent again
