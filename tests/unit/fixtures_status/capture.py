"""Regenerate the status fixtures: ``python tests/unit/fixtures_status/capture.py``.

Each ``<situation>.json`` holds ``{"note", "job", "pods", "events"}`` (and ``"workload"`` for
Kueue) exactly as the Kubernetes API returns them in JSON. Most are captured from the simulated
cluster (``simulated_k8s_cluster``) driven into that situation with a frozen clock; a few are
derived from a captured one where the simulated cluster does not produce the situation (the
``note`` says so and how). Kueue Workloads are written after the Kueue documentation
("Troubleshooting Jobs") and its API types (``kueue.x-k8s.io/v1beta1``).

Timestamps are the cluster's, so they change on every capture; tests must only rely on
differences between them.
"""

from __future__ import annotations

import copy
import json
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from simulated_k8s_cluster import SimulatedCluster

OUT = Path(__file__).resolve().parent
Obj = dict[str, Any]

BASE = {"timeScale": 0, "namespaces": ["batch"], "autoscalerScanSeconds": 10}
POOLS = {
    "nodePools": [
        {"name": "default", "nodes": 1, "maxNodes": 1, "capacity": {"cpu": "4", "memory": "16Gi"}},
        {
            "name": "burst",
            "nodes": 0,
            "maxNodes": 2,
            "scaleUpSeconds": 120,
            "capacity": {"cpu": "4", "memory": "16Gi"},
        },
    ]
}
BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"


def _get(cluster: SimulatedCluster, path: str) -> Any:
    request = urllib.request.Request(
        cluster.url + path, headers={"Authorization": f"Bearer {cluster.token}"}
    )
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def _write(name: str, data: Obj) -> None:
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def snap(cluster: SimulatedCluster, name: str, job_name: str, note: str) -> Obj:
    ns = "batch"
    job = _get(cluster, f"/apis/batch/v1/namespaces/{ns}/jobs/{job_name}")
    pods = _get(
        cluster,
        f"/api/v1/namespaces/{ns}/pods?labelSelector=batch.kubernetes.io/job-name={job_name}",
    )["items"]
    names = {p["metadata"]["name"] for p in pods} | {job_name}
    events = [
        e
        for e in _get(cluster, f"/api/v1/namespaces/{ns}/events")["items"]
        if e["involvedObject"]["name"] in names
    ]
    # Items of a list carry no kind/apiVersion; add them as a watch event's object has them.
    for pod in pods:
        pod.setdefault("kind", "Pod")
        pod.setdefault("apiVersion", "v1")
    for event in events:
        event.setdefault("kind", "Event")
        event.setdefault("apiVersion", "v1")
    data = {"note": note, "job": job, "pods": pods, "events": events}
    _write(name, data)
    return data


def job(name: str, image: str = "app:1.0", *, cpu: str = "1", behaviour: Any = None, **spec: Any):
    container = {"name": "main", "image": image, "resources": {"requests": {"cpu": cpu}}}
    annotations = {BEHAVIOUR: json.dumps(behaviour)} if behaviour is not None else {}
    labels = spec.pop("labels", {})
    template = {
        "metadata": {"annotations": annotations},
        "spec": {"restartPolicy": spec.pop("restartPolicy", "Never"), "containers": [container]},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "batch", "labels": labels},
        "spec": {"template": template, **spec},
    }


def run(config: Obj, scenario) -> None:
    merged = {**BASE, **config}
    with SimulatedCluster(merged) as cluster:
        scenario(cluster)


def steps(cluster: SimulatedCluster, count: int, seconds: float) -> None:
    for _ in range(count):
        cluster.advance(seconds)
        cluster.settle()


# --- captured --------------------------------------------------------------------------------


def fanout(c: SimulatedCluster) -> None:
    c.create(job("fanout", completions=10, parallelism=10, behaviour={"seconds": 30}))
    steps(c, 1, 1)
    snap(c, "fanout_unschedulable", "fanout", "10 pods, 4 fit on the one node; no scan yet")
    steps(c, 1, 15)
    snap(c, "fanout_scale_up", "fanout", "the autoscaler triggered a scale-up of pool burst")
    steps(c, 1, 25)
    snap(c, "fanout_partly_done", "fanout", "first wave done, next pods starting or waiting")
    steps(c, 60, 10)
    snap(c, "fanout_complete", "fanout", "all 10 completions")


