"""How the simulated cluster copes with thousands of Jobs in one namespace.

The cluster runs in a child process (so the client's Python does not share a GIL with the API
server and the controllers), with enough nodes for every pod. The benchmark then, through the
real ``kubernetes`` client over HTTP:

1. creates ``--jobs`` Jobs (5,000 by default) in ONE namespace, each with ``parallelism`` and
   ``completions`` 2, so there are twice as many pods (10,000). A pool of ``--threads`` client
   threads (16) sends the creates, each with its own connection and without deserializing the
   responses, so the client is not the bottleneck. It reports the wall time until every create
   was answered, and until all pods exist and until all of them are Running (asked of the
   cluster process directly, polling with a deadline);
2. with everything running (containers run for a simulated day), it measures for a sample of
   ``--samples`` writes how long a change takes to reach a watcher: one thread keeps a
   ``watch`` of the namespace's Jobs open (``kubernetes.watch``), another labels one Job after
   the other (a ``PATCH``); the latency runs from just before the ``PATCH`` is sent until the
   watcher holds the ``MODIFIED`` event. Each write also makes the controllers run a pass;
3. meanwhile a third thread ``GET``s one Job in a loop; its latency (p50/p95/max) shows whether
   the controllers' passes hold up the API server's request handling.

Every wait is a condition with a deadline. Run ``python benchmarks/simulated_cluster_scale.py
--help``; ``--jobs 500`` is a quick run, ``--profile FILE`` writes a cProfile of the cluster's
thread (API server and controllers) for ``python -m pstats``.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import multiprocessing
import multiprocessing.connection
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import publish

NAMESPACE = "scale"
PODS_PER_JOB = 2
PODS_PER_NODE = 1000
LABEL = "bench.simulated/tick"


# --- the cluster's process --------------------------------------------------------------------


def serve_cluster(conn: multiprocessing.connection.Connection, jobs: int, profile: str) -> None:
    """Run a SimulatedCluster and answer the parent's questions until it says ``stop``."""
    from simulated_k8s_cluster import SimulatedCluster

    nodes = max(1, math.ceil(jobs * PODS_PER_JOB / PODS_PER_NODE) + 1)
    config = {
        "timeScale": 1.0,
        "namespaces": [NAMESPACE],
        "nodePools": [
            {
                "name": "default",
                "nodes": nodes,
                "capacity": {"cpu": "1000", "memory": "4000Gi", "pods": str(PODS_PER_NODE)},
            }
        ],
    }
    profiler = cProfile.Profile() if profile else None
    with SimulatedCluster(config) as cluster:
        store = cluster.state.store
        pods = cluster.resource("pods")
        if profiler is not None:
            cluster.call(profiler.enable)

        def count_pods() -> tuple[int, int]:
            total = running = 0
            for pod in store.objects(pods, NAMESPACE):
                total += 1
                if (pod.get("status") or {}).get("phase") == "Running":
                    running += 1
            return total, running

        conn.send(cluster.kubeconfig(namespace=NAMESPACE))
        while True:
            command = conn.recv()
            if command == "pods":
                conn.send(cluster.call(count_pods))
            elif command == "stop":
                if profiler is not None:
                    cluster.call(profiler.disable)
                    profiler.dump_stats(profile)
                conn.send("stopped")
                break


# --- the client side --------------------------------------------------------------------------


def job_manifest(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"scale-{index:05d}"},
        "spec": {
            "parallelism": PODS_PER_JOB,
            "completions": PODS_PER_JOB,
            "backoffLimit": 0,
            "template": {
                "metadata": {
                    "annotations": {"sim.airflow-k8s-jobs/behaviour": '{"seconds": 86400}'}
                },
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36", "args": ["true"]}],
                },
            },
        },
    }


class Clients:
    """One ``kubernetes`` ApiClient per thread (each with its own connection pool)."""

    def __init__(self, kubeconfig: dict[str, Any]) -> None:
        self.kubeconfig = kubeconfig
        self._local = threading.local()

    def batch(self) -> Any:
        from kubernetes import client, config

        api = getattr(self._local, "batch", None)
        if api is None:
            configuration = client.Configuration()
            config.load_kube_config_from_dict(self.kubeconfig, client_configuration=configuration)
            api = self._local.batch = client.BatchV1Api(client.ApiClient(configuration))
        return api


def drain(response: Any) -> None:
    """Read a raw response to its end, so its connection can be reused."""
    response.read()
    response.release_conn()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max, in milliseconds."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000, ordered[-1] * 1000


@dataclass
class Results:
    jobs: int
    create_seconds: float = math.nan
    pods_seconds: float = math.nan
    running_seconds: float = math.nan
    watch: list[float] = field(default_factory=list)
    get: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def create_jobs(clients: Clients, jobs: int, threads: int) -> None:
    def create(index: int) -> None:
        drain(
            clients.batch().create_namespaced_job(
                NAMESPACE, job_manifest(index), _preload_content=False, _request_timeout=300
            )
        )

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(create, i) for i in range(jobs)]:
            future.result()


