"""Kueue (``kueue.x-k8s.io/v1beta1``) in the simulated cluster: queues, quota, Workloads.

Modelled on Kueue's batch/Job integration (``pkg/controller/jobframework``, the Job webhook,
the workload controller, the scheduler and its flavor assigner), reduced to one cluster with
flat cohorts (borrowing and lending limits) but no preemption or admission checks:

* **webhook**: a Job created with the label ``kueue.x-k8s.io/queue-name`` is created suspended
  (the mutating webhook ``mjob.kb.io`` runs on CREATE only);
* **job reconciler**: for a suspended queued Job without a Workload it creates one —
  ``job-<name>-<sha1[:5]>``, controlled by the Job, label ``kueue.x-k8s.io/job-uid``, finalizer
  ``kueue.x-k8s.io/resource-in-use``, one pod set ``main`` with ``count`` =
  ``min(parallelism, completions)`` and the Job's pod template — and records ``CreatedWorkload``;
  it un-suspends the Job once the Workload is admitted (``Started``: ``Admitted by clusterQueue
  <cq>``, merging the flavor's ``nodeLabels`` into the pod template's ``nodeSelector``), suspends
  a running Job whose Workload is not admitted or is gone, and marks the Workload ``Finished``
  (reason ``Succeeded`` / ``Failed``, the Job condition's message) when the Job finishes;
* **admission**: Workloads are considered per ClusterQueue in creation order (``StrictFIFO``:
  a Workload that does not fit blocks the ones behind it; ``BestEffortFIFO``, Kueue's default,
  lets them pass). ClusterQueues that name the same ``cohort`` lend each other their unused
  nominal quota (Kueue's ``available`` / ``potentialAvailable`` over a one-level cohort tree,
  bounded by ``borrowingLimit`` and ``lendingLimit``); ``flavorFungibility.whenCanBorrow:
  TryNextFlavor`` prefers a later flavor that fits without borrowing. A missing LocalQueue or
  ClusterQueue, or an inactive ClusterQueue, makes the
  Workload ``Inadmissible``; a namespace outside the ClusterQueue's ``namespaceSelector`` or
  quota that does not fit keeps it ``Pending`` with the flavor assigner's message
  (``couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor
  default, 2 more needed``). Quota in use is the sum of ``status.admission`` of the Workloads
  that reserve quota and are not finished; a finished Workload releases it.
* **status**: ClusterQueue ``Active`` (``FlavorNotFound`` while a ResourceFlavor is missing),
  ``pendingWorkloads`` / ``reservingWorkloads`` / ``admittedWorkloads``,
  ``flavorsReservation`` / ``flavorsUsage``; LocalQueue ``Active`` and the same counters.

A Workload whose Job is gone is deleted (its finalizer dropped), whatever the Job's deletion
propagation was.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

from ..admission import admit_create
from ..config import ConfigError
from ..placement import pod_requests, quantity
from ..resources import (
    CLUSTER_QUEUES,
    JOBS,
    LOCAL_QUEUES,
    NAMESPACES,
    RESOURCE_FLAVORS,
    WORKLOADS,
    ApiError,
    ResourceType,
)
from ..selectors import labels_match, selector_from_dict
from ..state import ClusterState

log = logging.getLogger("simulated_k8s_cluster")

Obj = dict[str, Any]

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
RESOURCE_IN_USE_FINALIZER = "kueue.x-k8s.io/resource-in-use"
POD_SET = "main"
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"

JOB_COMPONENT = "batch/job-kueue-controller"
ADMISSION_COMPONENT = "kueue-admission"

QUOTA_RESERVED = "QuotaReserved"
ADMITTED = "Admitted"
FINISHED = "Finished"
INADMISSIBLE = "Inadmissible"
PENDING = "Pending"

MAX_WORKLOAD_NAME = 253
HASH_LENGTH = 5

QUOTA_LIMITS = ("borrowingLimit", "lendingLimit")

CQ_READY_MESSAGE = "Can admit new workloads"
LQ_READY_MESSAGE = "Can submit new workloads to localQueue"
LQ_INACTIVE_MESSAGE = "Can't submit new workloads to clusterQueue"


# --- configuration ---------------------------------------------------------------------------


def check_config(value: Any, where: str = "kueue") -> dict[str, list[Obj]]:
    """Validate the ``kueue`` section; raise a ``ConfigError`` naming the key.

    Returns ``{"resourceFlavors": [...], "clusterQueues": [...], "localQueues": [...]}`` with
    every entry a mapping that has at least a name.
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    known = ("resourceFlavors", "clusterQueues", "localQueues")
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {list(known)}")
    out: dict[str, list[Obj]] = {}
    for key in known:
        items = value.get(key) or []
        if not isinstance(items, list):
            raise ConfigError(f"{where}.{key} must be a list, got {items!r}")
        for i, item in enumerate(items):
            at = f"{where}.{key}[{i}]"
            if not isinstance(item, dict):
                raise ConfigError(f"{at} must be a mapping, got {item!r}")
            if not isinstance(item.get("name"), str) or not item["name"]:
                raise ConfigError(f"{at} needs a name")
        out[key] = items
    for i, cq in enumerate(out["clusterQueues"]):
        at = f"{where}.clusterQueues[{i}]"
        groups = cq.get("resourceGroups") or []
        if not isinstance(groups, list):
            raise ConfigError(f"{at}.resourceGroups must be a list, got {groups!r}")
        for j, group in enumerate(groups):
            gat = f"{at}.resourceGroups[{j}]"
            if not isinstance(group, dict) or not isinstance(group.get("coveredResources"), list):
                raise ConfigError(f"{gat} needs coveredResources (a list of resource names)")
            flavors = group.get("flavors")
            if not isinstance(flavors, list) or not flavors:
                raise ConfigError(f"{gat} needs flavors (a list of {{name, resources}})")
            for k, flavor in enumerate(flavors):
                fat = f"{gat}.flavors[{k}]"
                if not isinstance(flavor, dict) or not flavor.get("name"):
                    raise ConfigError(f"{fat} needs a name")
                for m, res in enumerate(flavor.get("resources") or []):
                    rat = f"{fat}.resources[{m}]"
                    if not isinstance(res, dict) or not res.get("name"):
                        raise ConfigError(f"{rat} needs a name")
                    for key in ("nominalQuota", *QUOTA_LIMITS):
                        if key != "nominalQuota" and res.get(key) is None:
                            continue
                        try:
                            quantity(res.get(key))
                        except (ValueError, TypeError, ArithmeticError) as exc:
                            raise ConfigError(
                                f"{rat}.{key} must be a quantity, got {res.get(key)!r}"
                            ) from exc
        cohort = cq.get("cohort")
        if cohort is not None and (not isinstance(cohort, str) or not cohort):
            raise ConfigError(f"{at}.cohort must be a cohort name, got {cohort!r}")
        strategy = cq.get("queueingStrategy", "BestEffortFIFO")
        if strategy not in ("StrictFIFO", "BestEffortFIFO"):
            raise ConfigError(
                f"{at}.queueingStrategy must be StrictFIFO or BestEffortFIFO, got {strategy!r}"
            )
    for i, lq in enumerate(out["localQueues"]):
        at = f"{where}.localQueues[{i}]"
        for key in ("namespace", "clusterQueue"):
            if not isinstance(lq.get(key), str) or not lq[key]:
                raise ConfigError(f"{at} needs a {key}")
    return out


