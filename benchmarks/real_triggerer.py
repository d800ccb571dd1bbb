"""Waiting Job tasks in a real Airflow deployment: Airflow's own triggerer process running the
deferred tasks of a real scheduler, so the numbers include Airflow's serialization, trigger
loading and event handling (``triggers_side_by_side.py`` runs the triggers bare, in one loop).

The deployment is the one tests/deployment uses (``AirflowDeployment``: scheduler, triggerer,
DAG processor and API server on Airflow 3, LocalExecutor, a throwaway PostgreSQL), run by the
interpreter running this script (Airflow 3.x or 2.11). Its DAG holds one mapped deferrable task
of ``--n`` instances, each running a Job whose container runs 60-90 s by default (``--seconds``,
``--spread``; spread over the map indexes) on a simulated cluster at real time (``timeScale``
1) in this process. The sides:

* ``ours``: ``KubeJobOperator`` with its defaults (deferrable);
* ``cncf``: ``KubernetesJobOperator(deferrable=True, wait_until_job_complete=True)``, its other
  arguments left at their defaults, through a ``kubernetes`` connection.

Measured for the triggerer process only (with its descendants: on Airflow 3 the trigger runner
it starts, and its log server), sampled every 0.5 s with psutil:

* CPU seconds per wall minute while tasks wait (from the first deferral seen to the last trigger
  fired), and for comparison while idle (the 30 s before the DAG is unpaused);
* peak RSS (summed over the processes, so pages they share count in each) and the idle level;
* API requests per waiting task per minute: the triggerer's connection carries a bearer token of
  its own, and the simulated cluster counts the requests made with it apart
  (``SimulatedCluster.client_token``); divided by the task-minutes spent deferred;
* detection latency: the instant the cluster wrote the Job's ``Complete``/``Failed`` condition
  (a store observer in this process, wall clock) → the timestamp of the triggerer's own log line
  for the trigger's event (``Trigger fired event`` on Airflow 3, ``Trigger … fired`` on 2.11,
  millisecond or better resolution). Cross-check: when this script's 0.5 s poll of the metadata
  database first saw the task instance leave ``deferred``;
* tasks that did not end ``success`` in their first try, or whose trigger never fired.

With ``--seed`` (for N=1,000: a 2-CPU machine starts about 20 tasks a minute, so without it a
thousand tasks never wait at the same time), the benchmark creates the Jobs itself, as
``KubeJobOperator`` names them for the first try of ``RUN_ID``'s map indexes, before it triggers
that run. The DAG's operator is the side's own with ``start_from_trigger``: the scheduler defers
every task instance straight onto the side's trigger, with the kwargs the side's operator builds
for that Job (its own ``_trigger`` / ``execute_deferrable``), which the trigger reads from a JSON
file by map index as the triggerer attaches the task instance (Airflow 3 gives every map index
the same start kwargs, GH-52141). No worker runs ``execute()``; the run is measured to the last
trigger's event. On Airflow 3 the triggerer loads the serialized DAG for each such trigger, on
both sides alike.

``--output PATH.md`` writes the table there and the raw numbers to ``PATH.json``.
``python benchmarks/real_triggerer.py --n 20`` is a quick run (a few minutes), as is
``--seed --n 20 --seconds 60 --spread 10``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from harness import summary

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "deployment"))
sys.path.insert(0, str(ROOT / "simulator"))

from deployment import AIRFLOW_V3, AirflowDeployment, PostgresServer, free_port  # noqa: E402

from simulated_k8s_cluster import SimulatedCluster  # noqa: E402

SIDES = ("ours", "cncf")
DAG_ID = "real_triggerer_bench"
NAMESPACE = "batch"
IMAGE = "bench/work:1"
CONN_ID = "bench_k8s"
SECONDS, SPREAD = 60, 30
"""Default run time of the Jobs' containers: 60 s plus up to 30 s over the map indexes."""
SAMPLE = 0.5
PARALLELISM = 4
IDLE_SECONDS = 30.0
MAP_INDEX_LABEL = "airflow-k8s-jobs.io/map-index"
ENDED = ("success", "failed", "upstream_failed", "skipped", "up_for_retry", "removed")

