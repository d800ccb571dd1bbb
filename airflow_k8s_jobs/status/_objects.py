"""Small readers for Kubernetes objects as the API returns them in JSON (plain dicts, camelCase).

Everything here tolerates missing fields: a watch can hand us an object before a controller has
written its status, and older clusters lack newer fields.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

Obj = Mapping[str, Any]

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``metav1.Time`` or ``MicroTime``) as an aware datetime, else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        return None
    return _parse_rfc3339(value)


@functools.lru_cache(maxsize=8192)
def _parse_rfc3339(value: str) -> datetime | None:
    """Cached: waiters read the same objects' timestamps again on every change."""
    found = _RFC3339.match(value.strip())
    if not found:
        return None
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone and zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
    except ValueError:
        return None


def format_age(seconds: float) -> str:
    """A compact age: ``45s``, ``2m``, ``1h5m``, ``2d3h`` (rounded down, never negative)."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def format_duration(seconds: float) -> str:
    """Like :func:`format_age` but with seconds kept under an hour (``5m12s``)."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return format_age(total)


def meta(obj: Obj | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def name_of(obj: Obj | None) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Obj | None) -> str:
    return str(meta(obj).get("namespace") or "")


def spec(obj: Obj | None) -> Mapping[str, Any]:
    return (obj or {}).get("spec") or {}


def status(obj: Obj | None) -> Mapping[str, Any]:
    return (obj or {}).get("status") or {}


def conditions(obj: Obj | None) -> list[Mapping[str, Any]]:
    return [c for c in status(obj).get("conditions") or [] if isinstance(c, Mapping)]


def condition(obj: Obj | None, kind: str) -> Mapping[str, Any] | None:
    """The last condition of that type (there should be only one)."""
    found = None
    for cond in conditions(obj):
        if cond.get("type") == kind:
            found = cond
    return found


def is_true(cond: Mapping[str, Any] | None) -> bool:
    return bool(cond) and str((cond or {}).get("status")) == "True"


def is_false(cond: Mapping[str, Any] | None) -> bool:
    return bool(cond) and str((cond or {}).get("status")) == "False"


def as_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def completion_index(pod: Obj) -> int | None:
    """The pod's completion index (Indexed Jobs), from the annotation or the label."""
    for source in (meta(pod).get("annotations") or {}, meta(pod).get("labels") or {}):
        value = source.get(COMPLETION_INDEX)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


def job_name_of_pod(pod: Obj) -> str | None:
    labels = meta(pod).get("labels") or {}
    for key in JOB_NAME_LABELS:
        if labels.get(key):
            return str(labels[key])
    for ref in meta(pod).get("ownerReferences") or []:
        if ref.get("kind") == "Job" and ref.get("name"):
            return str(ref["name"])
    return None


# --- events -----------------------------------------------------------------------------------


def event_last(event: Obj) -> datetime | None:
    """When the event last happened: ``lastTimestamp``, the series, ``eventTime``, creation."""
    series = event.get("series") or {}
    for value in (
        event.get("lastTimestamp"),
        series.get("lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        meta(event).get("creationTimestamp"),
    ):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return None


def event_first(event: Obj) -> datetime | None:
    """When the event first happened: ``firstTimestamp``, ``eventTime``, creation."""
    for value in (
        event.get("firstTimestamp"),
        event.get("eventTime"),
        meta(event).get("creationTimestamp"),
        event.get("lastTimestamp"),
    ):
        parsed = parse_time(value)
        if parsed is not None:
            return parsed
    return None


def events_about(events: Iterable[Obj], obj: Obj) -> list[Obj]:
    """Events whose ``involvedObject`` (or ``regarding``) is ``obj``, oldest first.

    Matched by name (and kind), and by uid when both sides carry one, so events of an earlier
    object of the same name are left out.
    """
    name, uid = name_of(obj), meta(obj).get("uid")
    kind = obj.get("kind")
    found = []
    for event in events:
        ref = event.get("involvedObject") or event.get("regarding") or {}
        if ref.get("name") != name:
            continue
        if kind and ref.get("kind") and ref.get("kind") != kind:
            continue
        if uid and ref.get("uid") and ref.get("uid") != uid:
            continue
        found.append(event)
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    found.sort(key=lambda e: event_last(e) or epoch)
    return found


def event_container(event: Obj) -> str | None:
    """The container an event is about, from ``fieldPath`` ``spec.containers{main}``."""
    ref = event.get("involvedObject") or event.get("regarding") or {}
    found = re.search(r"\{([^}]*)\}", str(ref.get("fieldPath") or ""))
    return found.group(1) if found else None


# --- the cluster's clock ----------------------------------------------------------------------


def _times_in_object(obj: Obj) -> Iterable[Any]:
    m = meta(obj)
    yield m.get("creationTimestamp")
    for entry in m.get("managedFields") or []:
        if isinstance(entry, Mapping):
            yield entry.get("time")
    st = status(obj)
    for key in ("startTime", "completionTime", "lastProbeTime"):
        yield st.get(key)
    for cond in conditions(obj):
        yield cond.get("lastTransitionTime")
        yield cond.get("lastProbeTime")
        yield cond.get("lastHeartbeatTime")
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in st.get(key) or []:
            for state_key in ("state", "lastState"):
                for detail in ((cs or {}).get(state_key) or {}).values():
                    if isinstance(detail, Mapping):
                        yield detail.get("startedAt")
                        yield detail.get("finishedAt")


def _times_in_event(event: Obj) -> Iterable[Any]:
    yield event.get("firstTimestamp")
    yield event.get("lastTimestamp")
    yield event.get("eventTime")
    yield (event.get("series") or {}).get("lastObservedTime")
    yield meta(event).get("creationTimestamp")


def newest_time(objects: Sequence[Obj | None], events: Sequence[Obj] = ()) -> datetime | None:
    """The newest timestamp written by the cluster in these objects and events.

    ``deletionTimestamp`` is left out: it lies in the future (the end of the grace period).
    """
    newest: datetime | None = None
    candidates: list[Any] = []
    for obj in objects:
        if obj:
            candidates.extend(_times_in_object(obj))
    for event in events:
        candidates.extend(_times_in_event(event))
    for value in candidates:
        parsed = parse_time(value)
        if parsed is not None and (newest is None or parsed > newest):
            newest = parsed
    return newest


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