def measure_steady_state(clients: Clients, jobs: int, samples: int, results: Results) -> None:
    from kubernetes import watch

    batch = clients.batch()
    listed = batch.list_namespaced_job(NAMESPACE, limit=1, _preload_content=False)
    import json

    resource_version = json.loads(listed.data)["metadata"]["resourceVersion"]
    seen: dict[str, threading.Event] = {}
    watcher = watch.Watch()
    ready = threading.Event()
    stopping = threading.Event()

    def watch_jobs() -> None:
        api = Clients(clients.kubeconfig).batch()
        ready.set()
        stream = watcher.stream(
            api.list_namespaced_job,
            NAMESPACE,
            resource_version=resource_version,
            timeout_seconds=3600,
        )
        try:
            for event in stream:
                obj = event["object"]
                key = f"{obj.metadata.name}={(obj.metadata.labels or {}).get(LABEL)}"
                if event["type"] == "MODIFIED" and key in seen:
                    seen[key].set()
        except Exception:  # the cluster stops under the open watch at the end
            if not stopping.is_set():
                raise

    def get_loop() -> None:
        api = clients.batch()
        while not stopping.is_set():
            started = time.perf_counter()
            drain(api.read_namespaced_job("scale-00000", NAMESPACE, _preload_content=False))
            results.get.append(time.perf_counter() - started)

    watch_thread = threading.Thread(target=watch_jobs, daemon=True)
    watch_thread.start()
    ready.wait(10)
    get_thread = threading.Thread(target=get_loop, daemon=True)
    get_thread.start()
    writer = clients.batch()
    try:
        for i in range(samples):
            name = f"scale-{(i * 7919) % jobs:05d}"
            key = f"{name}={i}"
            seen[key] = arrived = threading.Event()
            started = time.perf_counter()
            drain(
                writer.patch_namespaced_job(
                    name,
                    NAMESPACE,
                    {"metadata": {"labels": {LABEL: str(i)}}},
                    _preload_content=False,
                )
            )
            if not arrived.wait(60):
                raise TimeoutError(f"the watch did not see {key} within 60s")
            results.watch.append(time.perf_counter() - started)
    finally:
        stopping.set()
        watcher.stop()
        get_thread.join(30)


def run(args: argparse.Namespace) -> Results:
    results = Results(args.jobs)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=serve_cluster, args=(child, args.jobs, str(args.profile or "")), daemon=True
    )
    process.start()
    try:
        clients = Clients(parent.recv())

        def pods() -> tuple[int, int]:
            parent.send("pods")
            counted: tuple[int, int] = parent.recv()
            return counted

        expected = args.jobs * PODS_PER_JOB
        started = time.perf_counter()
        create_jobs(clients, args.jobs, args.threads)
        results.create_seconds = time.perf_counter() - started
        print(f"created {args.jobs} Jobs in {results.create_seconds:.1f}s", file=sys.stderr)
        wait_until(lambda: pods()[0] >= expected, args.timeout, f"{expected} pods")
        results.pods_seconds = time.perf_counter() - started
        print(f"{expected} pods exist after {results.pods_seconds:.1f}s", file=sys.stderr)
        wait_until(lambda: pods()[1] >= expected, args.timeout, f"{expected} running pods")
        results.running_seconds = time.perf_counter() - started
        print(f"{expected} pods run after {results.running_seconds:.1f}s", file=sys.stderr)
        measure_steady_state(clients, args.jobs, args.samples, results)
    except TimeoutError as exc:
        results.notes.append(str(exc))
    finally:
        parent.send("stop")
        if parent.poll(120):
            parent.recv()
        process.join(30)
        if process.is_alive():
            process.kill()
    return results


def table(results: Results, args: argparse.Namespace) -> str:
    def seconds(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:.1f} s"

    def spread(values: list[float]) -> str:
        if not values:
            return "—"
        p50, p95, top = percentiles(values)
        return f"{p50:.1f} / {p95:.1f} / {top:.1f} ms"

    lines = [
        f"| {results.jobs} Jobs, {results.jobs * PODS_PER_JOB} pods, one namespace "
        f"({args.threads} client threads) | |",
        "| --- | --- |",
        f"| create all Jobs (wall) | {seconds(results.create_seconds)} |",
        f"| until all pods exist | {seconds(results.pods_seconds)} |",
        f"| until all pods are Running | {seconds(results.running_seconds)} |",
        f"| PATCH → watch event, p50 / p95 / max ({len(results.watch)} writes) "
        f"| {spread(results.watch)} |",
        f"| GET latency in steady state, p50 / p95 / max ({len(results.get)} GETs) "
        f"| {spread(results.get)} |",
    ]
    lines += [f"\n{note}" for note in results.notes]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000, help="Jobs to create (5000)")
    parser.add_argument("--threads", type=int, default=16, help="client threads (16)")
    parser.add_argument("--samples", type=int, default=200, help="watched writes (200)")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="deadline of each wait, wall s (900)"
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the cluster thread")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    text = table(run(args), args)
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
