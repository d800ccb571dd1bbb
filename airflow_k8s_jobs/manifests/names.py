"""Deterministic object names, labels and annotations for one Airflow task instance try.

Names
-----
:func:`object_name` gives every task instance try its own Job name::

    <dag>-<task>[-m<map index>]-t<try number>-<hash>

for example ``etl-train-m3-t2-k7qz4m2xbd``:

* ``<dag>`` and ``<task>`` are the dag and task ids, sanitised for DNS: lower case, ``_`` and
  ``.`` become ``-``, other characters are dropped, runs of dashes collapse to one, no dash at
  either end. When the two do not fit, each is shortened (the task keeps at least half of the
  room). A dag and a task id that sanitise to nothing give ``job``.
* ``-m<map index>`` only for mapped tasks (``map_index >= 0``); ``-t<try number>`` always.
* ``<hash>``: 10 characters (lower-case base32, 50 bits) of the SHA-256 of the *full, unsanitised*
  key (dag id, task id, run id, map index, try number). Two keys that differ anywhere — another
  run, another try, another map index, or ids that sanitise or truncate to the same text — get
  different names. The run id is only in the hash: the labels carry it in readable form.

The result is a valid DNS-1123 label of at most :data:`MAX_JOB_NAME` (52) characters. The API
server names a Job's pods ``<job>-<5 random>`` (Indexed Jobs: ``<job>-<index>-<5 random>``) and
puts the Job name into the pods' ``job-name`` label, so 52 keeps pod names and that label within
63 characters.

Because the name is a pure function of the task instance try, creating the Job twice for the same
try (a worker that died between create and defer) gets ``409 AlreadyExists`` instead of a
duplicate; :func:`matches_task` then tells whether the existing Job is really ours to adopt.

Labels and annotations
----------------------
:func:`task_labels` puts the identity on the Job and its pods as *valid label values* (for
selectors); a value that had to change to become valid gets a hash of the original appended, so
different originals never share a label value. :func:`task_annotations` keeps the exact originals.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "IDENTITY_KEYS",
    "LABEL_PREFIX",
    "MANAGED_BY",
    "MANAGED_BY_KEY",
    "MANAGED_BY_VALUE",
    "MAX_JOB_NAME",
    "TaskInstanceKey",
    "label_value",
    "matches_task",
    "object_name",
    "sanitize_dns",
    "task_annotations",
    "task_labels",
    "task_selector",
]

LABEL_PREFIX = "airflow-k8s-jobs.io/"
MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "airflow-k8s-jobs"
MANAGED_BY = {MANAGED_BY_KEY: MANAGED_BY_VALUE}

MAX_JOB_NAME = 52
"""Longest Job name we generate: pods get ``<job>-<5 chars>`` and a ``job-name`` label (<= 63)."""

DAG_ID = LABEL_PREFIX + "dag-id"
TASK_ID = LABEL_PREFIX + "task-id"
RUN_ID = LABEL_PREFIX + "run-id"
MAP_INDEX = LABEL_PREFIX + "map-index"
TRY_NUMBER = LABEL_PREFIX + "try-number"
IDENTITY_KEYS = (DAG_ID, TASK_ID, RUN_ID, MAP_INDEX, TRY_NUMBER)
"""Label and annotation keys identifying a task instance try (plus :data:`MANAGED_BY_KEY`)."""

_HASH_LEN = 10
_LABEL_HASH_LEN = 8
_MAX_LABEL_VALUE = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]")
_DASHES = re.compile(r"-{2,}")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_EDGE = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


@dataclass(frozen=True)
class TaskInstanceKey:
    """One try of one Airflow task instance (``map_index`` -1 when the task is not mapped)."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1


def _digest(*parts: object) -> bytes:
    # JSON keeps the parts apart: ("a-b", "c") and ("a", "b-c") hash differently.
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).digest()


def _key_hash(key: TaskInstanceKey) -> str:
    raw = _digest(key.dag_id, key.task_id, key.run_id, key.map_index, key.try_number)
    return base64.b32encode(raw).decode().lower()[:_HASH_LEN]


