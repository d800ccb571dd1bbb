"""Scenarios run against both the real control plane and the simulated cluster.

Each scenario is a short sequence of client steps (the official ``kubernetes`` client, raw
requests through it, or ``kubectl``) in a namespace of its own, and returns an *observation*: a
plain structure of what a client sees (status codes and reasons of errors, Job conditions in
order, event reasons, watch event types, status counters, the status line this provider prints
for a Job, kubectl exit codes and output shapes). Names, uids, timestamps and resourceVersions
are normalized away, so the observations of the two clusters can be compared for equality.

``SCENARIOS`` lists them; ``KNOWN_DIFFERENCES`` names those whose observations still differ,
each with the reason (docs/testing.md has the same table).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from airflow_k8s_jobs.status.jobs import interpret_job
from simulated_k8s_cluster import k8s_protobuf

from .conftest import wait_for

T = TypeVar("T")
Obj = dict[str, Any]

BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


# --- the context a scenario runs in ------------------------------------------------------------


@dataclass
class Ctx:
    """One cluster, one fresh namespace, and the clients to talk to it."""

    kind: str  # "real" or "simulated"
    api: client.ApiClient
    kubeconfig: Path
    kubectl_path: Path
    namespace: str
    notes: list[str] = field(default_factory=list)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    def wait(self, what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
        return wait_for(f"{what} ({self.kind})", probe, timeout)

    def settles(self, probe: Callable[[], bool], timeout: float) -> bool:
        """Whether ``probe`` becomes true within ``timeout`` (a bounded look, not an assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return True
            time.sleep(0.2)
        return probe()

    def dict(self, obj: Any) -> Obj:
        return dict(self.api.sanitize_for_serialization(obj))

    def raw(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> tuple[int, Any, dict[str, str]]:
        """One request; ``(status, parsed body or text, headers)``, errors included."""
        try:
            response = self.api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Content-Type": content_type, "Accept": accept},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=60,
            )
            code, data, headers = response.status, response.data, response.headers
        except ApiException as exc:
            code, data, headers = exc.status, exc.body, exc.headers or {}
        text = data.decode() if isinstance(data, bytes) else (data or "")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return int(code), parsed, dict(headers or {})

    def watch(
        self, path: str, query: dict[str, Any], stop: Callable[[Obj], bool] | None = None
    ) -> list[Obj]:
        """The events of one watch request until ``stop(event)`` or the server ends it."""
        query = {"watch": "true", **query}
        try:
            response = self.api.call_api(
                path,
                "GET",
                query_params=list(query.items()),
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=120,
            )
        except ApiException as exc:
            return [{"type": "HTTP", "code": exc.status}]
        events: list[Obj] = []
        try:
            for line in iter_resp_lines(response):
                event = json.loads(line)
                events.append(event)
                if stop is not None and stop(event):
                    break
        finally:
            response.release_conn()
        return events

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 90
    ) -> tuple[int, str, str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        done = subprocess.run(
            [str(self.kubectl_path), "-n", self.namespace, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        return done.returncode, done.stdout, done.stderr

    # -- normalizing ----------------------------------------------------------------------

    def norm(self, text: str) -> str:
        """Text with this run's namespace and random suffixes replaced."""
        text = text.replace(self.namespace, "NS")
        return re.sub(r"-[a-z0-9]{5}\b", "-XXXXX", text)


def error(exc: ApiException) -> Obj:
    try:
        body = json.loads(exc.body)
    except (TypeError, ValueError):
        body = {}
    return status_of(exc.status, body)


def status_of(code: int, body: Any) -> Obj:
    seen: Obj = {"code": code}
    if isinstance(body, dict) and body.get("kind") == "Status":
        seen["reason"] = body.get("reason")
        causes = (body.get("details") or {}).get("causes") or []
        if causes:
            seen["causes"] = [(c.get("reason"), c.get("field")) for c in causes]
    return seen


def attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``"ok"`` or the error's code, reason and causes."""
    try:
        fn(*args, **kwargs)
    except ApiException as exc:
        return error(exc)
    return "ok"


# --- objects ------------------------------------------------------------------------------------


def job_body(name: str, behaviour: Obj | None = None, **spec: Any) -> Obj:
    template: Obj = {
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
        }
    }
    if behaviour is not None:
        template["metadata"] = {"annotations": {BEHAVIOUR: json.dumps(behaviour)}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": template, **spec},
    }


def pod_body(name: str, behaviour: Obj | None = None, **spec: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
            **spec,
        },
    }
    if behaviour is not None:
        body["metadata"]["annotations"] = {BEHAVIOUR: json.dumps(behaviour)}
    return body


def config_map(name: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


def job_pods(ctx: Ctx, job: str) -> list[Obj]:
    pods = ctx.core.list_namespaced_pod(
        ctx.namespace, label_selector=f"batch.kubernetes.io/job-name={job}"
    ).items
    return [ctx.dict(p) for p in pods]


def read_job(ctx: Ctx, name: str) -> Obj:
    return ctx.dict(ctx.batch.read_namespaced_job(name, ctx.namespace))


def events(ctx: Ctx) -> list[Obj]:
    return [ctx.dict(e) for e in ctx.core.list_namespaced_event(ctx.namespace).items]


def reasons_for(ctx: Ctx, kind: str, name: str | None = None) -> list[str]:
    """Reasons of the events about objects of ``kind`` (one name, or all), sorted."""
    return sorted(
        {
            e["reason"]
            for e in events(ctx)
            if e["involvedObject"]["kind"] == kind
            and (name is None or e["involvedObject"].get("name") == name)
        }
    )


def job_reasons_in_order(ctx: Ctx, name: str) -> list[str]:
    found = [
        e
        for e in events(ctx)
        if e["involvedObject"]["kind"] == "Job" and e["involvedObject"]["name"] == name
    ]
    # firstTimestamp has whole seconds: Events of the same second are taken in the order the
    # API server stored them (resourceVersion), on both clusters.
    found.sort(
        key=lambda e: (
            e.get("firstTimestamp") or e.get("eventTime") or "",
            int(e["metadata"].get("resourceVersion") or 0),
        )
    )
    out: list[str] = []
    for e in found:
        out.extend([e["reason"]] * int(e.get("count") or 1))
    return out


def conditions(obj: Obj) -> list[tuple[str, str, str | None]]:
    return [
        (c["type"], c["status"], c.get("reason"))
        for c in (obj.get("status") or {}).get("conditions") or []
    ]


def true_types(obj: Obj) -> list[str]:
    return [t for t, s, _ in conditions(obj) if s == "True"]


def counters(obj: Obj, *keys: str) -> Obj:
    st = obj.get("status") or {}
    return {k: st.get(k) for k in keys}


def outcome(ctx: Ctx, name: str) -> Obj:
    """What this provider makes of the Job: phase, reason and status line."""
    job = read_job(ctx, name)
    state = interpret_job(job, job_pods(ctx, name), events(ctx))
    return {
        "phase": state.phase.value,
        "reason": state.reason,
        "status_line": ctx.norm(state.status_line),
    }


def wait_job(ctx: Ctx, name: str, condition: str, timeout: float = 90) -> Obj:
    return ctx.wait(
        f"Job {name} {condition}",
        lambda: (j := read_job(ctx, name)) and condition in true_types(j) and j,
        timeout,
    )


def gone(fn: Callable[[], Any]) -> bool:
    try:
        fn()
    except ApiException as exc:
        return exc.status == 404
    return False


# --- scenarios ------------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[Ctx], Any]] = {}


def scenario(fn: Callable[[Ctx], Any]) -> Callable[[Ctx], Any]:
    SCENARIOS[fn.__name__] = fn
    return fn


@scenario
def namespace_defaults(ctx: Ctx) -> Any:
    ns = ctx.dict(ctx.core.read_namespace(ctx.namespace))
    accounts = sorted(
        sa.metadata.name for sa in ctx.core.list_namespaced_service_account(ctx.namespace).items
    )
    config_maps = sorted(
        cm.metadata.name for cm in ctx.core.list_namespaced_config_map(ctx.namespace).items
    )
    return {
        "phase": ns["status"].get("phase"),
        "finalizers": ns["spec"].get("finalizers"),
        "labels": sorted(ns["metadata"].get("labels") or {}),
        "serviceaccounts": accounts,
        "configmaps": config_maps,
    }


@scenario
def crud_job(ctx: Ctx) -> Any:
    path = f"/apis/batch/v1/namespaces/{ctx.namespace}/jobs"
    code, created, _ = ctx.raw("POST", path, body=job_body("crud", {"seconds": 0}))
    read = read_job(ctx, "crud")
    code_list, listed, _ = ctx.raw("GET", path)
    code_del, deleted, _ = ctx.raw(
        "DELETE", f"{path}/crud", body={"propagationPolicy": "Background"}
    )
    ctx.wait("Job deleted", lambda: gone(lambda: read_job(ctx, "crud")))
    return {
        "create": (code, created.get("kind"), created.get("apiVersion")),
        "generation": read["metadata"].get("generation"),
        "labels": sorted(read["metadata"].get("labels") or {}),
        "selector": sorted(read["spec"]["selector"]["matchLabels"]),
        "template_labels": sorted(read["spec"]["template"]["metadata"]["labels"]),
        "defaults": {
            k: read["spec"].get(k)
            for k in ("completions", "parallelism", "completionMode", "suspend", "manualSelector")
        },
        "pod_defaults": {
            k: read["spec"]["template"]["spec"].get(k)
            for k in ("dnsPolicy", "schedulerName", "terminationGracePeriodSeconds")
        },
        "list": (code_list, listed.get("kind"), len(listed.get("items", []))),
        "list_item_kind": listed["items"][0].get("kind") if listed.get("items") else None,
        "delete": (code_del, deleted.get("kind"), deleted.get("status")),
        "get_after": attempt(ctx.batch.read_namespaced_job, "crud", ctx.namespace),
    }


@scenario
def crud_pod(ctx: Ctx) -> Any:
    body = pod_body("p", {"seconds": 600})
    created = ctx.dict(ctx.core.create_namespaced_pod(ctx.namespace, body))
    ctx.wait(
        "pod running",
        lambda: ctx.core.read_namespaced_pod("p", ctx.namespace).status.phase == "Running",
    )
    pod = ctx.dict(ctx.core.read_namespaced_pod("p", ctx.namespace))
    code, deleted, _ = ctx.raw("DELETE", f"/api/v1/namespaces/{ctx.namespace}/pods/p")
    ctx.wait(
        "pod deleted",
        lambda: gone(lambda: ctx.core.read_namespaced_pod("p", ctx.namespace)),
    )
    return {
        "created_phase": created["status"].get("phase"),
        "created_qos": created["status"].get("qosClass"),
        "tolerations": sorted(t["key"] for t in created["spec"].get("tolerations") or []),
        "volumes": len(created["spec"].get("volumes") or []),
        "priority": created["spec"].get("priority"),
        "enable_service_links": created["spec"].get("enableServiceLinks"),
        "running_conditions": sorted(t for t, s, _ in conditions(pod) if s == "True"),
        "delete": (
            code,
            deleted.get("kind"),
            bool(deleted.get("metadata", {}).get("deletionTimestamp")),
            deleted.get("metadata", {}).get("deletionGracePeriodSeconds"),
        ),
    }


@scenario
def not_found(ctx: Ctx) -> Any:
    return {
        "job": attempt(ctx.batch.read_namespaced_job, "missing", ctx.namespace),
        "pod": attempt(ctx.core.read_namespaced_pod, "missing", ctx.namespace),
        "log": attempt(ctx.core.read_namespaced_pod_log, "missing", ctx.namespace),
        "namespace": attempt(ctx.core.read_namespace, "missing-" + ctx.namespace),
        "in_missing_namespace": attempt(
            ctx.batch.create_namespaced_job, "missing-" + ctx.namespace, job_body("j")
        ),
        "delete_missing": attempt(ctx.batch.delete_namespaced_job, "missing", ctx.namespace),
        "unknown_path": ctx.raw("GET", "/apis/batch/v1/namespaces/x/cronjobz")[0],
    }


@scenario
def already_exists(ctx: Ctx) -> Any:
    first = attempt(ctx.batch.create_namespaced_job, ctx.namespace, job_body("twice", {}))
    second = attempt(ctx.batch.create_namespaced_job, ctx.namespace, job_body("twice", {}))
    gen = job_body("", {})
    gen["metadata"] = {"generateName": "gen-"}
    made = ctx.batch.create_namespaced_job(ctx.namespace, gen)
    return {
        "first": first,
        "second": second,
        "generated": bool(re.fullmatch(r"gen-[a-z0-9]{5}", made.metadata.name)),
    }


@scenario
def invalid_names(ctx: Ctx) -> Any:
    return {
        "upper": attempt(ctx.batch.create_namespaced_job, ctx.namespace, job_body("Bad_Name")),
        "long_job": attempt(ctx.batch.create_namespaced_job, ctx.namespace, job_body("j" * 64)),
        "long_pod": attempt(ctx.core.create_namespaced_pod, ctx.namespace, pod_body("p" * 254)),
        "no_name": attempt(
            ctx.core.create_namespaced_config_map, ctx.namespace, {"data": {"a": "b"}}
        ),
    }


@scenario
def invalid_pod_specs(ctx: Ctx) -> Any:
    no_image = pod_body("noimage")
    del no_image["spec"]["containers"][0]["image"]
    no_containers = pod_body("empty")
    no_containers["spec"]["containers"] = []
    dup = pod_body("dup")
    dup["spec"]["containers"].append(dict(dup["spec"]["containers"][0]))
    bad_policy = pod_body("policy", restartPolicy="Sometimes")
    return {
        "no_image": attempt(ctx.core.create_namespaced_pod, ctx.namespace, no_image),
        "no_containers": attempt(ctx.core.create_namespaced_pod, ctx.namespace, no_containers),
        "duplicate_container": attempt(ctx.core.create_namespaced_pod, ctx.namespace, dup),
        "bad_restart_policy": attempt(ctx.core.create_namespaced_pod, ctx.namespace, bad_policy),
    }


@scenario
def invalid_job_specs(ctx: Ctx) -> Any:
    always = job_body("always")
    always["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    no_template = job_body("notemplate")
    no_template["spec"]["template"]["spec"]["containers"] = []
    indexed = job_body("indexed", completionMode="Indexed")
    return {
        "restart_always": attempt(ctx.batch.create_namespaced_job, ctx.namespace, always),
        "negative_parallelism": attempt(
            ctx.batch.create_namespaced_job, ctx.namespace, job_body("neg", parallelism=-1)
        ),
        "negative_backoff": attempt(
            ctx.batch.create_namespaced_job, ctx.namespace, job_body("nb", backoffLimit=-1)
        ),
        "no_containers": attempt(ctx.batch.create_namespaced_job, ctx.namespace, no_template),
        "indexed_without_completions": attempt(
            ctx.batch.create_namespaced_job, ctx.namespace, indexed
        ),
        "zero_deadline": attempt(
            ctx.batch.create_namespaced_job,
            ctx.namespace,
            job_body("dl", activeDeadlineSeconds=0),
        ),
    }


@scenario
def immutable_fields(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(ctx.namespace, job_body("imm", {"seconds": 600}))
    template = attempt(
        ctx.batch.patch_namespaced_job,
        "imm",
        ctx.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "other"}]}}}},
    )
    completions = attempt(
        ctx.batch.patch_namespaced_job, "imm", ctx.namespace, {"spec": {"completions": 3}}
    )
    (pod,) = ctx.wait("the Job's pod", lambda: job_pods(ctx, "imm"))
    name = pod["metadata"]["name"]
    pod_command = attempt(
        ctx.core.patch_namespaced_pod,
        name,
        ctx.namespace,
        {"spec": {"containers": [{"name": "main", "command": ["false"]}]}},
    )
    pod_image = attempt(
        ctx.core.patch_namespaced_pod,
        name,
        ctx.namespace,
        {"spec": {"containers": [{"name": "main", "image": "busybox:2"}]}},
    )
    pod_label = attempt(
        ctx.core.patch_namespaced_pod, name, ctx.namespace, {"metadata": {"labels": {"x": "y"}}}
    )
    parallelism = attempt(
        ctx.batch.patch_namespaced_job, "imm", ctx.namespace, {"spec": {"parallelism": 0}}
    )
    return {
        "job_template": template,
        "job_completions": completions,
        "job_parallelism": parallelism,
        "pod_command": pod_command,
        "pod_image": pod_image,
        "pod_label": pod_label,
    }