def _quantity_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def objects_from_config(section: Any) -> list[tuple[ResourceType, Obj]]:
    """The ResourceFlavor, ClusterQueue and LocalQueue objects a ``kueue`` section describes.

    Flavors named by a ClusterQueue but not listed under ``resourceFlavors`` are created with
    an empty spec. A ClusterQueue without ``namespaceSelector`` gets ``{}`` (every namespace).
    """
    config = check_config(section)
    out: list[tuple[ResourceType, Obj]] = []
    flavor_names: list[str] = []
    for flavor in config["resourceFlavors"]:
        spec = {k: copy.deepcopy(v) for k, v in flavor.items() if k != "name"}
        out.append((RESOURCE_FLAVORS, {"metadata": {"name": flavor["name"]}, "spec": spec}))
        flavor_names.append(flavor["name"])
    for cq in config["clusterQueues"]:
        for group in cq.get("resourceGroups") or []:
            for flavor in group["flavors"]:
                if flavor["name"] not in flavor_names:
                    flavor_names.append(flavor["name"])
                    out.append(
                        (RESOURCE_FLAVORS, {"metadata": {"name": flavor["name"]}, "spec": {}})
                    )
    for cq in config["clusterQueues"]:
        spec = {k: copy.deepcopy(v) for k, v in cq.items() if k != "name"}
        spec.setdefault("namespaceSelector", {})
        spec.setdefault("queueingStrategy", "BestEffortFIFO")
        for group in spec.get("resourceGroups") or []:
            for flavor in group["flavors"]:
                for res in flavor.get("resources") or []:
                    for key in ("nominalQuota", *QUOTA_LIMITS):
                        if key == "nominalQuota" or res.get(key) is not None:
                            res[key] = _quantity_text(res.get(key))
        out.append((CLUSTER_QUEUES, {"metadata": {"name": cq["name"]}, "spec": spec}))
    for lq in config["localQueues"]:
        out.append(
            (
                LOCAL_QUEUES,
                {
                    "metadata": {"name": lq["name"], "namespace": lq["namespace"]},
                    "spec": {"clusterQueue": lq["clusterQueue"]},
                },
            )
        )
    return out


