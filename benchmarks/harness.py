"""What the trigger benchmarks share: a simulated cluster in a child process, the Jobs they wait
for, and the statistics.

The cluster runs at real time (``timeScale`` 1) in its own process, so what the benchmark process
measures (CPU, memory, event-loop lag) is the trigger side's alone. A store observer in the
cluster's process records the instant it wrote each Job's ``Complete``/``Failed`` condition, on
the monotonic clock both processes share.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import multiprocessing.connection
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

IMAGE = "bench/work:1"
JOBS_PER_NAMESPACE = 1000


def namespaces_for(jobs: int, first: str = "batch") -> list[str]:
    """One namespace per 1,000 Jobs: ``batch``, ``batch-2``, …"""
    count = max(1, -(-jobs // JOBS_PER_NAMESPACE))
    return [first] + [f"{first}-{i}" for i in range(2, count + 1)]


# --- the cluster's process --------------------------------------------------------------------


class TokenEndpoint:
    """An OAuth token endpoint that answers every exchange with the cluster's bearer token (it
    does not check the assertion), so Google credentials can authenticate to the cluster."""

    def __init__(self) -> None:
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self, token: str) -> str:
        """Serve on a free local port; the ``token_uri``."""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.requests += 1
                body = json.dumps(
                    {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()


CREATE_SLICE = 250
"""Jobs created per call to the cluster's thread."""
FREEZE_EVERY = 1.0
"""Seconds between two ``gc.freeze()`` in the cluster's process. Its heap is large and
acyclic (the stored objects, the watch history of 50,000 writes), and Python's full
collections over it found nothing to free yet stopped the cluster's event loop for up to 1.6 s
at 5,000 Jobs, delaying every watch event it had to send: a cost of the simulator, not of an
API server (Go's collector runs beside the program). Frozen objects are still freed by their
reference counts; only cyclic garbage frozen alive is kept, in a process that lives minutes."""


