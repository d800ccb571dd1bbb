"""Live pod logs: while a Job runs, each new log line of its pods reaches the task log.

The waiting loops (:mod:`.waiting`) hand :class:`LiveLogs` the pods they see on every change;
it follows the log (``follow=true&timestamps=true``) of each container that has started, at most
``max_streams`` at once per task and :data:`STREAMS_PER_CLIENT` per process and cluster (the
others queue in creation order, so later waves are followed too),
and writes every line to the log as ``<pod>[/<container>] | <line>``. Memory stays bounded: one
line of at most ``max_line_bytes`` per open stream, and the names of the containers in the queue.

A stream that breaks while its container still runs is resumed with ``sinceTime`` from the
last line's timestamp, and the lines already written are skipped, so a line is written once.
Nothing here fails the task: a log that cannot be read is noted once and left.

Where the lines land: while the task is deferred they are the trigger's log lines, which the
triggerer writes into the task's log (Airflow 3 through the task's log, Airflow 2.11 in the
``.trigger.<id>.log`` file beside it that the UI shows with the task's log); in the synchronous
mode they are the worker's own task log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .errors import KubeApiError, TransientError
from .kube import PODS, error_for
from .retrying import RetryPolicy

DEFAULT_STREAMS = 10
"""How many containers' logs one task follows at once."""
STREAMS_PER_CLIENT = 50
"""How many log streams all the tasks of a process (a triggerer) hold open on one cluster at
once: half of ``kubernetes_asyncio``'s 100 pooled connections, so that the watches and the
other requests always have connections left."""
MAX_LINE_BYTES = 16 * 1024
"""Longer lines are cut to this many bytes (and marked so)."""
DRAIN_SECONDS = 0.1
"""How long the open streams may go on once the outcome is known, for lines already on their
way. Not until each stream ends: a kubelet ends a followed log up to 5 s after its container
exited (it checks the container's state that often), and the task must not wait for that; the
full log is written again when the task resumes."""
RESUMES = 5
"""How many times in a row a broken stream is resumed before its container is left to the final
log (a line read in between starts the count again)."""
RESUME_POLICY = RetryPolicy(initial=0.5, cap=10.0)
"""How long to wait before resuming a broken stream (jitter, at least the server's Retry-After)."""

Obj = dict[str, Any]


class StreamSlots:
    """The open-stream budget shared by every task of a process on one cluster.

    A :class:`LiveLogs` with a container to follow takes a slot or, with none free, waits its
    turn in line (first come, first served; one place per LiveLogs, not a task per container:
    a triggerer may hold thousands of waiting tasks). A slot given back goes to the first in
    line, which starts one stream and, with more to follow, goes to the back of the line.
    """

    def __init__(self, limit: int = STREAMS_PER_CLIENT) -> None:
        self.free = limit
        self._line: dict[LiveLogs, None] = {}  # insertion-ordered

    def take(self, live: LiveLogs) -> bool:
        """A slot for ``live`` now (True), or its place in line (False)."""
        if self.free > 0 and not self._line:
            self.free -= 1
            return True
        self._line.setdefault(live)
        return False

    def give_back(self) -> None:
        self.free += 1
        while self.free > 0 and self._line:
            live = next(iter(self._line))
            del self._line[live]
            self.free -= 1
            if not live.slot_granted():
                self.free += 1

    def leave(self, live: LiveLogs) -> None:
        self._line.pop(live, None)


_slots: weakref.WeakKeyDictionary[Any, StreamSlots] = weakref.WeakKeyDictionary()


def stream_slots(api_client: Any) -> StreamSlots:
    """The open-stream budget shared by every task of the process using ``api_client``."""
    slots = _slots.get(api_client)
    if slots is None:
        slots = _slots[api_client] = StreamSlots()
    return slots


@dataclass(frozen=True)
class Stream:
    """One container's log: where it is and how the task log names it."""

    pod: str
    container: str
    label: str


