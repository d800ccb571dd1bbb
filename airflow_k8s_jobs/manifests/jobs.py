"""Load, build, default and validate the ``batch/v1`` Job a task submits.

Pure: no Airflow, no cluster — only :func:`load_manifest` reads a file. Everything wrong with the
input is reported at once, before anything is created, as an
:class:`~airflow_k8s_jobs.errors.InvalidInputError` naming the Job, its namespace and the cluster.

What :func:`build_job` does, in order:

1. **The container(s)**: either the quick form (``image``/``cmds``/``arguments``/``env`` → one
   container named ``main``) or a ``job`` manifest — exactly one of the two.
2. **Identity**: ``metadata.name`` is always :func:`~.names.object_name` of the task instance try;
   a manifest's own ``name``/``generateName`` is replaced. Deterministic names are what make an
   Airflow retry create a *new* Job and a re-started worker find (and adopt) the Job it already
   created instead of a duplicate. Labels and annotations identifying the try go on the Job and on
   the pod template; the user's labels and annotations are kept, except that our identity keys
   always win.
3. **Defaults**, only where the manifest does not say otherwise: ``restartPolicy: Never``,
   ``ttlSecondsAfterFinished`` (one day), a ``podFailurePolicy`` that ignores preemption (pod
   condition ``DisruptionTarget``) so spot nodes do not burn retries.
4. **Operator knobs** (``parallelism``, ``completions``, ``indexed``, ``backoff_limit``,
   ``backoff_limit_per_index``, ``active_deadline_seconds``, ``service_account_name``,
   ``container_resources``): set on the Job; a knob that contradicts the manifest is an error
   rather than a silent choice.
5. **Placement**: ``node_pool`` → a *required node affinity* on ``cloud.google.com/gke-nodepool``
   (the cluster autoscaler and GKE node auto-provisioning honour node affinity; seed 003 was bitten
   by ``nodeSelector``) and a toleration for a pool tainted with its own name; pods requesting
   ``nvidia.com/gpu`` tolerate the ``nvidia.com/gpu`` taint GPU nodes carry. ``queue_name`` → the
   Kueue label ``kueue.x-k8s.io/queue-name`` and ``spec.suspend: true``, so no pod starts before
   Kueue admits the Job (Kueue's webhook would suspend it anyway).
6. **Validation** of the result (see :func:`job_problems`).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidInputError
from . import schema
from .names import (
    TaskInstanceKey,
    object_name,
    task_annotations,
    task_labels,
)
from .problems import (
    SERVER_METADATA,
    Problems,
    annotation_problems,
    is_int,
    label_problems,
    merged,
    yaml_type,
)
from .validation import (
    did_you_mean,
    dns_label_problem,
    dns_subdomain_problem,
    image_reference_problem,
    label_value_problem,
    not_utf8,
    quantity_problem,
    quantity_value,
    type_name,
)

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "GPU_RESOURCE",
    "KUEUE_QUEUE_LABEL",
    "MAIN_CONTAINER",
    "NODE_POOL_LABEL",
    "PREEMPTION_RULE",
    "JobSpecRequest",
    "build_job",
    "duration_seconds",
    "job_problems",
    "load_manifest",
]

Obj = dict[str, Any]

MAIN_CONTAINER = "main"
DEFAULT_TTL_SECONDS = 86400
NODE_POOL_LABEL = "cloud.google.com/gke-nodepool"
GPU_RESOURCE = "nvidia.com/gpu"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PREEMPTION_RULE: Obj = {
    "action": "Ignore",
    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
}
"""The ``podFailurePolicy`` rule added by default: a preempted or evicted pod is replaced
without counting towards ``backoffLimit``."""

_CONSUMERS = {("batch/v1", "Job"): "KubeJobOperator"}
_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_CONTROLLER_LABELS = (
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
    "controller-uid",
    "job-name",
)


# --- loading ------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (PyYAML would silently keep the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen[key] = True
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def duration_seconds(
    name: str, value: timedelta | float | None, *, where: str, positive: bool, optional: bool
) -> float | None:
    """A duration argument (a ``timedelta`` or seconds) in seconds; raises
    :class:`InvalidInputError` naming the argument for anything else, a negative value, zero
    where ``positive``, or None unless ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, timedelta):
        number = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        example = "timedelta(hours=1)" if name == "capacity_timeout" else "timedelta(minutes=5)"
        none = " or None (no limit)" if optional else ""
        raise InvalidInputError(
            f"{where}: {name}={value!r} is not a duration; pass a timedelta such as {example} "
            f"or a number of seconds{none}"
        )
    if number < 0 or (positive and number == 0):
        bound = "more than 0" if positive else "0 or more"
        none = "; None waits without limit" if optional else ""
        raise InvalidInputError(f"{where}: {name}={value!r} is invalid: it must be {bound}{none}")
    return number


