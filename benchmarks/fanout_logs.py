"""A 1,500-pod Indexed fan-out: every pod's log in the task log, in bounded memory.

The seeds' peak workload is one Indexed Job of 1,500 completions. This runs it on the simulated
cluster (a child process, at ``--time-scale``) through the real ``KubeJobOperator``: ``execute``
submits the Job and defers, the ``KubeJobTrigger`` it defers to waits with live logs on
(``live_log_streams`` at its default), and ``execute_complete`` collects the pods' logs at the
end (``pod_logs.job_pod_logs``), all in this process. Each pod prints ``--lines`` lines spread
over its run. A logging handler on the trigger's and the operator's loggers counts, per pod, the
lines that reached the task log (nothing is kept but counts). Reported: pods whose log reached
the task log live and at the end, lines, peak RSS growth (resident set sampled
every 20 ms), the most log streams
open at once, API requests by kind, wall time, event-loop lag.

Run ``python benchmarks/fanout_logs.py --help``; ``--completions 200`` is a quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import multiprocessing.connection
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from harness import publish, spread_ms

NAMESPACE = "batch"
CONN_ID = "bench_fanout"
IMAGE = "bench/fanout:1"


# --- the cluster's process --------------------------------------------------------------------


def cluster_config(time_scale: float, seconds: int, lines: int, parallelism: int) -> dict[str, Any]:
    """Nodes for ``parallelism`` pods at once; every ``IMAGE`` container prints ``lines`` lines
    over ``seconds`` (simulated) seconds."""
    return {
        "timeScale": time_scale,
        "namespaces": [NAMESPACE],
        "nodePools": [
            {
                "name": "default",
                "nodes": max(1, -(-parallelism // 250)),
                "capacity": {"cpu": "1000", "memory": "4000Gi", "pods": "250"},
            }
        ],
        "behaviours": [
            {
                "match": {"image": IMAGE},
                "seconds": seconds,
                "stdout": [f"$(POD_NAME) line {i + 1} of {lines}" for i in range(lines)],
            }
        ],
    }


def serve_cluster(conn: multiprocessing.connection.Connection, config: dict[str, Any]) -> None:
    """Run a SimulatedCluster and answer ``counters`` / ``stop``."""
    from simulated_k8s_cluster import SimulatedCluster

    with SimulatedCluster(config) as cluster:
        conn.send(cluster.kubeconfig(namespace=NAMESPACE))
        while True:
            command = conn.recv()
            if command == "counters":
                conn.send(cluster.counters.snapshot())
            elif command == "stop":
                conn.send("stopped")
                break


# --- the task's side --------------------------------------------------------------------------


def pod_of(label: str) -> str:
    """The pod name of a task-log label: ``name`` or ``name[index]``."""
    return label.split("[", 1)[0]


class LineCounter:
    """Counts the task log's ``<pod> | <line>`` lines per pod, live and at the end (a structlog
    processor in front of Airflow's; counted lines go no further, nothing is kept but counts)."""

    def __init__(self) -> None:
        self.live: Counter[str] = Counter()
        self.final: Counter[str] = Counter()
        self.current = self.live

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        import structlog

        event = str(event_dict.get("event", ""))
        label, sep, text = event.partition(" | ")
        if sep and " " not in label and text.startswith(pod_of(label) + " line "):
            self.current[pod_of(label)] += 1
            raise structlog.DropEvent
        if event.startswith("---- ") or (sep and text.startswith("... ")):
            raise structlog.DropEvent  # a pod's heading, lines skipped: not counted, not shown
        return event_dict

    def install(self) -> None:
        import structlog

        structlog.configure(processors=[self, *structlog.get_config()["processors"]])


class FakeTaskInstance:
    """The parts of a task instance the operator reads, and the XComs it pushes."""

    dag_id = "bench"
    task_id = "fanout"
    run_id = "manual__bench"
    map_index = -1
    try_number = 1

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


