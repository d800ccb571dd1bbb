"""Defaulting and validation the API server applies before storing an object.

Messages follow the API server's wording (k8s.io/apimachinery validation and the pod and job
validation of k8s.io/kubernetes) so that a client's error handling sees what a real cluster sends.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from datetime import timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from kubernetes.utils.quantity import parse_quantity

from .resources import (
    CRONJOBS,
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    FieldError,
    ResourceType,
    invalid,
)

Obj = dict[str, Any]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_QUALIFIED_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value', "
    " or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
MAX_GENERATED_PREFIX = 58


def generate_name(prefix: str) -> str:
    """``generateName`` → a name, as the API server's name generator makes it."""
    return prefix[:MAX_GENERATED_PREFIX] + "".join(random.choices(_NAME_CHARS, k=5))


def dns_label_errors(value: str, field: str) -> list[FieldError]:
    if len(value) > 63:
        return [FieldError(field, "Invalid", "must be no more than 63 characters", value)]
    if not DNS1123_LABEL.match(value):
        return [FieldError(field, "Invalid", LABEL_MSG, value)]
    return []


def dns_subdomain_errors(value: str, field: str) -> list[FieldError]:
    if len(value) > 253:
        return [FieldError(field, "Invalid", "must be no more than 253 characters", value)]
    if not DNS1123_SUBDOMAIN.match(value):
        return [FieldError(field, "Invalid", SUBDOMAIN_MSG, value)]
    return []