def wait_durations(
    capacity_timeout: timedelta | float | None, image_pull_grace: timedelta | float, where: str
) -> tuple[float | None, float]:
    """``capacity_timeout`` (more than 0, or None: no limit) and ``image_pull_grace`` (0 or
    more) in seconds; raises :class:`InvalidInputError` naming the argument (see
    :func:`duration_seconds`)."""
    capacity = duration_seconds(
        "capacity_timeout", capacity_timeout, where=where, positive=True, optional=True
    )
    grace = duration_seconds(
        "image_pull_grace", image_pull_grace, where=where, positive=False, optional=False
    )
    return capacity, grace or 0.0


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and text.strip().lower().endswith(_MANIFEST_SUFFIXES)


def load_manifest(
    source: dict[str, Any] | str | os.PathLike[str],
    *,
    expected_kind: str = "Job",
    expected_api_version: str = "batch/v1",
    where: str = "",
) -> dict[str, Any]:
    """One manifest from a dict (deep-copied), a ``.yaml``/``.yml``/``.json`` file, or YAML/JSON
    text.

    A manifest without ``apiVersion`` and ``kind`` is taken to be the expected kind; one that says
    another kind is an error. ``where`` (e.g. ``"task train, argument job"``) prefixes every
    message. Raises :class:`InvalidInputError` naming the file and the line.
    """
    origin = where
    if isinstance(source, Mapping):
        manifest: Any = copy.deepcopy(dict(source))
        label = where or "the manifest"
    elif isinstance(source, (str, os.PathLike)):
        if isinstance(source, os.PathLike) or _looks_like_path(source):
            path = Path(os.fspath(source).strip())
            origin = f"{where}: {path}" if where else str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise InvalidInputError(
                    f"{origin}: manifest file not found (working directory {os.getcwd()}); give "
                    "an absolute path, a path the task's template search path (the DAG's folder) "
                    "resolves, or the manifest itself"
                ) from None
            except UnicodeDecodeError as e:
                raise InvalidInputError(not_utf8(origin, e)) from None
            except OSError as e:
                raise InvalidInputError(f"{origin}: cannot read the manifest file: {e}") from None
            manifest = _parse(text, origin, as_json=path.suffix.lower() == ".json")
        else:
            manifest = _parse(source, origin or "manifest text", as_json=False)
        label = origin or "the manifest"
    else:
        raise InvalidInputError(
            f"{where or 'the manifest'}: expected a dict, a path to a .yaml/.yml/.json file or "
            f"YAML text, got {type_name(source)}"
        )
    if not isinstance(manifest, dict):
        hint = ""
        if isinstance(source, str) and "\n" not in source.strip():
            hint = " (a manifest file name must end with .yaml, .yml or .json)"
        raise InvalidInputError(
            f"{label}: the manifest is a {yaml_type(manifest)}, not a mapping; write one "
            f"{expected_api_version} {expected_kind} object (apiVersion, kind, metadata, spec)"
            f"{hint}"
        )
    _check_kind(manifest, expected_api_version, expected_kind, label)
    return manifest