def manifests_from_config(section: Any) -> list[Obj]:
    """The objects of :func:`objects_from_config` as complete ``kueue.x-k8s.io/v1beta1``
    manifests (``apiVersion``, ``kind``), in creation order: ResourceFlavors, ClusterQueues,
    LocalQueues. The same translation serves the simulated Kueue and the real one
    (``scripts/real-cluster``)."""
    return [
        {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        for resource, obj in objects_from_config(section)
    ]


# --- quantities and small helpers ------------------------------------------------------------


def _amount(resource: str, value: Decimal) -> int:
    """Kueue keeps cpu in millicores and everything else in units (rounded up)."""
    scale = Decimal(1000) if resource == "cpu" else Decimal(1)
    return int((value * scale).to_integral_value(rounding=ROUND_CEILING))


def quantity_string(resource: str, amount: int) -> str:
    """``resources.ResourceQuantityString``: cpu as a milli-quantity (``2``, ``500m``), other
    resources as binary-SI quantities (``2Gi``, ``1``)."""
    if resource == "cpu":
        return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"
    if amount == 0 or abs(amount) < 1024:
        return str(amount)
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = 1024 ** ("KMGTPE".index(suffix[0]) + 1)
        if amount % unit == 0:
            return f"{amount // unit}{suffix}"
    return str(amount)


def workload_name(job_name: str, job_uid: str) -> str:
    """``GetWorkloadNameForOwnerWithGVK`` for a batch/v1 Job."""
    digest = hashlib.sha1(f"Job\nbatch\n{job_name}\n{job_uid}".encode()).hexdigest()
    prefix = f"job-{job_name}"[: MAX_WORKLOAD_NAME - 1 - HASH_LENGTH]
    return f"{prefix}-{digest[:HASH_LENGTH]}"


def find_condition(obj: Obj, ctype: str) -> Obj | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == ctype:
            return condition
    return None


def condition_true(obj: Obj, ctype: str) -> bool:
    condition = find_condition(obj, ctype)
    return bool(condition and condition.get("status") == "True")


def set_condition(obj: Obj, ctype: str, status: str, reason: str, message: str, now: str) -> bool:
    """``apimeta.SetStatusCondition``: keeps ``lastTransitionTime`` while the status holds."""
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    new = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
        "observedGeneration": obj["metadata"].get("generation", 1),
    }
    for i, existing in enumerate(conditions):
        if existing.get("type") == ctype:
            if existing.get("status") == status:
                new["lastTransitionTime"] = existing.get("lastTransitionTime", now)
            if existing == new:
                return False
            conditions[i] = new
            return True
    conditions.append(new)
    return True


def _job_finished(job: Obj) -> Obj | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition
    return None


def _controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _pod_count(job: Obj) -> int:
    spec = job.get("spec") or {}
    count = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    if completions is not None and int(completions) < count:
        count = int(completions)
    return count


def _key(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}"


# --- admission -------------------------------------------------------------------------------


@dataclass
class _Queue:
    """A ClusterQueue as the scheduler sees it in one pass."""

    obj: Obj
    active: bool
    missing_flavors: list[str]
    usage: dict[tuple[str, str], int] = field(default_factory=dict)
    """(flavor, resource) → amount reserved by admitted, unfinished workloads."""
    blocked: bool = False

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def strict(self) -> bool:
        return (self.obj.get("spec") or {}).get("queueingStrategy") == "StrictFIFO"

    def groups(self) -> list[Obj]:
        return list((self.obj.get("spec") or {}).get("resourceGroups") or [])

    @property
    def cohort(self) -> str:
        return str((self.obj.get("spec") or {}).get("cohort") or "")

    @property
    def try_next_flavor_when_borrowing(self) -> bool:
        fungibility = (self.obj.get("spec") or {}).get("flavorFungibility") or {}
        return bool(fungibility.get("whenCanBorrow") == "TryNextFlavor")

    def quota(self, flavor_name: str, resource: str) -> _Quota:
        """The quota of one (flavor, resource); zero where the queue does not list it."""
        for group in self.groups():
            if resource not in (group.get("coveredResources") or []):
                continue
            for flavor in group.get("flavors") or []:
                if flavor.get("name") != flavor_name:
                    continue
                for res in flavor.get("resources") or []:
                    if res.get("name") == resource:
                        return _Quota.of(resource, res)
        return _Quota(0)

    def flavor_resources(self) -> set[tuple[str, str]]:
        return {
            (flavor.get("name", ""), resource)
            for group in self.groups()
            for flavor in group.get("flavors") or []
            for resource in group.get("coveredResources") or []
        }


@dataclass(frozen=True)
class _Quota:
    nominal: int
    borrowing_limit: int | None = None
    lending_limit: int | None = None

    @classmethod
    def of(cls, resource: str, res: Obj) -> _Quota:
        def amount(key: str) -> int | None:
            value = res.get(key)
            return None if value is None else _amount(resource, quantity(value))

        return cls(amount("nominalQuota") or 0, amount("borrowingLimit"), amount("lendingLimit"))

    @property
    def local(self) -> int:
        """What the queue keeps for itself: never lent to its cohort."""
        if self.lending_limit is None:
            return 0
        return max(0, self.nominal - self.lending_limit)


