"""Airflow as users deploy it: separate scheduler, triggerer, DAG processor and (on Airflow 3)
API server processes with a LocalExecutor, over a real PostgreSQL metadata database.

Unlike ``airflow dags test`` (one process, triggers run inline), here a deferred task really
leaves its worker, its trigger runs in the triggerer process, and the task resumes on a new
worker — so killing or restarting one component mid-wait means what it means in production.

The interpreter running the tests runs Airflow too (Airflow 2.11 or 3.x, whichever it has). What
happened is read from the metadata database (runs, task instances, XComs, trigger rows) and from
the components' and tasks' log files.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg2

REPO = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = REPO / "scripts" / "postgres"
T = TypeVar("T")
AIRFLOW_V3 = int(importlib.metadata.version("apache-airflow").split(".")[0]) >= 3

# Airflow's own CLI costs seconds per call on two cores; components need longer to come up.
CLI_TIMEOUT = 300
COMPONENT_START_TIMEOUT = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5
) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class PostgresServer:
    """A throwaway PostgreSQL server (``scripts/postgres``) on a free loopback port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        directory.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(directory.parent, 0o755)

    def start(self) -> None:
        subprocess.run(
            [str(POSTGRES_SCRIPT), "start", str(self.directory), str(self.port)],
            check=True,
            timeout=CLI_TIMEOUT,
        )

    def stop(self) -> None:
        subprocess.run([str(POSTGRES_SCRIPT), "stop", str(self.directory)], timeout=120)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL for Airflow."""
        with contextlib.closing(self.connect("postgres")) as db:
            db.autocommit = True
            with db.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/{name}"

    def connect(self, database: str) -> Any:
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname=database)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A started PostgreSQL server (installed first if need be: ``scripts/postgres start``
    ensures it), stopped and removed on exit."""
    # Not under pytest's tmp folder: as root the server runs as the "postgres" user, who must
    # reach its data directory.
    parent = Path(tempfile.mkdtemp(prefix="airflow-k8s-jobs-postgres-"))
    server = PostgresServer(parent / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


@dataclass
class Component:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables of this component alone, over the deployment's."""


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    map_index: int
    state: str | None
    try_number: int


class AirflowDeployment:
    """One Airflow installation: its home, its database, its components as processes."""

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        postgres: PostgresServer,
        database: str,
        connections: dict[str, dict[str, Any]],
        extra_env: dict[str, str] | None = None,
    ) -> None:
        from cryptography.fernet import Fernet

        self.home = home
        self.dags_folder = dags_folder
        self.postgres = postgres
        self.database = database
        home.mkdir(parents=True, exist_ok=True)
        (home / "components").mkdir(exist_ok=True)
        url = postgres.create_database(database)
        self.api_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                # Parse new files and schedule promptly: the tests wait on these loops.
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "PYTHONWARNINGS": "ignore",
            }
        )
        if AIRFLOW_V3:
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
                        f"http://127.0.0.1:{self.api_port}/execution/"
                    ),
                    "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                    "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
                    "AIRFLOW__API__PORT": str(self.api_port),
                    "AIRFLOW__API__HOST": "127.0.0.1",
                    "AIRFLOW__API__WORKERS": "1",
                }
            )
        else:
            env["AIRFLOW__WEBSERVER__SECRET_KEY"] = secrets.token_urlsafe(32)
        for conn_id, conn in connections.items():
            env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
        env.update(extra_env or {})
        self.env = env
        python = sys.executable
        self.components: dict[str, Component] = {
            "scheduler": Component("scheduler", [python, "-m", "airflow", "scheduler"]),
            "triggerer": Component("triggerer", [python, "-m", "airflow", "triggerer"]),
        }
        if AIRFLOW_V3:
            self.components["api-server"] = Component(
                "api-server",
                [python, "-m", "airflow", "api-server", "--port", str(self.api_port)],
            )
            self.components["dag-processor"] = Component(
                "dag-processor", [python, "-m", "airflow", "dag-processor"]
            )

    # --- the CLI and the components --------------------------------------------------------

    def airflow(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def migrate(self) -> None:
        run = self.airflow("db", "migrate")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    def start(self, name: str) -> None:
        component = self.components[name]
        assert component.process is None or component.process.poll() is not None, (
            f"{name} is already running"
        )
        component.starts += 1
        log = (self.home / "components" / f"{name}.{component.starts}.log").open("wb")
        component.process = subprocess.Popen(
            component.argv,
            env={**self.env, **component.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.home,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal the component's whole process group (its worker and supervisor children too)
        and wait for it to end."""
        process = self.components[name].process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def start_all(self) -> None:
        order = ["api-server", "dag-processor", "scheduler", "triggerer"]
        for name in order:
            if name in self.components:
                self.start(name)
        if "api-server" in self.components:
            self.wait_for_api_server()
        self.wait_for_job("SchedulerJob")
        self.wait_for_job("TriggererJob")

    def stop_all(self) -> None:
        for name in reversed(list(self.components)):
            self.kill(name, signal.SIGTERM)

    def running(self, name: str) -> bool:
        process = self.components[name].process
        return process is not None and process.poll() is None

    def wait_for_api_server(self) -> None:
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"

        def healthy() -> bool:
            self.assert_alive("api-server")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_until(healthy, COMPONENT_START_TIMEOUT, "the API server's health endpoint")

    def wait_for_job(self, job_type: str, newer_than: int = 0) -> int:
        """Wait for a running job row of ``job_type`` (SchedulerJob, TriggererJob) with an id
        above ``newer_than``; returns its id."""
        component = "scheduler" if job_type == "SchedulerJob" else "triggerer"

        def job_id() -> int | None:
            self.assert_alive(component)
            rows = self.query(
                "SELECT id FROM job WHERE job_type = %s AND state = 'running' AND id > %s "
                "ORDER BY id DESC",
                (job_type, newer_than),
            )
            return int(rows[0][0]) if rows else None

        return wait_until(job_id, COMPONENT_START_TIMEOUT, f"a running {job_type}")

    def assert_alive(self, name: str) -> None:
        component = self.components[name]
        process = component.process
        if process is not None and process.poll() is not None:
            log = self.home / "components" / f"{name}.{component.starts}.log"
            raise AssertionError(
                f"the {name} exited with status {process.returncode}:\n"
                + log.read_text(errors="replace")[-4000:]
            )

    # --- the metadata database -------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with contextlib.closing(self.postgres.connect(self.database)) as db, db.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def wait_for_dag(self, dag_id: str, timeout: float = COMPONENT_START_TIMEOUT) -> None:
        def parsed() -> bool:
            return bool(self.query("SELECT 1 FROM serialized_dag WHERE dag_id = %s", (dag_id,)))

        wait_until(parsed, timeout, f"DAG {dag_id} to be parsed")

    def unpause(self, dag_id: str) -> None:
        self.wait_for_dag(dag_id)
        run = self.airflow("dags", "unpause", dag_id)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

    def first_run(self, dag_id: str, timeout: float = COMPONENT_START_TIMEOUT) -> str:
        """The run the scheduler creates once the DAG is unpaused."""

        def run_id() -> str | None:
            rows = self.query(
                "SELECT run_id FROM dag_run WHERE dag_id = %s ORDER BY id LIMIT 1", (dag_id,)
            )
            return str(rows[0][0]) if rows else None

        return wait_until(run_id, timeout, f"a run of {dag_id}")

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.query(
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
        )
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """Wait for the run to finish; returns ``success`` or ``failed``. The components must
        stay up meanwhile (a crash fails at once, with its log)."""

        def finished() -> str | None:
            for name in self.components:
                if self.components[name].process is not None:
                    self.assert_alive(name)
            state = self.run_state(dag_id, run_id)
            return state if state in ("success", "failed") else None

        return wait_until(finished, timeout, f"run {run_id} of {dag_id} to finish", interval=1)

    def tasks(self, dag_id: str, run_id: str) -> dict[str, TaskRow]:
        rows = self.query(
            "SELECT task_id, map_index, state, try_number FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s",
            (dag_id, run_id),
        )
        out = {}
        for task_id, map_index, state, try_number in rows:
            key = task_id if map_index < 0 else f"{task_id}[{map_index}]"
            out[key] = TaskRow(task_id, map_index, state, int(try_number or 0))
        return out

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        row = self.tasks(dag_id, run_id).get(task_id)
        return row.state if row else None

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float
    ) -> str:
        def reached() -> str | None:
            state = self.task_state(dag_id, run_id, task_id)
            return state if state in states else None

        return wait_until(reached, timeout, f"{task_id} of {run_id} to be one of {states}")

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        rows = self.query(
            "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s "
            "AND key = %s AND map_index = -1",
            (dag_id, run_id, task_id, key),
        )
        assert rows, f"no XCom {key} of {task_id} in {run_id}"
        value = rows[0][0]
        if isinstance(value, memoryview):
            value = value.tobytes()
        if isinstance(value, bytes):
            value = value.decode()
        return json.loads(value) if isinstance(value, str) else value

    def trigger_rows(self) -> list[tuple[Any, ...]]:
        return self.query("SELECT id, classpath, kwargs FROM trigger")

    # --- logs --------------------------------------------------------------------------------

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """Every attempt's log file of the task, concatenated."""
        base = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return "\n".join(p.read_text(errors="replace") for p in sorted(base.rglob("*.log")))

    def component_logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted((self.home / "components").glob("*.log"))
        )

    def every_log(self) -> str:
        """Component logs and every task log file under the home."""
        parts = [self.component_logs()]
        parts += [
            p.read_text(errors="replace")
            for p in sorted((self.home / "logs").rglob("*"))
            if p.is_file()
        ]
        return "\n".join(parts)


@contextlib.contextmanager
def deployment(
    tmp: Path,
    postgres: PostgresServer,
    dags: dict[str, Path],
    connections: dict[str, dict[str, Any]],
    extra_env: dict[str, str] | None = None,
) -> Iterator[AirflowDeployment]:
    """A migrated, started deployment whose DAGs folder holds ``dags`` (name → source path,
    files or folders, linked)."""
    folder = tmp / "dags"
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in dags.items():
        (folder / name).symlink_to(source)
    name = "airflow_" + tmp.name.lower().replace("-", "_")[:40] + "_" + secrets.token_hex(3)
    deployed = AirflowDeployment(
        tmp / "home", folder, postgres, name, connections, extra_env=extra_env
    )
    deployed.migrate()
    try:
        deployed.start_all()
        yield deployed
    finally:
        deployed.stop_all()
