"""Prototype: the scheduler defers mapped ``KubeJobOperator`` task instances straight onto
``KubeJobTrigger`` (Airflow's ``start_from_trigger``), each for a Job created beforehand on the
simulated cluster, so that no worker has to start a task before it waits. For
``real_triggerer.py``, which cannot get 1,000 tasks deferred at once otherwise.

``dag.test()`` does not exercise ``start_from_trigger`` on either Airflow line (it marks
schedulable task instances ``scheduled`` itself and runs them), so this script runs Airflow's
own pieces in one process, against a throwaway SQLite metadata database:

1. the DAG file is serialized to the database as the DAG processor does;
2. the scheduler's step: ``DagRun.update_state`` + ``DagRun.schedule_tis``, which is where
   ``start_from_trigger`` defers a task instance without a worker (``TaskInstance.defer_task``);
3. the triggerer's step: its own ``TriggerRunner`` loads the Trigger rows (decrypting and
   deserializing their kwargs; on Airflow 3 with the serialized DAG, as it does for tasks that
   start from the trigger), runs the triggers in one event loop, and ``Trigger.submit_event``
   hands each event to its task instance;
4. the worker's step: the task instance resumes as ``dag.test()`` runs a task
   (``execute_complete`` with the event); ``execute()`` raises if it is ever called.

Airflow 2.11 expands ``start_trigger_args`` per map index (``expand(trigger_kwargs=[...])``):
each task instance gets ``KubeJobTrigger`` itself with its own Job's kwargs. Airflow 3 (3.3.2
here) gives every map index the operator's one ``start_trigger_args``
(``TaskInstance.start_trigger_args``; the per-index expansion is not wired to the scheduler,
GH-52141), so there the trigger is ``SeededKubeJobTrigger``, a ``KubeJobTrigger`` that takes its
Job's kwargs from a JSON file by its task instance's map index once the triggerer attaches the
task instance. It lives in the plugins folder, which every Airflow process has on ``sys.path``.

    PYTHONPATH=.:simulator python benchmarks/start_from_trigger_proto.py [--n 3]
        [--dag-data-cost 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(tempfile.mkdtemp(prefix="sft-proto-"))
# Airflow reads its configuration when first imported: set it before any import of airflow.
os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(HOME / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(HOME / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": "tVL0uwE0J0kz2ZozpMzYj0bH5dxEAxXwdlYRF7Cc8hU=",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
)
(HOME / "dags").mkdir(parents=True)
(HOME / "plugins").mkdir()
sys.path.insert(0, str(ROOT / "simulator"))

DAG_ID = "start_from_trigger_proto"
RUN_ID = "proto_run"
TASK_ID = "work"
NAMESPACE = "batch"
IMAGE = "bench/work:1"
CONN_ID = "bench_k8s"
SAMPLE_WORKLOADS: list[Any] = []

# Airflow 3: the trigger the scheduler names for every map index. Its module goes into the
# plugins folder (on sys.path in the scheduler, triggerer and workers alike).
SEEDED_TRIGGER_MODULE = '''
"""Benchmark only: KubeJobTrigger for the Job of its task instance's map index."""

from __future__ import annotations

import json
from typing import Any

from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger

_TABLES: dict[str, dict[str, dict[str, Any]]] = {}


class SeededKubeJobTrigger(KubeJobTrigger):
    """Airflow 3 starts every map index of a mapped task from the same trigger kwargs; this
    trigger reads its Job's (``KubeJobTrigger`` kwargs by map index) from ``jobs_file`` as
    soon as the triggerer attaches its task instance, before ``run()``."""

    def __init__(self, jobs_file: str) -> None:
        super().__init__(cluster_conn_id="", cluster_name="", namespace="", job_name="", job_uid="")
        self.jobs_file = jobs_file

    @property
    def task_instance(self) -> Any:
        return KubeJobTrigger.task_instance.fget(self)

    @task_instance.setter
    def task_instance(self, value: Any) -> None:
        KubeJobTrigger.task_instance.fset(self, value)
        if value is None:
            return
        table = _TABLES.get(self.jobs_file)
        if table is None:
            with open(self.jobs_file) as f:
                table = _TABLES[self.jobs_file] = json.load(f)
        seeded = KubeJobTrigger(**table[str(value.map_index)])
        self.target, self.policy = seeded.target, seeded.policy
        self.delete_on_kill = seeded.delete_on_kill

    def arguments(self) -> dict[str, Any]:
        return {"jobs_file": self.jobs_file}
