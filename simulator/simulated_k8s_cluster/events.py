"""Core/v1 Events, aggregated like the client-go event recorder (same reason+message → count)."""

from __future__ import annotations

from typing import Any

from .clock import SimClock
from .resources import EVENTS
from .store import Store

Obj = dict[str, Any]


class EventRecorder:
    """Writes ``v1.Event`` objects about other objects, as components do in a real cluster."""

    def __init__(self, store: Store, clock: SimClock) -> None:
        self.store = store
        self.clock = clock
        self._seen: dict[tuple[str, str, str, str, str], str] = {}
        self._serial = 0

    def record(
        self,
        involved: Obj,
        event_type: str,
        reason: str,
        message: str,
        component: str,
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        """Record an event; a repeat of the same one bumps ``count`` and ``lastTimestamp``."""
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), event_type, reason, message, component)
        now = self.clock.timestamp()
        existing_name = self._seen.get(key)
        if existing_name is not None:
            existing = self.store.get(EVENTS, namespace, existing_name)
            if existing is not None:
                existing["count"] = existing.get("count", 1) + 1
                existing["lastTimestamp"] = now
                self.store.update(EVENTS, existing)
                return
        self._serial += 1
        name = f"{meta['name']}.{int(self.clock.now() * 1e6) + self._serial:x}"
        involved_ref = {
            "kind": involved.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved_ref["fieldPath"] = field_path
        source: dict[str, str] = {"component": component}
        if host:
            source["host"] = host
        event = {
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved_ref.items() if v is not None},
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": None,
            "count": 1,
            "type": event_type,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        self.store.create(EVENTS, event)
        self._seen[key] = name