def _parse(text: str, origin: str, *, as_json: bool) -> Any:
    if as_json or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            if as_json:
                raise InvalidInputError(
                    f"{origin}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}"
                ) from None
    try:
        documents = [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise InvalidInputError(f"{origin}: malformed YAML{at}: {problem}") from None
    except yaml.YAMLError as e:
        raise InvalidInputError(f"{origin}: malformed YAML: {e}") from None
    if not documents:
        raise InvalidInputError(f"{origin}: the manifest is empty")
    if len(documents) > 1:
        kinds = ", ".join(
            str(d.get("kind", "?")) if isinstance(d, dict) else yaml_type(d) for d in documents
        )
        raise InvalidInputError(
            f"{origin}: contains {len(documents)} YAML documents ({kinds}); a task submits one "
            "object, so keep one document per file"
        )
    return documents[0]


def _check_kind(manifest: Obj, api_version: str, kind: str, label: str) -> None:
    has_version, has_kind = "apiVersion" in manifest, "kind" in manifest
    if not has_version and not has_kind:
        manifest["apiVersion"], manifest["kind"] = api_version, kind
        return
    got_version, got_kind = manifest.get("apiVersion"), manifest.get("kind")
    if got_version == api_version and got_kind == kind:
        return
    consumer = _CONSUMERS.get((api_version, kind), "this task")
    if not has_kind or not has_version:
        missing = "kind" if not has_kind else "apiVersion"
        raise InvalidInputError(
            f"{label}: the manifest has no {missing}; {consumer} needs a {api_version} {kind} "
            f"(apiVersion: {api_version}, kind: {kind})"
        )
    raise InvalidInputError(
        f"{label}: the manifest is a {got_kind} ({got_version}); {consumer} needs a "
        f"{api_version} {kind}"
    )


# --- the request --------------------------------------------------------------------------------


@dataclass
class JobSpecRequest:
    """What the operator was asked for: the quick form *or* a loaded ``job`` manifest, plus knobs.

    ``ttl_seconds_after_finished=None`` leaves finished Jobs until someone deletes them.
    """

    image: str | None = None
    cmds: list[str] | None = None
    arguments: list[str] | None = None
    env: dict[str, str] | None = None
    job: dict[str, Any] | None = None
    parallelism: int | None = None
    completions: int | None = None
    indexed: bool = False
    backoff_limit: int | None = None
    backoff_limit_per_index: int | None = None
    active_deadline_seconds: int | None = None
    queue_name: str | None = None
    node_pool: str | None = None
    ttl_seconds_after_finished: int | None = DEFAULT_TTL_SECONDS
    ignore_preemption: bool = True
    container_resources: dict[str, Any] | None = None
    service_account_name: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


_QUICK_FORM = ("image", "cmds", "arguments", "env")
# Operator knob → Job spec field, and the smallest valid value.
_KNOBS = {
    "parallelism": ("parallelism", 1),  # 0 is valid, but no pod would ever start
    "completions": ("completions", 0),
    "backoff_limit": ("backoffLimit", 0),
    "backoff_limit_per_index": ("backoffLimitPerIndex", 0),
    "active_deadline_seconds": ("activeDeadlineSeconds", 1),
    "ttl_seconds_after_finished": ("ttlSecondsAfterFinished", 0),
}
_SPEC_MINIMUM = {field: minimum for field, minimum in _KNOBS.values()} | {"maxFailedIndexes": 0}
_SPEC_TO_KNOB = {field: knob for knob, (field, _) in _KNOBS.items()}


def build_job(
    request: JobSpecRequest, key: TaskInstanceKey, namespace: str, cluster: str
) -> dict[str, Any]:
    """The complete Job manifest for one task instance try (see the module docstring).

    Raises :class:`InvalidInputError` listing every problem; the request is not modified.
    """
    name = object_name(key)
    problems = Problems("Job", namespace, name, cluster)
    if problem := dns_label_problem(namespace):
        problems.add(f"namespace {namespace!r}: {problem}; pass an existing namespace")
    _check_request(request, problems)
    problems.raise_if_any()

    job = _base_job(request, problems)
    problems.raise_if_any()

    _apply_identity(job, request, key, name, namespace, problems)
    spec = job["spec"]
    pod_spec = spec["template"]["spec"]
    _apply_knobs(spec, request, problems)
    _apply_placement(job, pod_spec, request, problems)
    if pod_spec.get("restartPolicy") is None:
        pod_spec["restartPolicy"] = "Never"
    if (
        request.ignore_preemption
        and spec.get("podFailurePolicy") is None
        and pod_spec["restartPolicy"] == "Never"
    ):
        spec["podFailurePolicy"] = {"rules": [copy.deepcopy(PREEMPTION_RULE)]}
    if (
        spec.get("ttlSecondsAfterFinished") is None
        and request.ttl_seconds_after_finished is not None
    ):
        spec["ttlSecondsAfterFinished"] = request.ttl_seconds_after_finished
    problems.raise_if_any()

    for message in job_problems(job, request):
        problems.add(message)
    problems.raise_if_any()
    return job


# --- building -----------------------------------------------------------------------------------


def _check_request(request: JobSpecRequest, problems: Problems) -> None:
    quick = [arg for arg in _QUICK_FORM if getattr(request, arg) is not None]
    if request.job is not None and quick:
        problems.add(
            f"both a job manifest and {', '.join(quick)} were given; use either the quick form "
            "(image, cmds, arguments, env) or job=, and put the container into the manifest"
        )
    elif request.job is None and not quick:
        problems.add(
            "no container to run: give image= (with cmds/arguments/env as needed) or a job "
            "manifest (job=)"
        )
    elif request.job is None and request.image is None:
        problems.add(f"{', '.join(quick)} given without image=; set image= to the image to run")
    if request.job is not None and not isinstance(request.job, dict):
        problems.add(
            f"job must be a manifest already loaded as a dict, not {type_name(request.job)}; "
            "load it with load_manifest()"
        )
    if request.image is not None and not isinstance(request.image, str):
        problems.add(f"image must be a string, not {type_name(request.image)}")
    for arg in ("cmds", "arguments"):
        value = getattr(request, arg)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            example = "['python', 'train.py']" if arg == "cmds" else "['--epochs', '3']"
            problems.add(f"{arg} must be a list of strings such as {example}, not {value!r}")
    if request.env is not None:
        if not isinstance(request.env, Mapping):
            problems.add(f"env must be a dict of name → string value, not {type_name(request.env)}")
        else:
            for env_name, value in request.env.items():
                if not isinstance(env_name, str) or not env_name or "=" in env_name:
                    problems.add(
                        f"env name {env_name!r} is not valid; use a non-empty string without '='"
                    )
                if not isinstance(value, str):
                    problems.add(
                        f"env[{env_name!r}] is {value!r} ({type_name(value)}); environment values "
                        f"must be strings: pass {str(value)!r}"
                    )
    for knob, (_field, minimum) in _KNOBS.items():
        value = getattr(request, knob)
        if value is None:
            continue
        if not is_int(value):
            problems.add(f"{knob} must be an integer, not {value!r} ({type_name(value)})")
        elif value < minimum:
            bound = "greater than 0" if minimum else "0 or more"
            problems.add(f"{knob}={value} is invalid: it must be {bound}")
    for arg, check in (
        ("queue_name", label_value_problem),
        ("node_pool", label_value_problem),
        ("service_account_name", dns_subdomain_problem),
    ):
        value = getattr(request, arg)
        if value is not None and (problem := check(value)):
            problems.add(f"{arg}={value!r} is invalid: {problem}")
    if (
        request.backoff_limit_per_index is not None
        and not request.indexed
        and not _manifest_indexed(request.job)
    ):
        problems.add(
            "backoff_limit_per_index needs an Indexed Job; set indexed=True (and completions)"
        )
    if request.container_resources is not None and not isinstance(
        request.container_resources, Mapping
    ):
        problems.add(
            "container_resources must be a dict such as {'requests': {'cpu': '1'}, 'limits': "
            f"{{'nvidia.com/gpu': 1}}}}, not {type_name(request.container_resources)}"
        )
    for arg in ("labels", "annotations"):
        value = getattr(request, arg)
        if value is not None and not isinstance(value, Mapping):
            problems.add(f"{arg} must be a dict of strings, not {type_name(value)}")


def _manifest_indexed(job: Any) -> bool:
    spec = job.get("spec") if isinstance(job, dict) else None
    return isinstance(spec, dict) and spec.get("completionMode") == "Indexed"


def _base_job(request: JobSpecRequest, problems: Problems) -> Obj:
    """The user's Job (a deep copy) or the quick-form Job, with the nesting we need present."""
    if request.job is None:
        container: Obj = {"name": MAIN_CONTAINER, "image": request.image}
        if request.cmds is not None:
            container["command"] = list(request.cmds)
        if request.arguments is not None:
            container["args"] = list(request.arguments)
        if request.env:
            container["env"] = [{"name": k, "value": v} for k, v in request.env.items()]
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {},
            "spec": {"template": {"metadata": {}, "spec": {"containers": [container]}}},
        }
    job = copy.deepcopy(request.job)
    try:
        _check_kind(job, "batch/v1", "Job", "job")
    except InvalidInputError as e:
        problems.add(str(e))
        return job
    for path in (
        "metadata",
        "spec",
        "spec.template",
        "spec.template.metadata",
        "spec.template.spec",
    ):
        parent, _, field = path.rpartition(".")
        holder = _get(job, parent) if parent else job
        if not isinstance(holder, dict):
            return job
        value = holder.setdefault(field, {})
        if value is None:
            value = holder[field] = {}
        if not isinstance(value, dict):
            problems.add(f"{path} must be a mapping, not {yaml_type(value)}")
    if problems.items:
        return job
    pod_spec = job["spec"]["template"]["spec"]
    for group in ("containers", "initContainers"):
        containers = pod_spec.get(group)
        if containers is not None and (
            not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers)
        ):
            problems.add(f"spec.template.spec.{group} must be a list of mappings")
    _strip_server_fields(job)
    return job


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _strip_server_fields(job: Obj) -> None:
    """Forget what the API server wrote, so an exported Job can be submitted again."""
    meta = job["metadata"]
    for field in SERVER_METADATA:
        meta.pop(field, None)
    meta.pop("generateName", None)
    job.pop("status", None)
    spec = job["spec"]
    if not spec.get("manualSelector"):
        spec.pop("selector", None)
        labels = spec["template"]["metadata"].get("labels")
        if isinstance(labels, dict):
            for label in _CONTROLLER_LABELS:
                labels.pop(label, None)


