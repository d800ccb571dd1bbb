"""The pure parts of the fan-out log benchmark: counting the task log's pod lines, and the table."""

from __future__ import annotations

import pytest

# The benchmark counts the lines of Airflow 3's structlog task log.
structlog = pytest.importorskip("structlog")
import fanout_logs as fanout  # noqa: E402


def test_pod_of_strips_the_completion_index() -> None:
    assert fanout.pod_of("job-7-abcde[7]") == "job-7-abcde"
    assert fanout.pod_of("job-7-abcde") == "job-7-abcde"


def test_line_counter_counts_pod_lines_live_then_final_and_drops_them() -> None:
    counter = fanout.LineCounter()
    line = {"event": "job-3-x[3] | job-3-x line 1 of 300"}
    with pytest.raises(structlog.DropEvent):
        counter(None, "info", dict(line))
    with pytest.raises(structlog.DropEvent):
        counter(None, "info", {"event": "job-3-x | job-3-x line 2 of 300"})
    counter.current = counter.final
    with pytest.raises(structlog.DropEvent):
        counter(None, "info", dict(line))
    with pytest.raises(structlog.DropEvent):  # headings and skip marks: dropped, not counted
        counter(None, "info", {"event": "---- job-3-x[3] (Succeeded): 300 log lines"})
    with pytest.raises(structlog.DropEvent):
        counter(None, "info", {"event": "job-3-x[3] | ... 50 lines skipped ..."})
    other = {"event": "Job batch/job succeeded: 1/1 | done"}
    assert counter(None, "info", dict(other)) == other  # anything else goes on
    assert counter.live == {"job-3-x": 2}
    assert counter.final == {"job-3-x": 1}


def test_request_counts_by_kind() -> None:
    counters = {
        "get pods/log": 7,
        "list pods": 2,
        "list jobs": 1,
        "watch pods": 1,
        "watch jobs": 1,
        "create jobs": 1,
    }
    assert fanout.request_counts(counters) == {
        "log reads": 7,
        "lists": 3,
        "watches": 2,
        "other": 1,
    }


def test_table_names_coverage_and_bounds() -> None:
    result = {
        "completions": 10,
        "parallelism": 5,
        "lines_per_pod": 300,
        "live_log_streams": 10,
        "event_status": "success",
        "pods_live": 10,
        "pods_live_complete": 9,
        "lines_live": 2990,
        "pods_final": 10,
        "lines_final": 2500,
        "final_lines_per_pod": 250,
        "pods_either": 10,
        "streams_most": 10,
        "rss_growth_waiting_mib": 1.25,
        "rss_growth_total_mib": 3.5,
        "wait_seconds": 12.0,
        "total_seconds": 13.0,
        "lag_ms": "1 / 2 / 3 ms",
        "gc_full_collections": 2,
        "gc_full_ms": "4 / 5 / 5 ms",
        "requests": {"get pods/log": 20, "list pods": 1},
    }
    text = fanout.table(result)
    assert "| 10 of 10 |" in text
    assert "| 10 (9 with every line) |" in text
    assert "| 1.2 / 3.5 MiB |" in text
    assert "| 20 / 1 / 0 / 0 |" in text
    assert "| 250, every pod |" in text
    assert "| 2, 4 / 5 / 5 ms |" in text


def test_gc_pauses_times_full_collections_only() -> None:
    pauses = fanout.GcPauses()
    pauses("start", {"generation": 0})
    pauses("stop", {"generation": 0})
    pauses("start", {"generation": 2})
    pauses("stop", {"generation": 2})
    assert len(pauses.pauses) == 1 and pauses.pauses[0] >= 0