@scenario
def field_validation(ctx: Ctx) -> Any:
    path = f"/apis/batch/v1/namespaces/{ctx.namespace}/jobs"
    body = job_body("fv", bogusField=1)
    strict = ctx.raw("POST", path, {"fieldValidation": "Strict", "dryRun": "All"}, body)
    warn = ctx.raw("POST", path, {"fieldValidation": "Warn", "dryRun": "All"}, body)
    ignore = ctx.raw("POST", path, {"fieldValidation": "Ignore", "dryRun": "All"}, body)
    default = ctx.raw("POST", path, {"dryRun": "All"}, body)
    dup = ctx.raw(
        "POST",
        path,
        {"fieldValidation": "Strict", "dryRun": "All"},
        '{"metadata": {"name": "a", "name": "b"}, "spec": {}}',
    )
    return {
        "strict": status_of(strict[0], strict[1]),
        "strict_message": ctx.norm(strict[1].get("message", "")),
        "warn": (warn[0], warn[2].get("Warning") or warn[2].get("warning")),
        "ignore": (ignore[0], ignore[2].get("Warning") or ignore[2].get("warning")),
        "default": (default[0], default[2].get("Warning") or default[2].get("warning")),
        "duplicate_field": status_of(dup[0], dup[1]),
    }


@scenario
def dry_run(ctx: Ctx) -> Any:
    created = ctx.dict(
        ctx.batch.create_namespaced_job(ctx.namespace, job_body("dry", {}), dry_run="All")
    )
    after = attempt(ctx.batch.read_namespaced_job, "dry", ctx.namespace)
    ctx.core.create_namespaced_config_map(ctx.namespace, config_map("keep"))
    deleted = attempt(ctx.core.delete_namespaced_config_map, "keep", ctx.namespace, dry_run="All")
    still = attempt(ctx.core.read_namespaced_config_map, "keep", ctx.namespace)
    return {
        "has_uid": bool(created["metadata"].get("uid")),
        "has_creation": bool(created["metadata"].get("creationTimestamp")),
        "has_rv": bool(created["metadata"].get("resourceVersion")),
        "status": created.get("status"),
        "get_after": after,
        "delete": deleted,
        "still_there": still,
    }