DAG_TEMPLATE = """
from datetime import datetime

from airflow import DAG

{import_line}

with DAG(
    dag_id="{dag_id}",
    schedule="@once",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks={n},
) as dag:
    {operator}.partial(
        task_id="work",
        namespace="{namespace}",
        image="{image}",
        cmds=["work"],
        {side_arguments}
    ).expand(arguments={arguments!r})
"""

SIDE_DAG = {
    "ours": (
        "from airflow_k8s_jobs import KubeJobOperator",
        "KubeJobOperator",
        f'cluster_conn_id="{CONN_ID}",',
    ),
    "cncf": (
        "from airflow.providers.cncf.kubernetes.operators.job import KubernetesJobOperator",
        "KubernetesJobOperator",
        f'kubernetes_conn_id="{CONN_ID}", deferrable=True, wait_until_job_complete=True,',
    ),
}

RUN_ID = "bench_seeded"
"""The run ``--seed`` triggers (its Jobs are named for it before it exists)."""
SEED_SECONDS, SEED_SPREAD = 240, 60
"""``--seed``'s default run time: the Jobs start before the run does, and must still be running
once the scheduler has deferred all N task instances and the triggerer has started their
triggers."""
SEEDED_MODULE = "seeded_bench_triggers"

SEEDED_TRIGGERS = {
    "ours": (
        "from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger as Seeded",
        "SeededKubeJobTrigger",
    ),
    "cncf": (
        "from airflow.providers.cncf.kubernetes.triggers.job import KubernetesJobTrigger as Seeded",
        "SeededKubernetesJobTrigger",
    ),
}

# The trigger every map index of a seeded task starts from (Airflow 3 gives all map indexes the
# operator's one start_trigger_args, GH-52141; 2.11 the same unless trigger_kwargs is mapped).
# It goes into the plugins folder, on sys.path in the scheduler, the triggerer and the workers.
SEEDED_TRIGGER_MODULE = '''
"""Benchmark only: a trigger that takes its Job's kwargs by its task instance's map index."""

from __future__ import annotations

import json
from typing import Any

from airflow.triggers.base import BaseTrigger

{import_line}

_TABLES: dict[str, dict[str, dict[str, Any]]] = {{}}
_SET_BY_THE_TRIGGERER = {{"task_instance", "_task_instance", "task_id", "trigger_id",
                         "triggerer_job_id", "timeout_after"}}
_BASE_PROPERTY = BaseTrigger.__dict__.get("task_instance")  # Airflow 3: a property


class {trigger_class}(Seeded):
    """The seeded trigger's kwargs (from ``jobs_file``, by map index) are taken as soon as the
    triggerer attaches the task instance, before ``run()``."""

    def __init__(self, jobs_file: str) -> None:
        BaseTrigger.__init__(self)
        self.jobs_file = jobs_file

    @property
    def task_instance(self) -> Any:
        if _BASE_PROPERTY is not None:
            return _BASE_PROPERTY.fget(self)
        return self.__dict__.get("_seeded_ti")

    @task_instance.setter
    def task_instance(self, value: Any) -> None:
        if _BASE_PROPERTY is not None:
            _BASE_PROPERTY.fset(self, value)
        else:
            self.__dict__["_seeded_ti"] = value
        if value is None:
            return
        table = _TABLES.get(self.jobs_file)
        if table is None:
            with open(self.jobs_file) as f:
                table = _TABLES[self.jobs_file] = json.load(f)
        seeded = Seeded(**table[str(value.map_index)])
        for key, item in vars(seeded).items():
            if key not in _SET_BY_THE_TRIGGERER:
                self.__dict__[key] = item

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{{__name__}}.{{type(self).__name__}}", {{"jobs_file": self.jobs_file}}
'''

SEEDED_DAG_TEMPLATE = """
from datetime import datetime

from airflow import DAG
from airflow.triggers.base import StartTriggerArgs

{import_line}


class Seeded{operator}({operator}):
    \"\"\"Benchmark only: the scheduler defers each task instance straight onto the trigger for
    a Job created beforehand; a worker only ever runs execute_complete().\"\"\"

    start_from_trigger = True
    start_trigger_args = StartTriggerArgs(
        trigger_cls="{trigger_cls}",
        trigger_kwargs={{"jobs_file": "{jobs_file}"}},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )

    def execute(self, context):
        raise RuntimeError("execute() ran: this task instance did not start from its trigger")


with DAG(
    dag_id="{dag_id}",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks={n},
) as dag:
    Seeded{operator}.partial(
        task_id="work",
        namespace="{namespace}",
        image="{image}",
        cmds=["work"],
        retries=0,
        {side_arguments}
    ).expand(arguments={arguments!r})
"""

