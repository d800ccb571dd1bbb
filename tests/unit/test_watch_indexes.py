"""The informer cache's indexes and the routing of changes to subscribers: a change wakes only
the subscriptions following one of its object's index keys, found by dictionary lookups."""

from __future__ import annotations

from typing import Any

from airflow_k8s_jobs.kube import EVENTS, JOBS, PODS, WORKLOADS, Resource, parse_json
from airflow_k8s_jobs.watching import (
    BY_INVOLVED_NAME,
    BY_INVOLVED_UID,
    BY_JOB_NAME,
    BY_KUEUE_JOB_UID,
    BY_NAME,
    BY_OWNER_UID,
    JOB_NAME_LABEL,
    JOB_UID_LABEL,
    KUEUE_JOB_UID_LABEL,
    Informer,
    Subscription,
    WatchKey,
)

Obj = dict[str, Any]


def informer(resource: Resource) -> Informer:
    return Informer(WatchKey("c", "ns", resource))


def pod(name: str, job: str, job_uid: str, *, owner: bool = True, uid: str = "") -> Obj:
    meta: Obj = {
        "name": name,
        "uid": uid or f"uid-{name}",
        "labels": {JOB_UID_LABEL: job_uid, JOB_NAME_LABEL: job},
    }
    if owner:
        meta["ownerReferences"] = [{"kind": "Job", "name": job, "uid": job_uid}]
    return {"kind": "Pod", "metadata": meta}


def event(name: str, kind: str, about: str, about_uid: str, reason: str = "Scheduled") -> Obj:
    return {
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {"kind": kind, "name": about, "uid": about_uid},
        "reason": reason,
    }


