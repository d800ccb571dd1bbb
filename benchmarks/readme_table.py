"""The trigger benchmark's table, from ``benchmarks/results/triggers_side_by_side.json``; with
``--readme`` it replaces the README's table between the ``bench:triggers`` markers.

``python benchmarks/readme_table.py --readme README.md``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START = "<!-- bench:triggers -->"
END = "<!-- /bench:triggers -->"
SIDE_LABELS = {
    "ours": "`KubeJobTrigger` (this provider)",
    "cncf": "cncf `KubernetesJobTrigger`",
    "google": "Google `GKEJobTrigger`",
}
HEADER = (
    "| Trigger | waiting | API requests / task / min | log streams / task / min "
    "| detection p50 / p99 / max | CPU s / wall min (waiting) | peak RSS growth "
    "| loop lag p99 / max | wrong / never | cluster CPU s / wall min |"
)
COLUMNS = HEADER.count("|") - 1


def _seconds(stats: dict[str, float] | None, unit: str = "s") -> str:
    if not stats:
        return "-"

    def one(value: float) -> str:
        if unit == "ms":
            return f"{value * 1000:.0f}"
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"

    keys = [k for k in ("p50", "p99", "max") if k in stats]
    return " / ".join(one(stats[k]) for k in keys) + f" {unit}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_row(run: dict[str, Any]) -> str:
    """One table row for a run (or a row saying why it did not run)."""
    label = SIDE_LABELS.get(run["side"], run["side"])
    if run.get("not_run"):
        return f"| {label} | {run['jobs']} | not run: {run['not_run']} |" + " |" * (COLUMNS - 3)
    lag = run.get("loop_lag") or {}
    return (
        f"| {label} | {run['jobs']} | {run['requests_per_task_minute']:.2f} "
        f"| {_number(run.get('log_streams_per_task_minute'))} "
        f"| {_seconds(run.get('latency'))} "
        f"| {run['cpu_per_minute']:.2f} ({_number(run.get('cpu_per_minute_waiting'))}) "
        f"| {run['rss_growth_mib']:.0f} MiB "
        f"| {_seconds({k: lag[k] for k in ('p99', 'max') if k in lag} or None, 'ms')} "
        f"| {run['wrong']} / {run['never']} "
        f"| {_number(run.get('cluster_cpu_per_minute'))} |"
    )


def render_table(data: dict[str, Any]) -> str:
    """The Markdown table: one row per side and size, smaller sizes first."""
    runs = sorted(data["runs"], key=lambda r: (r["jobs"], list(SIDE_LABELS).index(r["side"])))
    lines = [HEADER, "| " + " | ".join(["---"] * COLUMNS) + " |"]
    lines += [render_row(run) for run in runs]
    low, high = data.get("jobs_run_seconds", ["?", "?"])
    lines.append("")
    lines.append(
        f"Jobs run {low} to {high} s; the cncf and Google triggers poll every "
        f"{data.get('poll_interval', 10):g} s (their operators' default). "
        f"{data.get('machine', '')}, {data.get('generated', '')}."
    )
    return "\n".join(lines)


GOALS = {
    "p99": 0.5,  # detection latency p99, s, at most
    "cpu_ratio": 1 / 20,  # our CPU per wall minute while waiting, of cncf's at the same N
    "requests_ratio": 1 / 100,  # our requests per waiting task per minute, of cncf's
    "rss_mib": 150,  # our peak RSS growth at the largest N, at most
}
"""What the trigger benchmark must show at 1,000 and 5,000 waiting tasks."""


def goal_lines(data: dict[str, Any], sizes: tuple[int, ...] = (1000, 5000)) -> list[str]:
    """One line per size and goal: ours against the goal (and cncf's figure), met or not."""
    runs = {(r["side"], r["jobs"]): r for r in data["runs"] if not r.get("not_run")}
    lines = []
    for n in sizes:
        ours, cncf = runs.get(("ours", n)), runs.get(("cncf", n))
        if ours is None:
            lines.append(f"- N = {n}: not run")
            continue
        if ours.get("finished_before_waiting"):
            lines.append(
                f"- N = {n}: not valid, {ours['finished_before_waiting']} Jobs ended before the "
                "triggers waited (the machine was too busy while the Jobs were created)"
            )
            continue

        def check(what: str, met: bool | None, detail: str, n: int = n) -> None:
            verdict = "not measured" if met is None else ("met" if met else "**not met**")
            lines.append(f"- N = {n}, {what}: {detail}: {verdict}")

        p99 = (ours.get("latency") or {}).get("p99")
        check(
            f"detection p99 ≤ {GOALS['p99']} s",
            None if p99 is None else p99 <= GOALS["p99"],
            "-" if p99 is None else f"{p99:.2f} s",
        )
        ours_cpu = ours.get("cpu_per_minute_waiting")
        cncf_cpu = cncf.get("cpu_per_minute_waiting") if cncf else None
        check(
            "CPU while waiting ≤ 1/20 of cncf's",
            None if not ours_cpu or not cncf_cpu else ours_cpu <= cncf_cpu * GOALS["cpu_ratio"],
            f"{_number(ours_cpu)} against {_number(cncf_cpu)} s per wall minute"
            + (f" (1/{cncf_cpu / ours_cpu:.0f})" if ours_cpu and cncf_cpu else ""),
        )
        ours_req = ours["requests_per_task_minute"]
        cncf_req = cncf["requests_per_task_minute"] if cncf else None
        check(
            "requests per waiting task per minute ≤ 1/100 of cncf's",
            None if cncf_req is None else ours_req <= cncf_req * GOALS["requests_ratio"],
            f"{ours_req:.3f} against {_number(cncf_req)}",
        )
        if n == max(sizes):
            check(
                f"peak RSS growth ≤ {GOALS['rss_mib']} MiB",
                ours["rss_growth_mib"] <= GOALS["rss_mib"],
                f"{ours['rss_growth_mib']:.0f} MiB",
            )
        check("no trigger fired wrong", ours["wrong"] == 0, f"{ours['wrong']} wrong")
    return lines


def update_readme(text: str, table: str) -> str:
    """``text`` with everything between the markers replaced by ``table``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {START} … {END} markers (in that order)")
    return text[: start + len(START)] + "\n" + table + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "triggers_side_by_side.json",
    )
    parser.add_argument("--readme", type=Path, help="rewrite this file's table in place")
    args = parser.parse_args(argv)
    table = render_table(json.loads(args.json.read_text()))
    if args.readme:
        args.readme.write_text(update_readme(args.readme.read_text(), table))
    else:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