'''

# The benchmark's generated DAG file. {start_trigger_args} and {expand} differ by Airflow line.
DAG_TEMPLATE = '''
from datetime import datetime

from airflow import DAG
from airflow.triggers.base import StartTriggerArgs

from airflow_k8s_jobs import KubeJobOperator


class SeededKubeJobOperator(KubeJobOperator):
    """Benchmark only: the scheduler defers each task instance straight onto the trigger for a
    Job created beforehand; a worker only ever runs execute_complete()."""

    start_from_trigger = True
    start_trigger_args = {start_trigger_args}

    def __init__(self, *, trigger_kwargs=None, **kwargs):
        # Airflow 2 reads the mapped trigger_kwargs per map index; an operator argument so
        # that .expand() accepts it.
        super().__init__(**kwargs)
        self.trigger_kwargs = trigger_kwargs

    def execute(self, context):
        raise RuntimeError("execute() ran: this task instance did not start from its trigger")


with DAG(
    dag_id="{dag_id}",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_tasks={n},
) as dag:
    SeededKubeJobOperator.partial(
        task_id="{task_id}",
        cluster_conn_id="{conn_id}",
        namespace="{namespace}",
        image="{image}",
        cmds=["work"],
        retries=0,
    ).expand({expand})
'''


def log(text: str) -> None:
    print(text, flush=True)


def airflow_3() -> bool:
    from airflow_k8s_jobs._compat import AIRFLOW_V_3_0_PLUS

    return bool(AIRFLOW_V_3_0_PLUS)


def seconds_of(index: int) -> int:
    return 2 + index % 3


# --- the benchmark's side: Jobs first, then the DAG file -------------------------------------


def create_jobs(cluster: Any, n: int) -> list[dict[str, Any]]:
    """Create the Jobs as KubeJobOperator would for try 1 of each map index (same name, labels;
    ``list_tries`` finds them), and return the KubeJobTrigger kwargs execute() would defer with."""
    from airflow_k8s_jobs.clusters import KubeClusterHook
    from airflow_k8s_jobs.manifests.jobs import JobSpecRequest, build_job
    from airflow_k8s_jobs.manifests.names import TaskInstanceKey
    from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
    from airflow_k8s_jobs.waiting import JobTarget, WaitPolicy

    cluster_name = KubeClusterHook(CONN_ID).settings.display_name
    kwargs = []
    for i in range(n):
        request = JobSpecRequest(
            image=IMAGE, cmds=["work"], arguments=[f"duration={seconds_of(i)}s"]
        )
        key = TaskInstanceKey(DAG_ID, TASK_ID, RUN_ID, i, 1)
        job = cluster.create(build_job(request, key, NAMESPACE, cluster_name))
        meta = job["metadata"]
        target = JobTarget(CONN_ID, cluster_name, NAMESPACE, meta["name"], meta["uid"])
        # The operator's defaults: capacity_timeout 1 h, image_pull_grace 5 min; deadline None
        # (an execution_timeout becomes the task instance's trigger_timeout instead).
        policy = WaitPolicy(3600.0, 300.0, deadline=None, live_log_streams=1)
        kwargs.append(KubeJobTrigger.for_target(target, policy, delete_on_kill=True).serialize()[1])
    return kwargs


def write_dag(trigger_kwargs: list[dict[str, Any]]) -> str:
    """The DAG file; returns how its start_trigger_args name the trigger."""
    n = len(trigger_kwargs)
    if airflow_3():
        jobs_file = HOME / "seeded_jobs.json"
        jobs_file.write_text(json.dumps({str(i): k for i, k in enumerate(trigger_kwargs)}))
        (HOME / "plugins" / "seeded_k8s_triggers.py").write_text(SEEDED_TRIGGER_MODULE)
        trigger_cls = "seeded_k8s_triggers.SeededKubeJobTrigger"
        start = (
            f"StartTriggerArgs(trigger_cls={trigger_cls!r}, "
            f"trigger_kwargs={{'jobs_file': {str(jobs_file)!r}}}, "
            "next_method='execute_complete', next_kwargs=None, timeout=None)"
        )
        # Only the number of map indexes matters to the scheduler; the arguments make the
        # worker's rendered_manifest the Job's.
        expand = f"arguments={[[f'duration={seconds_of(i)}s'] for i in range(n)]!r}"
    else:
        trigger_cls = "airflow_k8s_jobs.triggers.jobs.KubeJobTrigger"
        start = (
            f"StartTriggerArgs(trigger_cls={trigger_cls!r}, trigger_kwargs=None, "
            "next_method='execute_complete', next_kwargs=None, timeout=None)"
        )
        expand = f"trigger_kwargs={trigger_kwargs!r}"
    (HOME / "dags" / f"{DAG_ID}.py").write_text(
        DAG_TEMPLATE.format(
            start_trigger_args=start,
            dag_id=DAG_ID,
            n=n,
            task_id=TASK_ID,
            conn_id=CONN_ID,
            namespace=NAMESPACE,
            image=IMAGE,
            expand=expand,
        )
    )
    return trigger_cls


# --- Airflow's side -----------------------------------------------------------------------------


def file_dag() -> Any:
    """The DAG as parsed from the file (what a worker runs)."""
    if airflow_3():
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(str(HOME / "dags"))
    else:
        from airflow.models.dagbag import DagBag

        bag = DagBag(str(HOME / "dags"), include_examples=False)
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


def create_run(session: Any) -> Any:
    """Serialize the DAG to the database and create its run; returns the DagRun (whose DAG is
    the serialized one, as the scheduler's)."""
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    if airflow_3():
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
        from airflow.models.dagbag import DBDagBag
        from airflow.models.dagrun import get_or_create_dagrun
        from airflow.sdk import timezone
        from airflow.utils.types import DagRunTriggeredByType

        manager = DagBundlesManager()
        manager.sync_bundles_to_db(session=session)
        session.commit()
        for bundle in manager.get_all_dag_bundles():
            if not bundle.is_initialized:
                bundle.initialize()
            bag = BundleDagBag(
                dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name
            )
            sync_bag_to_db(bag, bundle.name, bundle.version)
        dag = DBDagBag().get_latest_version_of_dag(DAG_ID, session=session)
        now = timezone.utcnow()
        return get_or_create_dagrun(
            dag=dag,
            run_id=RUN_ID,
            logical_date=None,
            data_interval=None,
            run_after=now,
            conf=None,
            triggered_by=DagRunTriggeredByType.TEST,
            triggering_user_name="proto",
            start_date=now,
            session=session,
        )
    from airflow.models.dagbag import DagBag
    from airflow.utils import timezone

    DagBag(str(HOME / "dags"), include_examples=False).sync_to_db(session=session)
    session.commit()
    dag = DagBag(read_dags_from_db=True).get_dag(DAG_ID, session=session)
    now = timezone.utcnow()
    return dag.create_dagrun(
        state=DagRunState.RUNNING,
        execution_date=now,
        run_id=RUN_ID,
        start_date=now,
        run_type=DagRunType.MANUAL,
        data_interval=(now, now),
        session=session,
    )


def scheduler_step(dag_run: Any, session: Any) -> None:
    """What SchedulerJobRunner._schedule_dag_run does with a running DagRun."""
    schedulable, _ = dag_run.update_state(session=session, execute_callbacks=False)
    log(f"scheduler: {len(schedulable)} schedulable ({type(schedulable[0].task).__name__})")
    dag_run.schedule_tis(schedulable, session=session)
    session.commit()


def task_instances(session: Any) -> list[Any]:
    from airflow.models.taskinstance import TaskInstance

    session.expire_all()
    rows = session.query(TaskInstance).filter(
        TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == RUN_ID
    )
    return sorted(rows, key=lambda ti: ti.map_index)


def show_deferred(session: Any) -> None:
    from airflow.models.trigger import Trigger

    for ti in task_instances(session):
        trigger = session.get(Trigger, ti.trigger_id) if ti.trigger_id else None
        kwargs = trigger.kwargs if trigger else {}
        what = {k: kwargs[k] for k in ("job_name", "job_uid", "jobs_file") if k in kwargs}
        log(
            f"  map_index {ti.map_index}: {ti.state}, try {ti.try_number}, "
            f"next_method {ti.next_method}, next_kwargs {ti.next_kwargs}, "
            f"trigger_timeout {ti.trigger_timeout}, trigger {ti.trigger_id} "
            f"{trigger.classpath if trigger else None} {what}"
        )


def show_started(runner: Any) -> None:
    """Log which Job each trigger the runner starts waits for."""
    run_trigger = runner.run_trigger

    async def started(trigger_id: int, trigger: Any, *args: Any, **kwargs: Any) -> None:
        name = runner.triggers[trigger_id]["name"]
        log(f"  {name}: {type(trigger).__name__} waits for {trigger.target.where}")
        await run_trigger(trigger_id, trigger, *args, **kwargs)

    runner.run_trigger = started


async def run_triggers_af2(ids: set[int]) -> list[tuple[int, Any]]:
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    runner = TriggerRunner()
    show_started(runner)
    runner.update_triggers(ids)  # loads the rows, decrypts kwargs, instantiates, attaches TIs
    await runner.create_triggers()
    await asyncio.gather(*(d["task"] for d in runner.triggers.values()))
    return list(runner.events)


async def run_triggers_af3(ids: set[int]) -> list[tuple[int, Any]]:
    from types import SimpleNamespace

    from airflow.jobs.triggerer_job_runner import TriggerRunner, TriggerRunnerSupervisor

    # The supervisor's own workload builder (it decides dag_data for start_from_trigger tasks);
    # only the attributes it reads of the supervisor are given.
    supervisor = SimpleNamespace(
        job=SimpleNamespace(id=1),
        id=1,
        logger_cache={},
        fetch_trigger_details=lambda ids, session: TriggerRunnerSupervisor.fetch_trigger_details(
            None, ids, session=session
        ),
        fetch_non_task_trigger_ids=lambda session: set(),
        _create_workload=lambda **kw: TriggerRunnerSupervisor._create_workload(supervisor, **kw),
    )
    workloads = TriggerRunnerSupervisor.build_trigger_workloads(supervisor, ids)
    SAMPLE_WORKLOADS.extend(workloads)
    for workload in workloads:
        size = len(workload.model_dump_json(include={"dag_data"}))
        log(
            f"  workload of trigger {workload.id}: dag_data {'yes' if workload.dag_data else 'no'} "
            f"({size} bytes as JSON)"
        )
    runner = TriggerRunner()
    show_started(runner)
    runner.to_create.extend(workloads)
    await runner.create_triggers()  # decrypts kwargs, instantiates, attaches a RuntimeTaskInstance
    await asyncio.gather(*(d["task"] for d in runner.triggers.values()))
    assert not runner.failed_triggers, list(runner.failed_triggers)
    return [(entry.trigger_id, entry.event) for entry in runner.events]


def triggerer_step(session: Any) -> None:
    from airflow.models.trigger import Trigger

    ids = {ti.trigger_id for ti in task_instances(session) if ti.trigger_id}
    session.commit()
    started = time.monotonic()
    run = run_triggers_af3 if airflow_3() else run_triggers_af2
    events = asyncio.run(run(ids))
    log(f"triggerer: {len(events)} events in {time.monotonic() - started:.1f} s")
    for trigger_id, event in events:
        payload = event.payload
        log(f"  trigger {trigger_id}: {payload.get('status')} {payload.get('name')}")
        Trigger.submit_event(trigger_id=trigger_id, event=event)  # the triggerer's handle_events


def worker_step(session: Any) -> None:
    dag = file_dag()
    task = dag.get_task(TASK_ID)
    for ti in task_instances(session):
        if airflow_3():
            from airflow.sdk.definitions.dag import _run_task

            _run_task(ti=ti, task=task)
        else:
            ti.task = task
            ti._run_raw_task(session=session)
            session.commit()


def dag_data_cost(n: int) -> None:
    """Airflow 3: the triggerer sends the whole serialized DAG with every trigger of a task that
    starts from the trigger, and deserializes it per trigger (create_runtime_ti)."""
    import tracemalloc

    from airflow.jobs.triggerer_job_runner import TriggerRunner
    from airflow.serialization.serialized_objects import DagSerialization

    write_dag([{"job_name": f"job-{i}", "job_uid": "0" * 36} for i in range(n)])
    data = DagSerialization.to_dict(file_dag())
    sample = SAMPLE_WORKLOADS[0]  # a real workload of this run: its TI and DagRun data

    def ti(i: int) -> Any:
        return sample.ti.model_copy(update={"map_index": i})

    keep = []
    tracemalloc.start()
    started = time.process_time()
    for i in range(20):
        runtime_ti = TriggerRunner.create_runtime_ti(ti(i), data, sample.dag_run_data)
        keep.append((runtime_ti, runtime_ti.get_template_context()))  # run_trigger holds both
    cpu = (time.process_time() - started) / 20
    held = tracemalloc.get_traced_memory()[0] / 20
    tracemalloc.stop()
    log(
        f"dag_data for N={n}: {len(json.dumps(data)) / 1024:.0f} KiB per trigger; "
        f"create_runtime_ti + context {cpu * 1000:.0f} ms CPU and {held / 2**20:.2f} MiB held "
        "per trigger (tracemalloc)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3, help="map indexes (3)")
    parser.add_argument(
        "--dag-data-cost",
        type=int,
        default=0,
        metavar="N",
        help="Airflow 3: also measure the triggerer's per-trigger DAG cost for N map indexes",
    )
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )
    import airflow
    from airflow.utils.session import create_session

    from simulated_k8s_cluster import SimulatedCluster

    logging.getLogger("airflow").setLevel(logging.WARNING)
    log(f"Airflow {airflow.__version__}, Python {sys.version.split()[0]}")
    config = {
        "timeScale": 1.0,
        "namespaces": [NAMESPACE],
        "nodePools": [{"name": "default", "nodes": 1, "capacity": {"cpu": "64", "memory": "64Gi"}}],
        "behaviours": [
            {
                "match": {"image": IMAGE, "args": f"duration={s}s"},
                "seconds": s,
                "stdout": f"ran {s}s",
            }
            for s in range(2, 5)
        ],
    }
    try:
        with SimulatedCluster(config) as cluster:
            kubeconfig = cluster.write_kubeconfig(HOME / "kubeconfig.yaml", None, NAMESPACE)
            os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
                {
                    "conn_type": "k8sjobs",
                    "extra": {"kubeconfig_path": str(kubeconfig), "namespace": NAMESPACE},
                }
            )
            kwargs = create_jobs(cluster, args.n)
            log(f"benchmark: created {len(kwargs)} Jobs: {[k['job_name'] for k in kwargs]}")
            log(f"DAG file names trigger {write_dag(kwargs)}")
            with create_session() as session:
                dag_run = create_run(session)
                scheduler_step(dag_run, session)
                log("after the scheduler's step:")
                show_deferred(session)
                triggerer_step(session)
                log("after the events:")
                for ti in task_instances(session):
                    log(
                        f"  map_index {ti.map_index}: {ti.state}, next_kwargs keys "
                        f"{sorted(ti.next_kwargs or {})}"
                    )
                worker_step(session)
                log("after the worker's step:")
                for ti in task_instances(session):
                    log(
                        f"  map_index {ti.map_index}: {ti.state}, try {ti.try_number}, "
                        f"return {ti.xcom_pull(task_ids=TASK_ID, map_indexes=ti.map_index)!r}"
                    )
                states = {str(ti.state) for ti in task_instances(session)}
        if args.dag_data_cost and airflow_3():
            dag_data_cost(args.dag_data_cost)
        ok = states == {"success"}
        log(
            "OK: every map index started from its trigger and succeeded"
            if ok
            else f"FAILED {states}"
        )
        return 0 if ok else 1
    finally:
        shutil.rmtree(HOME, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
