"""The exception message of a failed Job: reason, failing pods, their last log lines."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from airflow_k8s_jobs.status import JobState, PodFailure, interpret_job, summarize_failure
from airflow_k8s_jobs.status.summary import MAX_POD_LOG_CHARS, MAX_TOTAL_CHARS

FIXTURES = Path(__file__).parent / "fixtures_status"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def interpret(name: str) -> JobState:
    data = load(name)
    return interpret_job(data["job"], data["pods"], data["events"])


CRASH_LOG = "starting\nloading data\nTraceback (most recent call last):\nValueError: bad row 17\n"


def test_backoff_failure_names_the_pods_and_their_last_lines():
    state = interpret("backoff_limit_exceeded")
    logs = {pod: CRASH_LOG for pod in state.failed_pods}
    text = summarize_failure(state, logs)
    lines = text.splitlines()
    assert lines[0] == state.message
    assert lines[1] == "Failed pods:"
    first, last = state.failed_pods
    assert f"- pod {first}: container main exited with code 2 (Error); message: bad row 17" in text
    assert text.index(f"- pod {first}") < text.index(f"- pod {last}")  # newest last
    assert text.count("  last 4 log lines:") == 2
    assert "    | ValueError: bad row 17" in lines
    assert lines[-1] == "    | ValueError: bad row 17"


def test_indexed_failure_shows_the_index():
    state = interpret("indexed_failed_indexes")
    [pod] = state.failed_pods
    text = summarize_failure(state, {pod: "shard 2\nerror: corrupt input\n"})
    assert f"- pod {pod} (index 2): container main exited with code 3 (Error); " in text
    assert "message: corrupt input in shard 2" in text
    assert text.endswith("    | shard 2\n    | error: corrupt input")


def test_only_the_last_lines_of_a_long_log():
    state = interpret("pod_failure_policy_failjob")
    [pod] = state.failed_pods
    log = "\n".join(f"line {i}" for i in range(100))
    text = summarize_failure(state, {pod: log})
    assert "  last 20 log lines:" in text
    assert "    | line 80" in text and "    | line 79" not in text
    assert "    | line 99" in text
    assert "line 95" in summarize_failure(state, {pod: log}, tail_lines=5)
    assert "line 94" not in summarize_failure(state, {pod: log}, tail_lines=5)


def test_long_lines_and_big_logs_are_capped():
    state = interpret("pod_failure_policy_failjob")
    [pod] = state.failed_pods
    log = "\n".join("x" * 5000 for _ in range(20))
    text = summarize_failure(state, {pod: log})
    log_lines = [line for line in text.splitlines() if line.startswith("    | ")]
    assert log_lines and all(len(line) <= 6 + 303 for line in log_lines)
    assert sum(len(line) for line in log_lines) <= MAX_POD_LOG_CHARS + 400


def test_total_size_is_capped():
    state = interpret("backoff_limit_exceeded")
    failures = tuple(
        replace(state.failures[0], pod=f"crash-{i:03d}", message="m" * 400) for i in range(40)
    )
    state = replace(state, failures=failures, failed_pods=tuple(f.pod for f in failures))
    logs = {f.pod: "\n".join("y" * 290 for _ in range(20)) for f in failures}
    text = summarize_failure(state, logs)
    assert len(text) <= MAX_TOTAL_CHARS
    assert "35 more failed pod(s): crash-000, crash-001" in text or text.endswith(
        "(message truncated)"
    )


def test_many_failed_pods_show_the_newest_and_name_the_rest():
    state = interpret("backoff_limit_exceeded")
    failures = tuple(replace(state.failures[0], pod=f"crash-{i}") for i in range(8))
    state = replace(state, failures=failures)
    text = summarize_failure(state, {})
    assert "- pod crash-7:" in text and "- pod crash-3:" in text
    assert "- pod crash-2:" not in text
    assert "3 more failed pod(s): crash-0, crash-1, crash-2" in text
    assert text.count("(no log output)") == 5


def test_missing_logs_are_said():
    state = interpret("pod_failure_policy_failjob")
    assert "(no log output)" in summarize_failure(state, {})


def test_preempted_pods_come_only_without_own_failures():
    own = interpret("backoff_limit_exceeded")
    preempted = PodFailure(
        pod="crash-preempted",
        index=None,
        container="main",
        exit_code=143,
        reason="Error",
        message="",
        disruption="PreemptionByScheduler",
    )
    state = replace(own, failures=(preempted, *own.failures))
    text = summarize_failure(state, {})
    assert "crash-preempted" in text  # named among the others
    assert "- pod crash-preempted" not in text
    only = replace(own, failures=(preempted,))
    text = summarize_failure(only, {"crash-preempted": "bye"})
    assert "- pod crash-preempted: container main exited with code 143 (Error), " in text
    assert "disrupted: PreemptionByScheduler" in text


def test_without_failed_pods_the_given_logs_are_shown():
    state = interpret("deadline_exceeded")
    assert state.failures == ()
    text = summarize_failure(state, {"slow-abcde": "working\nstill working\n", "empty": ""})
    assert text.splitlines()[0] == state.message
    assert "Pods:" in text and "- pod slow-abcde" in text and "    | still working" in text
    assert "empty" not in text


def test_permanent_problem_failure():
    data = load("invalid_image_name")
    state = interpret_job(data["job"], data["pods"], data["events"])
    text = summarize_failure(state, {})
    assert text == state.message  # the problem is the message; no pod failed


def test_permanent_problems_besides_the_outcome_are_listed():
    data = load("invalid_image_name")
    data["job"]["status"]["conditions"] = [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "late"}
    ]
    state = interpret_job(data["job"], data["pods"], data["events"])
    text = summarize_failure(state, {})
    assert text.startswith(state.message)
    assert "\n- The image of pod " in text


def test_crash_looping_pod_of_a_failed_job():
    data = load("crash_loop_back_off")
    data["job"]["status"]["conditions"] = [
        {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
        }
    ]
    state = interpret_job(data["job"], data["pods"], data["events"])
    [pod] = state.failed_pods
    text = summarize_failure(state, {pod: "boom\nboom\n"})
    assert "exited with code 1 (Error) after 3 restarts" in text
    assert "    | boom" in text