def label_errors(labels: Any, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(labels, dict):
        return errors
    for key, value in labels.items():
        name = key.split("/", 1)[-1]
        if "/" in key:
            errors += dns_subdomain_errors(key.split("/", 1)[0], field)
        if len(name) > 63:
            errors.append(
                FieldError(field, "Invalid", "name part must be no more than 63 characters", key)
            )
        elif not _QUALIFIED_NAME.match(name):
            errors.append(FieldError(field, "Invalid", _QUALIFIED_MSG, key))
        value = "" if value is None else str(value)
        if len(value) > 63:
            errors.append(FieldError(field, "Invalid", "must be no more than 63 characters", value))
        elif not _LABEL_VALUE.match(value):
            errors.append(FieldError(field, "Invalid", _LABEL_VALUE_MSG, value))
    return errors


def metadata_errors(resource: ResourceType, obj: Obj) -> list[FieldError]:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    errors: list[FieldError] = []
    if not name:
        errors.append(FieldError("metadata.name", "Required", "name or generateName is required"))
    elif resource in (NAMESPACES,):
        errors += dns_label_errors(name, "metadata.name")
    else:
        errors += dns_subdomain_errors(name, "metadata.name")
    errors += label_errors(meta.get("labels"), "metadata.labels")
    return errors


# --- pods ---------------------------------------------------------------------------------------


def default_pod_spec(spec: Obj, restart_policy: str = "Always") -> None:
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            if not isinstance(container, dict):
                continue
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            resources = container.setdefault("resources", {})
            if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
                # Requests default to the limits of the same resources (core/v1 defaulting).
                requests = resources.setdefault("requests", {})
                if isinstance(requests, dict):
                    for key, value in resources["limits"].items():
                        requests.setdefault(key, value)
            image = str(container.get("image") or "")
            last = image.rsplit("/", 1)[-1]
            untagged = ":" not in last and "@" not in image
            container.setdefault(
                "imagePullPolicy",
                "Always" if untagged or image.endswith(":latest") else "IfNotPresent",
            )


def _quantity_errors(resources: Any, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not isinstance(resources, dict):
        return errors
    parsed: dict[str, dict[str, Any]] = {}
    for section in ("requests", "limits"):
        for name, value in (resources.get(section) or {}).items():
            try:
                parsed.setdefault(section, {})[name] = parse_quantity(value)
            except (ValueError, TypeError):
                errors.append(
                    FieldError(
                        f"{field}.{section}[{name}]",
                        "Invalid",
                        "quantities must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                        value,
                    )
                )
    for name, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and request > limit:
            errors.append(
                FieldError(
                    f"{field}.requests",
                    "Invalid",
                    f"must be less than or equal to {name} limit of {resources['limits'][name]}",
                    resources["requests"][name],
                )
            )
    return errors


def pod_spec_errors(spec: Any, field: str) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [FieldError(field, "Required")]
    errors: list[FieldError] = []
    containers = spec.get("containers") or []
    if not containers:
        errors.append(FieldError(f"{field}.containers", "Required"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            path = f"{field}.{group}[{i}]"
            if not isinstance(container, dict):
                errors.append(FieldError(path, "Invalid", "must be an object", container))
                continue
            name = container.get("name") or ""
            if not name:
                errors.append(FieldError(f"{path}.name", "Required"))
            else:
                errors += dns_label_errors(name, f"{path}.name")
                if name in seen:
                    errors.append(FieldError(f"{path}.name", "Duplicate", value=name))
                seen.add(name)
            if not container.get("image"):
                errors.append(FieldError(f"{path}.image", "Required"))
            errors += _quantity_errors(container.get("resources"), f"{path}.resources")
    policy = spec.get("restartPolicy")
    if policy not in ("Always", "OnFailure", "Never"):
        errors.append(
            FieldError(
                f"{field}.restartPolicy",
                "NotSupported",
                'supported values: "Always", "OnFailure", "Never"',
                policy,
            )
        )
    return errors


def prepare_pod(obj: Obj) -> list[FieldError]:
    spec = obj.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    tolerations = spec.setdefault("tolerations", [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key for t in tolerations if isinstance(t, dict)):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    _mount_service_account_token(spec)
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", qos_class(spec))
    return pod_spec_errors(spec, "spec")


SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def _mount_service_account_token(spec: Obj) -> None:
    """The ServiceAccount admission plugin: a projected ``kube-api-access-*`` volume (token,
    ``kube-root-ca.crt``, namespace) mounted into every container, unless
    ``automountServiceAccountToken`` is false or a container already mounts that path."""
    if spec.get("automountServiceAccountToken") is False:
        return
    containers = [
        c
        for group in ("initContainers", "containers")
        for c in spec.get(group) or []
        if isinstance(c, dict)
    ]
    if not containers or not isinstance(spec.get("volumes", []), list):
        return
    if any(
        isinstance(m, dict) and m.get("mountPath") == SERVICE_ACCOUNT_MOUNT
        for c in containers
        for m in c.get("volumeMounts") or []
    ):
        return
    name = generate_name("kube-api-access-")
    spec.setdefault("volumes", []).append(
        {
            "name": name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": "metadata.namespace",
                                    },
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for container in containers:
        if isinstance(container.get("volumeMounts", []), list):
            container.setdefault("volumeMounts", []).append(
                {"name": name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT}
            )


def qos_class(spec: Obj) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    requests = [c.get("resources", {}).get("requests") or {} for c in containers]
    limits = [c.get("resources", {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        lim.get(k) is not None and lim.get(k) == req.get(k, lim.get(k))
        for req, lim in zip(requests, limits, strict=True)
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "schedulingGates", "nodeName")


def pod_update_errors(old: Obj, new: Obj) -> list[FieldError]:
    old_spec, new_spec = dict(old.get("spec") or {}), dict(new.get("spec") or {})
    for key in _POD_MUTABLE:
        old_spec.pop(key, None)
        new_spec.pop(key, None)
    for spec in (old_spec, new_spec):
        for group in ("containers", "initContainers"):
            spec[group] = [
                {k: v for k, v in c.items() if k != "image"} for c in spec.get(group) or []
            ]
    if old_spec != new_spec:
        return [
            FieldError(
                "spec",
                "Forbidden",
                "pod updates may not change fields other than "
                "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
                "to be set to 1 if it was previously negative)",
            )
        ]
    return []


# --- jobs ---------------------------------------------------------------------------------------

JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
MAX_INT32 = 2**31 - 1


def prepare_job(obj: Obj) -> list[FieldError]:
    meta = obj["metadata"]
    spec = obj.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("manualSelector", False)
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = (
            "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
        )
    template = spec.setdefault("template", {})
    template_meta = template.setdefault("metadata", {})
    labels = template_meta.setdefault("labels", {})
    if not spec.get("manualSelector"):
        uid = meta["uid"]
        spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}
        labels.update(
            {
                JOB_UID_LABEL: uid,
                LEGACY_JOB_UID_LABEL: uid,
                JOB_NAME_LABEL: meta["name"],
                LEGACY_JOB_NAME_LABEL: meta["name"],
            }
        )
    if not meta.get("labels"):
        # A Job without labels gets its pod template's (the API server's defaulting).
        meta["labels"] = dict(labels)
    default_pod_spec(template.setdefault("spec", {}))
    return job_spec_errors(spec)


def _non_negative(spec: Obj, key: str, errors: list[FieldError]) -> None:
    value = spec.get(key)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        errors.append(
            FieldError(f"spec.{key}", "Invalid", "must be greater than or equal to 0", value)
        )


def job_spec_errors(spec: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in (
        "parallelism",
        "completions",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ):
        _non_negative(spec, key, errors)
    _non_negative(spec, "activeDeadlineSeconds", errors)
    mode = spec.get("completionMode")
    if mode not in ("NonIndexed", "Indexed"):
        errors.append(
            FieldError(
                "spec.completionMode",
                "NotSupported",
                'supported values: "NonIndexed", "Indexed"',
                mode,
            )
        )
    if mode == "Indexed" and spec.get("completions") is None:
        errors.append(FieldError("spec.completions", "Required", "when completion mode is Indexed"))
    if spec.get("backoffLimitPerIndex") is not None and mode != "Indexed":
        errors.append(
            FieldError("spec.backoffLimitPerIndex", "Forbidden", "requires indexed completion mode")
        )
    if spec.get("maxFailedIndexes") is not None:
        if spec.get("backoffLimitPerIndex") is None:
            errors.append(
                FieldError(
                    "spec.maxFailedIndexes",
                    "Forbidden",
                    "cannot set maxFailedIndexes when backoffLimitPerIndex is unset",
                )
            )
        elif spec.get("completions") is not None and spec["maxFailedIndexes"] > spec["completions"]:
            errors.append(
                FieldError(
                    "spec.maxFailedIndexes",
                    "Invalid",
                    "must be less than or equal to completions",
                    spec["maxFailedIndexes"],
                )
            )
    template = spec.get("template") or {}
    pod_spec = template.get("spec") or {}
    errors += label_errors((template.get("metadata") or {}).get("labels"), "spec.template.labels")
    errors += pod_spec_errors(pod_spec, "spec.template.spec")
    policy = pod_spec.get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errors = [e for e in errors if e.field != "spec.template.spec.restartPolicy"]
        errors.append(
            FieldError(
                "spec.template.spec.restartPolicy",
                "Required",
                'valid values: "OnFailure", "Never"',
            )
        )
    failure_policy = spec.get("podFailurePolicy")
    if failure_policy is not None:
        if policy != "Never":
            errors.append(
                FieldError(
                    "spec.template.spec.restartPolicy",
                    "Invalid",
                    'only "Never" is supported when podFailurePolicy is specified',
                    policy,
                )
            )
        errors += _pod_failure_policy_errors(failure_policy, spec)
    return errors


def _pod_failure_policy_errors(policy: Any, spec: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    rules = policy.get("rules") if isinstance(policy, dict) else None
    if not isinstance(rules, list):
        return [FieldError("spec.podFailurePolicy.rules", "Required")]
    if len(rules) > 20:
        errors.append(
            FieldError("spec.podFailurePolicy.rules", "TooMany", "must have at most 20 items")
        )
    for i, rule in enumerate(rules):
        path = f"spec.podFailurePolicy.rules[{i}]"
        action = rule.get("action")
        if action not in ("FailJob", "FailIndex", "Ignore", "Count"):
            errors.append(
                FieldError(
                    f"{path}.action",
                    "NotSupported",
                    'supported values: "Count", "FailIndex", "FailJob", "Ignore"',
                    action,
                )
            )
        if action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
            errors.append(
                FieldError(
                    f"{path}.action",
                    "Invalid",
                    "requires the backoffLimitPerIndex to be set",
                    action,
                )
            )
        exit_codes, conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
        if (exit_codes is None) == (conditions is None):
            errors.append(
                FieldError(
                    path,
                    "Invalid",
                    "specifying one of OnExitCodes and OnPodConditions is required",
                    None,
                )
            )
        if exit_codes is not None:
            operator = exit_codes.get("operator")
            if operator not in ("In", "NotIn"):
                errors.append(
                    FieldError(
                        f"{path}.onExitCodes.operator",
                        "NotSupported",
                        'supported values: "In", "NotIn"',
                        operator,
                    )
                )
            values = exit_codes.get("values") or []
            if not values:
                errors.append(FieldError(f"{path}.onExitCodes.values", "Required"))
            if operator == "In" and 0 in values:
                errors.append(
                    FieldError(
                        f"{path}.onExitCodes.values[{values.index(0)}]",
                        "Invalid",
                        "must not be 0 for the In operator",
                        0,
                    )
                )
            if len(set(values)) != len(values):
                errors.append(FieldError(f"{path}.onExitCodes.values", "Duplicate", value=values))
        for j, pattern in enumerate(conditions or []):
            if not pattern.get("type"):
                errors.append(FieldError(f"{path}.onPodConditions[{j}].type", "Required"))
            pattern.setdefault("status", "True")
    return errors


def job_name_errors(obj: Obj) -> list[FieldError]:
    """The Job name becomes a label value on its pods: at most 63 characters."""
    name = obj["metadata"].get("name") or ""
    if len(name) > 63:
        return [
            FieldError(
                "spec.template.labels", "Invalid", "must be no more than 63 characters", name
            )
        ]
    return []


_JOB_IMMUTABLE = ("completionMode", "backoffLimitPerIndex", "podFailurePolicy", "selector")


def job_update_errors(old: Obj, new: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    for key in _JOB_IMMUTABLE:
        if old_spec.get(key) != new_spec.get(key):
            errors.append(
                FieldError(f"spec.{key}", "Invalid", "field is immutable", new_spec.get(key))
            )
    suspended = old_spec.get("suspend") and not (old.get("status") or {}).get("startTime")
    if old_spec.get("template") != new_spec.get("template") and not suspended:
        errors.append(FieldError("spec.template", "Invalid", "field is immutable", "<template>"))
    if (
        old_spec.get("completions") != new_spec.get("completions")
        and old_spec.get("completionMode") != "Indexed"
    ):
        errors.append(
            FieldError(
                "spec.completions", "Invalid", "field is immutable", new_spec.get("completions")
            )
        )
    return errors


# --- nodes and namespaces -----------------------------------------------------------------------


def prepare_namespace(obj: Obj) -> list[FieldError]:
    obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")
    labels = obj["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    return []


def prepare_secret(obj: Obj) -> list[FieldError]:
    """A Secret without a type is ``Opaque`` (as the API server defaults it)."""
    if not obj.get("type"):
        obj["type"] = "Opaque"
    return []


_CRON_POLICIES = ("Allow", "Forbid", "Replace")


def zone(name: str | None) -> Any:
    """The time zone of a CronJob's ``spec.timeZone`` (UTC when unset)."""
    return ZoneInfo(name) if name else timezone.utc


def prepare_cronjob(obj: Obj) -> list[FieldError]:
    """Default a new CronJob's spec and validate its schedule and policy."""
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        # The pod template is defaulted as a pod's; the Job's own defaults wait for the Job.
        job_template.setdefault("metadata", {})
        template = job_template.setdefault("spec", {}).setdefault("template", {})
        if isinstance(template, dict):
            template.setdefault("metadata", {})
            pod_spec = template.setdefault("spec", {})
            if isinstance(pod_spec, dict):
                default_pod_spec(pod_spec)
    return cronjob_spec_errors(spec)


def cronjob_spec_errors(spec: Obj) -> list[FieldError]:
    """What the API server refuses in a CronJob's spec (the checks modelled here)."""
    errors: list[FieldError] = []
    schedule = spec.get("schedule")
    if not schedule:
        errors.append(FieldError("spec.schedule", "Required"))
    elif not croniter.is_valid(str(schedule)) or (
        not str(schedule).startswith("@") and len(str(schedule).split()) != 5
    ):
        errors.append(
            FieldError("spec.schedule", "Invalid", "unparseable cron expression", schedule)
        )
    if spec.get("concurrencyPolicy") not in _CRON_POLICIES:
        errors.append(
            FieldError(
                "spec.concurrencyPolicy",
                "NotSupported",
                ", ".join(f'"{p}"' for p in _CRON_POLICIES),
                spec.get("concurrencyPolicy"),
            )
        )
    if spec.get("timeZone"):
        try:
            zone(spec["timeZone"])
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(
                FieldError("spec.timeZone", "Invalid", "unknown time zone", spec["timeZone"])
            )
    if not isinstance(spec.get("jobTemplate"), dict):
        errors.append(FieldError("spec.jobTemplate", "Required"))
    return errors


def cronjob_update_errors(old: Obj, new: Obj) -> list[FieldError]:
    return cronjob_spec_errors(new.get("spec") or {})


Preparer = Callable[[Obj], list[FieldError]]
_PREPARE: dict[ResourceType, Preparer] = {
    PODS: prepare_pod,
    JOBS: lambda obj: job_name_errors(obj) or prepare_job(obj),
    NAMESPACES: prepare_namespace,
    SECRETS: prepare_secret,
    CRONJOBS: prepare_cronjob,
}
_UPDATE_CHECKS: dict[ResourceType, Callable[[Obj, Obj], list[FieldError]]] = {
    PODS: pod_update_errors,
    JOBS: job_update_errors,
    CRONJOBS: cronjob_update_errors,
}


def admit_create(resource: ResourceType, obj: Obj) -> Obj:
    """Default and validate a new object (name already resolved); raises a 422 ``Invalid``."""
    meta = obj.setdefault("metadata", {})
    meta["uid"] = str(uuid.uuid4())
    errors = metadata_errors(resource, obj)
    if not errors and resource in _PREPARE:
        errors += _PREPARE[resource](obj)
    if errors:
        raise invalid(resource, meta.get("name") or meta.get("generateName") or "", errors)
    if resource is NODES:
        obj.setdefault("status", {})
    return obj


def admit_update(resource: ResourceType, old: Obj, new: Obj) -> Obj:
    errors = metadata_errors(resource, new)
    if resource in _UPDATE_CHECKS:
        errors += _UPDATE_CHECKS[resource](old, new)
    if resource is PODS and not errors:
        errors += pod_spec_errors(new.get("spec"), "spec")
    if resource is JOBS and not errors:
        errors += job_spec_errors(new.get("spec") or {})
    if errors:
        raise invalid(resource, new["metadata"].get("name", ""), errors)
    return new