def _apply_identity(
    job: Obj,
    request: JobSpecRequest,
    key: TaskInstanceKey,
    name: str,
    namespace: str,
    problems: Problems,
) -> None:
    meta = job["metadata"]
    given = meta.get("namespace")
    if given is not None and given != namespace:
        problems.add(
            f"metadata.namespace is {given!r} but the task targets namespace {namespace!r}; "
            "remove metadata.namespace from the manifest or pass namespace="
            f"{given!r} to the task"
        )
    meta["name"] = name
    meta["namespace"] = namespace
    labels, annotations = task_labels(key), task_annotations(key)
    meta["labels"] = merged(meta.get("labels"), request.labels, labels, "metadata.labels", problems)
    meta["annotations"] = merged(
        meta.get("annotations"), request.annotations, annotations, "metadata.annotations", problems
    )
    template_meta = job["spec"]["template"]["metadata"]
    template_meta["labels"] = merged(
        template_meta.get("labels"),
        request.labels,
        labels,
        "spec.template.metadata.labels",
        problems,
    )
    template_meta["annotations"] = merged(
        template_meta.get("annotations"),
        request.annotations,
        annotations,
        "spec.template.metadata.annotations",
        problems,
    )


def _set_knob(spec: Obj, field: str, value: Any, knob: str, problems: Problems) -> None:
    if value is None:
        return
    current = spec.get(field)
    if current is not None and current != value:
        problems.add(
            f"spec.{field} is {current!r} in the manifest but {knob}={value!r} was passed; "
            "set it in one place"
        )
        return
    spec[field] = value


