"""Job triggers side by side: ours, the cncf provider's and the Google provider's, waiting for
the same Jobs on the same kind of simulated cluster.

For each size N (``--sizes``, 100, 1,000 and 5,000 by default; 1,000 Jobs per namespace, so
several namespaces for 5,000) and each side, a fresh process starts a fresh simulated cluster in
a child process (``timeScale`` 1), creates N
Jobs that run ``--seconds`` (90) plus a stagger of up to ``--spread`` (30) seconds, and runs one
trigger per Job in one event loop, as a triggerer does (iterate ``run()`` to the first event,
then ``cleanup()``). The sides:

* ``ours``: ``KubeJobTrigger`` with the arguments ``KubeJobOperator`` passes by default;
* ``cncf``: ``KubernetesJobTrigger`` with what ``KubernetesJobOperator(deferrable=True)`` passes
  by default (``poll_interval`` 10, ``get_logs`` True, ``do_xcom_push`` False, the pod names it
  found), through a ``kubernetes`` connection whose ``kube_config_path`` extra points at the
  simulated cluster;
* ``google``: ``GKEJobTrigger`` as ``GKEStartJobOperator(deferrable=True)`` passes it
  (``poll_interval`` 10): the cluster URL and CA, and a Google Cloud connection with a
  service-account key whose ``token_uri`` is a local token endpoint (in the cluster's process)
  that hands out the cluster's bearer token. It needs the Google provider, so it runs under
  another interpreter (``--google-python``); when that is missing the side is reported as not run.

Measured per side and N, in the trigger process only (the cluster has its own process):

* API requests per waiting task per minute: the cluster's request counters over the run (the
  Jobs' creation is direct, not counted), divided by the task-minutes waited; a watch counts once;
  followed pod logs (live logs: one long-lived stream per pod, ``get pods/log``) are counted
  apart, as log streams per task per minute;
* detection latency: the instant the cluster wrote the Job's final condition → the trigger's
  event, p50 / p99 / max;
* CPU seconds per wall minute (``time.process_time``): over the whole run, and while waiting
  (from ``SETTLE`` seconds after the triggers started to the first Job finishing; sampled by a
  thread);
* the simulated cluster's own CPU seconds per wall minute (its process), charged to no side;
* peak RSS growth: the process's resident set (``/proc/self/statm``, read by the ticker every
  100 ms), its peak minus its size before the triggers were made (modules already imported);
* event-loop lag: a 100 ms ticker's lateness, p99 / max;
* triggers that fired with a wrong status, and triggers that never fired before the deadline.

Writes ``<output-dir>/triggers_side_by_side.{json,md,png}``; ``benchmarks/readme_table.py`` puts
the table into the README. ``python benchmarks/triggers_side_by_side.py --sizes 20 --seconds 10
--spread 5`` is a quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import ClusterProcess, manifests, namespaces_for, summary
from readme_table import SIDE_LABELS, goal_lines, render_table

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("ours", "cncf", "google")
OURS_CONN = "bench_ours"
CNCF_CONN = "bench_cncf"
GCP_CONN = "bench_gcp"
POLL_INTERVAL = 10.0  # both operators' job_poll_interval default
TICK = 0.1
SETTLE = 20.0
"""Seconds after the triggers started before "waiting" is measured: 5,000 triggers take a while
to subscribe, list and look at their Jobs once (more on a busy machine)."""
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """The process's resident set now (``/proc/self/statm``); its peak where there is no /proc."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- one side, in its own process -------------------------------------------------------------


def trigger_class(side: str) -> Any:
    """The side's trigger class (imported here: each side runs in its own process)."""
    module, name = {
        "ours": ("airflow_k8s_jobs.triggers.jobs", "KubeJobTrigger"),
        "cncf": ("airflow.providers.cncf.kubernetes.triggers.job", "KubernetesJobTrigger"),
        "google": (
            "airflow.providers.google.cloud.triggers.kubernetes_engine",
            "GKEJobTrigger",
        ),
    }[side]
    return getattr(importlib.import_module(module), name)