class _Cohorts:
    """Kueue's quota arithmetic over cohorts one level deep (``pkg/cache/scheduler``'s
    ``available`` and ``potentialAvailable``; a cohort has no quota of its own)."""

    def __init__(self, queues: Iterable[_Queue]) -> None:
        self.members: dict[str, list[_Queue]] = {}
        for queue in queues:
            if queue.cohort:
                self.members.setdefault(queue.cohort, []).append(queue)

    def _cohort_quota_and_usage(self, cohort: str, key: tuple[str, str]) -> tuple[int, int]:
        quota = usage = 0
        for member in self.members.get(cohort, []):
            q = member.quota(*key)
            quota += q.nominal - q.local
            usage += max(0, member.usage.get(key, 0) - q.local)
        return quota, usage

    def available(self, queue: _Queue, key: tuple[str, str]) -> int:
        """How much more of (flavor, resource) the queue can take now, borrowing included."""
        q, used = queue.quota(*key), queue.usage.get(key, 0)
        if not queue.cohort:
            return q.nominal - used
        cohort_quota, cohort_usage = self._cohort_quota_and_usage(queue.cohort, key)
        from_cohort = cohort_quota - cohort_usage
        if q.borrowing_limit is not None:
            stored = q.nominal - q.local
            used_in_cohort = max(0, used - q.local)
            from_cohort = min(stored - used_in_cohort + q.borrowing_limit, from_cohort)
        return max(0, q.local - used) + from_cohort

    def potential(self, queue: _Queue, key: tuple[str, str]) -> int:
        """The most the queue could ever hold of (flavor, resource), with nothing in use."""
        q = queue.quota(*key)
        if not queue.cohort:
            return q.nominal
        cohort_quota, _ = self._cohort_quota_and_usage(queue.cohort, key)
        most = q.local + cohort_quota
        if q.borrowing_limit is not None:
            most = min(q.nominal + q.borrowing_limit, most)
        return most


@dataclass
class _Assignment:
    flavors: dict[str, str] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    borrows: bool = False

    @property
    def fits(self) -> bool:
        return not self.reasons


