"""Simulated time: a scaled, advanceable clock shared by every part of the simulated cluster."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone


class SimClock:
    """Simulated seconds that run ``1 / time_scale`` times faster than wall time.

    ``time_scale`` is wall seconds per simulated second (0.05 makes a simulated minute last
    three wall seconds). ``time_scale == 0`` freezes time: it moves only through :meth:`advance`,
    which makes timeouts testable without any real waiting.
    """

    def __init__(self, time_scale: float = 1.0, start: datetime | None = None) -> None:
        if time_scale < 0:
            raise ValueError(f"timeScale must be >= 0, got {time_scale}")
        self.time_scale = time_scale
        self._wall_origin = time.monotonic()
        self._offset = 0.0
        self._epoch = (start or datetime.now(timezone.utc)).replace(microsecond=0)

    def now(self) -> float:
        """Simulated seconds since the cluster started."""
        if self.time_scale == 0:
            return self._offset
        return (time.monotonic() - self._wall_origin) / self.time_scale + self._offset

    def advance(self, seconds: float) -> None:
        """Jump simulated time forward."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds

    def wall_delay(self, sim_seconds: float) -> float | None:
        """Wall seconds until ``sim_seconds`` from now; None when time is frozen."""
        if self.time_scale == 0:
            return None
        return max(0.0, sim_seconds * self.time_scale)

    def datetime_at(self, sim_seconds: float) -> datetime:
        return self._epoch + timedelta(seconds=sim_seconds)

    def timestamp(self, sim_seconds: float | None = None) -> str:
        """RFC 3339 timestamp (second precision, like ``metav1.Time``) of a simulated instant."""
        at = self.now() if sim_seconds is None else sim_seconds
        return self.datetime_at(at).strftime("%Y-%m-%dT%H:%M:%SZ")

    def micro_timestamp(self, sim_seconds: float | None = None) -> str:
        """RFC 3339 timestamp with microseconds, like ``metav1.MicroTime``."""
        at = self.now() if sim_seconds is None else sim_seconds
        return self.datetime_at(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def parse(self, timestamp: str) -> float:
        """Simulated seconds of an RFC 3339 timestamp written by :meth:`timestamp`."""
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        return (parsed - self._epoch).total_seconds()