def sanitize_dns(text: str) -> str:
    """Lower case; ``_`` and ``.`` → ``-``; drop other characters; collapse and trim dashes."""
    text = text.lower().replace("_", "-").replace(".", "-")
    text = _NOT_DNS.sub("", text)
    return _DASHES.sub("-", text).strip("-")


def object_name(key: TaskInstanceKey) -> str:
    """The deterministic Job name for ``key`` (see the module docstring for the format)."""
    suffix = f"-m{key.map_index}" if key.map_index >= 0 else ""
    suffix += f"-t{key.try_number}-{_key_hash(key)}"
    room = max(MAX_JOB_NAME - len(suffix), 0)
    dag, task = sanitize_dns(key.dag_id), sanitize_dns(key.task_id)
    if dag and task:
        room -= 1  # the dash between them
        if len(dag) + len(task) > room:
            task = task[: max(room // 2, room - len(dag))].rstrip("-")
            dag = dag[: room - len(task)].rstrip("-")
        prefix = f"{dag}-{task}"
    else:
        prefix = (dag or task)[:room].rstrip("-")
    if not prefix:
        prefix = "job"
    # A huge map index or try number could leave no room at all; the hash alone stays unique.
    return f"{prefix}{suffix}"[-MAX_JOB_NAME:].lstrip("-")


def label_value(value: str) -> str:
    """``value`` itself when it is a valid label value; otherwise a sanitised form (invalid
    characters → ``_``, trimmed to 63) with ``-<hash of the original>`` appended."""
    if len(value) <= _MAX_LABEL_VALUE and _LABEL_VALUE.match(value):
        return value
    digest = base64.b32encode(_digest(value)).decode().lower()[:_LABEL_HASH_LEN]
    room = _MAX_LABEL_VALUE - _LABEL_HASH_LEN - 1
    cleaned = _EDGE.sub("", _NOT_LABEL.sub("_", value)[:room])
    return f"{cleaned}-{digest}" if cleaned else digest


def task_labels(key: TaskInstanceKey) -> dict[str, str]:
    """Managed-by plus the task instance try as valid label values.

    ``map-index`` is present only for mapped tasks (``-1`` is not a valid label value, and "no
    label" is what a selector can ask for: ``!airflow-k8s-jobs.io/map-index``).
    """
    labels = {
        **MANAGED_BY,
        DAG_ID: label_value(key.dag_id),
        TASK_ID: label_value(key.task_id),
        RUN_ID: label_value(key.run_id),
    }
    if key.map_index >= 0:
        labels[MAP_INDEX] = str(key.map_index)
    labels[TRY_NUMBER] = str(key.try_number)
    return labels


def task_annotations(key: TaskInstanceKey) -> dict[str, str]:
    """The exact, unsanitised identity of the task instance try."""
    return {
        DAG_ID: key.dag_id,
        TASK_ID: key.task_id,
        RUN_ID: key.run_id,
        MAP_INDEX: str(key.map_index),
        TRY_NUMBER: str(key.try_number),
    }


def matches_task(
    labels: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
    key: TaskInstanceKey,
) -> bool:
    """Whether an existing object belongs to exactly this task instance try.

    Its labels must carry our managed-by value and the identity of ``key`` (an unmapped task's
    object must have no map-index label), and every identity annotation it has must equal the
    original value. Used to adopt a Job found by name after ``409 AlreadyExists``.
    """
    labels = labels or {}
    expected = task_labels(key)
    for name in (MANAGED_BY_KEY, *IDENTITY_KEYS):
        if labels.get(name) != expected.get(name):
            return False
    originals = task_annotations(key)
    present = annotations or {}
    return all(present[name] == originals[name] for name in IDENTITY_KEYS if name in present)


def task_selector(key: TaskInstanceKey, include_try: bool = True) -> str:
    """A label selector for the objects of this task instance (this try only by default)."""
    labels = task_labels(key)
    if not include_try:
        del labels[TRY_NUMBER]
    parts = [f"{name}={value}" for name, value in labels.items()]
    if key.map_index < 0:
        parts.append(f"!{MAP_INDEX}")
    return ",".join(parts)