class KueueController:
    """Kueue's webhook, job reconciler, scheduler and queue status (see the module docstring)."""

    name = "kueue"

    def __init__(self, state: ClusterState) -> None:
        self.state = state

    # --- installation ----------------------------------------------------------------------

    def install(self) -> None:
        """Serve Kueue's resources and register the Job webhook."""
        registry = self.state.registry
        for resource in (RESOURCE_FLAVORS, CLUSTER_QUEUES, LOCAL_QUEUES, WORKLOADS):
            registry.add(resource)
        self.state.create_mutators.setdefault(JOBS, []).append(self.default_job)

    def bootstrap(self, section: Any) -> None:
        """Create the objects of the ``kueue`` config section (and missing namespaces)."""
        store = self.state.store
        for resource, obj in objects_from_config(section):
            namespace = obj["metadata"].get("namespace")
            if namespace and store.peek(NAMESPACES, "", namespace) is None:
                store.create(
                    NAMESPACES, admit_create(NAMESPACES, {"metadata": {"name": namespace}})
                )
            if store.peek(resource, namespace or "", obj["metadata"]["name"]) is None:
                obj["status"] = {}
                store.create(resource, admit_create(resource, obj))

    @staticmethod
    def default_job(job: Obj) -> None:
        """The Job webhook's ``Default`` (``ApplyDefaultForSuspend``): queued Jobs are suspended."""
        labels = (job.get("metadata") or {}).get("labels") or {}
        if labels.get(QUEUE_LABEL):
            spec = job.get("spec")
            if not isinstance(spec, dict):
                spec = job["spec"] = {}
            spec["suspend"] = True

    # --- the loop ----------------------------------------------------------------------------

    def reconcile(self) -> float | None:
        self._reconcile_jobs()
        self._admit()
        self._reconcile_jobs()
        self._update_queue_status()
        return None

    # --- the job reconciler ------------------------------------------------------------------

    def _workloads_by_owner(self) -> dict[str, list[Obj]]:
        owned: dict[str, list[Obj]] = {}
        for workload in self.state.store.objects(WORKLOADS):
            uid = _controller_uid(workload) or (workload["metadata"].get("labels") or {}).get(
                JOB_UID_LABEL
            )
            if uid:
                owned.setdefault(uid, []).append(workload)
        return owned

    def _reconcile_jobs(self) -> None:
        store = self.state.store
        owned = self._workloads_by_owner()
        job_uids = set()
        for job in list(store.objects(JOBS)):
            uid = job["metadata"]["uid"]
            job_uids.add(uid)
            if not ((job["metadata"].get("labels") or {}).get(QUEUE_LABEL)):
                continue
            try:
                self._reconcile_job(job, owned.get(uid, []))
            except ApiError as exc:  # e.g. the namespace is being deleted
                log.debug("kueue: job %s: %s", _key(job), exc)
        # Workloads whose Job is gone: release them.
        for uid, workloads in owned.items():
            if uid in job_uids:
                continue
            for workload in workloads:
                self._release(workload, delete=True)

    def _release(self, workload: Obj, delete: bool) -> None:
        """Drop the resource-in-use finalizer (and delete the Workload when asked)."""
        store = self.state.store
        meta = workload["metadata"]
        current = store.peek(WORKLOADS, meta["namespace"], meta["name"])
        if current is None:
            return
        if delete and not current["metadata"].get("deletionTimestamp"):
            store.delete(WORKLOADS, meta["namespace"], meta["name"], propagation="Background")
            current = store.peek(WORKLOADS, meta["namespace"], meta["name"])
            if current is None:
                return
        finalizers = current["metadata"].get("finalizers") or []
        if RESOURCE_IN_USE_FINALIZER in finalizers:
            updated = copy.deepcopy(current)
            updated["metadata"]["finalizers"] = [
                f for f in finalizers if f != RESOURCE_IN_USE_FINALIZER
            ]
            store.update(WORKLOADS, updated)

    def _reconcile_job(self, job: Obj, workloads: list[Obj]) -> None:
        if job["metadata"].get("deletionTimestamp"):
            for workload in workloads:
                self._release(workload, delete=False)
            return
        live = [w for w in workloads if not w["metadata"].get("deletionTimestamp")]
        deleted = [w for w in workloads if w["metadata"].get("deletionTimestamp")]
        if deleted:
            # A deleted Workload stops its Job first, then lets go.
            if not live and not _job_finished(job):
                self._stop_job(job, "Workload is deleted")
            for workload in deleted:
                self._release(workload, delete=False)
            return
        for extra in live[1:]:
            self._release(extra, delete=True)
        self._sync_job(job, live[0] if live else None)

    def _sync_job(self, job: Obj, workload: Obj | None) -> None:
        store, events = self.state.store, self.state.events

        if workload is not None and condition_true(workload, FINISHED):
            self._release(workload, delete=False)
            return
        finished = _job_finished(job)
        if finished is not None:
            if workload is not None:
                updated = copy.deepcopy(workload)
                reason = "Failed" if finished["type"] == "Failed" else "Succeeded"
                now = self.state.clock.timestamp()
                set_condition(updated, FINISHED, "True", reason, finished.get("message", ""), now)
                store.update(WORKLOADS, updated)
                events.record(
                    job,
                    "Normal",
                    "FinishedWorkload",
                    f"Workload '{_key(workload)}' is declared finished",
                    component=JOB_COMPONENT,
                )
            return
        suspended = bool((job.get("spec") or {}).get("suspend"))
        if workload is None:
            if not suspended:
                self._stop_job(job, "Missing Workload; unable to restore pod templates")
                return
            if (job.get("status") or {}).get("active"):
                return  # wait until the suspended Job has no active pods
            created = store.create(WORKLOADS, admit_create(WORKLOADS, self._new_workload(job)))
            events.record(
                job,
                "Normal",
                "CreatedWorkload",
                f"Created Workload: {_key(created)}",
                component=JOB_COMPONENT,
            )
            return
        admitted = condition_true(workload, ADMITTED)
        if suspended:
            if admitted:
                self._start_job(job, workload)
                return
            queue = (job["metadata"].get("labels") or {}).get(QUEUE_LABEL)
            if (workload.get("spec") or {}).get("queueName") != queue:
                updated = copy.deepcopy(workload)
                updated["spec"]["queueName"] = queue
                store.update(WORKLOADS, updated)
            return
        if not admitted:
            self._stop_job(job, "Not admitted by cluster queue")

    def _new_workload(self, job: Obj) -> Obj:
        meta = job["metadata"]
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        template_meta = template.get("metadata") or {}
        template["metadata"] = {
            k: template_meta[k] for k in ("labels", "annotations") if template_meta.get(k)
        }
        return {
            "metadata": {
                "name": workload_name(meta["name"], meta["uid"]),
                "namespace": meta["namespace"],
                "labels": {JOB_UID_LABEL: meta["uid"]},
                "finalizers": [RESOURCE_IN_USE_FINALIZER],
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "active": True,
                "podSets": [
                    {
                        "name": POD_SET,
                        "count": _pod_count(job),
                        "template": template,
                        # TopologyAwareScheduling (on by default) records the index label.
                        "topologyRequest": {"podIndexLabel": COMPLETION_INDEX_LABEL},
                    }
                ],
                "priority": 0,
                "queueName": meta["labels"][QUEUE_LABEL],
            },
            "status": {},
        }

    def _stop_job(self, job: Obj, message: str) -> None:
        if (job.get("spec") or {}).get("suspend"):
            return
        updated = copy.deepcopy(job)
        updated["spec"]["suspend"] = True
        self.state.store.update(JOBS, updated)
        self.state.events.record(job, "Normal", "Stopped", message, component=JOB_COMPONENT)

    def _start_job(self, job: Obj, workload: Obj) -> None:
        admission = (workload.get("status") or {}).get("admission") or {}
        updated = copy.deepcopy(job)
        updated["spec"]["suspend"] = False
        node_labels: dict[str, str] = {}
        for assignment in admission.get("podSetAssignments") or []:
            for flavor_name in sorted(set((assignment.get("flavors") or {}).values())):
                flavor = self.state.store.peek(RESOURCE_FLAVORS, "", flavor_name)
                node_labels.update(((flavor or {}).get("spec") or {}).get("nodeLabels") or {})
        if node_labels:
            pod_spec = updated["spec"].setdefault("template", {}).setdefault("spec", {})
            pod_spec["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), **node_labels}
        self.state.store.update(JOBS, updated)
        self.state.events.record(
            job,
            "Normal",
            "Started",
            f"Admitted by clusterQueue {admission.get('clusterQueue')}",
            component=JOB_COMPONENT,
        )

    # --- the scheduler -----------------------------------------------------------------------

    def _queues(self) -> dict[str, _Queue]:
        store = self.state.store
        queues: dict[str, _Queue] = {}
        for cq in store.objects(CLUSTER_QUEUES):
            if cq["metadata"].get("deletionTimestamp"):
                continue
            missing: list[str] = []
            for group in (cq.get("spec") or {}).get("resourceGroups") or []:
                for flavor in group.get("flavors") or []:
                    name = flavor.get("name")
                    if store.peek(RESOURCE_FLAVORS, "", name) is None and name not in missing:
                        missing.append(name)
            queues[cq["metadata"]["name"]] = _Queue(cq, not missing, missing)
        for workload in store.objects(WORKLOADS):
            admission = (workload.get("status") or {}).get("admission") or {}
            queue = queues.get(admission.get("clusterQueue", ""))
            if queue is None or not self._holds_quota(workload):
                continue
            for assignment in admission.get("podSetAssignments") or []:
                flavors = assignment.get("flavors") or {}
                for resource, value in (assignment.get("resourceUsage") or {}).items():
                    key = (flavors.get(resource, ""), resource)
                    queue.usage[key] = queue.usage.get(key, 0) + _amount(resource, quantity(value))
        return queues

    @staticmethod
    def _holds_quota(workload: Obj) -> bool:
        return condition_true(workload, QUOTA_RESERVED) and not condition_true(workload, FINISHED)

    def _admit(self) -> None:
        store = self.state.store
        queues = self._queues()
        for workload in list(store.objects(WORKLOADS)):
            if workload["metadata"].get("deletionTimestamp"):
                continue
            if condition_true(workload, FINISHED) or condition_true(workload, QUOTA_RESERVED):
                continue
            if (workload.get("spec") or {}).get("active") is False:
                continue
            self._try_admit(workload, queues)

    def _try_admit(self, workload: Obj, queues: dict[str, _Queue]) -> None:
        store = self.state.store
        cohorts = _Cohorts(queues.values())
        meta = workload["metadata"]
        queue_name = (workload.get("spec") or {}).get("queueName") or ""
        lq = store.peek(LOCAL_QUEUES, meta["namespace"], queue_name) if queue_name else None
        if lq is None:
            self._not_admitted(workload, INADMISSIBLE, f"LocalQueue {queue_name} doesn't exist")
            return
        cq_name = (lq.get("spec") or {}).get("clusterQueue", "")
        queue = queues.get(cq_name)
        if queue is None:
            self._not_admitted(workload, INADMISSIBLE, f"ClusterQueue {cq_name} doesn't exist")
            return
        if not queue.active:
            self._not_admitted(workload, INADMISSIBLE, f"ClusterQueue {cq_name} is inactive")
            return
        if queue.blocked:
            return  # StrictFIFO: the head of the queue does not fit yet
        namespace = store.peek(NAMESPACES, "", meta["namespace"]) or {"metadata": {}}
        selector = (queue.obj.get("spec") or {}).get("namespaceSelector")
        if selector is None or not labels_match(
            selector_from_dict(selector), namespace["metadata"].get("labels")
        ):
            self._not_admitted(
                workload, PENDING, "Workload namespace doesn't match ClusterQueue selector"
            )
            queue.blocked = queue.strict
            return
        assignments: list[Obj] = []
        reasons_by_pod_set: list[str] = []
        assumed: dict[tuple[str, str], int] = {}
        for pod_set in (workload.get("spec") or {}).get("podSets") or []:
            assignment = self._assign_flavors(queue, pod_set, assumed, cohorts)
            if not assignment.fits:
                reasons = ", ".join(sorted(assignment.reasons))
                reasons_by_pod_set.append(
                    f"couldn't assign flavors to pod set {pod_set.get('name', POD_SET)}: {reasons}"
                )
                break
            for resource, amount in assignment.usage.items():
                key = (assignment.flavors[resource], resource)
                assumed[key] = assumed.get(key, 0) + amount
            assignments.append(
                {
                    "name": pod_set.get("name", POD_SET),
                    "flavors": assignment.flavors,
                    "resourceUsage": {
                        r: quantity_string(r, v) for r, v in sorted(assignment.usage.items())
                    },
                    "count": int(pod_set.get("count", 1)),
                }
            )
        if reasons_by_pod_set:
            self._not_admitted(workload, PENDING, "; ".join(reasons_by_pod_set))
            queue.blocked = queue.strict
            return
        for assignment_obj in assignments:
            for resource, value in assignment_obj["resourceUsage"].items():
                key = (assignment_obj["flavors"][resource], resource)
                queue.usage[key] = queue.usage.get(key, 0) + _amount(resource, quantity(value))
        self._reserve(workload, queue, assignments)

    def _assign_flavors(
        self,
        queue: _Queue,
        pod_set: Obj,
        assumed: dict[tuple[str, str], int] | None = None,
        cohorts: _Cohorts | None = None,
    ) -> _Assignment:
        """The flavor assigner for one pod set, with borrowing from the queue's cohort but
        without preemption; ``assumed`` is what the workload's earlier pod sets take of each
        (flavor, resource)."""
        assumed = assumed or {}
        cohorts = cohorts or _Cohorts([queue])
        template = pod_set.get("template") or {}
        pod_spec = template.get("spec") or {}
        count = int(pod_set.get("count", 1))
        per_pod = pod_requests(pod_spec)
        requests = {r: _amount(r, v) * count for r, v in per_pod.items()}
        result = _Assignment()
        done: set[str] = set()
        node_selector = pod_spec.get("nodeSelector") or {}
        for resource in sorted(requests):
            if resource in done:
                continue
            group = next(
                (g for g in queue.groups() if resource in (g.get("coveredResources") or [])),
                None,
            )
            if group is None:
                result.reasons.append(f"resource {resource} unavailable in ClusterQueue")
                return result
            covered = [r for r in sorted(requests) if r in (group.get("coveredResources") or [])]
            done.update(covered)
            label_keys = {
                key
                for flavor in group.get("flavors") or []
                for key in (self._flavor_spec(flavor.get("name")).get("nodeLabels") or {})
            }
            chosen: str | None = None
            borrowing_candidate: str | None = None
            for flavor in group.get("flavors") or []:
                flavor_name = flavor.get("name", "")
                labels = self._flavor_spec(flavor_name).get("nodeLabels") or {}
                if any(
                    key in label_keys and labels.get(key) != value
                    for key, value in node_selector.items()
                ):
                    result.reasons.append(f"flavor {flavor_name} doesn't match node affinity")
                    continue
                fits, borrows = True, False
                for res in covered:
                    key = (flavor_name, res)
                    before = assumed.get(key, 0)
                    val = before + requests[res]
                    most = cohorts.potential(queue, key)
                    if val > most:
                        result.reasons.append(
                            f"insufficient quota for {res} in flavor {flavor_name}, previously "
                            f"considered podsets requests ({quantity_string(res, before)}) + "
                            f"current podset request ({quantity_string(res, requests[res])}) > "
                            f"maximum capacity ({quantity_string(res, most)})"
                        )
                        fits = False
                        break
                    available = cohorts.available(queue, key)
                    if val > available:
                        result.reasons.append(
                            f"insufficient unused quota for {res} in flavor {flavor_name}, "
                            f"{quantity_string(res, val - available)} more needed"
                        )
                        fits = False
                    elif val + queue.usage.get(key, 0) > queue.quota(*key).nominal:
                        borrows = True
                if not fits:
                    continue
                if not borrows:
                    chosen = flavor_name
                    break
                if borrowing_candidate is None:
                    borrowing_candidate = flavor_name
                if not queue.try_next_flavor_when_borrowing:
                    break
            if chosen is None and borrowing_candidate is not None:
                chosen = borrowing_candidate
                result.borrows = True
            if chosen is None:
                return result
            for res in covered:
                result.flavors[res] = chosen
                result.usage[res] = requests[res]
        result.reasons.clear()
        return result

    def _flavor_spec(self, name: Any) -> Obj:
        flavor = self.state.store.peek(RESOURCE_FLAVORS, "", str(name))
        return (flavor or {}).get("spec") or {}

    def _not_admitted(self, workload: Obj, reason: str, message: str) -> None:
        """``UnsetQuotaReservationWithCondition``: QuotaReserved False (and Admitted False when
        it was admitted before)."""
        updated = copy.deepcopy(workload)
        now = self.state.clock.timestamp()
        changed = set_condition(updated, QUOTA_RESERVED, "False", reason, message, now)
        if updated.get("status", {}).pop("admission", None) is not None:
            changed = True
        if condition_true(updated, ADMITTED):
            set_condition(
                updated, ADMITTED, "False", "NoReservation", "The workload has no reservation", now
            )
            changed = True
        if not changed:
            return
        self.state.store.update(WORKLOADS, updated)
        if reason == PENDING:
            self.state.events.record(
                workload, "Warning", PENDING, message, component=ADMISSION_COMPONENT
            )

    def _reserve(self, workload: Obj, queue: _Queue, assignments: list[Obj]) -> None:
        clock = self.state.clock
        now = clock.timestamp()
        updated = copy.deepcopy(workload)
        updated.setdefault("status", {})["admission"] = {
            "clusterQueue": queue.name,
            "podSetAssignments": assignments,
        }
        set_condition(
            updated,
            QUOTA_RESERVED,
            "True",
            "QuotaReserved",
            f"Quota reserved in ClusterQueue {queue.name}",
            now,
        )
        set_condition(updated, ADMITTED, "True", "Admitted", "The workload is admitted", now)
        self.state.store.update(WORKLOADS, updated)
        created = workload["metadata"].get("creationTimestamp")
        waited = max(0.0, clock.now() - clock.parse(created)) if created else 0.0
        events = self.state.events
        events.record(
            workload,
            "Normal",
            "QuotaReserved",
            f"Quota reserved in ClusterQueue {queue.name}, wait time since queued was "
            f"{waited:.0f}s",
            component=ADMISSION_COMPONENT,
        )
        events.record(
            workload,
            "Normal",
            "Admitted",
            f"Admitted by ClusterQueue {queue.name}, wait time since reservation was 0s",
            component=ADMISSION_COMPONENT,
        )

    # --- queue status ------------------------------------------------------------------------

    def _update_queue_status(self) -> None:
        store = self.state.store
        now = self.state.clock.timestamp()
        queues = self._queues()
        lq_counts: dict[tuple[str, str], dict[str, int]] = {}
        lq_usage: dict[tuple[str, str], dict[tuple[str, str], int]] = {}
        cq_counts: dict[str, dict[str, int]] = {}
        for workload in store.objects(WORKLOADS):
            if condition_true(workload, FINISHED) or workload["metadata"].get("deletionTimestamp"):
                continue
            ns = workload["metadata"]["namespace"]
            lq = store.peek(LOCAL_QUEUES, ns, (workload.get("spec") or {}).get("queueName", ""))
            if lq is None:
                continue
            lq_key = (ns, lq["metadata"]["name"])
            cq_name = (lq.get("spec") or {}).get("clusterQueue", "")
            if self._holds_quota(workload):
                kinds = ["reservingWorkloads"]
                if condition_true(workload, ADMITTED):
                    kinds.append("admittedWorkloads")
                admission = (workload.get("status") or {}).get("admission") or {}
                usage = lq_usage.setdefault(lq_key, {})
                for assignment in admission.get("podSetAssignments") or []:
                    flavors = assignment.get("flavors") or {}
                    for resource, value in (assignment.get("resourceUsage") or {}).items():
                        key = (flavors.get(resource, ""), resource)
                        usage[key] = usage.get(key, 0) + _amount(resource, quantity(value))
            else:
                kinds = ["pendingWorkloads"]
            for kind in kinds:
                counts = lq_counts.setdefault(lq_key, {})
                counts[kind] = counts.get(kind, 0) + 1
                if cq_name in queues:
                    cq_counts.setdefault(cq_name, {})
                    cq_counts[cq_name][kind] = cq_counts[cq_name].get(kind, 0) + 1
        for name, queue in queues.items():
            updated = copy.deepcopy(queue.obj)
            status = updated.setdefault("status", {})
            counts = cq_counts.get(name, {})
            for kind in ("pendingWorkloads", "reservingWorkloads", "admittedWorkloads"):
                status[kind] = counts.get(kind, 0)
            reserved = self._flavor_usage(
                queue.groups(), queue.usage, nominal=queue.quota if queue.cohort else None
            )
            status["flavorsReservation"] = reserved
            status["flavorsUsage"] = copy.deepcopy(reserved)
            if queue.active:
                set_condition(updated, "Active", "True", "Ready", CQ_READY_MESSAGE, now)
            else:
                set_condition(
                    updated,
                    "Active",
                    "False",
                    "FlavorNotFound",
                    "Can't admit new workloads: references missing ResourceFlavor(s): "
                    + ",".join(queue.missing_flavors)
                    + ".",
                    now,
                )
            if updated != queue.obj:
                store.update(CLUSTER_QUEUES, updated)
        for lq in list(store.objects(LOCAL_QUEUES)):
            key = (lq["metadata"]["namespace"], lq["metadata"]["name"])
            updated = copy.deepcopy(lq)
            status = updated.setdefault("status", {})
            counts = lq_counts.get(key, {})
            for kind in ("pendingWorkloads", "reservingWorkloads", "admittedWorkloads"):
                status[kind] = counts.get(kind, 0)
            cq_name = (lq.get("spec") or {}).get("clusterQueue", "")
            target = queues.get(cq_name)
            # A LocalQueue's flavor usage has no ``borrowed`` (a ClusterQueue's has).
            reserved = self._flavor_usage(
                target.groups() if target else [], lq_usage.get(key, {}), borrowed=False
            )
            status["flavorsReservation"] = reserved
            status["flavorUsage"] = copy.deepcopy(reserved)
            if target is None:
                set_condition(
                    updated, "Active", "False", "ClusterQueueDoesNotExist", LQ_INACTIVE_MESSAGE, now
                )
            elif not target.active:
                set_condition(
                    updated, "Active", "False", "ClusterQueueIsInactive", LQ_INACTIVE_MESSAGE, now
                )
            else:
                set_condition(updated, "Active", "True", "Ready", LQ_READY_MESSAGE, now)
            if updated != lq:
                store.update(LOCAL_QUEUES, updated)

    @staticmethod
    def _flavor_usage(
        groups: Iterable[Obj],
        usage: dict[tuple[str, str], int],
        borrowed: bool = True,
        nominal: Callable[[str, str], _Quota] | None = None,
    ) -> list[Obj]:
        """Usage per flavor and resource, as Kueue reports it; a ClusterQueue's ``borrowed`` is
        what it uses past its nominal quota when it is in a cohort (``nominal``), else ``0``."""
        out: list[Obj] = []
        for group in groups:
            for flavor in group.get("flavors") or []:
                name = flavor.get("name", "")
                resources: list[Obj] = []
                for res in group.get("coveredResources") or []:
                    used = usage.get((name, res), 0)
                    entry = {"name": res, "total": quantity_string(res, used)}
                    if borrowed:
                        over = used - nominal(name, res).nominal if nominal else 0
                        entry["borrowed"] = quantity_string(res, max(0, over))
                    resources.append(entry)
                out.append({"name": name, "resources": resources})
        return out