def _apply_knobs(spec: Obj, request: JobSpecRequest, problems: Problems) -> None:
    for knob, (field, _) in _KNOBS.items():
        if knob != "ttl_seconds_after_finished":
            _set_knob(spec, field, getattr(request, knob), knob, problems)
    if request.indexed:
        mode = spec.get("completionMode")
        if mode not in (None, "Indexed"):
            problems.add(
                f"spec.completionMode is {mode!r} in the manifest but indexed=True was passed; "
                "set it in one place"
            )
        else:
            spec["completionMode"] = "Indexed"
    pod_spec = spec["template"]["spec"]
    _set_knob(
        pod_spec,
        "serviceAccountName",
        request.service_account_name,
        "service_account_name",
        problems,
    )
    if request.container_resources is not None:
        _apply_resources(pod_spec, request.container_resources, problems)


def _apply_resources(pod_spec: Obj, resources: Mapping[str, Any], problems: Problems) -> None:
    """``container_resources`` go to the first container; the manifest's own values must agree."""
    containers = pod_spec.get("containers") or []
    if not containers:
        return
    target = containers[0].setdefault("resources", {})
    if not isinstance(target, dict):
        return
    for section, values in resources.items():
        existing = target.get(section)
        if existing is None or not isinstance(values, Mapping) or not isinstance(existing, dict):
            target.setdefault(section, copy.deepcopy(values))
            continue
        for resource, amount in values.items():
            if resource in existing and str(existing[resource]) != str(amount):
                problems.add(
                    f"spec.template.spec.containers[0].resources.{section}[{resource}] is "
                    f"{existing[resource]!r} in the manifest but container_resources gives "
                    f"{amount!r}; set it in one place"
                )
            else:
                existing[resource] = amount


