"""The exception message for a failed Job: what failed, where, and the last log lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from ._objects import Obj
from .jobs import interpret_job
from .state import JobState, PodFailure

MAX_PODS = 5
"""Failing pods described in full (the newest); the others are only named."""
MAX_LINE_CHARS = 300
MAX_POD_LOG_CHARS = 2500
MAX_TOTAL_CHARS = 12000


def _tail(log: str, lines: int) -> list[str]:
    """The last ``lines`` lines, each cut to :data:`MAX_LINE_CHARS`, within
    :data:`MAX_POD_LOG_CHARS` in all (older lines dropped first)."""
    tail = log.rstrip("\n").splitlines()[-lines:]
    out: list[str] = []
    used = 0
    for line in reversed(tail):
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + "..."
        used += len(line) + 7
        if used > MAX_POD_LOG_CHARS and out:
            break
        out.append(line)
    return list(reversed(out))


def _pod_header(pod: str, failures: list[PodFailure]) -> str:
    first = failures[0]
    head = f"pod {pod}" + (f" (index {first.index})" if first.index is not None else "")
    details = []
    for failure in failures:
        if failure.exit_code is not None:
            text = f"container {failure.container} exited with code {failure.exit_code}"
            text += f" ({failure.reason})"
            if failure.restarts:
                text += f" after {failure.restarts} restarts"
        else:
            text = f"failed ({failure.reason})"
        if failure.disruption:
            text += f", disrupted: {failure.disruption}"
        if failure.message:
            text += f"; message: {' '.join(failure.message.split())[:MAX_LINE_CHARS]}"
        details.append(text)
    return f"- {head}: " + "; ".join(details)


def summarize_failure(state: JobState, logs: Mapping[str, str], *, tail_lines: int = 20) -> str:
    """The message of the exception raised for a failed Job.

    It holds ``state.message`` (reason and the controller's message), then each failing pod
    (newest last; completion index for Indexed Jobs) with its containers' exit codes, reasons
    and termination messages, and the last ``tail_lines`` lines of its log from ``logs`` (pod
    name → log text, fetched by the caller). Pods that were preempted or evicted come after the
    pods that failed by themselves are exhausted. Without any failed pod (a deadline, a deleted
    Job, a permanent problem), the pods in ``logs`` are shown instead. The whole is capped at
    about :data:`MAX_TOTAL_CHARS` characters.
    """
    out = [state.message.strip() or f"The Job failed ({state.reason})."]
    permanent = [p for p in state.problems if p.permanent and p.message != state.message]
    for problem in permanent[:MAX_PODS]:
        out.append(f"- {problem.message}")

    by_pod: dict[str, list[PodFailure]] = {}
    for failure in state.failures:
        by_pod.setdefault(failure.pod, []).append(failure)
    own = [pod for pod, fs in by_pod.items() if any(not f.disruption for f in fs)]
    ordered = own or list(by_pod)
    shown = ordered[-MAX_PODS:]
    hidden = [pod for pod in by_pod if pod not in shown]

    sections: list[tuple[str, list[str]]] = []
    if shown:
        out.append("Failed pods:" if len(shown) > 1 else "Failed pod:")
        for pod in shown:
            sections.append((_pod_header(pod, by_pod[pod]), _tail(logs.get(pod, ""), tail_lines)))
    else:
        pods_with_logs = [pod for pod, text in logs.items() if text and text.strip()]
        if pods_with_logs:
            out.append("Pods:")
        for pod in pods_with_logs[-MAX_PODS:]:
            sections.append((f"- pod {pod}", _tail(logs[pod], tail_lines)))

    for header, tail in sections:
        out.append(header)
        if tail:
            out.append(f"  last {len(tail)} log lines:")
            out.extend(f"    | {line}" for line in tail)
        else:
            out.append("  (no log output)")
    if hidden:
        names = ", ".join(hidden[:10]) + (", ..." if len(hidden) > 10 else "")
        out.append(f"{len(hidden)} more failed pod(s): {names}")

    text = "\n".join(out)
    if len(text) > MAX_TOTAL_CHARS:
        text = text[: MAX_TOTAL_CHARS - 40].rstrip() + "\n... (message truncated)"
    return text


def summarize_job_verdict(
    headline: str, pods: Sequence[Obj], logs: Mapping[str, str], *, tail_lines: int = 20
) -> str:
    """:func:`summarize_failure` for the waiter's verdict ``headline`` (what failed and why)
    and the Job's pods as they are now (logs: pod name → log text)."""
    state = interpret_job(None, pods, [])
    return summarize_failure(replace(state, message=headline), logs, tail_lines=tail_lines)