def not_trigger(c: SimulatedCluster) -> None:
    c.create(job("huge", cpu="64"))
    steps(c, 1, 1)
    steps(c, 1, 15)
    snap(c, "not_trigger_scale_up", "huge", "no pool can fit 64 CPUs")


def max_reached(c: SimulatedCluster) -> None:
    c.create(job("wide", completions=20, parallelism=20, cpu="2", behaviour={"seconds": 600}))
    steps(c, 30, 10)
    snap(c, "max_node_group_size_reached", "wide", "pool burst at its maximum, pods pending")


def invalid_image(c: SimulatedCluster) -> None:
    c.create(job("badimg", image="Registry.example/UPPER:tag"))
    steps(c, 1, 5)
    snap(c, "invalid_image_name", "badimg", "image reference with upper-case letters")


def image_pull(c: SimulatedCluster) -> None:
    c.create(
        job(
            "pull",
            image="private.example/app:1.0",
            behaviour={
                "imagePull": "ErrImagePull",
                "imagePullMessage": "rpc error: code = NotFound desc = failed to pull and "
                'unpack image "private.example/app:1.0": not found',
            },
        )
    )
    steps(c, 1, 2)
    snap(c, "image_pull_early", "pull", "image pull failing for 2 seconds")
    steps(c, 1, 40)
    snap(c, "image_pull_backoff_early", "pull", "ImagePullBackOff for under a minute")
    steps(c, 1, 400)
    snap(c, "image_pull_backoff_persistent", "pull", "ImagePullBackOff for over 5 minutes")


def backoff(c: SimulatedCluster) -> None:
    c.create(
        job(
            "crash",
            backoffLimit=1,
            behaviour={
                "seconds": 3,
                "exitCode": 2,
                "stdout": [
                    "starting",
                    "loading data",
                    "Traceback (most recent call last):",
                    "ValueError: bad row 17",
                ],
                "terminationMessage": "bad row 17",
            },
        )
    )
    steps(c, 1, 2)
    snap(c, "backoff_running", "crash", "first pod running")
    steps(c, 10, 5)
    snap(c, "backoff_limit_exceeded", "crash", "two pods failed, backoffLimit 1")


def deadline(c: SimulatedCluster) -> None:
    c.create(job("slow", activeDeadlineSeconds=10, behaviour={"seconds": 100}))
    steps(c, 1, 2)
    steps(c, 1, 69)
    snap(c, "deadline_exceeded", "slow", "activeDeadlineSeconds 10; pods deleted")


def indexed(c: SimulatedCluster) -> None:
    c.add_behaviour({"match": {"image": "app:1.0"}, "seconds": 5})
    c.add_behaviour(
        {
            "match": {"env": {"JOB_COMPLETION_INDEX": "2"}},
            "seconds": 2,
            "exitCode": 3,
            "stdout": ["shard 2", "error: corrupt input"],
            "terminationMessage": "corrupt input in shard 2",
        }
    )
    c.create(
        job(
            "shards", completions=4, parallelism=4, completionMode="Indexed", backoffLimitPerIndex=0
        )
    )
    steps(c, 10, 3)
    snap(c, "indexed_failed_indexes", "shards", "index 2 failed, backoffLimitPerIndex 0")


def pod_failure_policy(c: SimulatedCluster) -> None:
    rules = [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
        },
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
    ]
    c.create(
        job("pfp", podFailurePolicy={"rules": rules}, behaviour={"seconds": 3, "exitCode": 42})
    )
    steps(c, 5, 3)
    snap(c, "pod_failure_policy_failjob", "pfp", "exit code 42 matches a FailJob rule")


