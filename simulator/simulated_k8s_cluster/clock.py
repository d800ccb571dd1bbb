"""The cluster's clock: wall time that clients can trust, with cluster-decided durations scaled.

What clients see of time — object timestamps, the ``Date`` header, Events, conditions, log
timestamps — always comes from :meth:`SimClock.now`. With ``timeScale > 0`` that is the wall
clock (UTC): it never runs ahead or behind. ``timeScale`` instead shortens (or lengthens) the
durations the cluster decides by itself — how long a container's behaviour runs, image pulls,
node provisioning, scheduling and restart delays — through :meth:`SimClock.scaled`. Durations a
client wrote into an object (``activeDeadlineSeconds``, ``ttlSecondsAfterFinished``, grace
periods, Argo backoffs and deadlines …) are never scaled, so every deadline fires at the
instant a client would compute from the object's own timestamps.

``timeScale == 0`` is the manual clock for tests: it starts at the wall time of creation and
moves only through :meth:`SimClock.advance`; timestamps and the ``Date`` header both follow it,
so the cluster stays self-consistent (it just falls behind the wall clock) and deterministic.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone


class SimClock:
    """Wall-clock seconds since the cluster started, plus a scale for cluster-decided durations.

    ``time_scale`` is wall seconds per second of a duration the cluster decides (0.05 makes a
    behaviour of one minute run for three wall seconds). ``time_scale == 0`` freezes time: it
    moves only through :meth:`advance`, which makes timeouts testable without any real waiting.
    """

    def __init__(self, time_scale: float = 1.0, start: datetime | None = None) -> None:
        if time_scale < 0:
            raise ValueError(f"timeScale must be >= 0, got {time_scale}")
        self.time_scale = time_scale
        self._wall_origin = time.monotonic()
        self._offset = 0.0
        begin = start or datetime.now(timezone.utc)
        # The manual clock starts on a whole second so that advanced instants parse back exactly.
        self._epoch = begin.replace(microsecond=0) if time_scale == 0 else begin
        self._last_second: datetime | None = None
        self._last_timestamp = ""

    @property
    def manual(self) -> bool:
        """True when time moves only through :meth:`advance` (``timeScale: 0``)."""
        return self.time_scale == 0

    def now(self) -> float:
        """Seconds since the cluster started: wall seconds, or advanced seconds when manual."""
        if self.manual:
            return self._offset
        return time.monotonic() - self._wall_origin + self._offset

    def scaled(self, seconds: float) -> float:
        """How long a duration the cluster decides by itself lasts on this clock.

        ``seconds * timeScale`` with time running; unchanged with the manual clock (the test
        moves time by the unscaled amount)."""
        if self.manual:
            return seconds
        return seconds * self.time_scale

    def advance(self, seconds: float) -> None:
        """Jump time forward; only the manual clock (``timeScale: 0``) can be moved."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        if not self.manual and seconds > 0:
            raise ValueError(
                "advance() needs the manual clock (timeScale: 0): with time running the "
                "cluster's clock is the wall clock; use a smaller timeScale to shorten waits"
            )
        self._offset += seconds

    def wall_delay(self, seconds: float) -> float | None:
        """Wall seconds until ``seconds`` from now; None when time moves only by advance()."""
        if self.manual:
            return None
        return max(0.0, seconds)

    def datetime_at(self, at: float) -> datetime:
        """The UTC instant of ``at`` (seconds on this clock)."""
        return self._epoch + timedelta(seconds=at)

    def utcnow(self) -> datetime:
        """The cluster's current instant (what the ``Date`` header shows)."""
        return self.datetime_at(self.now())

    def timestamp(self, at: float | None = None) -> str:
        """RFC 3339 timestamp (second precision, like ``metav1.Time``) of an instant."""
        moment = self.datetime_at(self.now() if at is None else at).replace(microsecond=0)
        if moment != self._last_second:  # the controllers ask for the same second very often
            self._last_second = moment
            self._last_timestamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._last_timestamp

    def micro_timestamp(self, at: float | None = None) -> str:
        """RFC 3339 timestamp with microseconds, like ``metav1.MicroTime``."""
        moment = self.datetime_at(self.now() if at is None else at)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def parse(self, timestamp: str) -> float:
        """Seconds on this clock of an RFC 3339 timestamp."""
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        return (parsed - self._epoch).total_seconds()

    def log_cutoff(self, since_seconds: str | None, since_time: str | None) -> float | None:
        """Where a pod log read with ``sinceSeconds`` or ``sinceTime`` starts (None: the start)."""
        if since_seconds:
            return self.now() - float(since_seconds)
        if since_time:
            return self.parse(since_time)
        return None