@scenario
def conflicts(ctx: Ctx) -> Any:
    ctx.core.create_namespaced_config_map(ctx.namespace, config_map("c"))
    stale = ctx.core.read_namespaced_config_map("c", ctx.namespace)
    ctx.core.patch_namespaced_config_map("c", ctx.namespace, {"data": {"k": "2"}})
    replaced = attempt(ctx.core.replace_namespaced_config_map, "c", ctx.namespace, stale)
    fresh = ctx.core.read_namespaced_config_map("c", ctx.namespace)
    fresh.data = {"k": "3"}
    ok = attempt(ctx.core.replace_namespaced_config_map, "c", ctx.namespace, fresh)
    precondition = attempt(
        ctx.core.delete_namespaced_config_map,
        "c",
        ctx.namespace,
        body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=str(uuid.uuid4()))),
    )
    return {"stale_replace": replaced, "fresh_replace": ok, "uid_precondition": precondition}


@scenario
def patch_types(ctx: Ctx) -> Any:
    ctx.core.create_namespaced_config_map(ctx.namespace, config_map("pt", a="1"))
    path = f"/api/v1/namespaces/{ctx.namespace}/configmaps/pt"
    merge = ctx.raw(
        "PATCH",
        path,
        body={"metadata": {"labels": {"b": "2"}}},
        content_type=("application/merge-patch+json"),
    )
    json_patch = ctx.raw(
        "PATCH",
        path,
        body=[{"op": "remove", "path": "/metadata/labels/a"}],
        content_type="application/json-patch+json",
    )
    bad_json_patch = ctx.raw(
        "PATCH",
        path,
        body=[{"op": "test", "path": "/data/k", "value": "nope"}],
        content_type="application/json-patch+json",
    )
    final = ctx.core.read_namespaced_config_map("pt", ctx.namespace)
    return {
        "merge": merge[0],
        "json_patch": json_patch[0],
        "failed_test_op": status_of(bad_json_patch[0], bad_json_patch[1]),
        "labels": final.metadata.labels,
    }


@scenario
def job_succeeds(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(ctx.namespace, job_body("ok", {"seconds": 1, "stdout": "hi"}))
    job = wait_job(ctx, "ok", "Complete")
    (pod,) = job_pods(ctx, "ok")
    ctx.wait(
        "the Completed event",
        lambda: "Completed" in job_reasons_in_order(ctx, "ok"),
    )
    return {
        "conditions": conditions(job),
        "counters": counters(job, "succeeded", "failed", "active", "ready", "terminating"),
        "uncounted": job["status"].get("uncountedTerminatedPods"),
        "has_completion_time": bool(job["status"].get("completionTime")),
        "job_events": job_reasons_in_order(ctx, "ok"),
        "pod_events": reasons_for(ctx, "Pod", pod["metadata"]["name"]),
        "pod_phase": pod["status"]["phase"],
        "pod_labels": sorted(pod["metadata"]["labels"]),
        "pod_finalizers": pod["metadata"].get("finalizers"),
        "pod_conditions": sorted((t, s) for t, s, _ in conditions(pod)),
        "terminated": {
            k: pod["status"]["containerStatuses"][0]["state"]["terminated"].get(k)
            for k in ("exitCode", "reason")
        },
        "outcome": outcome(ctx, "ok"),
    }


@scenario
def job_fails_backoff_limit(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(
        ctx.namespace, job_body("bad", {"seconds": 0, "exitCode": 3}, backoffLimit=1)
    )
    job = wait_job(ctx, "bad", "Failed", timeout=120)
    ctx.wait(
        "the BackoffLimitExceeded event",
        lambda: "BackoffLimitExceeded" in job_reasons_in_order(ctx, "bad"),
    )
    pods = job_pods(ctx, "bad")
    return {
        "conditions": conditions(job),
        "counters": counters(job, "succeeded", "failed", "active", "ready", "terminating"),
        "job_events": job_reasons_in_order(ctx, "bad"),
        "pods": sorted(
            (
                p["status"]["phase"],
                p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
                p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            )
            for p in pods
        ),
        "outcome": outcome(ctx, "bad"),
    }


@scenario
def indexed_job(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(
        ctx.namespace,
        job_body(
            "idx",
            {"seconds": 1, "stdout": "$(JOB_COMPLETION_INDEX)"},
            completionMode="Indexed",
            completions=3,
            parallelism=2,
        ),
    )
    job = wait_job(ctx, "idx", "Complete")
    pods = job_pods(ctx, "idx")
    return {
        "conditions": conditions(job),
        "counters": counters(job, "succeeded", "failed", "active", "completedIndexes"),
        "indexes": sorted(
            p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods
        ),
        "index_labels": sorted(
            p["metadata"]["labels"].get("batch.kubernetes.io/job-completion-index", "-")
            for p in pods
        ),
        "hostnames": sorted(ctx.norm(p["spec"].get("hostname") or "-") for p in pods),
        "env": sorted(e["name"] for e in pods[0]["spec"]["containers"][0].get("env") or []),
        "job_events": sorted(set(job_reasons_in_order(ctx, "idx"))),
        "outcome": outcome(ctx, "idx"),
    }


@scenario
def pod_failure_policy(ctx: Ctx) -> Any:
    policy = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]},
            },
        ]
    }
    ctx.batch.create_namespaced_job(
        ctx.namespace,
        job_body("pfp", {"seconds": 0, "exitCode": 42}, backoffLimit=5, podFailurePolicy=policy),
    )
    job = wait_job(ctx, "pfp", "Failed")
    ctx.wait(
        "the PodFailurePolicy event", lambda: "PodFailurePolicy" in job_reasons_in_order(ctx, "pfp")
    )
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    return {
        "conditions": conditions(job),
        "message": ctx.norm(re.sub(r"pod [^ ]+", "pod P", failed.get("message", ""))),
        "counters": counters(job, "succeeded", "failed", "active"),
        "job_events": job_reasons_in_order(ctx, "pfp"),
        "outcome": outcome(ctx, "pfp"),
    }


INDEXED_TASK = "example.com/indexed-task:1"
INDEXED_TASK_BEHAVIOURS: list[Obj] = [
    {"match": {"image": INDEXED_TASK, "env": {"JOB_COMPLETION_INDEX": "1"}}, "seconds": 4},
    {
        "match": {"image": INDEXED_TASK, "args": "fail-0", "env": {"JOB_COMPLETION_INDEX": "0"}},
        "seconds": 1,
        "exitCode": 3,
    },
    {"match": {"image": INDEXED_TASK}, "seconds": "forever"},
]
"""Behaviour rules of the cluster configuration both clusters run with (a Job template cannot
say per index what its pods do): index 1 succeeds after 4 s, index 0 fails after 1 s when its
args say ``fail-0``, every other index runs until stopped."""