def preempted(c: SimulatedCluster) -> None:
    rules = [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    c.create(job("spot", podFailurePolicy={"rules": rules}, behaviour={"seconds": 60}))
    steps(c, 1, 3)
    pod = c.list("pods", "batch")[0]["metadata"]["name"]
    c.preempt_pod("batch", pod)
    steps(c, 4, 5)
    snap(c, "preempted_replaced", "spot", "the replacement runs")


def suspended(c: SimulatedCluster) -> None:
    c.create(job("queued", suspend=True))
    c.create(job("train", suspend=True, labels={"kueue.x-k8s.io/queue-name": "user-queue"}))
    steps(c, 1, 2)
    snap(c, "suspended", "queued", "spec.suspend: true, no Kueue")
    snap(c, "kueue_suspended", "train", "suspended by Kueue (queue-name label)")


def crashloop(c: SimulatedCluster) -> None:
    c.create(
        job(
            "loop",
            restartPolicy="OnFailure",
            backoffLimit=6,
            behaviour={"seconds": 1, "exitCode": 1, "stdout": "boom"},
        )
    )
    steps(c, 6, 4)
    snap(c, "crash_loop_back_off", "loop", "restartPolicy OnFailure, the container keeps failing")


def success(c: SimulatedCluster) -> None:
    c.create(
        job(
            "ok",
            completions=2,
            parallelism=2,
            behaviour={"seconds": 3, "terminationMessage": '{"rows": 42}'},
        )
    )
    steps(c, 1, 1)
    snap(c, "success_running", "ok", "two pods running")
    steps(c, 4, 2)
    snap(c, "success_complete", "ok", "Complete")


def gated(c: SimulatedCluster) -> None:
    manifest = job("gated")
    manifest["spec"]["template"]["spec"]["schedulingGates"] = [{"name": "example.com/wait"}]
    c.create(manifest)
    steps(c, 1, 2)
    snap(c, "scheduling_gated", "gated", "pod held by a scheduling gate")


# --- derived ---------------------------------------------------------------------------------


def _shift(value: str, seconds: float) -> str:
    when = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return (when + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load(name: str) -> Obj:
    return json.loads((OUT / f"{name}.json").read_text())


def derived() -> None:
    # FailureTarget while a pod still terminates: the controller adds Failed only later.
    data = _load("backoff_limit_exceeded")
    job_ = data["job"]
    job_["status"]["conditions"] = [
        c for c in job_["status"]["conditions"] if c["type"] == "FailureTarget"
    ]
    job_["status"]["terminating"] = 1
    last = data["pods"][-1]
    last["metadata"]["deletionTimestamp"] = _shift(last["metadata"]["creationTimestamp"], 60)
    last["metadata"]["deletionGracePeriodSeconds"] = 30
    data["note"] = (
        "derived from backoff_limit_exceeded: only FailureTarget, one pod still terminating"
    )
    _write("failure_target_terminating", data)

    # A preempted pod as watchers see it before its deletion completes (the simulated
    # scheduler deletes victims at once): Failed, DisruptionTarget, killed with SIGTERM.
    data = _load("preempted_replaced")
    replacement = data["pods"][0]
    victim = copy.deepcopy(replacement)
    victim["metadata"]["name"] = replacement["metadata"]["name"][:-5] + "p7x2q"
    victim["metadata"]["uid"] = "0b5c7a52-9f51-4f0e-8d55-5f9c1b0e7a11"
    earlier = _shift(replacement["metadata"]["creationTimestamp"], -5)
    victim["metadata"]["creationTimestamp"] = _shift(earlier, -3)
    victim["metadata"]["deletionTimestamp"] = _shift(earlier, 30)
    victim["metadata"]["deletionGracePeriodSeconds"] = 30
    victim["status"]["phase"] = "Failed"
    victim["status"]["conditions"].insert(
        0,
        {
            "type": "DisruptionTarget",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": earlier,
            "reason": "PreemptionByScheduler",
            "message": "default-scheduler: preempting to accommodate a higher priority pod",
        },
    )
    cs = victim["status"]["containerStatuses"][0]
    cs["ready"] = False
    cs["started"] = False
    started = cs["state"].get("running", {}).get("startedAt", earlier)
    cs["state"] = {
        "terminated": {
            "containerID": cs.get("containerID", ""),
            "exitCode": 143,
            "reason": "Error",
            "startedAt": started,
            "finishedAt": earlier,
        }
    }
    data["pods"].insert(0, victim)
    data["note"] = (
        "derived from preempted_replaced: the preempted pod (Failed, DisruptionTarget "
        "PreemptionByScheduler, exit code 143) next to its replacement"
    )
    _write("preempted_failed", data)

    # CreateContainerConfigError: a missing Secret, retried by the kubelet for six minutes.
    data = _load("invalid_image_name")
    pod = data["pods"][0]
    container = pod["spec"]["containers"][0]
    container["image"] = "app:1.0"
    container["env"] = [
        {
            "name": "DB_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}},
        }
    ]
    status = pod["status"]["containerStatuses"][0]
    status["image"] = "app:1.0"
    status["state"] = {
        "waiting": {
            "reason": "CreateContainerConfigError",
            "message": 'secret "db-credentials" not found',
        }
    }
    start = pod["status"]["startTime"]
    later = _shift(start, 370)
    events = [e for e in data["events"] if e["reason"] in ("Scheduled", "SuccessfulCreate")]
    for reason, kind, message, count in (
        ("Pulled", "Normal", 'Container image "app:1.0" already present on machine', 30),
        ("Failed", "Warning", 'Error: secret "db-credentials" not found', 30),
    ):
        event = copy.deepcopy(events[0])
        event["metadata"]["name"] = f"{pod['metadata']['name']}.cfg{reason.lower()}"
        event["involvedObject"]["fieldPath"] = "spec.containers{main}"
        event.update(
            reason=reason,
            type=kind,
            message=message,
            count=count,
            firstTimestamp=_shift(start, 1),
            lastTimestamp=later,
        )
        event["source"] = {"component": "kubelet", "host": pod["spec"].get("nodeName", "")}
        event["reportingComponent"] = "kubelet"
        events.append(event)
    data["events"] = events
    data["note"] = (
        "derived from invalid_image_name: a container env var from a missing Secret; the "
        "kubelet's Failed event repeated for six minutes"
    )
    _write("create_container_config_error", data)

    # ErrImageNeverPull: imagePullPolicy Never and the image is not on the node.
    data = _load("invalid_image_name")
    pod = data["pods"][0]
    pod["spec"]["containers"][0].update(image="local/app:dev", imagePullPolicy="Never")
    status = pod["status"]["containerStatuses"][0]
    status["image"] = "local/app:dev"
    message = 'Container image "local/app:dev" is not present with pull policy of Never'
    status["state"] = {"waiting": {"reason": "ErrImageNeverPull", "message": message}}
    for event in data["events"]:
        if event["reason"] == "InspectFailed":
            event.update(reason="ErrImageNeverPull", message=message)
        elif event["reason"] == "Failed":
            event["message"] = "Error: ErrImageNeverPull"
    data["note"] = "derived from invalid_image_name: imagePullPolicy Never, image not on the node"
    _write("err_image_never_pull", data)

    # Kueue: the suspended Job, its CreatedWorkload event and its Workload in each state.
    data = _load("kueue_suspended")
    job_ = data["job"]
    created = job_["metadata"]["creationTimestamp"]
    workload_name = f"job-{job_['metadata']['name']}-3f1c2"
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{job_['metadata']['name']}.17f0a1b2c3d4e5f6",
            "namespace": "batch",
            "creationTimestamp": created,
        },
        "involvedObject": {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job_["metadata"]["name"],
            "namespace": "batch",
            "uid": job_["metadata"]["uid"],
            "resourceVersion": job_["metadata"]["resourceVersion"],
        },
        "reason": "CreatedWorkload",
        "message": f"Created Workload: batch/{workload_name}",
        "source": {"component": "batch/job-kueue-controller"},
        "firstTimestamp": created,
        "lastTimestamp": created,
        "count": 1,
        "type": "Normal",
        "eventTime": None,
        "reportingComponent": "",
        "reportingInstance": "",
    }
    data["events"].append(event)
    data["note"] = "captured suspended Job with a queue-name label; CreatedWorkload event added"
    _write("kueue_suspended", data)
    _write("kueue_workloads", kueue_workloads(job_, workload_name))