def make_triggers(
    side: str, jobs: list[dict[str, str]], pods: dict[str, list[str]], env: dict[str, Any]
) -> list[Any]:
    """One trigger per Job, with the arguments the side's operator passes by default."""
    cls = trigger_class(side)
    if side == "ours":
        return [
            cls(
                cluster_conn_id=OURS_CONN,
                cluster_name="simulated",
                namespace=job["namespace"],
                job_name=job["name"],
                job_uid=job["uid"],
            )
            for job in jobs
        ]
    if side == "cncf":
        return [
            cls(
                job_name=job["name"],
                job_namespace=job["namespace"],
                pod_names=pods[f"{job['namespace']}/{job['name']}"],
                pod_namespace=job["namespace"],
                base_container_name="base",
                kubernetes_conn_id=CNCF_CONN,
                cluster_context=None,
                config_file=None,
                in_cluster=None,
                poll_interval=POLL_INTERVAL,
                get_logs=True,
                do_xcom_push=False,
            )
            for job in jobs
        ]
    return [
        cls(
            cluster_url=env["server"],
            ssl_ca_cert=env["ca"],
            job_name=job["name"],
            job_namespace=job["namespace"],
            pod_names=pods[f"{job['namespace']}/{job['name']}"],
            pod_namespace=job["namespace"],
            base_container_name="base",
            gcp_conn_id=GCP_CONN,
            poll_interval=POLL_INTERVAL,
            impersonation_chain=None,
            get_logs=True,
            do_xcom_push=False,
        )
        for job in jobs
    ]


