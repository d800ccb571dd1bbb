"""The simulated cluster's clock, as its clients see it.

With time running (``timeScale > 0``) everything a client reads of time — timestamps, the
``Date`` header, Events, conditions, kubectl's ages — is the wall clock; ``timeScale`` only
shortens the durations the cluster decides itself (behaviours, image pulls, …), while a
duration written in an object (``activeDeadlineSeconds``) runs on the wall clock. With the manual
clock (``timeScale: 0``) time starts at the wall time of start and moves only by ``advance()``,
the ``Date`` header included.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from simulated_k8s_cluster import SimulatedCluster

NS = "batch"
FAST = {
    "timeScale": 0.01,
    "namespaces": [NS],
    "nodePools": [{"name": "default", "nodes": 1}],
    "argo": {},
    "tls": True,  # kubectl sends its token only over TLS
}
MANUAL = {**FAST, "timeScale": 0}
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent))
TOLERANCE = timedelta(seconds=2)


@pytest.fixture
def api(simulated_kubeconfig: Path) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(simulated_kubeconfig))
    yield client
    client.close()


def _utc() -> datetime:
    return datetime.now(timezone.utc)


def _parse(stamp: Any) -> datetime:
    if isinstance(stamp, datetime):
        return stamp
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def _job(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": image}],
                }
            },
        },
    }


def _condition(cluster: SimulatedCluster, name: str, kind: str, timeout: float) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        job = cluster.get("jobs", NS, name) or {}
        for condition in (job.get("status") or {}).get("conditions") or []:
            if condition["type"] == kind and condition["status"] == "True":
                return dict(condition)
        return None

    return cluster.wait_for(found, timeout=timeout, message=f"Job {name} {kind}")


def _date_header(headers: Any) -> datetime:
    return parsedate_to_datetime(headers["Date"])


def _within(stamp: Any, start: datetime, end: datetime) -> bool:
    """Second-precision ``stamp`` lies between two wall instants, give or take the tolerance."""
    return start - TOLERANCE <= _parse(stamp) <= end + TOLERANCE


@pytest.mark.simulated_cluster(FAST)
def test_timestamps_date_and_events_are_wall_time(
    simulated_cluster: SimulatedCluster, api: kubernetes.client.ApiClient
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"match": {"image": "etl:1"}, "seconds": 100})
    batch, core = kubernetes.client.BatchV1Api(api), kubernetes.client.CoreV1Api(api)
    start = _utc()
    batch.create_namespaced_job(NS, _job("etl", "etl:1"))
    _condition(cluster, "etl", "Complete", timeout=15)
    job, _, headers = batch.read_namespaced_job_with_http_info("etl", NS)
    end = _utc()

    assert start - TOLERANCE <= _date_header(headers) <= end + TOLERANCE
    stamps = [job.metadata.creation_timestamp, job.status.start_time, job.status.completion_time]
    stamps += [c.last_transition_time for c in job.status.conditions]
    (pod,) = core.list_namespaced_pod(NS, label_selector="job-name=etl").items
    terminated = pod.status.container_statuses[0].state.terminated
    stamps += [pod.metadata.creation_timestamp, pod.status.start_time]
    stamps += [terminated.started_at, terminated.finished_at]
    stamps += [c.last_transition_time for c in pod.status.conditions]
    events = core.list_namespaced_event(NS).items
    assert events
    stamps += [e.last_timestamp or e.event_time for e in events]
    outside = [s for s in stamps if not _within(s, start, end)]
    assert not outside, f"timestamps outside [{start}, {end}]: {outside}"
    # The 100 s behaviour ran for one wall second, and the timestamps say so.
    ran = (terminated.finished_at - terminated.started_at).total_seconds()
    assert 0 <= ran <= 3
    with pytest.raises(ValueError, match="manual clock"):
        cluster.advance(10)


@pytest.mark.simulated_cluster(FAST)
def test_a_behaviour_of_n_seconds_takes_n_times_scale_wall_seconds(
    simulated_cluster: SimulatedCluster, api: kubernetes.client.ApiClient
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"match": {"image": "train:1"}, "seconds": 300})
    batch = kubernetes.client.BatchV1Api(api)
    started = time.monotonic()
    batch.create_namespaced_job(NS, _job("train", "train:1"))
    complete = _condition(cluster, "train", "Complete", timeout=3 + 10)
    elapsed = time.monotonic() - started
    assert elapsed >= 300 * 0.01 - 0.05  # never sooner than the scaled duration
    status = batch.read_namespaced_job("train", NS).status
    took = (_parse(complete["lastTransitionTime"]) - status.start_time).total_seconds()
    assert 2 <= took <= 6


@pytest.mark.simulated_cluster(FAST)
def test_a_deadline_written_in_the_object_runs_on_the_wall_clock(
    simulated_cluster: SimulatedCluster, api: kubernetes.client.ApiClient
) -> None:
    """``activeDeadlineSeconds`` is not scaled: a client that compares the Job's ``startTime``
    with the time it failed sees at least the deadline go by."""
    cluster = simulated_cluster
    cluster.add_behaviour({"match": {"image": "slow:1"}, "seconds": 3000})
    batch = kubernetes.client.BatchV1Api(api)
    batch.create_namespaced_job(NS, _job("slow", "slow:1", activeDeadlineSeconds=2))
    failed = _condition(cluster, "slow", "Failed", timeout=2 + 10)
    assert failed["reason"] == "DeadlineExceeded"
    start = batch.read_namespaced_job("slow", NS).status.start_time
    assert (_parse(failed["lastTransitionTime"]) - start).total_seconds() >= 2


def _ages(kubeconfig: Path, kind: str) -> list[str]:
    assert KUBECTL is not None, "kubectl is installed beside the interpreter"
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "-n", NS, "get", kind],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    header = lines[0].split()
    column = header.index("AGE")
    return [re.split(r"\s{2,}", line.strip())[column] for line in lines[1:]]


@pytest.mark.simulated_cluster(FAST)
def test_kubectl_shows_ages(
    simulated_cluster: SimulatedCluster, simulated_kubeconfig: Path
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"match": {"image": "etl:1"}, "seconds": 50})
    cluster.create({**_job("etl", "etl:1"), "metadata": {"name": "etl", "namespace": NS}})
    cluster.create(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Workflow",
            "metadata": {"name": "hello", "namespace": NS},
            "spec": {
                "entrypoint": "main",
                "templates": [{"name": "main", "container": {"image": "etl:1"}}],
            },
        }
    )
    _condition(cluster, "etl", "Complete", timeout=15)
    for kind in ("pods", "jobs", "workflows"):
        ages = _ages(simulated_kubeconfig, kind)
        assert ages, f"kubectl get {kind} listed nothing"
        assert all(re.fullmatch(r"\d+s", age) and int(age[:-1]) < 60 for age in ages), (kind, ages)


@pytest.mark.simulated_cluster(MANUAL)
def test_manual_clock_is_deterministic_and_moves_the_date_header(
    simulated_cluster: SimulatedCluster, api: kubernetes.client.ApiClient
) -> None:
    cluster = simulated_cluster
    cluster.add_behaviour({"match": {"image": "etl:1"}, "seconds": 30})
    batch, core = kubernetes.client.BatchV1Api(api), kubernetes.client.CoreV1Api(api)
    epoch = cluster.clock.datetime_at(0)
    assert epoch.microsecond == 0 and abs(epoch - _utc()) < TOLERANCE + timedelta(seconds=60)

    first, _, headers = core.create_namespaced_config_map_with_http_info(
        NS, {"metadata": {"name": "t0"}}
    )
    assert cluster.now() == 0
    assert first.metadata.creation_timestamp == epoch == _date_header(headers)

    batch.create_namespaced_job(NS, _job("etl", "etl:1"))
    cluster.advance(1)
    cluster.settle()
    assert batch.read_namespaced_job("etl", NS).status.succeeded is None
    cluster.advance(3600)  # durations are not scaled: the 30 s behaviour is over
    complete = _condition(cluster, "etl", "Complete", timeout=10)
    _, _, headers = core.list_namespaced_config_map_with_http_info(NS)
    assert _date_header(headers) == epoch + timedelta(seconds=3601)
    (pod,) = core.list_namespaced_pod(NS, label_selector="job-name=etl").items
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.finished_at - terminated.started_at).total_seconds() == 30
    assert _parse(complete["lastTransitionTime"]) == epoch + timedelta(seconds=3601)