class StreamGauge:
    """The most live log streams open at once (instrumentation of ``LiveLogs._lines``)."""

    def __init__(self) -> None:
        self.open = 0
        self.most = 0

    def install(self) -> None:
        from airflow_k8s_jobs.live_logs import LiveLogs

        original = LiveLogs._lines
        gauge = self

        async def lines(self: Any, stream: Any, since: str | None) -> Any:
            gauge.open += 1
            gauge.most = max(gauge.most, gauge.open)
            try:
                async for line in original(self, stream, since):
                    yield line
            finally:
                gauge.open -= 1

        LiveLogs._lines = lines  # type: ignore[method-assign]


def rss_mib() -> float:
    """This process's resident set now (``/proc/self/statm``), in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler:
    """The peak of this process's resident set, sampled every 20 ms by a thread, per phase."""

    def __init__(self) -> None:
        self.start = rss_mib()
        self.peak: dict[str, float] = {}
        self.phase = "waiting"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            now = rss_mib()
            self.peak[self.phase] = max(self.peak.get(self.phase, 0.0), now)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def growth(self, phase: str) -> float:
        """Peak minus the resident set at the start, MiB."""
        return self.peak.get(phase, self.start) - self.start


class GcPauses:
    """The garbage collector's full (generation 2) collections and how long each took."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._began)


async def wait_deferred(trigger: Any, lags: list[float]) -> dict[str, Any]:
    """Run the trigger to its event, sampling the loop's lag every 50 ms."""
    done = asyncio.Event()

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.05)
            lags.append(max(0.0, loop.time() - before - 0.05))

    tick = asyncio.create_task(ticker())
    try:
        async for event in trigger.run():
            return dict(event.payload)
        raise RuntimeError("the trigger ended without an event")
    finally:
        done.set()
        await tick


def run(args: argparse.Namespace) -> dict[str, Any]:
    from airflow.exceptions import TaskDeferred

    from airflow_k8s_jobs import KubeJobOperator
    from airflow_k8s_jobs.live_logs import DEFAULT_STREAMS
    from airflow_k8s_jobs.pod_logs import LOG_HEAD_LINES, LOG_TAIL_LINES, MAX_LOGGED_PODS

    config = cluster_config(args.time_scale, args.seconds, args.lines, args.parallelism)
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=serve_cluster, args=(child, config), daemon=True)
    process.start()
    try:
        kubeconfig = parent.recv()
        path = Path(tempfile.mkdtemp(prefix="bench-kube-")) / "kubeconfig.json"
        path.write_text(json.dumps(kubeconfig))
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            {
                "conn_type": "k8sjobs",
                "extra": {"kubeconfig_path": str(path), "namespace": NAMESPACE},
            }
        )
        operator = KubeJobOperator(
            task_id="fanout",
            cluster_conn_id=CONN_ID,
            image=IMAGE,
            indexed=True,
            completions=args.completions,
            parallelism=args.parallelism,
        )
        ti = FakeTaskInstance()
        context: Any = {"ti": ti}
        gauge = StreamGauge()
        gauge.install()
        counter = LineCounter()
        counter.install()
        sampler = RssSampler()
        sampler.__enter__()
        started = time.monotonic()
        try:
            operator.execute(context)
            raise RuntimeError("the operator did not defer")
        except TaskDeferred as deferred:
            trigger = deferred.trigger
        lags: list[float] = []
        gc_pauses = GcPauses()
        gc.callbacks.append(gc_pauses)
        if args.profile is not None:
            import cProfile

            with cProfile.Profile() as profile:
                event = asyncio.run(wait_deferred(trigger, lags))
            profile.dump_stats(args.profile)
        else:
            event = asyncio.run(wait_deferred(trigger, lags))
        waited = time.monotonic() - started
        gc.callbacks.remove(gc_pauses)
        counter.current = counter.final
        sampler.phase = "final"
        operator.execute_complete(context, event)
        total = time.monotonic() - started
        sampler.__exit__()
        parent.send("counters")
        counters: dict[str, int] = parent.recv()
        parent.send("stop")
        parent.recv()
    finally:
        process.join(30)
        if process.is_alive():
            process.kill()
    live, final = counter.live, counter.final
    return {
        "completions": args.completions,
        "parallelism": args.parallelism,
        "lines_per_pod": args.lines,
        "pod_seconds": args.seconds,
        "time_scale": args.time_scale,
        "live_log_streams": DEFAULT_STREAMS,
        "max_logged_pods": MAX_LOGGED_PODS,
        "final_lines_per_pod": LOG_HEAD_LINES + LOG_TAIL_LINES,
        "event_status": event.get("status"),
        "pods_live": len(live),
        "pods_live_complete": sum(1 for n in live.values() if n >= args.lines),
        "lines_live": sum(live.values()),
        "pods_final": len(final),
        "lines_final": sum(final.values()),
        "pods_either": len(set(live) | set(final)),
        "streams_most": gauge.most,
        "rss_start_mib": sampler.start,
        "rss_growth_waiting_mib": sampler.growth("waiting"),
        "rss_growth_total_mib": max(sampler.growth("waiting"), sampler.growth("final")),
        "wait_seconds": waited,
        "total_seconds": total,
        "lag_ms": spread_ms(lags),
        "gc_full_collections": len(gc_pauses.pauses),
        "gc_full_ms": spread_ms(gc_pauses.pauses),
        "requests": counters,
    }