# "2026-12-07T00:40:01.123456Z [info     ] Trigger fired event  name=dag/run/work/7/1 (ID 3) …"
# "[2026-12-07T00:40:01.123+0000] {triggerer_job_runner.py:631} INFO - Trigger dag/run/work/7/1
# (ID 3) fired: …"
TRIGGER_NAME = re.compile(r"/work/(?P<map>\d+)/(?P<try>\d+) \(ID \d+\)")
FIRED = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r".*?Trigger (?:fired event.*?name=)?\S*?/work/(?P<map>\d+)/(?P<try>\d+) \(ID \d+\)"
)


def seconds_of(index: int, n: int, seconds: int, spread: int) -> int:
    """The container's run time of map index ``index``: ``seconds`` plus up to ``spread``
    spread evenly over the indexes."""
    return seconds + (index * spread) // max(1, n - 1)


def cluster_config(n: int, seconds: int, spread: int) -> dict[str, Any]:
    return {
        "timeScale": 1.0,
        "namespaces": [NAMESPACE],
        "nodePools": [
            {
                "name": "default",
                "nodes": n // 400 + 1,
                "capacity": {"cpu": "1000", "memory": "4000Gi", "pods": "500"},
            }
        ],
        "behaviours": [
            {"match": {"image": IMAGE, "args": f"duration={s}s"}, "seconds": s}
            for s in range(seconds, seconds + spread + 1)
        ],
    }


def connection(side: str, kubeconfig: Path) -> dict[str, Any]:
    if side == "ours":
        return {
            "conn_type": "k8sjobs",
            "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
        }
    return {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}


def write_dag(side: str, n: int, seconds: int, spread: int, dags: Path, seed: Path | None) -> None:
    """The benchmark's DAG file; with ``seed`` (a folder for the seeded trigger's module and
    its Jobs' table) the seeded variant, whose task instances start from their triggers."""
    import_line, operator, side_arguments = SIDE_DAG[side]
    arguments = [[f"duration={seconds_of(i, n, seconds, spread)}s"] for i in range(n)]
    fields = {
        "import_line": import_line,
        "operator": operator,
        "side_arguments": side_arguments,
        "dag_id": DAG_ID,
        "n": n,
        "namespace": NAMESPACE,
        "image": IMAGE,
        "arguments": arguments,
    }
    if seed is None:
        (dags / f"{DAG_ID}.py").write_text(DAG_TEMPLATE.format(**fields))
        return
    trigger_import, trigger_class = SEEDED_TRIGGERS[side]
    (seed / f"{SEEDED_MODULE}.py").write_text(
        SEEDED_TRIGGER_MODULE.format(import_line=trigger_import, trigger_class=trigger_class)
    )
    (dags / f"{DAG_ID}.py").write_text(
        SEEDED_DAG_TEMPLATE.format(
            **fields,
            trigger_cls=f"{SEEDED_MODULE}.{trigger_class}",
            jobs_file=seed / "jobs.json",
        )
    )