def indexed_task_job(name: str, args: list[str], **spec: Any) -> Obj:
    body = job_body(name, completionMode="Indexed", **spec)
    if body["spec"]["backoffLimit"] is None:
        del body["spec"]["backoffLimit"]  # the default, which backoffLimitPerIndex changes
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "main", "image": INDEXED_TASK, "args": args}
    ]
    return body


def _job_result(ctx: Ctx, name: str) -> Obj:
    job = read_job(ctx, name)
    return {
        "conditions": [
            (t, s, r, c.get("message"))
            for (t, s, r), c in zip(conditions(job), job["status"]["conditions"], strict=True)
        ],
        "counters": counters(
            job,
            "succeeded",
            "failed",
            "active",
            "ready",
            "terminating",
            "completedIndexes",
            "failedIndexes",
        ),
        "uncounted": job["status"].get("uncountedTerminatedPods"),
        "has_completion_time": bool(job["status"].get("completionTime")),
        "job_events": job_reasons_in_order(ctx, name),
        "outcome": outcome(ctx, name),
    }


@scenario
def success_policy(ctx: Ctx) -> Any:
    """Indexed Jobs ended by their successPolicy: the rules are checked in order, the remaining
    pods are stopped, and ``SuccessCriteriaMet`` comes before ``Complete``; a failed index
    (``backoffLimitPerIndex``) does not stop the policy from being met."""
    policy = {
        "rules": [
            {"succeededIndexes": "0,2-3"},
            {"succeededIndexes": "1-3", "succeededCount": 1},
        ]
    }
    start = ctx.batch.list_namespaced_job(ctx.namespace).metadata.resource_version
    ctx.batch.create_namespaced_job(
        ctx.namespace,
        indexed_task_job("leader", ["run"], completions=4, parallelism=4, successPolicy=policy),
    )
    ctx.batch.create_namespaced_job(
        ctx.namespace,
        indexed_task_job(
            "per-index",
            ["fail-$(JOB_COMPLETION_INDEX)"],
            completions=3,
            parallelism=3,
            backoffLimit=None,
            backoffLimitPerIndex=0,
            successPolicy={"rules": [{"succeededIndexes": "1"}]},
        ),
    )
    seen: Obj = {}
    for name in ("leader", "per-index"):
        wait_job(ctx, name, "Complete")
        ctx.wait(
            f"the Completed event of {name}",
            lambda name=name: "Completed" in job_reasons_in_order(ctx, name),
        )
        seen[name] = _job_result(ctx, name)
        seen[name]["pods"] = sorted(
            (
                p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"],
                p["status"]["phase"],
            )
            for p in job_pods(ctx, name)
            if not p["metadata"].get("deletionTimestamp")
        )
    # The status updates in order, replayed by a watch from before the Job was created.
    updates = ctx.watch(
        f"/apis/batch/v1/namespaces/{ctx.namespace}/jobs",
        {
            "fieldSelector": "metadata.name=leader",
            "resourceVersion": start,
            "timeoutSeconds": "30",
        },
        stop=lambda e: "Complete" in true_types(e["object"]),
    )
    states: list[Any] = []
    for event in updates:
        st = event["object"].get("status") or {}
        state = (
            true_types(event["object"]),
            st.get("succeeded"),
            st.get("completedIndexes"),
            bool(st.get("terminating")),
            sorted(k for k, v in (st.get("uncountedTerminatedPods") or {}).items() if v),
        )
        if not states or states[-1] != state:
            states.append(state)
    seen["leader"]["updates"] = states
    return seen


@scenario
def native_sidecar_job(ctx: Ctx) -> Any:
    """Jobs whose pods have a native sidecar (an init container with ``restartPolicy:
    Always``): it runs beside the main container, is stopped when that one is done (``tail``
    ignores SIGTERM: killed at the end of the grace period), and the pod succeeds or fails by
    the main container; a sidecar that exits is restarted."""

    def body(name: str, main: Obj, sidecar: Obj, grace: int | None = 5) -> Obj:
        job = job_body(name, {"main": main, "logshipper": sidecar})
        template = job["spec"]["template"]["spec"]
        if grace is not None:
            template["terminationGracePeriodSeconds"] = grace
        template["initContainers"] = [
            {
                "name": "logshipper",
                "image": "busybox",
                "restartPolicy": "Always",
                "command": ["sh", "-c", "tail -F /opt/logs.txt"],
            }
        ]
        return job

    forever = {"seconds": "forever"}
    ctx.batch.create_namespaced_job(ctx.namespace, body("ok", {"seconds": 3}, forever, None))
    ctx.batch.create_namespaced_job(
        ctx.namespace, body("fails", {"seconds": 1, "exitCode": 2}, forever)
    )
    ctx.batch.create_namespaced_job(
        ctx.namespace, body("crashy", {"seconds": 6}, {"seconds": 2, "exitCode": 1})
    )
    # A pod failure policy sees the sidecar's exit code too (137: killed once the main
    # container failed), in initContainerStatuses after the regular containers.
    with_policy = body("policy", {"seconds": 1, "exitCode": 1}, forever)
    with_policy["spec"]["backoffLimit"] = 3
    with_policy["spec"]["podFailurePolicy"] = {
        "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [137]}}]
    }
    ctx.batch.create_namespaced_job(ctx.namespace, with_policy)
    ctx.wait(
        "Job ok active and ready",
        lambda: counters(read_job(ctx, "ok"), "active", "ready") == {"active": 1, "ready": 1},
    )
    seen: Obj = {}
    jobs = (("ok", "Complete"), ("fails", "Failed"), ("crashy", "Complete"), ("policy", "Failed"))
    for name, final in jobs:
        wait_job(ctx, name, final)
        (pod,) = job_pods(ctx, name)
        status = pod["status"]

        def container(entry: Obj) -> Obj:
            state = entry["state"]
            (key,) = state
            terminated = state.get("terminated") or {}
            return {
                "name": entry["name"],
                "state": key,
                "exit": (terminated.get("exitCode"), terminated.get("reason")),
                "ready": entry.get("ready"),
                "started": entry.get("started"),
                "restarts": entry.get("restartCount"),
                "last": sorted((entry.get("lastState") or {}).get("terminated") or {}),
            }

        result = _job_result(ctx, name)
        result["conditions"] = [
            (t, st, r, ctx.norm(re.sub(r"pod [^ ]+/[^ ]+", "pod P", m or "")))
            for t, st, r, m in result["conditions"]
        ]
        seen[name] = {
            **result,
            "pod_phase": status["phase"],
            "pod_conditions": conditions(pod),
            "init": [container(c) for c in status.get("initContainerStatuses") or []],
            "main": [container(c) for c in status.get("containerStatuses") or []],
            "pod_events": reasons_for(ctx, "Pod", pod["metadata"]["name"]),
        }
    return seen


