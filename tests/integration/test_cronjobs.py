"""batch/v1 CronJobs on the simulated cluster, driven by the official client with simulated time
advanced by hand: Jobs on schedule, suspend, concurrency policies, history limits, deadlines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import kubernetes
import pytest

pytestmark = pytest.mark.simulated_cluster(
    {"timeScale": 0, "namespaces": ["batch"], "nodePools": [{"name": "p", "nodes": 1}]}
)
NS = "batch"


def _cronjob(name: str, seconds: float = 1, **spec: Any) -> dict[str, Any]:
    behaviour = f'{{"seconds": {seconds}}}'
    return {
        "metadata": {"name": name},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": {"sim.airflow-k8s-jobs/behaviour": behaviour}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "main", "image": "busybox"}],
                        },
                    },
                },
            },
            **spec,
        },
    }


def _jobs(batch: kubernetes.client.BatchV1Api, name: str) -> list[Any]:
    return sorted(
        (
            j
            for j in batch.list_namespaced_job(NS, label_selector=f"app={name}").items
            if not j.metadata.deletion_timestamp
        ),
        key=lambda j: j.metadata.name,
    )


def _to_next_schedule(cluster: Any) -> None:
    """Advance simulated time past the next multiple of five minutes."""
    seconds = 300 - (cluster.clock.datetime_at(cluster.now()).timestamp() % 300) + 1
    cluster.advance(seconds)
    cluster.settle()


def test_defaults_and_validation(batch: kubernetes.client.BatchV1Api) -> None:
    created = batch.create_namespaced_cron_job(NS, _cronjob("defaults"))
    assert created.spec.concurrency_policy == "Allow"
    assert created.spec.suspend is False
    assert created.spec.successful_jobs_history_limit == 3
    assert created.spec.failed_jobs_history_limit == 1
    with pytest.raises(kubernetes.client.ApiException) as bad:
        batch.create_namespaced_cron_job(NS, _cronjob("bad", schedule="every minute"))
    assert bad.value.status == 422 and "spec.schedule" in bad.value.body
    with pytest.raises(kubernetes.client.ApiException) as bad:
        batch.create_namespaced_cron_job(NS, _cronjob("bad", concurrencyPolicy="Sometimes"))
    assert bad.value.status == 422 and "spec.concurrencyPolicy" in bad.value.body


def test_jobs_on_schedule_with_history_limit(
    simulated_cluster: Any, batch: kubernetes.client.BatchV1Api
) -> None:
    batch.create_namespaced_cron_job(NS, _cronjob("ticks", successfulJobsHistoryLimit=2))
    simulated_cluster.settle()
    assert _jobs(batch, "ticks") == []
    for _ in range(3):
        _to_next_schedule(simulated_cluster)
        simulated_cluster.advance(30)  # the Job runs 1 s
        simulated_cluster.settle()
    jobs = _jobs(batch, "ticks")
    assert len(jobs) == 2  # the oldest of three went with the history limit
    job = jobs[-1]
    (owner,) = job.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ("CronJob", "ticks", True)
    scheduled = job.metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    minutes = int(job.metadata.name.rsplit("-", 1)[1])
    assert scheduled.endswith("Z")
    assert datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp() == minutes * 60
    assert all(
        any(c.type == "Complete" and c.status == "True" for c in j.status.conditions or [])
        for j in jobs
    )
    status = batch.read_namespaced_cron_job("ticks", NS).status
    assert status.last_schedule_time is not None and status.last_successful_time is not None
    assert not status.active


def test_suspend_and_forbid(simulated_cluster: Any, batch: kubernetes.client.BatchV1Api) -> None:
    batch.create_namespaced_cron_job(NS, _cronjob("paused", suspend=True))
    batch.create_namespaced_cron_job(
        NS, _cronjob("single", seconds=3600, concurrencyPolicy="Forbid")
    )
    batch.create_namespaced_cron_job(
        NS, _cronjob("swap", seconds=3600, concurrencyPolicy="Replace")
    )
    _to_next_schedule(simulated_cluster)
    first_swap = [j.metadata.name for j in _jobs(batch, "swap")]
    assert len(first_swap) == 1
    _to_next_schedule(simulated_cluster)
    assert _jobs(batch, "paused") == []
    assert len(_jobs(batch, "single")) == 1  # the next time is skipped while one runs
    active = batch.read_namespaced_cron_job("single", NS).status.active
    assert [a.name for a in active] == [_jobs(batch, "single")[0].metadata.name]
    swapped = [j.metadata.name for j in _jobs(batch, "swap")]
    assert len(swapped) == 1 and swapped != first_swap


def test_starting_deadline_skips_a_missed_time(
    simulated_cluster: Any, batch: kubernetes.client.BatchV1Api
) -> None:
    batch.create_namespaced_cron_job(NS, _cronjob("late", startingDeadlineSeconds=10, suspend=True))
    _to_next_schedule(simulated_cluster)
    simulated_cluster.advance(60)
    batch.patch_namespaced_cron_job("late", NS, {"spec": {"suspend": False}})
    simulated_cluster.settle()
    assert _jobs(batch, "late") == []  # the time passed over a minute ago
    _to_next_schedule(simulated_cluster)
    assert len(_jobs(batch, "late")) == 1
