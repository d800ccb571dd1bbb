"""The trigger benchmark's table: rendered from its JSON, and kept in the README."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import readme_table

ROOT = Path(__file__).resolve().parents[2]


def run(side: str, jobs: int, **overrides: Any) -> dict[str, Any]:
    result = {
        "side": side,
        "jobs": jobs,
        "requests_per_task_minute": 6.04,
        "log_streams_per_task_minute": 0.5,
        "latency": {"p50": 4.9, "p99": 9.81, "max": 10.02},
        "cpu_per_minute": 1.5,
        "cpu_per_minute_waiting": 0.25,
        "rss_growth_mib": 12.4,
        "loop_lag": {"p50": 0.001, "p99": 0.0123, "max": 0.2},
        "wrong": 0,
        "never": 1,
    }
    result.update(overrides)
    return result


SAMPLE = {
    "generated": "2026-12-06T18:00:00+00:00",
    "machine": "2 CPUs, Linux x86_64",
    "jobs_run_seconds": [60, 90],
    "poll_interval": 10.0,
    "runs": [
        run("cncf", 1000),
        run("ours", 1000, latency={"p50": 0.05, "p99": 0.3, "max": 0.4}),
        {"side": "google", "jobs": 100, "not_run": "no Google provider"},
        run("ours", 100, cpu_per_minute_waiting=None, latency=None),
    ],
}


def test_rows_come_sorted_by_size_then_side_with_formatted_values() -> None:
    lines = readme_table.render_table(SAMPLE).splitlines()
    assert lines[0] == readme_table.HEADER
    assert lines[1].count("---") == readme_table.COLUMNS == 10
    rows = lines[2:6]
    assert [row.split(" | ")[1] for row in rows] == ["100", "100", "1000", "1000"]
    assert rows[0].startswith("| `KubeJobTrigger` (this provider) | 100 |")
    assert "| - | 1.50 (-) |" in rows[0]  # no latency measured; waiting window too short
    assert rows[1] == (
        "| Google `GKEJobTrigger` | 100 | not run: no Google provider | | | | | | | |"
    )
    assert rows[2] == (
        "| `KubeJobTrigger` (this provider) | 1000 | 6.04 | 0.50 | 0.05 / 0.30 / 0.40 s "
        "| 1.50 (0.25) "
        "| 12 MiB | 12 / 200 ms | 0 / 1 | - |"
    )
    assert rows[3].startswith("| cncf `KubernetesJobTrigger` | 1000 | 6.04 | 0.50 | 4.90 / 9.81")
    assert "Jobs run 60 to 90 s" in lines[-1] and "every 10 s" in lines[-1]


def test_goals_are_judged_against_cncf_at_the_same_size() -> None:
    data = {
        "runs": [
            run("cncf", 1000, cpu_per_minute_waiting=30.0, requests_per_task_minute=1.2),
            run(
                "ours",
                1000,
                cpu_per_minute_waiting=0.5,
                requests_per_task_minute=0.01,
                latency={"p50": 0.1, "p99": 0.45, "max": 0.6},
            ),
            run("cncf", 5000, cpu_per_minute_waiting=None),
            run("ours", 5000, rss_growth_mib=151.0, wrong=1),
        ]
    }
    lines = readme_table.goal_lines(data)
    assert lines[:4] == [
        "- N = 1000, detection p99 ≤ 0.5 s: 0.45 s: met",
        "- N = 1000, CPU while waiting ≤ 1/20 of cncf's: 0.50 against 30.00 s per wall minute "
        "(1/60): met",
        "- N = 1000, requests per waiting task per minute ≤ 1/100 of cncf's: 0.010 against "
        "1.20: met",
        "- N = 1000, no trigger fired wrong: 0 wrong: met",
    ]
    assert "- N = 5000, detection p99 ≤ 0.5 s: 9.81 s: **not met**" in lines
    assert any("N = 5000, CPU while waiting" in x and x.endswith("not measured") for x in lines)
    assert "- N = 5000, peak RSS growth ≤ 150 MiB: 151 MiB: **not met**" in lines
    assert "- N = 5000, no trigger fired wrong: 1 wrong: **not met**" in lines
    assert readme_table.goal_lines({"runs": []}, sizes=(1000,)) == ["- N = 1000: not run"]
    late = {"runs": [run("ours", 1000, finished_before_waiting=12)]}
    assert readme_table.goal_lines(late, sizes=(1000,))[0].startswith(
        "- N = 1000: not valid, 12 Jobs ended before the triggers waited"
    )


def test_the_readme_section_is_replaced_between_the_markers_only() -> None:
    text = f"intro\n{readme_table.START}\nold table\n{readme_table.END}\noutro\n"
    once = readme_table.update_readme(text, "| new |")
    assert once == f"intro\n{readme_table.START}\n| new |\n{readme_table.END}\noutro\n"
    assert readme_table.update_readme(once, "| new |") == once


def test_a_readme_without_the_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="bench:triggers"):
        readme_table.update_readme("no markers here\n", "| table |")


def test_the_readme_shows_the_committed_results() -> None:
    results = ROOT / "benchmarks" / "results" / "triggers_side_by_side.json"
    table = readme_table.render_table(json.loads(results.read_text()))
    readme = (ROOT / "README.md").read_text()
    assert readme_table.update_readme(readme, table) == readme, (
        "README.md's performance table is stale: run python benchmarks/readme_table.py "
        "--readme README.md"
    )
