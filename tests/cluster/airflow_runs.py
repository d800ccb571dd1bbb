"""Real Airflow against a real cluster: ``airflow dags test`` in a scratch ``AIRFLOW_HOME``.

The interpreter running the tests runs Airflow too (Airflow 2.11 or 3.x, whichever it has), as a
subprocess, so the DAGs go through Airflow's own parsing, task runner and inline triggerer. The
outcome is read from Airflow's database (task states, XCom) and from the command's output (the
task logs).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATE_TIMEOUT = 300


@dataclass
class DagRunResult:
    dag_id: str
    output: str
    """Everything ``airflow dags test`` printed: the task and trigger logs among it."""
    database: Path
    seconds: float
    returncode: int

    def states(self) -> dict[str, str]:
        """``task_id`` (or ``task_id[map_index]``) → state."""
        with sqlite3.connect(self.database) as db:
            rows = db.execute(
                "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = ?",
                (self.dag_id,),
            ).fetchall()
        return {(t if m < 0 else f"{t}[{m}]"): s for t, m, s in rows}

    def try_number(self, task_id: str) -> int:
        with sqlite3.connect(self.database) as db:
            (number,) = db.execute(
                "SELECT try_number FROM task_instance WHERE dag_id = ? AND task_id = ?",
                (self.dag_id, task_id),
            ).fetchone()
        return int(number)

    def xcom(self, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        with sqlite3.connect(self.database) as db:
            row = db.execute(
                "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND map_index = ? "
                "AND key = ?",
                (self.dag_id, task_id, map_index, key),
            ).fetchone()
        assert row is not None, f"no XCom {key} of {task_id}[{map_index}]"
        value = row[0]
        if isinstance(value, bytes):
            value = value.decode()
        return json.loads(value)

    def tail(self, characters: int = 6000) -> str:
        return self.output[-characters:]


class AirflowHome:
    """A scratch ``AIRFLOW_HOME`` with a migrated SQLite database and a connection (or more)."""

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        conn_id: str,
        connection: dict[str, Any],
        more_connections: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        from cryptography.fernet import Fernet

        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.database = home / "airflow.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.database}",
                "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
                "PYTHONWARNINGS": "ignore",
            }
        )
        for name, conn in {conn_id: connection, **(more_connections or {})}.items():
            env[f"AIRFLOW_CONN_{name.upper()}"] = json.dumps(conn)
        self.env = env
        migrate = self.airflow("db", "migrate", timeout=MIGRATE_TIMEOUT)
        assert migrate.returncode == 0, migrate.stdout[-4000:] + migrate.stderr[-4000:]

    def airflow(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def dags_test(self, dag_id: str, logical_date: str, timeout: float) -> DagRunResult:
        """``airflow dags test DAG_ID LOGICAL_DATE``; its output is kept next to the home."""
        started = time.monotonic()
        run = self.airflow("dags", "test", dag_id, logical_date, timeout=timeout)
        seconds = time.monotonic() - started
        output = run.stdout + run.stderr
        (self.home / f"{dag_id}.log").write_text(output)
        print(f"airflow dags test {dag_id} took {seconds:.1f}s (exit status {run.returncode})")
        return DagRunResult(dag_id, output, self.database, seconds, run.returncode)