def seed_jobs(
    side: str, n: int, seconds: int, spread: int, cluster: Any, connection_json: str
) -> dict[str, dict[str, Any]]:
    """Create the Jobs of ``RUN_ID``'s map indexes as ``KubeJobOperator`` would for their
    first try; map index → the trigger kwargs the side's operator would defer with (its own
    code builds them: ``_trigger`` for ours, ``execute_deferrable`` for cncf)."""
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = connection_json
    from airflow_k8s_jobs import KubeJobOperator
    from airflow_k8s_jobs.clusters import KubeClusterHook
    from airflow_k8s_jobs.manifests.jobs import JobSpecRequest, build_job
    from airflow_k8s_jobs.manifests.names import TaskInstanceKey
    from airflow_k8s_jobs.waiting import JobTarget

    cluster_name = KubeClusterHook(CONN_ID).settings.display_name
    created = []
    for i in range(n):
        request = JobSpecRequest(
            image=IMAGE,
            cmds=["work"],
            arguments=[f"duration={seconds_of(i, n, seconds, spread)}s"],
        )
        key = TaskInstanceKey(DAG_ID, "work", RUN_ID, i, 1)
        manifest = build_job(request, key, NAMESPACE, cluster_name)
        if side == "cncf":  # its operator names the container "base" and reads that log
            manifest["spec"]["template"]["spec"]["containers"][0]["name"] = "base"
        created.append(cluster.create(manifest))
    if side == "ours":
        operator = KubeJobOperator(
            task_id="work", cluster_conn_id=CONN_ID, namespace=NAMESPACE, image=IMAGE
        )
        return {
            str(i): operator._trigger(
                JobTarget(
                    CONN_ID,
                    cluster_name,
                    NAMESPACE,
                    job["metadata"]["name"],
                    job["metadata"]["uid"],
                ),
                None,
            ).serialize()[1]
            for i, job in enumerate(created)
        }
    # The cncf operator defers once its Job's pods exist, with their names.
    from types import SimpleNamespace

    from airflow.providers.cncf.kubernetes.operators.job import KubernetesJobOperator

    deadline = time.monotonic() + 300
    while True:
        pods: dict[str, list[str]] = {}
        for pod in cluster.list("pods", NAMESPACE):
            owner = (pod["metadata"].get("labels") or {}).get("job-name")
            if owner:
                pods.setdefault(owner, []).append(pod["metadata"]["name"])
        if all(job["metadata"]["name"] in pods for job in created):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(pods)} of {n} Jobs have pods after 300 s")
        time.sleep(0.5)
    operator = KubernetesJobOperator(
        task_id="work",
        kubernetes_conn_id=CONN_ID,
        deferrable=True,
        wait_until_job_complete=True,
        namespace=NAMESPACE,
        image=IMAGE,
    )
    kwargs = {}
    for i, job in enumerate(created):
        name = job["metadata"]["name"]
        operator.job = SimpleNamespace(metadata=SimpleNamespace(name=name, namespace=NAMESPACE))
        operator.pods = [
            SimpleNamespace(metadata=SimpleNamespace(name=pod, namespace=NAMESPACE))
            for pod in pods[name]
        ]
        try:
            operator.execute_deferrable()
        except BaseException as deferred:  # TaskDeferred: its module and base differ by line
            trigger = getattr(deferred, "trigger", None)
            if trigger is None:
                raise
            kwargs[str(i)] = trigger.serialize()[1]
        else:
            raise RuntimeError("KubernetesJobOperator.execute_deferrable() did not defer")
    return kwargs


def parse_timestamp(text: str) -> float:
    text = text.replace(",", ".").replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # the components log in UTC
        moment = moment.replace(tzinfo=datetime.now().astimezone().tzinfo)
    return moment.timestamp()


# --- watching the triggerer and the metadata database ----------------------------------------


@dataclass
class Sample:
    at: float
    cpu: float
    rss: int


@dataclass
class Observations:
    samples: list[Sample] = field(default_factory=list)
    deferred_at: dict[int, float] = field(default_factory=dict)
    """Map index → when the database poll first saw it deferred."""
    resumed_at: dict[int, float] = field(default_factory=dict)
    """Map index → when the poll first saw it leave ``deferred``."""
    finished_at: dict[int, float] = field(default_factory=dict)
    """Map index → when the cluster wrote its Job's final condition (wall clock)."""
    outcome: dict[int, str] = field(default_factory=dict)