@scenario
def active_deadline(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(
        ctx.namespace, job_body("dl", {"seconds": 600}, activeDeadlineSeconds=3)
    )
    job = wait_job(ctx, "dl", "Failed")
    ctx.wait(
        "the DeadlineExceeded event", lambda: "DeadlineExceeded" in job_reasons_in_order(ctx, "dl")
    )
    ctx.wait(
        "the pod to be gone or finished",
        lambda: all(p["status"]["phase"] in ("Failed", "Succeeded") for p in job_pods(ctx, "dl")),
    )
    return {
        "conditions": conditions(job),
        "counters": counters(job, "succeeded", "failed", "active"),
        "job_events": job_reasons_in_order(ctx, "dl"),
        "pods": len(job_pods(ctx, "dl")),
        "outcome": outcome(ctx, "dl"),
    }


@scenario
def ttl_after_finished(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(
        ctx.namespace, job_body("ttl", {"seconds": 0}, ttlSecondsAfterFinished=1)
    )
    deleted = ctx.settles(lambda: gone(lambda: read_job(ctx, "ttl")), 60)
    pods_gone = ctx.settles(lambda: not job_pods(ctx, "ttl"), 30)
    return {"job_deleted": deleted, "pods_deleted": pods_gone}


@scenario
def suspend_resume(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(ctx.namespace, job_body("sus", {"seconds": 1}, suspend=True))
    suspended = wait_job(ctx, "sus", "Suspended")
    pods_while_suspended = len(job_pods(ctx, "sus"))
    queued = outcome(ctx, "sus")
    ctx.batch.patch_namespaced_job("sus", ctx.namespace, {"spec": {"suspend": False}})
    job = wait_job(ctx, "sus", "Complete")
    ctx.wait("the Completed event", lambda: "Completed" in job_reasons_in_order(ctx, "sus"))
    return {
        "suspended": conditions(suspended),
        "suspended_counters": counters(suspended, "active", "startTime"),
        "pods_while_suspended": pods_while_suspended,
        "queued": queued,
        "conditions": conditions(job),
        "job_events": job_reasons_in_order(ctx, "sus"),
    }


def _delete_with(ctx: Ctx, propagation: str | None) -> Any:
    ctx.batch.create_namespaced_job(ctx.namespace, job_body("del", {"seconds": 600}))
    ctx.wait(
        "the pod to run",
        lambda: any(p["status"]["phase"] == "Running" for p in job_pods(ctx, "del")),
    )
    path = f"/apis/batch/v1/namespaces/{ctx.namespace}/jobs/del"
    body = {"propagationPolicy": propagation} if propagation else None
    code, response, _ = ctx.raw("DELETE", path, body=body)
    meta = response.get("metadata") or {}
    seen: Obj = {
        "response": (
            code,
            response.get("kind"),
            bool(meta.get("deletionTimestamp")),
            meta.get("finalizers"),
        )
    }
    seen["job_gone"] = ctx.settles(lambda: gone(lambda: read_job(ctx, "del")), 60)

    def pod_list() -> list[Obj]:
        return [ctx.dict(p) for p in ctx.core.list_namespaced_pod(ctx.namespace).items]

    if propagation in (None, "Orphan"):
        pods = ctx.wait(
            "the orphan to lose its ownerReference",
            lambda: (
                (ps := pod_list())
                and all(not p["metadata"].get("ownerReferences") for p in ps)
                and ps
            ),
        )
        seen["orphans"] = [(p["status"]["phase"], sorted(p["metadata"]["labels"])) for p in pods]
    else:
        seen["pods_gone"] = ctx.settles(lambda: not pod_list(), 60)
    return seen


@scenario
def delete_background(ctx: Ctx) -> Any:
    return _delete_with(ctx, "Background")


@scenario
def delete_foreground(ctx: Ctx) -> Any:
    return _delete_with(ctx, "Foreground")


@scenario
def delete_orphan(ctx: Ctx) -> Any:
    return _delete_with(ctx, "Orphan")


@scenario
def delete_default_propagation(ctx: Ctx) -> Any:
    return _delete_with(ctx, None)


@scenario
def unschedulable_pod(ctx: Ctx) -> Any:
    body = pod_body("huge")
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100"}}
    ctx.core.create_namespaced_pod(ctx.namespace, body)
    ctx.wait(
        "FailedScheduling and NotTriggerScaleUp",
        lambda: {"FailedScheduling", "NotTriggerScaleUp"} <= set(reasons_for(ctx, "Pod", "huge")),
    )
    pod = ctx.dict(ctx.core.read_namespaced_pod("huge", ctx.namespace))
    job = job_body("hugejob")
    job["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100"}}
    ctx.batch.create_namespaced_job(ctx.namespace, job)
    ctx.wait(
        "the Job's pod NotTriggerScaleUp",
        lambda: any(
            e["reason"] == "NotTriggerScaleUp" and e["involvedObject"]["name"] != "huge"
            for e in events(ctx)
        ),
    )
    failed = [e for e in events(ctx) if e["reason"] == "FailedScheduling"]
    return {
        "phase": pod["status"]["phase"],
        "conditions": conditions(pod),
        "events": reasons_for(ctx, "Pod", "huge"),
        "event_types": sorted({(e["reason"], e["type"]) for e in events(ctx)}),
        # Whether the GPU node exists yet depends on the other scenarios: not compared.
        "scheduler_message": "Insufficient cpu" in failed[0]["message"],
        "outcome": {
            k: v.split("no node pool can fit the pod")[0]
            for k, v in outcome(ctx, "hugejob").items()
        },
    }


@scenario
def gpu_scale_up(ctx: Ctx) -> Any:
    body = job_body("gpu", {"seconds": 1})
    spec = body["spec"]["template"]["spec"]
    spec["tolerations"] = [{**GPU_TAINT, "operator": "Equal"}]
    spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    ctx.batch.create_namespaced_job(ctx.namespace, body)
    (pod,) = ctx.wait("the Job's pod", lambda: job_pods(ctx, "gpu"))
    name = pod["metadata"]["name"]
    ctx.wait("TriggeredScaleUp", lambda: "TriggeredScaleUp" in reasons_for(ctx, "Pod", name), 60)
    waiting = outcome(ctx, "gpu")
    job = wait_job(ctx, "gpu", "Complete", timeout=120)
    scale_up = next(e for e in events(ctx) if e["reason"] == "TriggeredScaleUp")
    return {
        "waiting": waiting,
        "pod_events": reasons_for(ctx, "Pod", name),
        "scale_up": (scale_up["message"], scale_up["source"].get("component")),
        "conditions": conditions(job),
        "requests": ctx.dict(ctx.core.read_namespaced_pod(name, ctx.namespace))["spec"][
            "containers"
        ][0]["resources"],
    }


def _waiting_reasons(ctx: Ctx, job: str) -> set[str]:
    out = set()
    for pod in job_pods(ctx, job):
        for cs in pod["status"].get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting")
            if waiting:
                out.add(waiting.get("reason"))
    return out


@scenario
def image_pull_backoff(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(
        ctx.namespace,
        job_body("pull", {"imagePull": "ErrImagePull", "imagePullMessage": "not found"}),
    )
    seen: set[str] = set()

    def both() -> bool:
        seen.update(_waiting_reasons(ctx, "pull"))
        return {"ErrImagePull", "ImagePullBackOff"} <= seen

    ctx.wait("ErrImagePull and ImagePullBackOff", both, timeout=60)
    (pod,) = job_pods(ctx, "pull")
    return {
        "waiting": sorted(seen),
        "phase": pod["status"]["phase"],
        "pod_events": reasons_for(ctx, "Pod", pod["metadata"]["name"]),
        "counters": counters(read_job(ctx, "pull"), "active", "ready", "failed"),
        "outcome": {k: v for k, v in outcome(ctx, "pull").items() if k != "status_line"},
    }


@scenario
def invalid_image_name(ctx: Ctx) -> Any:
    body = job_body("badname")
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "Not A Valid:Image"
    ctx.batch.create_namespaced_job(ctx.namespace, body)
    ctx.wait("InvalidImageName", lambda: "InvalidImageName" in _waiting_reasons(ctx, "badname"))
    (pod,) = job_pods(ctx, "badname")
    name = pod["metadata"]["name"]
    ctx.wait("InspectFailed", lambda: "InspectFailed" in reasons_for(ctx, "Pod", name))
    return {
        "phase": pod["status"]["phase"],
        "pod_events": reasons_for(ctx, "Pod", name),
        "outcome": outcome(ctx, "badname"),
    }


@scenario
def pod_logs(ctx: Ctx) -> Any:
    ctx.core.create_namespaced_pod(
        ctx.namespace, pod_body("logs", {"seconds": 1, "stdout": "one\ntwo\nthree"})
    )
    ctx.wait(
        "the pod to succeed",
        lambda: ctx.core.read_namespaced_pod("logs", ctx.namespace).status.phase == "Succeeded",
    )
    path = f"/api/v1/namespaces/{ctx.namespace}/pods/logs/log"
    full = ctx.raw("GET", path, accept="*/*")
    tail = ctx.raw("GET", path, {"tailLines": "1"}, accept="*/*")
    stamped = ctx.raw("GET", path, {"timestamps": "true"}, accept="*/*")
    limited = ctx.raw("GET", path, {"limitBytes": "5"}, accept="*/*")
    wrong = ctx.raw("GET", path, {"container": "nope"}, accept="*/*")
    previous = ctx.raw("GET", path, {"previous": "true"}, accept="*/*")
    missing = ctx.raw("GET", f"/api/v1/namespaces/{ctx.namespace}/pods/nope/log", accept="*/*")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"
    return {
        "full": full[:2],
        "content_type": full[2].get("Content-Type"),
        "tail": tail[:2],
        "timestamps": bool(re.fullmatch(f"({stamp} \\w+\n){{3}}", stamped[1])),
        "limit": limited[:2],
        "wrong_container": status_of(wrong[0], wrong[1]),
        "previous": status_of(previous[0], previous[1]),
        "missing_pod": status_of(missing[0], missing[1]),
    }


def _state(obj: Obj) -> tuple[Any, ...]:
    st = obj.get("status") or {}
    return (
        bool(st.get("active")),
        st.get("succeeded"),
        tuple(true_types(obj)),
    )


@scenario
def watch_job_lifecycle(ctx: Ctx) -> Any:
    path = f"/apis/batch/v1/namespaces/{ctx.namespace}/jobs"
    seen: list[Obj] = []

    def collect() -> None:
        seen.extend(
            ctx.watch(
                path,
                {"fieldSelector": "metadata.name=life", "timeoutSeconds": "60"},
                stop=lambda e: "Complete" in true_types(e["object"]),
            )
        )

    watcher = threading.Thread(target=collect)
    watcher.start()
    time.sleep(0.5)  # the watch is opened; nothing to wait on through the API
    ctx.batch.create_namespaced_job(ctx.namespace, job_body("life", {"seconds": 1}))
    watcher.join(90)
    types: list[str] = []
    states: list[tuple[Any, ...]] = []
    for e in seen:
        if not types or types[-1] != e["type"]:
            types.append(e["type"])
        state = _state(e["object"])
        if not states or states[-1] != state:
            states.append(state)
    return {"types": types, "states": states}


@scenario
def watch_resume(ctx: Ctx) -> Any:
    ctx.core.create_namespaced_config_map(ctx.namespace, config_map("w"))
    rv = ctx.core.read_namespaced_config_map("w", ctx.namespace).metadata.resource_version
    ctx.core.patch_namespaced_config_map("w", ctx.namespace, {"metadata": {"labels": {"a": "b"}}})
    ctx.core.create_namespaced_config_map(ctx.namespace, config_map("w2"))
    ctx.core.delete_namespaced_config_map("w", ctx.namespace)
    path = f"/api/v1/namespaces/{ctx.namespace}/configmaps"
    resumed = ctx.watch(path, {"resourceVersion": rv, "timeoutSeconds": "2"})
    fresh = ctx.watch(path, {"timeoutSeconds": "1"})
    selected = ctx.watch(
        path, {"resourceVersion": rv, "timeoutSeconds": "1", "labelSelector": "a=b"}
    )
    return {
        "resumed": [(e["type"], e["object"]["metadata"]["name"]) for e in resumed],
        "fresh": [(e["type"], e["object"]["metadata"]["name"]) for e in fresh],
        "label_selected": [(e["type"], e["object"]["metadata"]["name"]) for e in selected],
    }


@scenario
def watch_bookmarks(ctx: Ctx) -> Any:
    ctx.core.create_namespaced_config_map(ctx.namespace, config_map("b"))
    path = f"/api/v1/namespaces/{ctx.namespace}/configmaps"
    rv = ctx.core.list_namespaced_config_map(ctx.namespace).metadata.resource_version

    def shape(found: list[Obj]) -> list[Any]:
        # How many bookmarks come before the timeout depends on a one-second ticker:
        # repeated entries are collapsed.
        out: list[Any] = []
        for e in found:
            entry = (
                (e["type"], (e["object"].get("metadata") or {}).get("annotations"))
                if e["type"] == "BOOKMARK"
                else e["type"]
            )
            if not out or out[-1] != entry:
                out.append(entry)
        return out

    return {
        "no_bookmarks": shape(ctx.watch(path, {"timeoutSeconds": "3"})),
        "initial_then_bookmark": shape(
            ctx.watch(path, {"allowWatchBookmarks": "true", "timeoutSeconds": "3"})
        ),
        "send_initial_events": shape(
            ctx.watch(
                path,
                {
                    "allowWatchBookmarks": "true",
                    "sendInitialEvents": "true",
                    "resourceVersionMatch": "NotOlderThan",
                    "timeoutSeconds": "3",
                },
                stop=lambda e: e["type"] == "BOOKMARK",
            )
        ),
        "from_version": shape(
            ctx.watch(
                path,
                {"allowWatchBookmarks": "true", "resourceVersion": rv, "timeoutSeconds": "3"},
            )
        ),
    }


@scenario
def watch_old_and_future_versions(ctx: Ctx) -> Any:
    ctx.core.create_namespaced_config_map(ctx.namespace, config_map("old"))
    ctx.core.delete_namespaced_config_map("old", ctx.namespace)
    path = f"/api/v1/namespaces/{ctx.namespace}/configmaps"
    oldest = ctx.watch(path, {"resourceVersion": "1", "timeoutSeconds": "2"})
    rv = int(ctx.core.list_namespaced_config_map(ctx.namespace).metadata.resource_version)
    future = ctx.watch(path, {"resourceVersion": str(rv + 10**6), "timeoutSeconds": "2"})

    def shape(found: list[Obj]) -> list[Any]:
        return [
            (e["type"], e["object"].get("code"), e["object"].get("reason"))
            if e.get("type") == "ERROR"
            else (e.get("type"), (e.get("object") or {}).get("metadata", {}).get("name"))
            for e in found
        ]

    return {"from_1": shape(oldest), "future": shape(future)}


@scenario
def selectors(ctx: Ctx) -> Any:
    for name, labels in (("a1", {"app": "a"}), ("b1", {"app": "b"}), ("n1", {})):
        ctx.core.create_namespaced_config_map(ctx.namespace, config_map(name, **labels))

    def names(**kw: Any) -> Any:
        try:
            items = ctx.core.list_namespaced_config_map(ctx.namespace, **kw).items
        except ApiException as exc:
            return error(exc)
        return sorted(i.metadata.name for i in items)

    return {
        "eq": names(label_selector="app=a"),
        "neq": names(label_selector="app!=a"),
        "in": names(label_selector="app in (a,b)"),
        "exists": names(label_selector="app"),
        "not_exists": names(label_selector="!app"),
        "field_name": names(field_selector="metadata.name=b1"),
        "field_neq": names(field_selector="metadata.name!=b1"),
        "bad_field": names(field_selector="data.k=v"),
        "bad_label": names(label_selector="app in a"),
        "pod_phase": attempt(
            ctx.core.list_namespaced_pod, ctx.namespace, field_selector="status.phase=Running"
        ),
        "event_field": attempt(
            ctx.core.list_namespaced_event, ctx.namespace, field_selector="involvedObject.name=x"
        ),
        "job_field": attempt(
            ctx.batch.list_namespaced_job, ctx.namespace, field_selector="status.successful=1"
        ),
    }


@scenario
def event_field_selectors(ctx: Ctx) -> Any:
    """What a watch of Events could filter on: ``source`` falls back to the reporting
    controller, and a field selector takes no set (``in``) to select several kinds."""
    now = "2026-01-01T00:00:00Z"
    legacy = {
        "metadata": {"name": "legacy"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": ctx.namespace},
        "reason": "Started",
        "message": "Started container main",
        "type": "Normal",
        "source": {"component": "kubelet"},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    reporting = {
        "metadata": {"name": "reporting"},
        "involvedObject": {"kind": "Job", "name": "j", "namespace": ctx.namespace},
        "reason": "CreatedWorkload",
        "message": "Created Workload",
        "type": "Warning",
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "action": "Create",
        "reportingComponent": "kueue-admission",
        "reportingInstance": "kueue-admission-1",
    }
    for body in (legacy, reporting):
        ctx.core.create_namespaced_event(ctx.namespace, body)

    def names(selector: str) -> Any:
        try:
            items = ctx.core.list_namespaced_event(ctx.namespace, field_selector=selector).items
        except ApiException as exc:
            return error(exc)
        return sorted(i.metadata.name for i in items)

    return {
        selector: names(selector)
        for selector in (
            "source=kubelet",
            "source=kueue-admission",
            "reportingComponent=kueue-admission",
            "involvedObject.kind=Pod",
            "involvedObject.kind!=Pod",
            "involvedObject.kind!=Pod,involvedObject.kind!=Job",
            "type!=Normal",
            "involvedObject.kind in (Pod,Job)",
        )
    }


@scenario
def pagination(ctx: Ctx) -> Any:
    for i in range(5):
        ctx.core.create_namespaced_config_map(ctx.namespace, config_map(f"page-{i}"))
    pages: list[Any] = []
    token = None
    while True:
        result = ctx.core.list_namespaced_config_map(ctx.namespace, limit=2, _continue=token)
        pages.append(
            (
                [i.metadata.name for i in result.items],
                result.metadata.remaining_item_count,
                bool(result.metadata._continue),
            )
        )
        token = result.metadata._continue
        if not token:
            break
    bad = attempt(ctx.core.list_namespaced_config_map, ctx.namespace, limit=2, _continue="xyz")
    return {"pages": pages, "bad_token": bad}


@scenario
def deletecollection(ctx: Ctx) -> Any:
    for name, labels in (("d1", {"x": "1"}), ("d2", {"x": "1"}), ("d3", {})):
        ctx.core.create_namespaced_config_map(ctx.namespace, config_map(name, **labels))
    code, body, _ = ctx.raw(
        "DELETE", f"/api/v1/namespaces/{ctx.namespace}/configmaps", {"labelSelector": "x=1"}
    )
    left = sorted(i.metadata.name for i in ctx.core.list_namespaced_config_map(ctx.namespace).items)
    return {"code": code, "kind": body.get("kind"), "left": left}


@scenario
def access_review(ctx: Ctx) -> Any:
    review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(
                namespace=ctx.namespace, verb="create", group="batch", resource="jobs"
            )
        )
    )
    answer = ctx.dict(client.AuthorizationV1Api(ctx.api).create_self_subject_access_review(review))
    empty = attempt(
        client.AuthorizationV1Api(ctx.api).create_self_subject_access_review,
        client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec()),
    )
    return {
        "allowed": answer["status"].get("allowed"),
        "denied": answer["status"].get("denied"),
        "empty": empty,
    }


def _protobuf(
    ctx: Ctx, method: str, path: str, body: bytes | None, accept: str = k8s_protobuf.MEDIA_TYPE
) -> tuple[int, str, Any]:
    """One request with a protobuf body: ``(status, content type, decoded answer)``.

    Through urllib3: the client's own error path reads every error body as UTF-8 text."""
    headers = {"Content-Type": k8s_protobuf.MEDIA_TYPE, "Accept": accept}
    ctx.api.update_params_for_auth(headers, [], ["BearerToken"])
    response = ctx.api.rest_client.pool_manager.request(
        method, ctx.api.configuration.host + path, body=body, headers=headers, timeout=60
    )
    code, data, headers = response.status, response.data, response.headers
    content_type = (headers or {}).get("Content-Type", "").split(";")[0]
    if content_type == k8s_protobuf.MEDIA_TYPE:
        return code, content_type, k8s_protobuf.decode(data)
    return code, content_type, json.loads(data or b"null")


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _protobuf_list_differences(ctx: Ctx, path: str) -> list[str]:
    """The objects of a list read as protobuf that differ from the same list read as JSON (those
    at the same resourceVersion in both), and what is wrong with the list itself."""
    code, content_type, listed = _protobuf(ctx, "GET", path, None)
    if (code, content_type) != (200, k8s_protobuf.MEDIA_TYPE) or "items" not in listed:
        return [f"answer {code} {content_type}"]
    as_json = _protobuf(ctx, "GET", path, None, "application/json")[2]
    by_version = {item["metadata"]["resourceVersion"]: item for item in as_json["items"]}
    differing = []
    for item in listed["items"]:
        same = by_version.get(item["metadata"]["resourceVersion"])
        if same is not None and _without_nulls(same) != item:
            differing.append(item["metadata"]["name"])
    return differing


def _read_twice(ctx: Ctx, jobs: str) -> tuple[list[str]] | None:
    """The top-level fields in which Job ``pb`` read as protobuf and as JSON differ (None when it
    changed between the two reads)."""
    as_protobuf = _protobuf(ctx, "GET", f"{jobs}/pb", None)[2]
    as_json = _without_nulls(_protobuf(ctx, "GET", f"{jobs}/pb", None, "application/json")[2])
    if as_json["metadata"]["resourceVersion"] != as_protobuf["metadata"]["resourceVersion"]:
        return None
    keys = set(as_json) | set(as_protobuf)
    return (sorted(k for k in keys if as_json.get(k) != as_protobuf.get(k)),)


@scenario
def protobuf_bodies(ctx: Ctx) -> Any:
    """Objects sent and read as protobuf (what kubectl and client-go speak by default): what
    comes back in protobuf is what comes back in JSON."""
    job = job_body("pb", {"seconds": 0}, suspend=True, activeDeadlineSeconds=600)
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "EMPTY", "value": ""}, {"name": "N", "value": "1"}]
    container["resources"] = {"limits": {"cpu": "250m", "memory": "64Mi"}}
    container["ports"] = [{"name": "http", "containerPort": 8080}]
    container["readinessProbe"] = {"httpGet": {"path": "/", "port": "http"}}
    job["metadata"]["labels"] = {"app": "pb", "empty": ""}
    jobs = f"/apis/batch/v1/namespaces/{ctx.namespace}/jobs"
    created = _protobuf(ctx, "POST", jobs, k8s_protobuf.encode(job))
    differing = ctx.wait(
        "the Job read twice at one resourceVersion", lambda: _read_twice(ctx, jobs)
    )
    again = _protobuf(ctx, "POST", jobs, k8s_protobuf.encode(job))
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {"namespace": ctx.namespace, "verb": "get", "resource": "pods"}
        },
    }
    reviewed = _protobuf(
        ctx,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        k8s_protobuf.encode(review),
        accept=f"{k8s_protobuf.MEDIA_TYPE}, application/json",
    )
    garbage = _protobuf(ctx, "POST", jobs, k8s_protobuf.MAGIC + b"\x0a\xff")
    ctx.core.create_namespaced_pod(ctx.namespace, pod_body("pb-pod", {"seconds": 0}))
    ctx.wait(
        "pb-pod done",
        lambda: ctx.core.read_namespaced_pod("pb-pod", ctx.namespace).status.phase == "Succeeded",
    )
    lists = {
        path.rsplit("/", 1)[-1]: _protobuf_list_differences(ctx, path)
        for path in (
            f"/api/v1/namespaces/{ctx.namespace}/pods",
            f"/api/v1/namespaces/{ctx.namespace}/events",
            f"/api/v1/namespaces/{ctx.namespace}/configmaps",
            f"/api/v1/namespaces/{ctx.namespace}/serviceaccounts",
            f"/apis/batch/v1/namespaces/{ctx.namespace}/jobs",
            "/api/v1/namespaces",
            "/api/v1/nodes",
        )
    }
    return {
        "created": created[:2],
        "spec": {k: created[2]["spec"].get(k) for k in ("suspend", "activeDeadlineSeconds")},
        "env": created[2]["spec"]["template"]["spec"]["containers"][0]["env"],
        "labels": created[2]["metadata"]["labels"],
        "protobuf_differs_from_json_in": differing,
        "again": (*again[:2], {k: again[2].get(k) for k in ("kind", "reason", "code")}),
        "review": (*reviewed[:2], reviewed[2]["status"].get("allowed")),
        "garbage": (garbage[0], garbage[2].get("reason")),
        "lists_differ": {name: found for name, found in lists.items() if found},
    }