def kueue_workloads(job_: Obj, name: str) -> Obj:
    created = job_["metadata"]["creationTimestamp"]
    at = _shift(created, 1)

    def cond(kind: str, status: str, reason: str, message: str, when: str = at) -> Obj:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": when,
            "observedGeneration": 1,
        }

    def workload(conditions: list[Obj], queue: str = "user-queue", **extra: Any) -> Obj:
        template = copy.deepcopy(job_["spec"]["template"])
        body: Obj = {
            "apiVersion": "kueue.x-k8s.io/v1beta1",
            "kind": "Workload",
            "metadata": {
                "name": name,
                "namespace": "batch",
                "uid": "6a1f0f58-3d8e-4c1b-9d0e-2b8f7c1e9a40",
                "generation": 1,
                "resourceVersion": "4242",
                "creationTimestamp": created,
                "labels": {"kueue.x-k8s.io/job-uid": job_["metadata"]["uid"]},
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job_["metadata"]["name"],
                        "uid": job_["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "active": True,
                "queueName": queue,
                "priority": 0,
                "priorityClassSource": "",
                "podSets": [{"name": "main", "count": 1, "template": template}],
            },
            "status": {
                "conditions": conditions,
                "resourceRequests": [{"name": "main", "resources": {"cpu": "1"}}],
            },
        }
        for key, value in extra.items():
            if key == "active":
                body["spec"]["active"] = value
            else:
                body["status"][key] = value
        return body

    admission = {
        "clusterQueue": "team-a",
        "podSetAssignments": [
            {
                "name": "main",
                "count": 1,
                "flavors": {"cpu": "default-flavor"},
                "resourceUsage": {"cpu": "1"},
            }
        ],
    }
    pending_msg = (
        "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor "
        "default-flavor, 3 more needed"
    )
    return {
        "note": "Workloads for kueue_suspended's Job, after the Kueue docs and API types",
        "unattempted": workload([]),
        "pending": workload([cond("QuotaReserved", "False", "Pending", pending_msg)]),
        "over_maximum": workload(
            [
                cond(
                    "QuotaReserved",
                    "False",
                    "Pending",
                    "couldn't assign flavors to pod set main: insufficient quota for cpu in "
                    "flavor default-flavor, request > maximum capacity (24 > 16)",
                )
            ]
        ),
        "missing_local_queue": workload(
            [
                cond(
                    "QuotaReserved",
                    "False",
                    "Inadmissible",
                    "LocalQueue no-such-queue doesn't exist",
                )
            ],
            queue="no-such-queue",
        ),
        "inactive_cluster_queue": workload(
            [
                cond(
                    "QuotaReserved",
                    "False",
                    "Inadmissible",
                    "ClusterQueue team-a is inactive",
                )
            ]
        ),
        "admission_checks": workload(
            [
                cond(
                    "QuotaReserved",
                    "True",
                    "QuotaReserved",
                    "Quota reserved in ClusterQueue team-a",
                )
            ],
            admission=admission,
            admissionChecks=[
                {"name": "dws-prov", "state": "Pending", "message": "", "lastTransitionTime": at}
            ],
        ),
        "admitted": workload(
            [
                cond(
                    "QuotaReserved",
                    "True",
                    "QuotaReserved",
                    "Quota reserved in ClusterQueue team-a",
                ),
                cond("Admitted", "True", "Admitted", "The workload is admitted"),
            ],
            admission=admission,
        ),
        "preempted": workload(
            [
                cond("QuotaReserved", "False", "Pending", pending_msg, _shift(created, 120)),
                cond(
                    "Evicted",
                    "True",
                    "Preempted",
                    "Preempted to accommodate a higher priority Workload",
                    _shift(created, 119),
                ),
                cond(
                    "Admitted",
                    "False",
                    "NoReservation",
                    "The workload has no reservation",
                    _shift(created, 120),
                ),
            ]
        ),
        "deactivated": workload(
            [
                cond("Evicted", "True", "InactiveWorkload", "The workload is deactivated"),
                cond("Admitted", "False", "NoReservation", "The workload has no reservation"),
            ],
            active=False,
        ),
    }


def main() -> None:
    run(POOLS, fanout)
    run(POOLS, not_trigger)
    run(POOLS, max_reached)
    for scenario in (
        invalid_image,
        image_pull,
        backoff,
        deadline,
        indexed,
        pod_failure_policy,
        preempted,
        suspended,
        crashloop,
        success,
        gated,
    ):
        run({}, scenario)
    derived()


if __name__ == "__main__":
    main()
