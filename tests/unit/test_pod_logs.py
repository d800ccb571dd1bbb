"""What is kept of the pods' logs once they are written: tails bounded in lines and size."""

from __future__ import annotations

import logging
from typing import Any

from airflow_k8s_jobs.pod_logs import KEPT_CHARS, KEPT_LINES, log_tail, print_pod_logs


def test_a_log_tail_keeps_the_last_lines() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    tail = log_tail(text)
    assert tail.splitlines() == [f"line {i}" for i in range(1000 - KEPT_LINES, 1000)]
    assert log_tail("short\nlog") == "short\nlog"


def test_a_log_tail_is_bounded_in_size_whatever_the_line_length() -> None:
    tail = log_tail("x" * (10 * KEPT_CHARS) + "\nlast line\n")
    assert len(tail) == KEPT_CHARS
    assert tail.endswith("last line\n")


def test_written_logs_are_whole_in_the_task_log_but_kept_as_tails(caplog: Any) -> None:
    text = "".join(f"step {i}\n" for i in range(300))
    pods = [{"metadata": {"name": f"pod-{n}"}, "status": {"phase": "Failed"}} for n in range(3)]

    def request(method: str, path: str, **kwargs: Any) -> str:
        assert method == "GET" and path.endswith("/log")
        return text

    log = logging.getLogger("test_pod_logs")
    with caplog.at_level(logging.INFO, logger="test_pod_logs"):
        kept = print_pod_logs(request, log, "ns", pods, "Job ns/j", lambda p: p["metadata"]["name"])
    assert set(kept) == {"pod-0", "pod-1", "pod-2"}
    assert all(value == log_tail(text) for value in kept.values())
    written = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pod-1 | ")]
    assert written[0] == "pod-1 | step 0" and written[-1] == "pod-1 | step 299"