# --- kubectl ------------------------------------------------------------------------------


def _lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


def _header(out: str) -> list[str]:
    lines = _lines(out)
    return lines[0].split() if lines else []


@scenario
def kubectl_version(ctx: Ctx) -> Any:
    rc, out, err = ctx.kubectl("version", "-o", "json")
    server = json.loads(out).get("serverVersion", {}) if rc == 0 else {}
    return {
        "rc": rc,
        "server_keys": sorted(server),
        "git_version_shape": bool(re.fullmatch(r"v\d+\.\d+\.\d+", server.get("gitVersion", ""))),
        "stderr": err.strip() != "",
    }


@scenario
def kubectl_get_tables(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(ctx.namespace, job_body("tbl", {"seconds": 1}))
    wait_job(ctx, "tbl", "Complete")
    outputs = {}
    for what in ("jobs", "pods", "nodes", "events", "namespaces", "configmaps"):
        rc, out, _ = ctx.kubectl("get", what)
        outputs[what] = (rc, _header(out))
    rc, out, _ = ctx.kubectl("get", "jobs", "-o", "wide")
    outputs["jobs_wide"] = (rc, _header(out))
    rc, out, _ = ctx.kubectl("get", "job", "tbl", "--no-headers")
    outputs["job_row"] = (rc, out.split()[1:2])
    rc, out, _ = ctx.kubectl("get", "pods", "--no-headers")
    outputs["pod_row"] = (rc, out.split()[1:4])
    rc, out, err = ctx.kubectl("get", "job", "nope")
    outputs["missing"] = (rc, ctx.norm(err.strip()))
    return outputs


@scenario
def kubectl_create_job(ctx: Ctx) -> Any:
    rc, out, _err = ctx.kubectl("create", "job", "kc", "--image=busybox", "--", "true")
    job = read_job(ctx, "kc") if rc == 0 else {}
    again = ctx.kubectl("create", "job", "kc", "--image=busybox")
    return {
        "rc": rc,
        "out": out.strip(),
        "restart_policy": job.get("spec", {})
        .get("template", {})
        .get("spec", {})
        .get("restartPolicy"),
        "again": (again[0], ctx.norm(again[2].strip())),
    }


@scenario
def kubectl_apply(ctx: Ctx) -> Any:
    manifest = json.dumps(job_body("ap", {"seconds": 0}))
    first = ctx.kubectl("apply", "-f", "-", input=manifest)
    second = ctx.kubectl("apply", "-f", "-", input=manifest)
    changed = job_body("ap", {"seconds": 0})
    changed["metadata"]["labels"] = {"x": "y"}
    third = ctx.kubectl("apply", "-f", "-", input=json.dumps(changed))
    return {
        "first": (first[0], first[1].strip()),
        "second": (second[0], second[1].strip()),
        "third": (third[0], third[1].strip()),
        "labels": sorted(read_job(ctx, "ap")["metadata"].get("labels") or {})
        if third[0] == 0
        else None,
    }


@scenario
def kubectl_apply_server_side(ctx: Ctx) -> Any:
    body = job_body("ssa", {})
    body["metadata"]["labels"] = {"team": "a", "tier": "batch"}
    first = ctx.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))
    again = ctx.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))
    other = {**body, "metadata": {"name": "ssa", "labels": {"team": "b"}}, "spec": {}}
    as_other = ("apply", "--server-side", "--field-manager=other", "-f", "-")
    conflict = ctx.kubectl(*as_other, input=json.dumps(other))
    forced = ctx.kubectl(*as_other, "--force-conflicts", input=json.dumps(other))
    # kubectl no longer applies either label: "tier" goes, "team" stays with "other".
    del body["metadata"]["labels"]
    shrunk = ctx.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))
    job = read_job(ctx, "ssa")
    applied = [e for e in job["metadata"].get("managedFields") or [] if e["operation"] == "Apply"]
    return {
        "runs": [(rc, out.strip()) for rc, out, _ in (first, again, forced, shrunk)],
        "conflict": (conflict[0], _lines(conflict[2])[:1]),
        "team_tier": [job["metadata"].get("labels", {}).get(k) for k in ("team", "tier")],
        "managers": sorted(
            (e["manager"], json.dumps(e["fieldsV1"], sort_keys=True)) for e in applied
        ),
    }