def _apply_placement(job: Obj, pod_spec: Obj, request: JobSpecRequest, problems: Problems) -> None:
    tolerations = pod_spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    elif not isinstance(tolerations, list):
        problems.add("spec.template.spec.tolerations must be a list")
        tolerations = []
    pool = request.node_pool
    if pool is not None:
        _require_node_pool(pod_spec, pool, problems)
        toleration = {
            "key": NODE_POOL_LABEL,
            "operator": "Equal",
            "value": pool,
            "effect": "NoSchedule",
        }
        if toleration not in tolerations:
            tolerations.append(toleration)
    if _requests_gpu(pod_spec) and not _tolerates_gpu(tolerations):
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        pod_spec["tolerations"] = tolerations

    labels = job["metadata"]["labels"]
    queue = request.queue_name
    if queue is not None:
        given = labels.get(KUEUE_QUEUE_LABEL)
        if given is not None and given != queue:
            problems.add(
                f"metadata.labels[{KUEUE_QUEUE_LABEL}] is {given!r} in the manifest but "
                f"queue_name={queue!r} was passed; set it in one place"
            )
        labels[KUEUE_QUEUE_LABEL] = queue
    if labels.get(KUEUE_QUEUE_LABEL) is not None:
        job["spec"]["suspend"] = True


def _require_node_pool(pod_spec: Obj, pool: str, problems: Problems) -> None:
    selector = pod_spec.get("nodeSelector")
    if isinstance(selector, dict) and selector.get(NODE_POOL_LABEL) not in (None, pool):
        problems.add(
            f"spec.template.spec.nodeSelector[{NODE_POOL_LABEL}] is "
            f"{selector[NODE_POOL_LABEL]!r} but node_pool={pool!r} was passed; set it in one place"
        )
    expression = {"key": NODE_POOL_LABEL, "operator": "In", "values": [pool]}
    affinity = pod_spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {}) if isinstance(affinity, dict) else None
    required = (
        node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
        if isinstance(node_affinity, dict)
        else None
    )
    if not isinstance(required, dict):
        problems.add("spec.template.spec.affinity.nodeAffinity must be a mapping")
        return
    terms = required.get("nodeSelectorTerms") or [{}]
    for i, term in enumerate(terms):
        if not isinstance(term, dict):
            problems.add(f"nodeSelectorTerms[{i}] must be a mapping")
            continue
        expressions = term.setdefault("matchExpressions", [])
        pools = [e for e in expressions if isinstance(e, dict) and e.get("key") == NODE_POOL_LABEL]
        if any(e.get("operator") == "In" and pool not in (e.get("values") or []) for e in pools):
            problems.add(
                "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuring"
                f"Execution.nodeSelectorTerms[{i}] requires another node pool than "
                f"node_pool={pool!r}; set the pool in one place"
            )
        elif expression not in expressions:
            expressions.append(copy.deepcopy(expression))
    required["nodeSelectorTerms"] = terms


def _containers(pod_spec: Obj) -> list[Obj]:
    found: list[Obj] = []
    for group in ("initContainers", "containers"):
        items = pod_spec.get(group)
        if isinstance(items, list):
            found += [c for c in items if isinstance(c, dict)]
    return found


def _requests_gpu(pod_spec: Obj) -> bool:
    for container in _containers(pod_spec):
        resources = container.get("resources")
        if not isinstance(resources, dict):
            continue
        for section in ("requests", "limits"):
            values = resources.get(section)
            if isinstance(values, dict) and GPU_RESOURCE in values:
                return True
    return False


def _tolerates_gpu(tolerations: list[Any]) -> bool:
    for t in tolerations:
        if not isinstance(t, dict):
            continue
        if t.get("key") == GPU_RESOURCE:
            return True
        if (
            not t.get("key")
            and t.get("operator") == "Exists"
            and t.get("effect") in (None, "", "NoSchedule")
        ):
            return True
    return False


# --- validation ---------------------------------------------------------------------------------