class GroupSampler(threading.Thread):
    """Samples CPU time and summed RSS of a process and its descendants every 0.5 s."""

    def __init__(self, pid: int, into: list[Sample]) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.into = into
        self.stopping = threading.Event()

    def sample(self) -> None:
        cpu = 0.0
        rss = 0
        with contextlib.suppress(psutil.NoSuchProcess):
            times = self.root.cpu_times()
            cpu += times.children_user + times.children_system  # descendants it reaped
            for process in [self.root, *self.root.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = process.cpu_times()
                    cpu += t.user + t.system
                    rss += process.memory_info().rss
        self.into.append(Sample(time.time(), cpu, rss))

    def run(self) -> None:
        while not self.stopping.wait(SAMPLE):
            self.sample()


def poll_database(airflow: AirflowDeployment, run_id: str, seen: Observations) -> None:
    rows = airflow.query(
        "SELECT map_index, state FROM task_instance WHERE dag_id = %s AND run_id = %s",
        (DAG_ID, run_id),
    )
    now = time.time()
    for map_index, state in rows:
        if state == "deferred":
            seen.deferred_at.setdefault(map_index, now)
        elif map_index in seen.deferred_at:
            seen.resumed_at.setdefault(map_index, now)


# --- one run -----------------------------------------------------------------------------------


def run_side(
    side: str,
    n: int,
    seconds: int,
    spread: int,
    workdir: Path,
    postgres: PostgresServer,
    timeout: float,
    seed: bool = False,
) -> dict[str, Any]:
    """One side's run; with ``seed``, its Jobs are created beforehand and the task instances
    start from their triggers (no worker runs ``execute()``), and the run ends once every
    trigger has fired."""
    seen = Observations()
    started = time.monotonic()
    with SimulatedCluster(cluster_config(n, seconds, spread)) as cluster:

        def observe(resource: Any, event_type: str, obj: Any, old: Any) -> None:
            if resource.plural != "jobs" or event_type == "DELETED":
                return
            labels = obj["metadata"].get("labels") or {}
            label = labels.get(MAP_INDEX_LABEL, labels.get("map_index"))
            index = int(label) if label is not None else None
            if index is None or index in seen.finished_at:
                return
            for cond in (obj.get("status") or {}).get("conditions") or []:
                if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
                    seen.finished_at[index] = time.time()
                    seen.outcome[index] = cond["type"]

        cluster.state.store.add_observer(observe)
        workers_kubeconfig = cluster.write_kubeconfig(workdir / "kubeconfig.yaml", None, NAMESPACE)
        token, triggerer_counters = cluster.client_token()
        config = cluster.kubeconfig(namespace=NAMESPACE)
        config["users"][0]["user"]["token"] = token
        triggerer_kubeconfig = workdir / "triggerer-kubeconfig.json"
        triggerer_kubeconfig.write_text(json.dumps(config))

        dags = workdir / "dags"
        dags.mkdir(parents=True, exist_ok=True)
        seeded = workdir / "seeded" if seed else None
        if seeded is not None:
            seeded.mkdir(parents=True, exist_ok=True)
        write_dag(side, n, seconds, spread, dags, seeded)
        extra_env = {
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(n),
            "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
            # Workers parse the DAG file as they start; several at once on a busy machine.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300",
            "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
            "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, n + 100)),
            "AIRFLOW__TRIGGERER__DEFAULT_CAPACITY": str(max(1000, n + 100)),
            # Its log server (part of what is measured) on a port of its own, not 8794, which
            # another deployment on the machine may hold.
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            # The triggerer as deployed: its default heartbeat, not the tests' fast one.
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "5",
        }
        if seeded is not None:  # the seeded trigger's module, for every component
            extra_env["PYTHONPATH"] = os.pathsep.join(
                [str(seeded), *filter(None, [os.environ.get("PYTHONPATH")])]
            )
        database = f"bench_{side}_{n}_{int(time.time())}"
        airflow = AirflowDeployment(
            workdir / "home",
            dags,
            postgres,
            database,
            {CONN_ID: connection(side, workers_kubeconfig)},
            extra_env=extra_env,
        )
        airflow.components["triggerer"].env = {
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection(side, triggerer_kubeconfig))
        }
        airflow.migrate()
        try:
            airflow.start_all()
            triggerer = airflow.components["triggerer"].process
            assert triggerer is not None
            sampler = GroupSampler(triggerer.pid, seen.samples)
            sampler.start()
            airflow.wait_for_dag(DAG_ID)
            time.sleep(IDLE_SECONDS)  # the idle level: nothing deferred yet
            idle_until = time.time()
            if seeded is not None:
                table = seed_jobs(
                    side,
                    n,
                    seconds,
                    spread,
                    cluster,
                    json.dumps(connection(side, workers_kubeconfig)),
                )
                (seeded / "jobs.json").write_text(json.dumps(table))
                airflow.unpause(DAG_ID)
                triggered = airflow.airflow("dags", "trigger", DAG_ID, "--run-id", RUN_ID)
                assert triggered.returncode == 0, (
                    triggered.stdout[-2000:] + triggered.stderr[-2000:]
                )
                run_id = RUN_ID
            else:
                airflow.unpause(DAG_ID)
                run_id = airflow.first_run(DAG_ID)
            deadline = time.monotonic() + timeout
            state = None
            while time.monotonic() < deadline:
                poll_database(airflow, run_id, seen)
                for name in airflow.components:
                    airflow.assert_alive(name)
                state = airflow.run_state(DAG_ID, run_id)
                if state in ("success", "failed"):
                    break
                # Seeded: measured to the last trigger's event; the workers' resumes of a
                # thousand tasks (a few a second on 2 CPUs) are not part of it.
                if seeded is not None and len(seen.resumed_at) >= n:
                    break
                time.sleep(SAMPLE)
            sampler.stopping.set()
            sampler.join()
            tasks = airflow.tasks(DAG_ID, run_id)
            triggerer_log = "\n".join(
                p.read_text(errors="replace")
                for p in sorted((airflow.home / "components").glob("triggerer.*.log"))
            )
            task_logs = "\n".join(
                p.read_text(errors="replace")
                for p in sorted((airflow.home / "logs").rglob("*"))
                if p.is_file() and ".trigger." in p.name
            )
        finally:
            airflow.stop_all()
        requests = triggerer_counters.snapshot()
    return measure(
        side, n, seen, idle_until, state, tasks, triggerer_log + "\n" + task_logs, requests, seed
    ) | {"run_seconds": round(time.monotonic() - started, 1), "seeded": seed}