def request_counts(counters: dict[str, int]) -> dict[str, int]:
    """The API requests by kind: log reads, lists, watches, the rest."""
    out = {"log reads": 0, "lists": 0, "watches": 0, "other": 0}
    for key, n in counters.items():
        verb, _, what = key.partition(" ")
        if what.endswith("/log") or what == "pods/log":
            out["log reads"] += n
        elif verb == "list":
            out["lists"] += n
        elif verb == "watch":
            out["watches"] += n
        else:
            out["other"] += n
    return out


def table(result: dict[str, Any]) -> str:
    """The Markdown table of one run."""
    r = result
    kinds = request_counts(r["requests"])
    n = r["completions"]
    return "\n".join(
        [
            f"| Indexed Job, {n} completions, parallelism {r['parallelism']}, "
            f"{r['lines_per_pod']} lines per pod | |",
            "| --- | --- |",
            f"| outcome | {r['event_status']} |",
            "| pods whose log reached the task log, live or at the end | "
            f"{r['pods_either']} of {n} |",
            f"| ... live (trigger, `live_log_streams` {r['live_log_streams']}) | {r['pods_live']} "
            f"({r['pods_live_complete']} with every line) |",
            f"| ... at the end (`execute_complete`, `job_pod_logs`) | {r['pods_final']} |",
            "| ... the end's bound: lines per pod (first + last), pods | "
            f"{r['final_lines_per_pod']}, every pod |",
            f"| lines written by the pods | {n * r['lines_per_pod']} |",
            "| lines in the task log: live / at the end | "
            f"{r['lines_live']} / {r['lines_final']} |",
            f"| log streams open at once, most | {r['streams_most']} |",
            f"| peak RSS growth (sampled every 20 ms): waiting / with the final collection | "
            f"{r['rss_growth_waiting_mib']:.1f} / {r['rss_growth_total_mib']:.1f} MiB |",
            f"| API requests: log reads / lists / watches / other | {kinds['log reads']} / "
            f"{kinds['lists']} / {kinds['watches']} / {kinds['other']} |",
            "| wall time: waiting / in all | "
            f"{r['wait_seconds']:.0f} / {r['total_seconds']:.0f} s |",
            f"| event-loop lag while waiting (p50 / p99 / max) | {r['lag_ms']} |",
            f"| ... full garbage collections while waiting, each (p50 / p99 / max) | "
            f"{r['gc_full_collections']}, {r['gc_full_ms']} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--completions", type=int, default=1500, help="Job completions (1500)")
    parser.add_argument("--parallelism", type=int, default=100, help="pods at once (100)")
    parser.add_argument("--lines", type=int, default=300, help="log lines per pod (300)")
    parser.add_argument("--seconds", type=int, default=20, help="simulated run of a pod (20)")
    parser.add_argument("--time-scale", type=float, default=0.05, help="real s per sim s (0.05)")
    parser.add_argument("--output", type=Path, help="also write the table (and .json) here")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the wait here")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    result = run(args)
    publish(table(result), args.output)
    if args.output is not None:
        args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
