"""Server-side printing: ``meta.k8s.io/v1`` ``Table`` answers for ``kubectl get``.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
columns the server chooses. These are kube-apiserver's columns (``pkg/printers/internalversion``)
for the built-in types the simulated cluster serves; other types get ``Name`` and ``Created At``
as from the API server's default table convertor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .clock import SimClock
from .resources import CONFIGMAPS, CRONJOBS, EVENTS, JOBS, NAMESPACES, NODES, PODS, ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, int]  # name, type, priority (1: only with -o wide)

_NAME: Column = ("Name", "string", 0)
_AGE: Column = ("Age", "string", 0)


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        rest = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if rest == 0 else f"{hours // 24 // 365}y{rest}d"
    return f"{hours // 24 // 365}y"


class Printer:
    def __init__(self, clock: SimClock) -> None:
        self.clock = clock

    def since(self, stamp: Any) -> str:
        if not stamp:
            return "<unknown>"
        return human_duration(self.clock.now() - self.clock.parse(str(stamp)))

    def age(self, obj: Obj) -> str:
        return self.since(obj["metadata"].get("creationTimestamp"))

    # --- per type ------------------------------------------------------------------------

    def job(self, obj: Obj) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        if "Complete" in true:
            state = "Complete"
        elif "Failed" in true:
            state = "Failed"
        elif obj["metadata"].get("deletionTimestamp"):
            state = "Terminating"
        elif "FailureTarget" in true:
            state = "FailureTarget"
        elif "SuccessCriteriaMet" in true:
            state = "SuccessCriteriaMet"
        elif "Suspended" in true:
            state = "Suspended"
        else:
            state = "Running"
        succeeded = int(status.get("succeeded") or 0)
        if spec.get("completions") is not None:
            completions = f"{succeeded}/{spec['completions']}"
        elif int(spec.get("parallelism") or 0) > 1:
            completions = f"{succeeded}/1 of {spec['parallelism']}"
        else:
            completions = f"{succeeded}/1"
        duration = ""
        start, end = status.get("startTime"), status.get("completionTime")
        if start:
            until = self.clock.parse(end) if end else self.clock.now()
            duration = human_duration(until - self.clock.parse(start))
        pod_spec = (spec.get("template") or {}).get("spec") or {}
        containers = pod_spec.get("containers") or []
        selector = ",".join(
            f"{k}={v}"
            for k, v in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items())
        )
        return [
            obj["metadata"]["name"],
            state,
            completions,
            duration,
            self.age(obj),
            ",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers),
            selector or "<none>",
        ]

    def pod(self, obj: Obj) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        statuses = status.get("containerStatuses") or []
        total = len(spec.get("containers") or [])
        reason = status.get("reason") or status.get("phase") or ""
        ready = 0
        restarts = 0
        running = False
        for cs in reversed(statuses):
            restarts += int(cs.get("restartCount") or 0)
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode', 0)}"
            elif state.get("running") and cs.get("ready"):
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running"
        if obj["metadata"].get("deletionTimestamp"):
            reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
        return [
            obj["metadata"]["name"],
            f"{ready}/{total}",
            reason,
            str(restarts),
            self.age(obj),
            status.get("podIP") or "<none>",
            spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>",
            "<none>",
        ]

    def node(self, obj: Obj) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is None:
            state = "Unknown"
        else:
            state = {"True": "Ready", "False": "NotReady"}.get(ready.get("status"), "Unknown")
        if spec.get("unschedulable"):
            state += ",SchedulingDisabled"
        labels = obj["metadata"].get("labels") or {}
        roles = sorted(
            k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/")
        )
        info = status.get("nodeInfo") or {}
        addresses = status.get("addresses") or []

        def address(kind: str) -> str:
            return next((a["address"] for a in addresses if a.get("type") == kind), "<none>")

        return [
            obj["metadata"]["name"],
            state,
            ",".join(roles) or "<none>",
            self.age(obj),
            info.get("kubeletVersion", ""),
            address("InternalIP"),
            address("ExternalIP"),
            info.get("osImage", ""),
            info.get("kernelVersion", ""),
            info.get("containerRuntimeVersion", ""),
        ]

    def event(self, obj: Obj) -> list[Any]:
        involved = obj.get("involvedObject") or {}
        last = (
            obj.get("lastTimestamp")
            or obj.get("eventTime")
            or obj["metadata"].get("creationTimestamp")
        )
        first = obj.get("firstTimestamp") or obj.get("eventTime")
        source = obj.get("source") or {}
        return [
            self.since(last),
            obj.get("type", ""),
            obj.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            str(obj.get("message", "")).strip(),
            involved.get("fieldPath", ""),
            ", ".join(v for v in (source.get("component"), source.get("host")) if v),
            self.since(first),
            int(obj.get("count") or 1),
            obj["metadata"]["name"],
        ]

    def cronjob(self, obj: Obj) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        containers = ((job_spec.get("template") or {}).get("spec") or {}).get("containers") or []
        selector = ",".join(
            f"{k}={v}"
            for k, v in sorted(((job_spec.get("selector") or {}).get("matchLabels") or {}).items())
        )
        last = status.get("lastScheduleTime")
        return [
            obj["metadata"]["name"],
            spec.get("schedule", ""),
            spec.get("timeZone") or "<none>",
            str(bool(spec.get("suspend"))),
            len(status.get("active") or []),
            self.since(last) if last else "<none>",
            self.age(obj),
            ",".join(str(c.get("name", "")) for c in containers),
            ",".join(str(c.get("image", "")) for c in containers),
            selector or "<none>",
        ]

    def namespace(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", ""), self.age(obj)]

    def config_map(self, obj: Obj) -> list[Any]:
        data = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [obj["metadata"]["name"], data, self.age(obj)]

    def default(self, obj: Obj) -> list[Any]:
        return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp")]


_COLUMNS: dict[ResourceType, tuple[list[Column], str]] = {
    JOBS: (
        [
            _NAME,
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            _AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "job",
    ),
    PODS: (
        [
            _NAME,
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            _AGE,
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        "pod",
    ),
    NODES: (
        [
            _NAME,
            ("Status", "string", 0),
            ("Roles", "string", 0),
            _AGE,
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        "node",
    ),
    EVENTS: (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("First Seen", "string", 1),
            ("Count", "integer", 1),
            ("Name", "string", 1),
        ],
        "event",
    ),
    CRONJOBS: (
        [
            _NAME,
            ("Schedule", "string", 0),
            ("Timezone", "string", 0),
            ("Suspend", "boolean", 0),
            ("Active", "integer", 0),
            ("Last Schedule", "date", 0),
            _AGE,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "cronjob",
    ),
    NAMESPACES: ([_NAME, ("Status", "string", 0), _AGE], "namespace"),
    CONFIGMAPS: ([_NAME, ("Data", "integer", 0), _AGE], "config_map"),
}
_DEFAULT: tuple[list[Column], str] = ([_NAME, ("Created At", "date", 0)], "default")


def table(
    resource: ResourceType,
    objects: Sequence[Obj],
    clock: SimClock,
    list_metadata: Obj,
    include_object: str = "Metadata",
) -> Obj:
    """The ``Table`` for these objects (a list, or one object)."""
    columns, method = _COLUMNS.get(resource, _DEFAULT)
    printer = Printer(clock)
    cells: Callable[[Obj], list[Any]] = getattr(printer, method)
    rows = []
    for obj in objects:
        row: Obj = {"cells": cells(obj)}
        if include_object == "Object":
            row["object"] = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" and priority == 0 else "",
                "description": "",
                "priority": priority,
            }
            for name, kind, priority in columns
        ],
        "rows": rows,
    }