def service_account_key(token_uri: str) -> dict[str, str]:
    """A throwaway service-account key whose token exchange goes to ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "bench",
        "private_key_id": "bench",
        "private_key": pem,
        "client_email": "bench@bench.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }


def connect(side: str, cluster: ClusterProcess, workdir: Path) -> dict[str, Any]:
    """Airflow connections (``AIRFLOW_CONN_*``) that point the side at the simulated cluster."""
    path = workdir / "kubeconfig.json"
    path.write_text(json.dumps(cluster.kubeconfig))
    os.environ[f"AIRFLOW_CONN_{OURS_CONN.upper()}"] = json.dumps(
        {"conn_type": "k8sjobs", "extra": {"kubeconfig_path": str(path)}}
    )
    os.environ[f"AIRFLOW_CONN_{CNCF_CONN.upper()}"] = json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(path)}}
    )
    server = cluster.kubeconfig["clusters"][0]["cluster"]
    env: dict[str, Any] = {
        "server": server["server"],
        "ca": server.get("certificate-authority-data") or "",
    }
    if side == "google":
        token_uri = cluster.ask("token_endpoint")
        os.environ[f"AIRFLOW_CONN_{GCP_CONN.upper()}"] = json.dumps(
            {
                "conn_type": "google_cloud_platform",
                "extra": {"keyfile_dict": json.dumps(service_account_key(token_uri))},
            }
        )
    return env


async def run_like_triggerer(trigger: Any) -> Any:
    """What the triggerer's ``run_trigger`` does around one trigger: the first event, then
    ``cleanup()``."""
    try:
        async for event in trigger.run():
            return event
        return None
    finally:
        with contextlib.suppress(Exception):
            await trigger.cleanup()


class CpuSampler:
    """The process's CPU time every ``every`` seconds, read by a thread of its own: a saturated
    event loop cannot delay the samples."""

    def __init__(self, every: float = 0.25) -> None:
        self.samples: list[tuple[float, float]] = []  # (time.monotonic(), time.process_time())
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), time.process_time()))
            if self._stop.wait(self._every):
                return

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def per_minute(self, start: float, end: float) -> float | None:
        """CPU seconds per wall minute between two instants (None for less than 5 s)."""
        inside = [(t, cpu) for t, cpu in self.samples if start <= t <= end]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 5:
            return None
        (t0, cpu0), (t1, cpu1) = inside[0], inside[-1]
        return (cpu1 - cpu0) / (t1 - t0) * 60


async def drive(triggers: list[Any], keys: list[str], deadline: float) -> dict[str, Any]:
    """Run the triggers in this event loop with a lag ticker; when each fired and how."""
    fired: dict[str, float] = {}
    status: dict[str, str] = {}
    lag: list[float] = []
    peak_rss = rss_bytes()
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal peak_rss
        expected = time.monotonic() + TICK
        while not stop.is_set():
            await asyncio.sleep(max(0.0, expected - time.monotonic()))
            now = time.monotonic()
            lag.append(max(0.0, now - expected))
            expected = max(expected + TICK, now)
            peak_rss = max(peak_rss, rss_bytes())

    async def one(key: str, trigger: Any) -> None:
        try:
            event = await run_like_triggerer(trigger)
        except Exception as exc:  # a trigger that raised counts as fired wrong
            status[key] = f"raised {type(exc).__name__}: {exc}"
        else:
            status[key] = str(event.payload.get("status")) if event else "no event"
        fired[key] = time.monotonic()

    tick = asyncio.create_task(ticker())
    cpu0, started = time.process_time(), time.monotonic()
    tasks = [asyncio.create_task(one(k, t)) for k, t in zip(keys, triggers, strict=True)]
    _, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    ended, cpu = time.monotonic(), time.process_time() - cpu0
    stop.set()
    await tick
    return {
        "fired": fired,
        "status": status,
        "started": started,
        "ended": ended,
        "cpu": cpu,
        "lag": lag,
        "peak_rss": max(peak_rss, rss_bytes()),
    }


def measure(side: str, jobs: int, seconds: int, spread: int) -> dict[str, Any]:
    """Run one side against a fresh cluster; the measurements as a JSON-able dict."""
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    workdir = Path(tempfile.mkdtemp(prefix="bench-kube-"))
    namespaces = namespaces_for(jobs)
    with ClusterProcess(jobs, namespaces) as cluster:
        env = connect(side, cluster, workdir)
        created = cluster.create(manifests(jobs, seconds, spread, namespaces))
        keys = [f"{job['namespace']}/{job['name']}" for job in created]
        # The operators defer once the Job's pods exist (the cncf and Google ones pass their names).
        limit = time.monotonic() + 120
        while len(pods := cluster.ask("pods")) < jobs:
            if time.monotonic() > limit:
                raise TimeoutError(f"only {len(pods)} of {jobs} Jobs have pods after 120 s")
            time.sleep(0.2)
        # Memory growth of the triggers and their clients, not of importing their modules.
        trigger_class(side)
        importlib.import_module("kubernetes_asyncio.client")
        rss0 = rss_bytes()
        triggers = make_triggers(side, created, pods, env)
        before = cluster.counters()
        tokens_before = cluster.ask("token_requests")
        cluster_cpu = cluster.cpu_seconds()
        deadline = time.monotonic() + seconds + spread + 3 * POLL_INTERVAL + 120
        with CpuSampler() as sampler:
            result = asyncio.run(drive(triggers, keys, deadline))
        after = cluster.counters()
        tokens = cluster.ask("token_requests") - tokens_before
        cluster_cpu = cluster.cpu_seconds() - cluster_cpu
        cluster_lags = cluster.loop_lags(result["started"], result["ended"])
        finished, outcome = cluster.finished()
    requests = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    requests = {k: n for k, n in sorted(requests.items()) if n}
    fired, status = result["fired"], result["status"]
    never = [k for k in keys if k not in fired]
    wrong = [
        k
        for k in keys
        if k in fired and status[k] != ("success" if outcome.get(k) == "Complete" else "error")
    ]
    task_minutes = sum(fired.get(k, result["ended"]) - result["started"] for k in keys) / 60
    latencies = [max(0.0, fired[k] - finished[k]) for k in keys if k in fired and k in finished]
    wall = result["ended"] - result["started"]
    # Waiting: from SETTLE s after the triggers started (set up, first lists) to the first end.
    first_end = min(finished.values(), default=result["ended"])
    return {
        "side": side,
        "jobs": jobs,
        "namespaces": len(namespaces),
        "requests": requests,
        "token_requests": tokens,
        "task_minutes": task_minutes,
        **per_task_minute(requests, task_minutes),
        "latency": summary(latencies),
        "cpu_per_minute": result["cpu"] / wall * 60,
        "cpu_per_minute_waiting": sampler.per_minute(result["started"] + SETTLE, first_end),
        "cluster_cpu_per_minute": cluster_cpu / wall * 60,
        "cluster_loop_lag": summary(cluster_lags),
        "wall_seconds": wall,
        "rss_growth_mib": (result["peak_rss"] - rss0) / 2**20,
        "loop_lag": summary(result["lag"]),
        "wrong": len(wrong),
        "wrong_examples": sorted({status[k] for k in wrong})[:3],
        "never": len(never),
        # Jobs that ended before the triggers had settled: set-up (creating the Jobs on a busy
        # machine) took too long, and the waiting figures measure nothing.
        "finished_before_waiting": sum(t < result["started"] + SETTLE for t in finished.values()),
    }


# --- the orchestrating process ----------------------------------------------------------------


def side_python(side: str, google_python: Path) -> tuple[str | None, str | None]:
    """The interpreter for a side, or why the side cannot run."""
    if side != "google":
        return sys.executable, None
    if not google_python.exists():
        return None, (
            f"the Google provider needs its own environment; {google_python} does not exist "
            "(make setup-composer-2.11.1 creates it)"
        )
    probe = subprocess.run(
        [str(google_python), "-c", "import airflow.providers.google.cloud.triggers"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode:
        return None, f"{google_python} cannot import the Google provider"
    return str(google_python), None


def run_side(
    side: str, jobs: int, args: argparse.Namespace, python: str, workdir: Path
) -> dict[str, Any]:
    """Run one side in a fresh process; its measurements, or why it did not run."""
    out = workdir / f"{side}-{jobs}.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "simulator")])
    command = [python, str(Path(__file__).resolve()), "--side", side, "--jobs", str(jobs)]
    command += ["--seconds", str(args.seconds), "--spread", str(args.spread)]
    command += ["--result", str(out)]
    print(f">> {SIDE_LABELS[side]}, {jobs} Jobs", flush=True)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode or not out.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"side": side, "jobs": jobs, "not_run": f"failed: {tail[0]}"}
    result: dict[str, Any] = json.loads(out.read_text())
    result["python"] = "Python " + subprocess.run(
        [python, "-c", "import airflow, sys; print(sys.version.split()[0], airflow.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip().replace(" ", ", Airflow ")
    return result


LOG_STREAMS = "get pods/log"
"""The counter of followed pod logs (streams, not polls)."""


def per_task_minute(requests: dict[str, int], task_minutes: float) -> dict[str, float]:
    """Requests (log streams apart) and log streams per waiting task per minute."""
    streams = requests.get(LOG_STREAMS, 0)
    return {
        "requests_per_task_minute": (sum(requests.values()) - streams) / task_minutes,
        "log_streams_per_task_minute": streams / task_minutes,
    }


def chart(data: dict[str, Any], path: Path) -> None:
    """Bars of CPU while waiting, p99 latency, requests per task-minute and peak RSS growth, log
    scale; a side whose triggers never fired gets no latency bar but a note."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in data["runs"] if not r.get("not_run")]
    sizes = sorted({r["jobs"] for r in runs})
    sides = [s for s in SIDES if any(r["side"] == s for r in runs)]

    def waiting_cpu(run: dict[str, Any]) -> float | None:
        value = run.get("cpu_per_minute_waiting")
        return float(value) if value is not None else run["cpu_per_minute"]

    metrics: list[tuple[str, Callable[[dict[str, Any]], float | None]]] = [
        ("CPU s per wall minute, waiting", waiting_cpu),
        ("detection latency p99, s", lambda r: r["latency"]["p99"] if r["latency"] else None),
        ("API requests per task per minute", lambda r: r["requests_per_task_minute"]),
        ("peak RSS growth, MiB", lambda r: r["rss_growth_mib"]),
    ]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 4))
    width = 0.8 / max(1, len(sides))
    for ax, (title, value) in zip(axes, metrics, strict=True):
        for i, side in enumerate(sides):
            for x, n in enumerate(sizes):
                run = next((r for r in runs if r["side"] == side and r["jobs"] == n), None)
                if run is None:
                    continue
                height = value(run)
                at = x + i * width
                if height is None:  # nothing to draw: say why on the axis
                    ax.annotate(
                        "never fired" if run.get("never") else "no value",
                        (at, 0),
                        xycoords=("data", "axes fraction"),
                        xytext=(0, 4),
                        textcoords="offset points",
                        rotation=90,
                        ha="center",
                        va="bottom",
                        fontsize="x-small",
                    )
                    continue
                ax.bar(
                    at,
                    max(height, 1e-4),
                    width,
                    color=f"C{i}",
                    label=SIDE_LABELS[side].replace("`", "") if x == 0 else None,
                )
        ax.set_yscale("log")
        ax.set_title(title, fontsize="medium")
        ax.set_xticks([x + width * (len(sides) - 1) / 2 for x in range(len(sizes))])
        ax.set_xticklabels([f"{n} waiting" for n in sizes])
        ax.set_xlim(-width, len(sizes) - 1 + width * len(sides))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(sides), fontsize="small")
    fig.suptitle("Job triggers side by side on the simulated cluster (log scale; lower is better)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="100,1000,5000", help="waiting triggers per run (100,1000,5000)"
    )
    parser.add_argument("--sides", default=",".join(SIDES), help="ours,cncf,google")
    parser.add_argument("--seconds", type=int, default=90, help="shortest Job, s (90)")
    parser.add_argument("--spread", type=int, default=30, help="longest minus shortest (30)")
    parser.add_argument(
        "--google-python",
        type=Path,
        default=ROOT / ".venv-composer-2.11.1" / "bin" / "python",
        help="an interpreter with the Google provider (.venv-composer-2.11.1's)",
    )
    parser.add_argument("--output-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--jobs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--reports-only",
        action="store_true",
        help="rewrite the table and chart from the JSON in --output-dir, run nothing",
    )
    args = parser.parse_args(argv)

    if args.reports_only:
        data = json.loads((args.output_dir / "triggers_side_by_side.json").read_text())
        print(write_reports(data, args.output_dir))
        return 0
    if args.side:  # one side, in this process
        result = measure(args.side, args.jobs, args.seconds, args.spread)
        args.result.write_text(json.dumps(result, indent=2))
        return 0

    sizes = [int(n) for n in args.sizes.split(",") if n]
    sides = [s for s in args.sides.split(",") if s]
    workdir = Path(tempfile.mkdtemp(prefix="bench-sides-"))
    runs = []
    for jobs in sizes:
        for side in sides:
            python, reason = side_python(side, args.google_python)
            if python is None:
                runs.append({"side": side, "jobs": jobs, "not_run": reason})
                continue
            runs.append(run_side(side, jobs, args, python, workdir))
    data = {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}",
        "jobs_run_seconds": [args.seconds, args.seconds + args.spread],
        "poll_interval": POLL_INTERVAL,
        "rss": "peak growth of the trigger process's resident set (/proc/self/statm every "
        "100 ms) over its size once the trigger modules were imported",
        "runs": runs,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "triggers_side_by_side.json").write_text(json.dumps(data, indent=2) + "\n")
    print(write_reports(data, args.output_dir))
    return 0


