"""Driving a trigger as Airflow's triggerer does, and the task instance rows it reads.

``triggerer_run`` does what ``TriggerRunner.run_trigger`` does around a trigger (Airflow 2.11 and
3.3): iterate ``run()``; on a cancellation whose message is the user-action marker (3.3+: mark
failed / success, clear) call ``on_kill()``; always call ``cleanup()`` at the end. A triggerer
shutting down cancels the task without a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs._compat import AIRFLOW_V_3_3_PLUS, TriggerEvent

START = datetime(2026, 11, 1, tzinfo=timezone.utc)

if AIRFLOW_V_3_3_PLUS:
    from airflow.jobs.triggerer_job_runner import _USER_ACTION_CANCEL_MSG as USER_ACTION
else:
    USER_ACTION = "user-action"  # never sent before 3.3: on_kill() is not called there


async def triggerer_run(trigger: Any) -> TriggerEvent | None:
    """What the triggerer's ``run_trigger`` does around one trigger."""
    try:
        async for event in trigger.run():
            return event
        return None
    except asyncio.CancelledError as exc:
        if exc.args and exc.args[0] == USER_ACTION:
            await trigger.on_kill()
        raise
    finally:
        with contextlib.suppress(Exception):
            await trigger.cleanup()


def use_kubeconfig_connection(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, kubeconfig: Path, namespace: str
) -> str:
    """Define the ``k8sjobs`` connection ``conn_id`` (a kubeconfig file) for the test."""
    extra = {"kubeconfig_path": str(kubeconfig), "namespace": namespace}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "k8sjobs", "extra": extra})
    )
    return conn_id


async def until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.02)


async def cancel(task: asyncio.Task[Any], msg: str | None = None) -> None:
    task.cancel(msg)
    with pytest.raises(asyncio.CancelledError):
        await task


# --- the Airflow 2.11 task instance in the metadata database ------------------------------------


def migrate_airflow_db() -> None:
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        timeout=300,
    )


def deferred_task_instance() -> Any:
    """A DagRun and a deferred TaskInstance (try 1) in Airflow 2.11's database."""
    from airflow.models.dag import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunType

    dag = DAG(f"trigger_kill_{uuid.uuid4().hex[:8]}", schedule=None, start_date=START)
    EmptyOperator(task_id="job", dag=dag)
    with create_session() as session:
        dag_run = dag.create_dagrun(
            run_id="manual__2026-11-01",
            run_type=DagRunType.MANUAL,
            state=DagRunState.RUNNING,
            execution_date=START,
            data_interval=(START, START),
            session=session,
        )
        ti = dag_run.get_task_instance("job", session=session)
        ti.state = TaskInstanceState.DEFERRED
        ti.try_number = 1
        session.flush()
        session.expunge(ti)
    return ti


def set_task_state(ti: Any, state: str | None, try_number: int = 1) -> None:
    """What the UI / scheduler does to the row while the trigger runs."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(TaskInstance).filter(
            TaskInstance.dag_id == ti.dag_id,
            TaskInstance.run_id == ti.run_id,
            TaskInstance.task_id == ti.task_id,
        ).update({"state": state, "try_number": try_number}, synchronize_session=False)
