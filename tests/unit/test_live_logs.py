"""The pure parts of live logs: which containers have started, timestamps, bounded lines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from airflow_k8s_jobs.live_logs import (
    StreamSlots,
    bounded_lines,
    split_timestamp,
    started_containers,
    timestamp_key,
)


def pod(*statuses: dict[str, Any], containers: tuple[str, ...] = ("main",)) -> dict[str, Any]:
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": n} for n in containers]},
        "status": {"containerStatuses": list(statuses)},
    }


def test_only_running_or_terminated_containers_have_a_log_to_follow() -> None:
    waiting = {"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert started_containers(pod(waiting)) == []
    assert started_containers(pod({"name": "main", "state": {"running": {}}})) == ["main"]
    assert started_containers(pod({"name": "main", "state": {"terminated": {}}})) == ["main"]
    restarting = {"name": "main", "state": {"waiting": {}}, "lastState": {"terminated": {}}}
    assert started_containers(pod(restarting)) == ["main"]


def test_containers_keep_spec_order_and_can_be_limited() -> None:
    argo = pod(
        {"name": "wait", "state": {"running": {}}},
        {"name": "main", "state": {"running": {}}},
        containers=("main", "wait"),
    )
    assert started_containers(argo) == ["main", "wait"]
    assert started_containers(argo, ["main"]) == ["main"]
    assert started_containers({"metadata": {"name": "p"}}) == []


def test_timestamps_sort_whatever_their_fraction_digits() -> None:
    assert split_timestamp("2026-12-06T17:17:21.5Z a b") == ("2026-12-06T17:17:21.5Z", "a b")
    stamps = [
        "2026-12-06T17:17:21Z",
        "2026-12-06T17:17:21.000000001Z",
        "2026-12-06T17:17:21.05Z",
        "2026-12-06T17:17:21.123456Z",
        "2026-12-06T17:17:21.5Z",
        "2026-12-06T17:17:22.000001Z",
    ]
    assert sorted(stamps, key=timestamp_key) == stamps
    assert sorted(reversed(stamps), key=timestamp_key) == stamps


def lines_of(chunks: list[bytes], max_bytes: int) -> list[str]:
    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def read() -> list[str]:
        return [line async for line in bounded_lines(stream(), max_bytes)]

    return asyncio.run(read())


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"a\nb\n"], ["a", "b"]),
        ([b"a", b"b\nc", b"\n"], ["ab", "c"]),
        ([b"no newline at the end"], ["no newline"[:8] + " [line cut]"]),
        ([b"0123456789abc\nok\n"], ["01234567 [line cut]", "ok"]),
        ([b"0123", b"456789", b"abc\n", b"\n"], ["01234567 [line cut]", ""]),
        ([b"caf\xc3\xa9\n"], ["café"]),
    ],
)
def test_lines_are_cut_to_a_bound(chunks: list[bytes], expected: list[str]) -> None:
    assert lines_of(chunks, max_bytes=8) == expected


class Waiting:
    """Stands for a LiveLogs with ``wants`` containers left to follow."""

    def __init__(self, slots: StreamSlots, name: str, wants: int, started: list[str]) -> None:
        self.slots, self.name, self.wants, self.started = slots, name, wants, started

    def start_queued(self) -> None:
        while self.wants and self.slots.take(self):  # type: ignore[arg-type]
            self.wants -= 1
            self.started.append(self.name)

    def slot_granted(self) -> bool:
        if not self.wants:
            return False
        self.wants -= 1
        self.started.append(self.name)
        self.start_queued()
        return True


def test_stream_slots_go_to_those_in_line_first_come_first_served() -> None:
    slots = StreamSlots(limit=2)
    started: list[str] = []
    a, b, c = (Waiting(slots, n, w, started) for n, w in (("a", 3), ("b", 1), ("c", 1)))
    for waiting in (a, b, c):
        waiting.start_queued()
    assert started == ["a", "a"] and slots.free == 0  # a's third, b and c wait in line
    slots.give_back()
    slots.give_back()
    assert started == ["a", "a", "a", "b"]  # in the order they came
    slots.give_back()
    assert started == ["a", "a", "a", "b", "c"] and slots.free == 0
    slots.give_back()
    assert slots.free == 1  # nobody in line
    Waiting(slots, "d", 2, started).start_queued()
    assert started[-1] == "d" and slots.free == 0


def test_a_closed_one_leaves_the_line() -> None:
    slots = StreamSlots(limit=1)
    started: list[str] = []
    a, b = Waiting(slots, "a", 1, started), Waiting(slots, "b", 1, started)
    a.start_queued()
    b.start_queued()
    slots.leave(b)  # type: ignore[arg-type]
    slots.give_back()
    assert started == ["a"] and slots.free == 1