def job_problems(job: Obj, request: JobSpecRequest | None = None) -> list[str]:
    """Everything wrong with a complete Job manifest, as messages that say what to do.

    Checked: unknown fields anywhere (with "did you mean …?"), containers (at least one, names,
    duplicates, images, env entries, resource quantities), ``restartPolicy`` (``Never`` or
    ``OnFailure``; ``Never`` with a ``podFailurePolicy``), counts (non-negative integers,
    ``activeDeadlineSeconds`` > 0), Indexed mode (``completions`` required;
    ``backoffLimitPerIndex`` and ``maxFailedIndexes`` only when Indexed), labels and annotations
    on the Job and the pod template, the Job name.
    """
    problems: list[str] = []
    for unknown in schema.unknown_fields(job, "V1Job"):
        hint = did_you_mean(unknown.name, unknown.known) or "; remove it"
        problems.append(f"unknown field {unknown.path}{hint}")
    meta = job.get("metadata") or {}
    name = meta.get("name")
    if problem := dns_label_problem(name):
        problems.append(f"metadata.name {name!r}: {problem}")
    spec = job.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    problems += _container_problems(pod_spec)
    problems += _count_problems(spec, request)
    problems += _mode_problems(spec)
    policy = pod_spec.get("restartPolicy")
    if policy == "Always":
        problems.append(
            "spec.template.spec.restartPolicy is Always, which a Job does not allow (its pods "
            "must end); use Never (the default here) or OnFailure"
        )
    elif policy not in ("Never", "OnFailure"):
        problems.append(
            f"spec.template.spec.restartPolicy {policy!r} is not supported; use Never or OnFailure"
        )
    elif policy == "OnFailure" and spec.get("podFailurePolicy") is not None:
        problems.append(
            "spec.podFailurePolicy needs spec.template.spec.restartPolicy: Never (it is "
            "OnFailure); set restartPolicy to Never or remove the podFailurePolicy"
        )
    for field, holder in (
        ("metadata", meta),
        ("spec.template.metadata", (spec.get("template") or {}).get("metadata") or {}),
    ):
        problems += label_problems(holder.get("labels"), f"{field}.labels")
        problems += annotation_problems(holder.get("annotations"), f"{field}.annotations")
    return problems


def _container_problems(pod_spec: Obj) -> list[str]:
    problems: list[str] = []
    containers = pod_spec.get("containers")
    if not containers:
        problems.append(
            "spec.template.spec.containers is empty; a Job needs at least one container with a "
            "name and an image"
        )
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        items = pod_spec.get(group)
        if not isinstance(items, list):
            continue
        for i, container in enumerate(items):
            path = f"spec.template.spec.{group}[{i}]"
            if not isinstance(container, dict):
                problems.append(f"{path} must be a mapping")
                continue
            cname = container.get("name")
            if cname is None or cname == "":
                problems.append(f"{path}.name is missing; give every container a name")
            elif problem := dns_label_problem(cname):
                problems.append(f"{path}.name {cname!r}: {problem}")
            elif cname in seen:
                problems.append(f"{path}.name {cname!r} is used twice; container names must differ")
            else:
                seen.add(cname)
            image = container.get("image")
            if image is None or image == "":
                problems.append(f"{path}.image is missing; set the image the container runs")
            elif (
                not isinstance(image, str)
                or image != image.strip()
                or any(c.isspace() for c in image)
            ):
                problems.append(
                    f"{path}.image {image!r} is not an image reference; use e.g. "
                    "'us-docker.pkg.dev/project/repo/image:tag'"
                )
            elif problem := image_reference_problem(image):
                problems.append(f"{path}.image {image!r}: {problem}")
            for field in ("command", "args"):
                value = container.get(field)
                if value is not None and (
                    not isinstance(value, list) or not all(isinstance(v, str) for v in value)
                ):
                    problems.append(f"{path}.{field} must be a list of strings, not {value!r}")
            problems += _env_problems(container.get("env"), f"{path}.env")
            problems += _resource_problems(container.get("resources"), f"{path}.resources")
    return problems


def _env_problems(env: Any, path: str) -> list[str]:
    if env is None:
        return []
    if not isinstance(env, list):
        return [f"{path} must be a list of {{name, value}} entries, not {yaml_type(env)}"]
    problems: list[str] = []
    for i, entry in enumerate(env):
        if not isinstance(entry, dict):
            problems.append(f"{path}[{i}] must be a mapping with name and value")
            continue
        env_name = entry.get("name")
        if not isinstance(env_name, str) or not env_name or "=" in env_name:
            problems.append(f"{path}[{i}].name {env_name!r} is not valid; use a non-empty string")
        value = entry.get("value")
        if value is not None and not isinstance(value, str):
            problems.append(
                f"{path}[{i}] ({env_name}) value is {value!r} ({type_name(value)}); environment "
                f"values must be strings: quote it ({str(value)!r})"
            )
    return problems