NOTES = """\
Reading the table:

- `KubeJobTrigger` shares one watch per resource among all tasks: of their namespace while
  they wait in one (N=100 and 1,000), of all namespaces once they wait in several (N=5,000,
  in 5 namespaces: the first namespace's watches, then those of all namespaces, which take
  over). Besides, it follows each pod's log (live logs: one long-lived stream per pod, the
  "log streams" column; `live_log_streams=0` leaves only the watches). The polling
  triggers read each Job every 10 s.
- When the polling triggers saturate the event loop (lag of seconds), they poll less often than
  every 10 s: their requests per task-minute drop while their detection latency grows. The CPU
  while waiting (in brackets) is sampled by a thread of its own, from 20 s after the triggers
  started until the first Job ended, so a saturated loop does not hide it.
- "cluster CPU" is the simulated cluster's own process (API server, controllers, kubelet),
  charged to neither side; it is high where a side makes it work (polls, log streams).

How this differs from production:

- The cluster is the simulated API server on the same machine: requests take far less time
  than over a network to a real control plane, so the polling triggers' costs per request
  (a new API client and connection for every poll) show up as CPU here rather than as latency.
- The Google side runs where the Google provider is installed (the Composer-like environment:
  Airflow 2.11, Python 3.11); the other two on Airflow 3. It talks plain HTTP to the cluster,
  and its token exchange goes to a local endpoint that does not check the signed assertion
  (Google's endpoint, or the metadata server on GKE, adds a round trip per poll).
- The machine is shared with other work, so CPU and event-loop lag carry noise; compare the
  sides' orders of magnitude rather than small differences.
"""