def serve_cluster(
    conn: multiprocessing.connection.Connection, jobs: int, namespaces: list[str]
) -> None:
    """Run a SimulatedCluster; create the Jobs when asked; report when each one finished."""
    from simulated_k8s_cluster import SimulatedCluster

    config = {
        "timeScale": 1.0,
        "namespaces": namespaces,
        "nodePools": [
            {
                "name": "default",
                "nodes": max(1, jobs // 500 + 1),
                "capacity": {"cpu": "1000", "memory": "4000Gi", "pods": "500"},
            }
        ],
    }
    token_endpoint = TokenEndpoint()
    finished: dict[str, float] = {}
    outcome: dict[str, str] = {}

    def observe(resource: Any, event_type: str, obj: Any, old: Any) -> None:
        if resource.plural != "jobs" or event_type == "DELETED":
            return
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        if key in finished:
            return
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
                finished[key] = time.monotonic()
                outcome[key] = cond["type"]

    lags: list[tuple[float, float]] = []  # (time.monotonic(), how late the cluster's loop was)

    async def ticker(every: float = 0.1) -> None:
        expected = time.monotonic() + every
        frozen_at = expected
        while True:
            await asyncio.sleep(max(0.0, expected - time.monotonic()))
            now = time.monotonic()
            lags.append((now, max(0.0, now - expected)))
            expected = max(expected + every, now)
            if now - frozen_at >= FREEZE_EVERY:
                gc.freeze()
                frozen_at = now

    with SimulatedCluster(config) as cluster:
        cluster.state.store.add_observer(observe)
        ticking = cluster.call(lambda: asyncio.get_running_loop().create_task(ticker()))
        conn.send(cluster.kubeconfig(namespace=namespaces[0]))
        while True:
            command, arg = conn.recv()
            if command == "create":
                # In slices: each call to the cluster's thread must end within its 30 s.
                created = []
                for start in range(0, len(arg), CREATE_SLICE):
                    part = arg[start : start + CREATE_SLICE]
                    created += cluster.call(lambda part=part: [cluster.create(m) for m in part])
                conn.send(
                    [
                        {
                            "namespace": o["metadata"]["namespace"],
                            "name": o["metadata"]["name"],
                            "uid": o["metadata"]["uid"],
                        }
                        for o in created
                    ]
                )
            elif command == "pods":  # {"ns/job": [pod names]}
                pods: dict[str, list[str]] = {}
                for pod in cluster.list("pods"):
                    job = (pod["metadata"].get("labels") or {}).get("job-name")
                    if job:
                        key = f"{pod['metadata']['namespace']}/{job}"
                        pods.setdefault(key, []).append(pod["metadata"]["name"])
                conn.send(pods)
            elif command == "finished":
                conn.send(cluster.call(lambda: (dict(finished), dict(outcome))))
            elif command == "counters":
                conn.send(cluster.counters.snapshot())
            elif command == "cpu":  # the cluster process's CPU seconds so far (every thread)
                conn.send(time.process_time())
            elif command == "loop_lags":  # how late the cluster's event loop was, 10 times a second
                conn.send(cluster.call(lambda: list(lags)))
            elif command == "token_endpoint":
                conn.send(token_endpoint.start(cluster.token))
            elif command == "token_requests":
                conn.send(token_endpoint.requests)
            elif command == "stop":
                token_endpoint.stop()
                cluster.call(ticking.cancel)
                conn.send("stopped")
                break


class ChildProcess:
    """A server in a child process (``spawn``) running ``target(conn, *args)``, driven over a
    pipe: ``ask(command, arg)`` sends a command and returns the answer; ``"stop"`` ends it.
    ``started`` reads what the child sends once it serves (within 120 s)."""

    def __init__(self, target: Any, *args: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self._process.start()
        self._lock = threading.Lock()

    def started(self) -> Any:
        """The child's first message (what it serves at)."""
        if not self._conn.poll(120):
            self._process.kill()
            raise RuntimeError("the simulated cluster did not start within 120 s")
        return self._conn.recv()

    def ask(self, command: str, arg: Any = None) -> Any:
        with self._lock:
            self._conn.send((command, arg))
            return self._conn.recv()

    def stop(self) -> None:
        try:
            self.ask("stop")
        finally:
            self._process.join(30)
            if self._process.is_alive():
                self._process.kill()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ClusterProcess(ChildProcess):
    """The simulated cluster with ``jobs`` Jobs' counters, in a child process."""

    def __init__(self, jobs: int, namespaces: list[str]) -> None:
        super().__init__(serve_cluster, jobs, namespaces)
        self.kubeconfig: dict[str, Any] = self.started()

    def create(self, manifests: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Create the Jobs; ``[{"namespace", "name", "uid"}]``."""
        result: list[dict[str, str]] = self.ask("create", manifests)
        return result

    def finished(self) -> tuple[dict[str, float], dict[str, str]]:
        """``"ns/name"`` → when the cluster wrote the Job's final condition, and which one."""
        done, outcome = self.ask("finished")
        return done, outcome

    def cpu_seconds(self) -> float:
        """CPU seconds the cluster's process has used so far (its own overhead)."""
        result: float = self.ask("cpu")
        return result

    def loop_lags(self, start: float, end: float) -> list[float]:
        """How late the cluster's event loop was (seconds, 10 samples a second) between two
        ``time.monotonic()`` instants: a busy cluster delays what it sends."""
        samples: list[tuple[float, float]] = self.ask("loop_lags")
        return [lag for at, lag in samples if start <= at <= end]

    def counters(self) -> dict[str, int]:
        """API requests served so far, ``{"get jobs": n, …}``."""
        result: dict[str, int] = self.ask("counters")
        return result


def manifests(jobs: int, seconds: int, spread: int, namespaces: list[str]) -> list[dict[str, Any]]:
    """``jobs`` Jobs running ``seconds`` plus a stagger of up to ``spread`` seconds, filling the
    namespaces 1,000 at a time."""
    from airflow_k8s_jobs.manifests.jobs import JobSpecRequest, build_job
    from airflow_k8s_jobs.manifests.names import TaskInstanceKey

    out = []
    for i in range(jobs):
        namespace = namespaces[min(len(namespaces) - 1, i // JOBS_PER_NAMESPACE)]
        job = build_job(
            JobSpecRequest(image=IMAGE),
            TaskInstanceKey("bench", f"task-{i:05d}", "manual__bench", -1, 1),
            namespace,
            "simulated",
        )
        behaviour = json.dumps({"seconds": seconds + (i * spread) // max(1, jobs - 1)})
        template_meta = job["spec"]["template"].setdefault("metadata", {})
        template_meta.setdefault("annotations", {})[BEHAVIOUR] = behaviour
        out.append(job)
    return out


BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"
"""The pod-template annotation that tells the simulated cluster how a container behaves."""


def job_running(name: str, namespace: str, labels: dict[str, str], seconds: int) -> dict[str, Any]:
    """A plain Job whose one container runs ``seconds`` (simulated) and succeeds."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {BEHAVIOUR: json.dumps({"seconds": seconds})}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox:1.36"}],
                },
            },
        },
    }


# --- statistics and waiting -------------------------------------------------------------------


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` on the event loop until true; ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float] | None:
    """p50 / p99 / max of the values, or None when there are none."""
    if not values:
        return None
    return {
        "p50": statistics.median(values),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def spread_ms(values: list[float]) -> str:
    """``"p50 / p99 / max ms"``."""
    stats = summary(values)
    if stats is None:
        return "(not measured)"
    return f"{stats['p50'] * 1000:.0f} / {stats['p99'] * 1000:.0f} / {stats['max'] * 1000:.0f} ms"


def publish(text: str, output: Path | None) -> None:
    """Print a benchmark's table, and write it to ``output`` too when one is given."""
    print(text)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