@scenario
def kubectl_create_validation(ctx: Ctx) -> Any:
    bad = job_body("val", bogusField=1)
    strict = ctx.kubectl("create", "-f", "-", input=json.dumps(bad))
    warn = ctx.kubectl("create", "--validate=warn", "-f", "-", input=json.dumps(bad))
    invalid = ctx.kubectl("create", "-f", "-", input=json.dumps(job_body("Bad_Name")))
    return {
        "strict": (strict[0], ctx.norm(strict[2].strip())),
        "warn": (warn[0], warn[1].strip(), ctx.norm(warn[2].strip())),
        "invalid": (invalid[0], ctx.norm(invalid[2].strip())),
    }


@scenario
def kubectl_wait_and_logs(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(
        ctx.namespace, job_body("wl", {"seconds": 1, "stdout": "line one\nline two"})
    )
    waited = ctx.kubectl("wait", "--for=condition=complete", "job/wl", "--timeout=60s")
    logs = ctx.kubectl("logs", "job/wl")
    tail = ctx.kubectl("logs", "job/wl", "--tail=1")
    return {
        "wait": (waited[0], waited[1].strip()),
        "logs": (logs[0], logs[1]),
        "tail": (tail[0], tail[1]),
    }


@scenario
def cronjob_defaults_and_table(ctx: Ctx) -> Any:
    """A CronJob as stored (defaults) and as ``kubectl get`` shows it, before its first run."""
    body = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 * * *",
            "timeZone": "Europe/Paris",
            "jobTemplate": {"spec": job_body("unused")["spec"]},
        },
    }
    created = ctx.dict(ctx.batch.create_namespaced_cron_job(ctx.namespace, body))
    invalid = {**body, "metadata": {"name": "bad"}, "spec": {**body["spec"], "schedule": "x"}}
    try:
        ctx.batch.create_namespaced_cron_job(ctx.namespace, invalid)
        refused: Any = None
    except ApiException as exc:
        refused = error(exc)
    rc, out, _ = ctx.kubectl("get", "cronjobs", "-o", "wide")
    rows = _lines(out)
    return {
        "spec": created["spec"],
        "status": created.get("status"),
        "refused": refused,
        "table": (
            rc,
            rows[0].split() if rows else [],
            rows[1].split()[:5] if len(rows) > 1 else [],
        ),
    }