def started_containers(pod: Obj, containers: Iterable[str] | None = None) -> list[str]:
    """The containers of ``pod`` that have started (running or terminated), in spec order.

    ``containers`` limits them (Argo: only ``main``); by default every regular container.
    """
    spec_names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    wanted = [n for n in spec_names if n and (containers is None or n in set(containers))]
    started = set()
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        if (
            "running" in state
            or "terminated" in state
            or "terminated" in (status.get("lastState") or {})
        ):
            started.add(status.get("name"))
    return [n for n in wanted if n in started]


def split_timestamp(line: str) -> tuple[str, str]:
    """``("2026-12-06T17:17:21.123456789Z", "text")`` from a line read with ``timestamps=true``."""
    stamp, _, text = line.partition(" ")
    return stamp, text


def timestamp_key(stamp: str) -> tuple[str, int]:
    """A sort key for RFC 3339 timestamps with any number of fraction digits (all UTC, ``Z``)."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    digits = "".join(ch for ch in fraction if ch.isdigit())[:9]
    return whole, int(digits.ljust(9, "0") or 0)


async def bounded_lines(
    chunks: AsyncIterable[bytes], max_bytes: int = MAX_LINE_BYTES
) -> AsyncIterator[str]:
    """The lines of a byte stream, each cut to ``max_bytes`` (never more held in memory)."""
    held = bytearray()
    cut = False
    async for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not cut:
                room = max_bytes - len(held)
                held += piece[:room]
                cut = len(piece) > room
            if end < 0:
                break
            yield held.decode(errors="replace") + (" [line cut]" if cut else "")
            held.clear()
            cut = False
            start = end + 1
    if held:
        yield held.decode(errors="replace") + (" [line cut]" if cut else "")


class LiveLogs:
    """Follows the logs of a Job's (or Workflow's) pods and writes each new line to ``log``.

    :param api_client: the ``kubernetes_asyncio`` ApiClient of the cluster (shared, not closed).
    :param namespace: the pods' namespace.
    :param log: where lines go (the trigger's or the task's logger).
    :param containers: only these container names (default: every regular container).
    :param max_streams: containers followed at once; the rest wait their turn.
    :param policy: how long to wait before resuming a broken stream.
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        log: logging.Logger | Any,
        *,
        containers: Iterable[str] | None = None,
        max_streams: int = DEFAULT_STREAMS,
        max_line_bytes: int = MAX_LINE_BYTES,
        policy: RetryPolicy = RESUME_POLICY,
    ) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.log = log
        self.containers = tuple(containers) if containers is not None else None
        self.max_streams = max_streams
        self.max_line_bytes = max_line_bytes
        self.policy = policy
        self._seen: set[tuple[str, str]] = set()
        self._live: set[tuple[str, str]] = set()  # containers running when last seen
        self._queue: deque[Stream] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self._resuming: set[asyncio.Task[Any]] = set()  # streams waiting to be resumed
        self._closing = False
        self.lines_written = 0

    def update(self, pods: Iterable[Obj]) -> None:
        """Note the pods as they are now: queue every container that has newly started."""
        if self._closing:
            return
        ordered = sorted(
            pods,
            key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]),
        )
        many = any(len((p.get("spec") or {}).get("containers") or []) > 1 for p in ordered)
        self._live = {
            (p["metadata"]["name"], status.get("name"))
            for p in ordered
            for status in (p.get("status") or {}).get("containerStatuses") or []
            if "running" in (status.get("state") or {})
        }
        for pod in ordered:
            name = pod["metadata"]["name"]
            for container in started_containers(pod, self.containers):
                if (name, container) in self._seen:
                    continue
                self._seen.add((name, container))
                label = f"{name}/{container}" if many and self.containers is None else name
                self._queue.append(Stream(name, container, label))
        self._start_queued()

    def _start_queued(self) -> None:
        slots = stream_slots(self.api_client)
        while self._queue and len(self._running) < self.max_streams:
            if not slots.take(self):
                return  # in line: slot_granted() comes back here
            self._start(self._queue.popleft())

    def slot_granted(self) -> bool:
        """A slot of the process's budget is this one's now: start the next stream (False:
        nothing to start, the slot stays free)."""
        if not self._queue or len(self._running) >= self.max_streams:
            return False
        self._start(self._queue.popleft())
        self._start_queued()  # more to follow: back in line
        return True

    def _start(self, stream: Stream) -> None:
        task = asyncio.get_running_loop().create_task(self._follow(stream))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.warning("Live log stopped: %s", task.exception())
        with contextlib.suppress(RuntimeError):  # the loop is closing
            stream_slots(self.api_client).give_back()
            self._start_queued()

    async def aclose(self, grace: float = DRAIN_SECONDS) -> None:
        """Stop following: the streams open or queued get ``grace`` seconds to write their
        last lines (their containers have ended when the outcome is known); what is left then
        is in the final log only."""
        # The outcome is known, so every container has ended: a stream that ends now is
        # done, and one waiting to be resumed has nothing left to give.
        self._closing = True
        self._live.clear()
        for task in list(self._resuming):
            task.cancel()
        loop = asyncio.get_running_loop()
        until = loop.time() + grace
        while self._running and (left := until - loop.time()) > 0:
            await asyncio.wait(set(self._running), timeout=left)
        self._queue.clear()
        stream_slots(self.api_client).leave(self)
        for task in list(self._running):
            task.cancel()
        for task in list(self._running):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self, stream: Stream) -> None:
        """Write ``stream``'s new lines until its container ends (in a slot of its own)."""
        last: tuple[str, int] | None = None
        since: str | None = None
        failures = 0
        while True:
            retry_after = None
            try:
                async for line in self._lines(stream, since):
                    stamp, text = split_timestamp(line)
                    key = timestamp_key(stamp)
                    if last is not None and key <= last:
                        continue  # written before the stream was resumed
                    last, since, failures = key, stamp, 0
                    self.log.info("%s | %s", stream.label, text)
                    self.lines_written += 1
                if (stream.pod, stream.container) not in self._live:
                    return  # the container ended and its log with it
                # The server ended the stream of a container still running: resume.
            except TransientError as exc:
                self.log.info("Live log of %s broken (%s); resuming.", stream.label, exc)
                retry_after = exc.retry_after
            except KubeApiError as exc:
                self.log.info("No live log of %s: %s", stream.label, exc)
                return
            failures += 1
            if failures > RESUMES:
                self.log.info("Live log of %s left to the final log.", stream.label)
                return
            if self._closing:
                return
            pause = asyncio.ensure_future(
                self.policy.asleep(self.policy.backoff(failures, retry_after))
            )
            self._resuming.add(pause)
            try:
                await pause
            except asyncio.CancelledError:
                if self._closing and pause.cancelled():
                    return  # aclose() ended the pause, not a cancellation of this task
                raise
            finally:
                self._resuming.discard(pause)

    async def _lines(self, stream: Stream, since: str | None) -> AsyncIterator[str]:
        what = f"following the log of pod {stream.pod} in namespace {self.namespace}"
        query: list[tuple[str, Any]] = [
            ("container", stream.container),
            ("follow", "true"),
            ("timestamps", "true"),
        ]
        if since is not None:
            query.append(("sinceTime", since.split(".")[0].rstrip("Z") + "Z"))
        try:
            response = await self.api_client.call_api(
                PODS.path(self.namespace, stream.pod, "log"),
                "GET",
                query_params=query,
                header_params={"Accept": "*/*"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(total=None, sock_connect=60),
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
            raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc
        try:
            if not 200 <= response.status <= 299:
                raise error_for(response.status, await response.read(), response.headers, what)
            try:
                async for line in bounded_lines(response.content.iter_any(), self.max_line_bytes):
                    yield line
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                raise TransientError(f"{what}: stream broken: {exc}") from exc
        finally:
            response.release()
