"""What 1,000 deferred ``KubeJobTrigger``s cost one triggerer event loop while they wait.

The simulated cluster runs in a child process at real time (``timeScale`` 1), so the numbers
below are the trigger side's alone. It creates ``--jobs`` Jobs (1,000) in one namespace, each
running ``--seconds`` (60) plus a stagger of up to ``--spread`` (30) seconds, so they finish
spread over half a minute. The parent then runs one ``KubeJobTrigger`` per Job in one event
loop, as a triggerer does, and reports:

* CPU seconds of the trigger process per wall minute **while waiting** (from every trigger
  subscribed to the first Job finishing) and over the whole run;
* wake-ups: how often a waiter's loop went round (``Subscription.changed`` returned), how many of
  those were timeouts, and how many changes the informers offered to subscribers;
* detection latency: from the instant the cluster wrote a Job's ``Complete`` condition (a store
  observer in the cluster's process, on the monotonic clock both processes share) to the
  trigger's event, p50/p99/max.

Run ``python benchmarks/job_waiting.py --help``; ``--jobs 200`` is a quick run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import ClusterProcess, manifests, publish, spread_ms, wait_until

NAMESPACE = "batch"
CONN_ID = "bench_jobs"


# --- the triggerer side -----------------------------------------------------------------------


class Counts:
    """How often waiters went round their loop (instrumentation of ``Subscription.changed``)."""

    def __init__(self) -> None:
        self.changed = 0
        self.timeouts = 0

    def install(self) -> None:
        from airflow_k8s_jobs.watching import Subscription

        original = Subscription.changed
        counts = self

        async def changed(self: Any, timeout: float | None = None) -> bool:
            result = await original(self, timeout)
            counts.changed += 1
            counts.timeouts += not result
            return result

        Subscription.changed = changed  # type: ignore[method-assign]


class Arrivals:
    """When each Job's ``Complete`` condition reached the informer (instrumentation of
    ``Informer.apply``), splitting the latency into the cluster's and the trigger's part."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def install(self) -> None:
        from airflow_k8s_jobs.watching import Informer

        original = getattr(Informer, "apply", None)
        if original is None:  # an informer without it: no split
            return
        at = self.at

        def apply(self: Any, kind: str, obj: Any) -> None:
            if self.key.resource.plural == "jobs":
                name = obj["metadata"]["name"]
                conditions = (obj.get("status") or {}).get("conditions") or []
                if name not in at and any(
                    c.get("type") == "Complete" and c.get("status") == "True" for c in conditions
                ):
                    at[name] = time.monotonic()
            original(self, kind, obj)

        Informer.apply = apply  # type: ignore[method-assign]


async def run_triggers(
    jobs: list[tuple[str, str]], first_finish: Callable[[], float | None]
) -> dict[str, Any]:
    from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
    from airflow_k8s_jobs.watching import WatchHub

    counts = Counts()
    counts.install()
    arrivals = Arrivals()
    arrivals.install()
    fired: dict[str, float] = {}

    async def one(name: str, uid: str) -> None:
        trigger = KubeJobTrigger(
            cluster_conn_id=CONN_ID,
            cluster_name="simulated",
            namespace=NAMESPACE,
            job_name=name,
            job_uid=uid,
        )
        async for event in trigger.run():
            assert event.payload["status"] == "success", event.payload
            fired[name] = time.monotonic()
            return

    hub = WatchHub.current()
    started_cpu, started = time.process_time(), time.monotonic()
    tasks = [asyncio.create_task(one(n, u)) for n, u in jobs]

    def subscribed() -> bool:
        informers = list(hub.informers.values())
        return len(informers) == 3 and all(len(i.subscribers) == len(jobs) for i in informers)

    await wait_until(subscribed, 120, "every trigger to subscribe")
    informers = list(hub.informers.values())
    for informer in informers:
        await informer.wait_synced()
    waiting_cpu, waiting_from = time.process_time(), time.monotonic()
    changed_at_wait = counts.changed
    # Until the first Job finishes (asked of the cluster now and then, off the loop).
    while not fired and await asyncio.to_thread(first_finish) is None:
        await asyncio.sleep(1.0)
    waited_cpu = time.process_time() - waiting_cpu
    waited = time.monotonic() - waiting_from
    wakeups_while_waiting = counts.changed - changed_at_wait
    await asyncio.wait_for(asyncio.gather(*tasks), 600)
    return {
        "fired": fired,
        "subscribe_seconds": waiting_from - started,
        "waiting_seconds": waited,
        "waiting_cpu": waited_cpu,
        "waiting_wakeups": wakeups_while_waiting,
        "total_seconds": time.monotonic() - started,
        "total_cpu": time.process_time() - started_cpu,
        "wakeups": counts.changed,
        "timeouts": counts.timeouts,
        "deliveries": sum(getattr(i, "deliveries", 0) for i in informers),
        "arrived": arrivals.at,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="waiting triggers (1000)")
    parser.add_argument("--seconds", type=int, default=60, help="shortest run, s (60)")
    parser.add_argument("--spread", type=int, default=30, help="longest minus shortest (30)")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))

    with ClusterProcess(args.jobs, [NAMESPACE]) as cluster:
        tmp = Path(tempfile.mkdtemp(prefix="bench-kube-"))
        path = tmp / "kubeconfig.json"
        path.write_text(json.dumps(cluster.kubeconfig))
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
            {"conn_type": "k8sjobs", "extra": {"kubeconfig_path": str(path)}}
        )
        created = cluster.create(manifests(args.jobs, args.seconds, args.spread, [NAMESPACE]))
        jobs = [(job["name"], job["uid"]) for job in created]

        def first_finish() -> float | None:
            done, _ = cluster.finished()
            return min(done.values()) if done else None

        result = asyncio.run(run_triggers(jobs, first_finish))
        done, _ = cluster.finished()
    finished = {key.split("/", 1)[1]: at for key, at in done.items()}
    latencies = [max(0.0, result["fired"][n] - finished[n]) for n, _ in jobs]
    arrived = result["arrived"]
    to_informer = [max(0.0, arrived[n] - finished[n]) for n, _ in jobs if n in arrived]
    to_event = [max(0.0, result["fired"][n] - arrived[n]) for n, _ in jobs if n in arrived]
    spread = spread_ms

    per_minute = result["waiting_cpu"] / result["waiting_seconds"] * 60
    rows = [
        f"| {args.jobs} waiting KubeJobTriggers, one event loop | |",
        "| --- | --- |",
        f"| subscribed and synced after | {result['subscribe_seconds']:.1f} s |",
        f"| CPU while waiting (before the first Job finished, {result['waiting_seconds']:.0f} s)"
        f" | {per_minute:.2f} CPU s per wall minute |",
        f"| waiter wake-ups while waiting | {result['waiting_wakeups']} |",
        f"| CPU over the whole run ({result['total_seconds']:.0f} s) | "
        f"{result['total_cpu']:.1f} CPU s |",
        f"| waiter wake-ups in all (of them timeouts) | {result['wakeups']} "
        f"({result['timeouts']}) |",
        f"| changes offered to subscribers by the informers | {result['deliveries']} |",
        "| detection latency, condition written → trigger event (p50 / p99 / max) | "
        f"{spread(latencies)} |",
        f"| of it: condition written → informer (the cluster, the watch) | {spread(to_informer)} |",
        f"| of it: informer → trigger event (the trigger) | {spread(to_event)} |",
    ]
    text = "\n".join(rows)
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