def fired_times(logs: str) -> dict[int, float]:
    """Map index → the timestamp of the triggerer's line for its trigger's event (JSON lines as
    Airflow 3 writes to task logs, or text lines)."""
    fired: dict[int, float] = {}
    for line in logs.splitlines():
        if "fired" not in line:
            continue
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("event") == "Trigger fired event":
                    found = TRIGGER_NAME.search(str(record.get("name", "")))
                    if found:
                        fired.setdefault(int(found["map"]), parse_timestamp(record["timestamp"]))
            continue
        found = FIRED.search(line)
        if found:
            fired.setdefault(int(found["map"]), parse_timestamp(found["ts"]))
    return fired


def measure(
    side: str,
    n: int,
    seen: Observations,
    idle_until: float,
    state: str | None,
    tasks: dict[str, Any],
    logs: str,
    requests: dict[str, int],
    seeded: bool = False,
) -> dict[str, Any]:
    fired = fired_times(logs)
    samples = seen.samples
    idle = [s for s in samples if idle_until - IDLE_SECONDS <= s.at <= idle_until]
    wait_start = min(seen.deferred_at.values(), default=idle_until)
    wait_end = max(fired.values(), default=max(seen.resumed_at.values(), default=wait_start))
    waiting = [s for s in samples if wait_start <= s.at <= wait_end]

    def cpu_per_minute(window: list[Sample]) -> float | None:
        if len(window) < 2 or window[-1].at <= window[0].at:
            return None
        return (window[-1].cpu - window[0].cpu) / (window[-1].at - window[0].at) * 60

    task_minutes = (
        sum(
            fired.get(i, seen.resumed_at.get(i, wait_end)) - at
            for i, at in seen.deferred_at.items()
        )
        / 60
    )
    total_requests = sum(requests.values())
    latencies = [fired[i] - seen.finished_at[i] for i in fired if i in seen.finished_at]
    db_latencies = [
        seen.resumed_at[i] - seen.finished_at[i] for i in seen.resumed_at if i in seen.finished_at
    ]
    idle_rss = max((s.rss for s in idle), default=0)
    peak_rss = max((s.rss for s in samples), default=0)
    # A seeded run stops at the last trigger's event, before every task has resumed: there the
    # tasks that ended other than ``success`` (the rest had not resumed yet).
    not_success = sorted(
        k for k, t in tasks.items() if t.state != "success" and (not seeded or t.state in ENDED)
    )
    retried = sorted(k for k, t in tasks.items() if t.try_number > 1)
    concurrency = [
        sum(1 for i, at in seen.deferred_at.items() if at <= s.at < fired.get(i, wait_end))
        for s in waiting
    ]
    return {
        "side": side,
        "n": n,
        "run_state": state,
        "tasks": len(tasks),
        "deferred_seen": len(seen.deferred_at),
        "fired_seen": len(fired),
        "jobs_finished": len(seen.finished_at),
        "not_success": not_success,
        "resumed_success": sum(1 for t in tasks.values() if t.state == "success"),
        "retried": retried,
        "never_fired": sorted(set(range(n)) - set(fired)),
        "wait_window_seconds": round(wait_end - wait_start, 1),
        "waiting_tasks_mean": round(sum(concurrency) / len(concurrency), 1) if concurrency else 0,
        "waiting_tasks_peak": max(concurrency, default=0),
        "task_minutes_waited": round(task_minutes, 2),
        "cpu_s_per_min_idle": cpu_per_minute(idle),
        "cpu_s_per_min_waiting": cpu_per_minute(waiting),
        "rss_idle_mb": round(idle_rss / 2**20, 1),
        "rss_peak_mb": round(peak_rss / 2**20, 1),
        "requests": requests,
        "requests_total": total_requests,
        "requests_per_task_minute": (
            round(total_requests / task_minutes, 2) if task_minutes else None
        ),
        "detection_s": summary(latencies),
        "detection_db_poll_s": summary(db_latencies),
    }