class Counting:
    """An ``interest`` that counts how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, resource: Resource, obj: Obj) -> bool:
        self.calls += 1
        return True


def subscribe(inf: Informer, *keys: tuple[str, str], interest: Any = None) -> Subscription:
    sub = Subscription({inf.key.resource: inf}, interest)
    for index, key in keys:
        sub.follow(inf.key.resource, index, key)
    inf.add_subscriber(sub)
    return sub


def names(objects: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objects]


def test_pods_are_found_by_owner_uid_label_and_job_name() -> None:
    pods = informer(PODS)
    pods.replace(
        [
            pod("a-1", "a", "uid-a"),
            pod("b-1", "b", "uid-b"),
            pod("a-2", "a", "uid-a", owner=False),  # only the controller-uid label
        ]
    )
    assert names(pods.by_index(BY_OWNER_UID, "uid-a")) == ["a-1", "a-2"]
    assert names(pods.by_index(BY_JOB_NAME, "b")) == ["b-1"]
    assert names(pods.by_index(BY_NAME, "b-1")) == ["b-1"]
    assert pods.by_index(BY_OWNER_UID, "uid-c") == []
    assert pods.by_index(BY_NAME, "nothing") == []


def test_a_change_of_labels_moves_the_object_between_keys_and_keeps_its_place() -> None:
    pods = informer(PODS)
    pods.replace([pod("a-1", "a", "uid-a"), pod("a-2", "a", "uid-a")])
    pods.apply("MODIFIED", {**pod("a-1", "a", "uid-a"), "status": {"phase": "Running"}})
    assert names(pods.by_index(BY_OWNER_UID, "uid-a")) == ["a-1", "a-2"]
    assert pods.by_index(BY_OWNER_UID, "uid-a")[0]["status"]["phase"] == "Running"

    pods.apply("MODIFIED", pod("a-1", "z", "uid-z", owner=False))  # relabelled
    assert names(pods.by_index(BY_OWNER_UID, "uid-a")) == ["a-2"]
    assert names(pods.by_index(BY_OWNER_UID, "uid-z")) == ["a-1"]
    assert names(pods.by_index(BY_JOB_NAME, "z")) == ["a-1"]

    pods.apply("DELETED", pod("a-2", "a", "uid-a"))
    assert pods.by_index(BY_OWNER_UID, "uid-a") == []
    assert pods.by_index(BY_JOB_NAME, "a") == []
    assert set(pods.objects) == {"a-1"}


def test_events_are_found_by_involved_object_in_the_cache_order() -> None:
    events = informer(EVENTS)
    events.replace(
        [
            event("e1", "Pod", "a-1", "uid-a-1"),
            event("e2", "Job", "a", "uid-a", "SuccessfulCreate"),
            event("e3", "Pod", "b-1", "uid-b-1"),
            event("e4", "Pod", "a-1", "uid-a-1", "Pulled"),
        ]
    )
    assert names(events.by_index(BY_INVOLVED_UID, "uid-a-1")) == ["e1", "e4"]
    assert names(events.by_index(BY_INVOLVED_NAME, "a")) == ["e2"]
    found = events.by_index_keys(BY_INVOLVED_UID, ["uid-a", "uid-a-1", "uid-a"])
    assert names(found) == ["e1", "e2", "e4"], "each once, in the order they were cached"
    events.apply("ADDED", event("e0", "Pod", "a-1", "uid-a-1"))
    assert names(events.by_index_keys(BY_INVOLVED_UID, ["uid-a-1", "uid-a"])) == [
        "e1",
        "e2",
        "e4",
        "e0",
    ]
    # events.k8s.io/v1 names the object in ``regarding``.
    events.apply("ADDED", {"metadata": {"name": "e5"}, "regarding": {"name": "x", "uid": "ux"}})
    assert names(events.by_index(BY_INVOLVED_UID, "ux")) == ["e5"]


def test_workloads_are_found_by_their_jobs_uid() -> None:
    workloads = informer(WORKLOADS)
    workloads.replace([{"metadata": {"name": "job-a-1", "labels": {KUEUE_JOB_UID_LABEL: "uid-a"}}}])
    assert names(workloads.by_index(BY_KUEUE_JOB_UID, "uid-a")) == ["job-a-1"]


def test_a_change_wakes_only_the_subscriptions_following_its_keys() -> None:
    pods = informer(PODS)
    interest = Counting()
    subs = {
        job: subscribe(pods, (BY_OWNER_UID, f"uid-{job}"), interest=interest)
        for job in ("a", "b", "c")
    }
    pods.replace([])
    listened = {job: sub.wakeups for job, sub in subs.items()}
    assert listened == {"a": 1, "b": 1, "c": 1}, "the list woke everyone once"

    pods.apply("ADDED", pod("b-1", "b", "uid-b"))
    pods.apply("MODIFIED", pod("b-1", "b", "uid-b"))
    assert {job: sub.wakeups - listened[job] for job, sub in subs.items()} == {
        "a": 0,
        "b": 2,
        "c": 0,
    }
    assert interest.calls == 0, "following subscriptions are routed, never asked"

    # Relabelled from b to c: both the old and the new owner hear of it.
    pods.apply("MODIFIED", pod("b-1", "c", "uid-c", owner=False))
    assert subs["b"].wakeups - listened["b"] == 3
    assert subs["c"].wakeups - listened["c"] == 1
    pods.apply("DELETED", pod("b-1", "c", "uid-c", owner=False))
    assert subs["c"].wakeups - listened["c"] == 2
    assert subs["a"].wakeups == listened["a"]


def test_subscriptions_without_keys_hear_every_change_through_their_interest() -> None:
    jobs = informer(JOBS)
    interest = Counting()
    everything = subscribe(jobs, interest=interest)
    follower = subscribe(jobs, (BY_NAME, "a"))
    jobs.replace([])
    for n in range(5):
        jobs.apply("ADDED", {"metadata": {"name": f"other-{n}"}})
    jobs.apply("ADDED", {"metadata": {"name": "a"}})
    assert interest.calls == 6
    assert everything.wakeups == 1 + 6
    assert follower.wakeups == 1 + 1


def test_routing_cost_does_not_grow_with_the_subscribers() -> None:
    events = informer(EVENTS)
    subs = [subscribe(events, (BY_INVOLVED_UID, f"uid-{n}")) for n in range(2000)]
    events.replace([])
    before = sum(s.wakeups for s in subs)
    for n in range(0, 2000, 100):
        events.apply("ADDED", event(f"e{n}", "Pod", f"p{n}", f"uid-{n}"))
    assert sum(s.wakeups for s in subs) - before == 20
    assert all(s.wakeups == 2 for s in subs[::100])


def test_following_ends_with_the_subscription() -> None:
    events = informer(EVENTS)
    sub = subscribe(events, (BY_INVOLVED_UID, "u1"))
    events.replace([])
    sub.follow(EVENTS, BY_INVOLVED_UID, "u2")
    sub.follow(EVENTS, BY_INVOLVED_UID, "u2")  # once is enough
    events.apply("ADDED", event("e", "Pod", "p", "u2"))
    assert sub.wakeups == 2
    sub.unfollow_all()
    events.remove_subscriber(sub)
    events.apply("ADDED", event("f", "Pod", "p", "u2"))
    events.replace([])
    assert sub.wakeups == 2
    assert not events.subscribers


def test_the_cache_keeps_no_pod_template_of_jobs_and_only_the_times_of_managed_fields() -> None:
    managed = [
        {"manager": "kube-controller-manager", "time": "2026-12-07T01:00:02Z", "fieldsV1": {}},
        {"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}},
    ]
    job = {
        "metadata": {"name": "j", "uid": "u", "managedFields": managed},
        "spec": {"completions": 3, "template": {"spec": {"containers": [{"name": "main"}]}}},
        "status": {"succeeded": 1},
    }
    jobs = informer(JOBS)
    jobs.replace([job])  # list items carry no kind: the informer's resource decides

    cached = jobs.objects["j"]
    assert cached["spec"] == {"completions": 3}
    assert cached["metadata"]["managedFields"] == [{"time": "2026-12-07T01:00:02Z"}]
    assert cached["status"] == {"succeeded": 1}

    pods = informer(PODS)
    main = {"name": "main", "image": "i:1", "env": [{"name": "A", "value": "1"}], "args": ["x"]}
    pods.apply(
        "ADDED",
        {
            "metadata": {"name": "p"},
            "spec": {
                "containers": [main],
                "nodeName": "n",
                "schedulingGates": [{"name": "g"}],
                "volumes": [{"name": "v", "emptyDir": {}}],
                "tolerations": [{"operator": "Exists"}],
            },
        },
    )
    assert pods.objects["p"]["spec"] == {
        "containers": [{"name": "main", "image": "i:1"}],
        "nodeName": "n",
        "schedulingGates": [{"name": "g"}],
    }


def test_objects_from_the_api_share_their_keys() -> None:
    first = parse_json('{"metadata": {"name": "a", "labels": {"job-name": "j"}}}')
    second = parse_json(b'{"metadata": {"name": "b", "labels": {"job-name": "k"}}}')
    assert first["metadata"]["labels"] == {"job-name": "j"}
    keys = [next(iter(o["metadata"]["labels"])) for o in (first, second)]
    assert keys[0] is keys[1]  # one string for every cached object's key, not one each
    assert parse_json("[1, 2]") == [1, 2]