def write_reports(data: dict[str, Any], output_dir: Path) -> str:
    """Write the Markdown table (with the requests per run) and the chart; the table."""
    table = render_table(data)
    details = [
        "",
        "Requests to the API server per run (a watch or a followed log counts once):",
        "",
    ]
    for run in data["runs"]:
        if not run.get("not_run"):
            tokens = run.get("token_requests") or 0
            exchanges = f"; {tokens} Google token exchanges" if tokens else ""
            counted = ", ".join(f"{k} {n}" for k, n in run["requests"].items())
            lag = run.get("cluster_loop_lag") or {}
            busy = (
                f"; the cluster's loop late by {lag['p99'] * 1000:.0f} ms at p99, "
                f"{lag['max'] * 1000:.0f} ms at most"
                if lag
                else ""
            )
            details.append(
                f"- {SIDE_LABELS[run['side']]}, {run['jobs']}: {counted}{exchanges}{busy}"
            )
    details += ["", "Goals (ours; CPU and requests against cncf at the same N):", ""]
    details += goal_lines(data)
    details += ["", NOTES]
    (output_dir / "triggers_side_by_side.md").write_text(table + "\n" + "\n".join(details))
    chart(data, output_dir / "triggers_side_by_side.png")
    return table


if __name__ == "__main__":
    sys.exit(main())