# --- the report --------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def spread_s(stats: dict[str, float] | None) -> str:
    if stats is None:
        return "(not measured)"
    return f"{stats['p50']:.2f} / {stats['p99']:.2f} / {stats['max']:.2f} s"


UNSEEDED_NOTE = (
    "Every task starts on a worker, creates its Job and defers. The scheduler and the "
    "LocalExecutor start tasks at the pace the machine allows, so with Jobs shorter than that "
    "start phase not all N wait at the same time (`--seconds` makes them longer)."
)
SEEDED_NOTE = (
    "Seeded (`--seed`): the benchmark creates the Jobs beforehand, named and labelled as "
    "`KubeJobOperator` names them for the run's first try, and the task instances start from "
    "their triggers (`start_from_trigger`): the scheduler defers all N without a worker, each "
    "onto the trigger kwargs its side's operator builds for its Job (read by map index when "
    "the triggerer attaches the task instance). The run is measured to the last trigger's "
    "event; the workers' resumes after it are not waited for, so *not success* counts only "
    "the tasks that had resumed and ended otherwise. On Airflow 3 the triggerer also loads "
    "the serialized DAG for every such trigger (to render its templates), on both sides."
)


def render(results: list[dict[str, Any]], environment: dict[str, Any]) -> str:
    shortest = environment["seconds"]
    lines = [
        "# Waiting Job tasks with Airflow's own triggerer",
        "",
        f"Airflow {environment['airflow']} (scheduler, triggerer, LocalExecutor with "
        f"parallelism {PARALLELISM}, PostgreSQL), the simulated cluster at real time in the "
        "benchmark's process; "
        f"Jobs running {shortest}-{shortest + environment['spread']} s. "
        f"Python {environment['python']}, "
        f"{environment['cpus']} CPUs, {environment['date']}. One run; its CPU and latency "
        "figures also depend on what else ran on the machine at the time.",
        "",
        "Measured for the triggerer's process group only (`benchmarks/real_triggerer.py`; how "
        "each number is taken is in its docstring). Detection: the cluster writing the Job's "
        "final condition → the triggerer's log line for the trigger's event (its timestamp); "
        "(database poll): the same start → when a 0.5 s poll of the metadata database saw the "
        "task instance leave `deferred` (Airflow's event handling included). Waiting tasks: "
        "how many were deferred at once.",
        "",
        SEEDED_NOTE if environment.get("seeded") else UNSEEDED_NOTE,
        "",
        "| side | N | waiting tasks mean / peak | triggerer CPU s/min idle → waiting | "
        "RSS idle → peak | API req / waiting task / min | detection p50 / p99 / max | "
        "(database poll) | not success / retried / never fired | run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['side']} | {r['n']} | failed: {r['error'][:200]} |")
            continue
        lines.append(
            f"| {r['side']} | {r['n']} | {r['waiting_tasks_mean']} / {r['waiting_tasks_peak']} "
            f"| {fmt(r['cpu_s_per_min_idle'])} → {fmt(r['cpu_s_per_min_waiting'])} "
            f"| {r['rss_idle_mb']:.0f} → {r['rss_peak_mb']:.0f} MB "
            f"| {fmt(r['requests_per_task_minute'])} | {spread_s(r['detection_s'])} "
            f"| {spread_s(r['detection_db_poll_s'])} "
            f"| {len(r['not_success'])} / {len(r['retried'])} / {len(r['never_fired'])} "
            f"| {r['run_seconds'] / 60:.1f} min |"
        )
    lines.append("")
    for r in results:
        if "error" in r:
            continue
        top = ", ".join(f"{k} {v}" for k, v in sorted(r["requests"].items(), key=lambda kv: -kv[1]))
        lines.append(
            f"- {r['side']}, N={r['n']}: run {r['run_state']}; the triggerer's requests: {top} "
            f"over {r['task_minutes_waited']} task-minutes waited "
            f"(a {r['wait_window_seconds']:.0f} s window)."
        )
    lines += [
        "",
        "`get pods/log` requests are live log streams (one long-lived request per pod, "
        "`KubeJobOperator`'s `live_log_streams`), not polls; a watch counts once. RSS is "
        "summed over the triggerer's processes (pages they share counted in each).",
    ]
    return "\n".join(lines)