def _resource_problems(resources: Any, path: str) -> list[str]:
    if resources is None:
        return []
    if not isinstance(resources, dict):
        return [f"{path} must be a mapping with requests and/or limits"]
    problems: list[str] = []
    for section in ("requests", "limits"):
        values = resources.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            problems.append(f"{path}.{section} must be a mapping of resource name → quantity")
            continue
        for resource, amount in values.items():
            if problem := quantity_problem(amount):
                problems.append(f"{path}.{section}[{resource}]: {problem}")
    requests, limits = resources.get("requests"), resources.get("limits")
    if isinstance(requests, dict) and isinstance(limits, dict):
        for resource in sorted(set(requests) & set(limits), key=str):
            request, limit = requests[resource], limits[resource]
            if quantity_problem(request) or quantity_problem(limit):
                continue
            if quantity_value(request) > quantity_value(limit):
                problems.append(
                    f"{path}: the {resource} request {request!r} is more than its limit "
                    f"{limit!r}; a request must be less than or equal to the limit (raise "
                    "the limit or lower the request)"
                )
    return problems


def _count_problems(spec: Obj, request: JobSpecRequest | None) -> list[str]:
    problems: list[str] = []
    for field, minimum in _SPEC_MINIMUM.items():
        value = spec.get(field)
        if value is None:
            continue
        knob = _SPEC_TO_KNOB.get(field)
        source = (
            f" (from {knob}=)"
            if request is not None and knob and getattr(request, knob) == value
            else ""
        )
        if not is_int(value):
            problems.append(f"spec.{field} must be an integer, not {value!r}{source}")
        elif value < minimum:
            bound = "greater than 0" if minimum else "0 or more"
            problems.append(f"spec.{field} is {value}{source}; it must be {bound}")
    suspend = spec.get("suspend")
    if suspend is not None and not isinstance(suspend, bool):
        problems.append(f"spec.suspend must be true or false, not {suspend!r}")
    return problems


def _mode_problems(spec: Obj) -> list[str]:
    problems: list[str] = []
    mode = spec.get("completionMode")
    if mode not in (None, "NonIndexed", "Indexed"):
        problems.append(f"spec.completionMode {mode!r} is not supported; use NonIndexed or Indexed")
    indexed = mode == "Indexed"
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    if (
        indexed
        and isinstance(completions, int)
        and isinstance(parallelism, int)
        and is_int(completions)
        and is_int(parallelism)
        and completions < parallelism
    ):
        problems.append(
            f"parallelism={parallelism} is more than completions={completions} for an Indexed "
            f"Job: only {completions} pods (one per index) can ever run; lower parallelism to "
            f"{completions} or raise completions"
        )
    if indexed and spec.get("completions") is None:
        problems.append(
            "an Indexed Job needs completions (the number of indexes); pass completions= or set "
            "spec.completions"
        )
    if spec.get("backoffLimitPerIndex") is not None and not indexed:
        problems.append(
            "spec.backoffLimitPerIndex needs an Indexed Job; pass indexed=True (with completions) "
            "or set spec.completionMode: Indexed"
        )
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        problems.append(
            "spec.maxFailedIndexes needs backoffLimitPerIndex; pass backoff_limit_per_index="
        )
    policy = spec.get("podFailurePolicy")
    if policy is not None:
        rules = policy.get("rules") if isinstance(policy, dict) else None
        if not isinstance(rules, list):
            problems.append("spec.podFailurePolicy.rules must be a list of rules")
        else:
            for i, rule in enumerate(rules):
                action = rule.get("action") if isinstance(rule, dict) else None
                if action not in ("FailJob", "FailIndex", "Ignore", "Count"):
                    problems.append(
                        f"spec.podFailurePolicy.rules[{i}].action {action!r} is not supported; "
                        "use FailJob, FailIndex, Ignore or Count"
                    )
                elif action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
                    problems.append(
                        f"spec.podFailurePolicy.rules[{i}] uses FailIndex, which needs "
                        "backoffLimitPerIndex; pass backoff_limit_per_index="
                    )
    return problems
