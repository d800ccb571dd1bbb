"""Google access-token refreshes while ``KubeJobTrigger``s wait eight hours on a GKE connection.

GKE accepts a Google OAuth access token, which lives one hour. A trigger waiting for an
eight-hour Job must keep presenting a valid token, and every trigger of a triggerer process
shares the connection, so the aim is one token exchange per token lifetime per process and no
request refused.

Time is simulated, so eight hours take a few wall minutes:

* the simulated cluster (child process) runs on a manual clock (``timeScale`` 0) with TLS. It
  accepts a bearer token only until one simulated hour after it was issued, and issues them
  from a local token endpoint (each exchange a new token). Its API server ends every open watch
  each ``--step`` simulated seconds (five minutes), as kube-apiserver's watch timeout does over
  a long wait, so the informers reconnect through the wait;
* the benchmark process holds a ``k8sjobs`` GKE connection (project/location/cluster). Its
  per-process caches are filled first — the cluster endpoint (``get_cluster`` would ask the GKE
  API) and the token source for Application Default Credentials, with google-auth credentials
  whose refresh handler exchanges at the local endpoint and a clock reading simulated time. All
  the rest is the provider's own path: ``--triggers`` ``KubeJobTrigger``s on one event loop,
  their ``kubernetes_asyncio`` clients, the key hook that asks the token source before each
  request, the retry policy that refreshes once on a 401;
* simulated time moves ``--step`` at a time (first the benchmark's clock, then the cluster's),
  each step waiting until the informers have watched again, until the Jobs finish
  (``--hours``) and every trigger has fired;
* once, at ``--revoke-at`` hours, the cluster revokes every token issued so far (a key rotation):
  the requests refused then, and the exchanges that follow, are counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness import ChildProcess, job_running, publish, wait_until

NAMESPACE = "batch"
CONN_ID = "bench_gke"
LIFETIME = 3600
"""Seconds a Google access token lives."""
PROJECT, LOCATION, CLUSTER = "bench", "europe-west1", "simulated"


# --- pure parts -------------------------------------------------------------------------------


def lifetimes(waited_seconds: float, lifetime: float = LIFETIME) -> int:
    """How many token lifetimes a wait spans (a started one counts): the fewest tokens that
    can cover it."""
    return max(1, math.ceil(waited_seconds / lifetime))


def expected_refreshes(waited_seconds: float, margin: float, lifetime: float = LIFETIME) -> int:
    """Refreshes a token source needs over a wait when it refreshes ``margin`` seconds before
    expiry and asks only then: the first token, then one per ``lifetime - margin``."""
    return 1 + int(waited_seconds // (lifetime - margin))


# --- the cluster's process --------------------------------------------------------------------


def serve_cluster(
    conn: multiprocessing.connection.Connection, jobs: int, seconds: int, step: int
) -> None:
    """A SimulatedCluster whose tokens expire an hour of simulated time after they are issued."""
    from simulated_k8s_cluster import SimulatedCluster
    from simulated_k8s_cluster.faults import RequestCounters

    config = {
        "timeScale": 0,
        "tls": True,
        "namespaces": [NAMESPACE],
        "nodePools": [
            {"name": "default", "nodes": 1, "capacity": {"cpu": "1000", "memory": "4000Gi"}}
        ],
    }
    cluster = SimulatedCluster(config)
    expiry: dict[str, float] = {}  # token → simulated second it expires
    tally = {"accepted": 0, "rejected": 0, "exchanges": 0}
    watch_requests = [0]

    class ExpiringTokens(set[str]):
        """The API server's accepted tokens: those not yet expired on the cluster's clock."""

        def __contains__(self, token: object) -> bool:
            ok = isinstance(token, str) and expiry.get(token, -1.0) > cluster.clock.now()
            tally["accepted" if ok else "rejected"] += 1
            return ok

    class CountingWatches(RequestCounters):
        def add(self, verb: str, resource: str, dry_run: bool = False) -> None:
            if verb == "watch":
                watch_requests[0] += 1
            super().add(verb, resource, dry_run)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            token = secrets.token_urlsafe(24)

            def issue() -> None:
                expiry[token] = cluster.clock.now() + LIFETIME
                tally["exchanges"] += 1

            cluster.call(issue)
            body = json.dumps(
                {"access_token": token, "token_type": "Bearer", "expires_in": LIFETIME}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    token_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=token_server.serve_forever, daemon=True).start()
    token_uri = f"http://127.0.0.1:{token_server.server_address[1]}/token"

    with cluster:
        server = cluster.kubeconfig()["clusters"][0]["cluster"]
        cluster.state.tokens = ExpiringTokens()
        cluster.state.counters = CountingWatches()
        conn.send({"server": server["server"], "ca": server["certificate-authority-data"]})
        conn.send(token_uri)
        while True:
            command, arg = conn.recv()
            if command == "create":
                manifests = [job_manifest(i, seconds) for i in range(jobs)]
                created = cluster.call(lambda m=manifests: [cluster.create(j) for j in m])
                conn.send([(o["metadata"]["name"], o["metadata"]["uid"]) for o in created])
            elif command == "advance":  # simulated seconds; then every open watch ends
                cluster.advance(arg)
                cluster.call(cluster.state.store.drop_watches)
                conn.send(cluster.now())
            elif command == "revoke":  # every token issued so far is refused from now on
                cluster.call(expiry.clear)
                conn.send("revoked")
            elif command == "stats":
                conn.send(cluster.call(lambda: {**tally, "watches": watch_requests[0]}))
            elif command == "stop":
                token_server.shutdown()
                conn.send("stopped")
                break


def job_manifest(index: int, seconds: int) -> dict[str, Any]:
    from airflow_k8s_jobs.manifests.names import MANAGED_BY

    return job_running(f"long-{index:03d}", NAMESPACE, dict(MANAGED_BY), seconds)


class ClusterProcess(ChildProcess):
    """The cluster and its token endpoint in a child process, driven over a pipe."""

    def __init__(self, jobs: int, seconds: int, step: int) -> None:
        super().__init__(serve_cluster, jobs, seconds, step)
        self.server: dict[str, str] = self.started()
        self.token_uri: str = self._conn.recv()


# --- the benchmark's process ------------------------------------------------------------------


class SimulatedTime:
    """Naive UTC "now" (as google-auth keeps it) that moves only when told."""

    def __init__(self) -> None:
        self._now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)


def install_gke_connection(cluster: ClusterProcess, clock: SimulatedTime) -> Any:
    """A ``k8sjobs`` GKE connection, with the process caches a GKE API and Application Default
    Credentials would fill; returns the token source."""
    import base64

    from google.oauth2.credentials import Credentials

    from airflow_k8s_jobs.clusters import gke

    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
        {
            "conn_type": "k8sjobs",
            "extra": {
                "project": PROJECT,
                "location": LOCATION,
                "cluster": CLUSTER,
                "namespace": NAMESPACE,
            },
        }
    )

    def exchange(request: Any, scopes: Any) -> tuple[str, dt.datetime]:
        post = urllib.request.Request(cluster.token_uri, data=b"grant_type=bench", method="POST")
        with urllib.request.urlopen(post, timeout=30) as response:
            answer = json.load(response)
        return answer["access_token"], clock.now() + dt.timedelta(seconds=answer["expires_in"])

    credentials = Credentials(token=None, refresh_handler=exchange)
    source = gke.GoogleTokenSource(credentials, clock=clock.now, request_factory=lambda: None)
    gke._token_sources[(None, ())] = source
    name = f"projects/{PROJECT}/locations/{LOCATION}/clusters/{CLUSTER}"
    ca_pem = base64.b64decode(cluster.server["ca"])
    gke._endpoints[(name, False, False)] = gke.GkeEndpoint(cluster.server["server"], ca_pem)
    return source


async def wait_eight_hours(
    cluster: ClusterProcess, clock: SimulatedTime, jobs: list[tuple[str, str]], args: Any
) -> dict[str, Any]:
    """Run the triggers on this loop while simulated time moves on."""
    from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
    from airflow_k8s_jobs.watching import WatchHub

    fired: dict[str, str] = {}

    async def one(name: str, uid: str) -> None:
        trigger = KubeJobTrigger(
            cluster_conn_id=CONN_ID,
            cluster_name=CLUSTER,
            namespace=NAMESPACE,
            job_name=name,
            job_uid=uid,
        )
        async for event in trigger.run():
            fired[name] = str(event.payload.get("status"))
            return

    hub = WatchHub.current()
    tasks = [asyncio.create_task(one(n, u)) for n, u in jobs]

    def subscribed() -> bool:
        informers = list(hub.informers.values())
        return len(informers) == 3 and all(len(i.subscribers) == len(jobs) for i in informers)

    await wait_until(subscribed, 120, "every trigger to subscribe")
    for informer in list(hub.informers.values()):
        await informer.wait_synced()
    started = time.monotonic()
    waited = 0
    revocation: dict[str, Any] = {}
    while waited < args.hours * 3600 + 2 * args.step and len(fired) < len(jobs):
        stats = await asyncio.to_thread(cluster.ask, "stats")
        if "after" not in revocation and "before" in revocation:
            revocation["after"] = stats  # the informers watched again since
        if args.revoke_at and "before" not in revocation and waited >= args.revoke_at * 3600:
            revocation["before"] = stats
            revocation["at"] = waited
            await asyncio.to_thread(cluster.ask, "revoke")
        before = stats["watches"]
        clock.advance(args.step)  # the client's clock first: never behind the cluster's
        await asyncio.to_thread(cluster.ask, "advance", args.step)
        waited += args.step

        def watched_again(before: int = before) -> bool:
            stats = cluster.ask("stats")
            return bool(stats["watches"] >= before + len(hub.informers))

        deadline = time.monotonic() + 60
        while not await asyncio.to_thread(watched_again):
            if time.monotonic() > deadline:
                raise TimeoutError("the informers did not watch again within 60 s")
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)  # the Jobs have ended
    return {
        "fired": fired,
        "waited": waited,
        "wall": time.monotonic() - started,
        "revocation": revocation,
    }


def measure(args: Any) -> dict[str, Any]:
    from airflow_k8s_jobs.clusters.gke import DEFAULT_REFRESH_MARGIN

    cluster = ClusterProcess(args.triggers, int(args.hours * 3600), args.step)
    try:
        clock = SimulatedTime()
        source = install_gke_connection(cluster, clock)
        jobs = cluster.ask("create")
        run = asyncio.run(wait_eight_hours(cluster, clock, jobs, args))
        stats = cluster.ask("stats")
    finally:
        cluster.stop()
    revocation = run["revocation"]
    before, after = revocation.get("before"), revocation.get("after")
    revoked = (
        {
            "at": revocation["at"],
            "rejected_before": before["rejected"],
            "rejected": after["rejected"] - before["rejected"],
            "exchanges": after["exchanges"] - before["exchanges"],
        }
        if before and after
        else None
    )
    return {
        "revoked": revoked,
        "triggers": args.triggers,
        "hours": args.hours,
        "step": args.step,
        "waited": run["waited"],
        "wall": run["wall"],
        "outcomes": sorted(set(run["fired"].values())),
        "refreshes": source.refreshes,
        "exchanges": stats["exchanges"],
        "expected": expected_refreshes(run["waited"], DEFAULT_REFRESH_MARGIN),
        "accepted": stats["accepted"],
        "rejected": stats["rejected"],
        "watches": stats["watches"],
        "margin": DEFAULT_REFRESH_MARGIN,
    }


def render(run: dict[str, Any], google: dict[str, Any] | None) -> str:
    """The markdown table."""
    spans = lifetimes(run["waited"])
    revoked = run.get("revoked")
    scheduled = run["exchanges"] - (revoked["exchanges"] if revoked else 0)
    rejected, revoke_note = run["rejected"], ""
    if revoked:
        rejected = run["rejected"] - revoked["rejected"]  # those the revocation did not cause
        revoke_note = (
            f"; when every token was revoked at {revoked['at'] / 3600:g} h: "
            f"{revoked['rejected']} refused (one per informer), then "
            f"{revoked['exchanges']} token exchange(s) and every informer watching again"
        )
    rows = [
        f"Google token refreshes, {run['triggers']} KubeJobTriggers in one process on one GKE "
        f"connection, Jobs running {run['hours']:g} h (simulated; token lifetime 1 h)",
        "",
        "| | ours |",
        "| --- | --- |",
        f"| simulated wait | {run['waited'] / 3600:.2f} h ({spans} token lifetimes), "
        f"{run['wall']:.0f} s of wall time |",
        f"| triggers fired | {run['triggers']} ({', '.join(run['outcomes'])}) |",
        f"| token exchanges (token endpoint) | {scheduled} on schedule"
        + (f" + {revoked['exchanges']} after the revocation" if revoked else "")
        + f" (the token source counted "
        f"{run['refreshes']}; refreshing {run['margin']:.0f} s before expiry needs "
        f"{run['expected']} on schedule) |",
        f"| refreshes per token lifetime per process | {scheduled / spans:.2f} (goal: 1; "
        f"a token is replaced {run['margin'] / 60:.0f} min before it expires) |",
        f"| requests refused with 401 | {rejected} (goal: 0){revoke_note} |",
        f"| requests accepted | {run['accepted']} ({run['watches']} of them watches, "
        f"one per informer every {run['step'] // 60} simulated minutes) |",
    ]
    if google:
        rows += ["", google["text"]]
    return "\n".join(rows)


GOOGLE_NOTE = (
    "The Google provider's `GKEJobTrigger` cannot run here on simulated time: it sleeps "
    "`poll_interval` on the event loop's clock and its token's expiry is checked by google-auth "
    "against the wall clock, so an eight-hour wait takes eight hours. From its source "
    "(`AsyncGKEKubernetesHook._load_config`, `GoogleBaseAsyncHook.get_token`) it builds a new "
    "client and a new `_CredentialsToken` for every poll, and the token is sent as a fixed "
    "header; `benchmarks/triggers_side_by_side.py` measured {per_poll} token exchanges per "
    "poll ({exchanges} exchanges for {polls} polls). At the `poll_interval` of {interval:g} s "
    "used there that is about {per_hour:,.0f} exchanges per trigger per hour "
    "({per_wait:,.0f} per trigger over {hours:g} h), against ours: one per token lifetime per "
    "process."
)


def google_comparison(results: Path, hours: float) -> dict[str, Any] | None:
    """What the side-by-side trigger benchmark measured of the Google trigger's exchanges."""
    try:
        data = json.loads(results.read_text())
    except (OSError, ValueError):
        return None
    runs = [
        r for r in data.get("runs", []) if r.get("side") == "google" and r.get("token_requests")
    ]
    if not runs:
        return None

    def polls_of(run: dict[str, Any]) -> int:
        requests = run.get("requests") or {}
        return sum(n for key, n in requests.items() if key.startswith("get jobs"))

    # The run that polled most: where the triggers saturated their loop (5,000), most of the
    # exchanges happened before a first poll, which says nothing about the rate per poll.
    run = max(runs, key=polls_of)
    polls = polls_of(run)
    if not polls:
        return None
    per_poll = run["token_requests"] / polls
    interval = float(data.get("poll_interval") or 10.0)
    per_hour = per_poll * 3600 / interval
    text = GOOGLE_NOTE.format(
        per_poll=f"{per_poll:.2f}",
        exchanges=run["token_requests"],
        polls=polls,
        interval=interval,
        per_hour=per_hour,
        per_wait=per_hour * hours,
        hours=hours,
    )
    return {"per_poll": per_poll, "per_hour": per_hour, "text": text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triggers", type=int, default=20, help="waiting triggers (20)")
    parser.add_argument("--hours", type=float, default=8.0, help="simulated wait, h (8)")
    parser.add_argument("--step", type=int, default=300, help="simulated seconds a step (300)")
    parser.add_argument(
        "--revoke-at",
        type=float,
        default=4.0,
        help="revoke every token once at this simulated hour (4; 0: never)",
    )
    parser.add_argument(
        "--side-by-side",
        type=Path,
        default=Path(__file__).parent / "results" / "triggers_side_by_side.json",
        help="the trigger benchmark's results (for the Google trigger's token exchanges)",
    )
    parser.add_argument("--output", type=Path, help="also write the table here (and .json)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # triggers' progress
    run = measure(args)
    google = google_comparison(args.side_by_side, args.hours)
    publish(render(run, google), args.output)
    if args.output:
        data = {"ours": run, "google": google}
        args.output.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