def report(results: list[dict[str, Any]], environment: dict[str, Any], output: Path | None) -> None:
    """Print the table; write it and the raw numbers when ``output`` is given."""
    text = render(results, environment)
    print(text, flush=True)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
        output.with_suffix(".json").write_text(
            json.dumps({"environment": environment, "results": results}, indent=1) + "\n"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="mapped task instances (200)")
    parser.add_argument("--sides", default="ours", help="comma-separated: ours, cncf (ours)")
    parser.add_argument(
        "--seconds", type=int, help="the Jobs' shortest run time, s (60; with --seed 240)"
    )
    parser.add_argument(
        "--spread", type=int, help="up to this much longer over the tasks (30; with --seed 60)"
    )
    parser.add_argument(
        "--seed",
        action="store_true",
        help="create the Jobs beforehand; the task instances start from their triggers",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run (3600)")
    parser.add_argument("--output", type=Path, help="the table (.md); .json beside it")
    parser.add_argument(
        "--keep", action="store_true", help="keep the deployment's folder (logs) afterwards"
    )
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = SEED_SECONDS if args.seed else SECONDS
    if args.spread is None:
        args.spread = SEED_SPREAD if args.seed else SPREAD
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = set(sides) - set(SIDES)
    if unknown:
        parser.error(f"unknown sides {sorted(unknown)}; choose from {', '.join(SIDES)}")

    parent = Path(tempfile.mkdtemp(prefix="real-triggerer-"))
    # Seeding builds the trigger kwargs with the operators' own code, in this process.
    os.environ.setdefault("AIRFLOW_HOME", str(parent / "benchmark-home"))
    # Its own folder: as root the server runs as the "postgres" user, who must reach it.
    postgres_parent = Path(tempfile.mkdtemp(prefix="real-triggerer-postgres-"))
    postgres = PostgresServer(postgres_parent / "data")
    postgres.start()
    environment = {
        "airflow": importlib.metadata.version("apache-airflow"),
        "airflow_3": AIRFLOW_V3,
        "python": platform.python_version(),
        "cpus": psutil.cpu_count(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "seconds": args.seconds,
        "spread": args.spread,
        "seeded": args.seed,
    }
    results: list[dict[str, Any]] = []
    try:
        for side in sides:
            print(f"{side}: N={args.n} …", flush=True)
            try:
                result = run_side(
                    side,
                    args.n,
                    args.seconds,
                    args.spread,
                    parent / side,
                    postgres,
                    args.timeout,
                    seed=args.seed,
                )
            except Exception as error:  # one side failing still reports the others
                print(f"{side} failed: {error!r}", flush=True)
                result = {"side": side, "n": args.n, "error": repr(error)[:2000]}
            print(json.dumps(result, indent=1), flush=True)
            results.append(result)
            report(results, environment, args.output)
    finally:
        postgres.stop()
        if args.keep:
            print(f"the deployments' homes and logs are in {parent}")
        else:
            shutil.rmtree(parent, ignore_errors=True)
        shutil.rmtree(postgres_parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