@scenario
def kubectl_auth_can_i(ctx: Ctx) -> Any:
    can = ctx.kubectl("auth", "can-i", "create", "jobs")
    return {"rc": can[0], "out": can[1].strip()}


@scenario
def kubectl_explain(ctx: Ctx) -> Any:
    explain = ctx.kubectl("explain", "job.spec.backoffLimit")
    containers = ctx.kubectl("explain", "job.spec.template.spec.containers")
    # Field lines ("  name\t<type> -required-"); the enum lines are the client models' blind spot.
    fields = [
        line.split()
        for line in _lines(containers[1])
        if re.match(r"^  \w", line) and not line.startswith("  enum:")
    ]
    return {
        "rc": (explain[0], containers[0]),
        "field": _lines(explain[1]),
        "containers": (_lines(containers[1])[:4], fields),
    }


@scenario
def kubectl_api_resources(ctx: Ctx) -> Any:
    resources = ctx.kubectl("api-resources", "--api-group=batch", "--no-headers")
    return {
        "rc": resources[0],
        "batch": sorted(line.split()[0] for line in _lines(resources[1])),
    }


@scenario
def kubectl_delete(ctx: Ctx) -> Any:
    ctx.batch.create_namespaced_job(ctx.namespace, job_body("kd", {"seconds": 600}))
    ctx.wait("the pod", lambda: job_pods(ctx, "kd"))
    deleted = ctx.kubectl("delete", "job", "kd", "--wait=true", "--timeout=60s")
    pods_gone = ctx.settles(lambda: not job_pods(ctx, "kd"), 60)
    missing = ctx.kubectl("delete", "job", "kd")
    return {
        "delete": (deleted[0], ctx.norm(deleted[1].strip())),
        "pods_gone": pods_gone,
        "missing": (missing[0], ctx.norm(missing[2].strip())),
    }


# --- known differences ----------------------------------------------------------------------

KNOWN_DIFFERENCES: dict[str, str] = {
    "kubectl_version": (
        "/version reports v<kubernetesVersion>-sim (default 1.34.2): the suffix marks the "
        "simulated cluster and the version is configuration, so kubectl warns about the skew "
        "and the gitVersion is not a plain vX.Y.Z"
    ),
}


def namespace_context(
    kind: str, api: client.ApiClient, kubeconfig: Path, kubectl: Path, prefix: str
) -> Iterator[Ctx]:
    """A fresh namespace, once its controllers are done with it: the default ServiceAccount
    and the ``kube-root-ca.crt`` ConfigMap exist (a real cluster makes them moments after the
    namespace, and a scenario that lists ConfigMaps must not race them)."""
    core = client.CoreV1Api(api)
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        f"namespace {name}'s default ServiceAccount and kube-root-ca.crt ({kind})",
        lambda: (
            core.list_namespaced_service_account(name, field_selector="metadata.name=default").items
            and core.list_namespaced_config_map(
                name, field_selector="metadata.name=kube-root-ca.crt"
            ).items
        ),
        timeout=30,
    )
    yield Ctx(kind, api, kubeconfig, kubectl, name)
