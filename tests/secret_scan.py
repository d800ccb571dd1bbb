"""Searching what Airflow runs leave behind for credentials: shared by the ``dag.test()`` scan
(tests/e2e/test_secrets_never_leak.py) and the deployed one
(tests/deployment/test_secrets_deployed.py)."""

from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path
from typing import Any


class Secrets:
    """The credential material, in the forms it could appear in."""

    def __init__(self, token: str, key_pem: bytes | None = None) -> None:
        self.forms = {"token": token}
        if key_pem is not None:
            key_lines = [line for line in key_pem.decode().splitlines() if "-----" not in line]
            self.forms["client key (base64, as in the kubeconfig)"] = base64.b64encode(
                key_pem
            ).decode()[20:80]
            self.forms["client key (PEM body)"] = key_lines[len(key_lines) // 2]

    def found_in(self, text: str) -> list[str]:
        """The names of the forms ``text`` holds."""
        return [name for name, value in self.forms.items() if value in text]

    def leaks(self, searched: dict[str, str]) -> dict[str, list[str]]:
        """Where (the keys of ``searched``) which forms were found; empty when none leaked."""
        return {where: found for where, text in searched.items() if (found := self.found_in(text))}


def as_text(value: Any) -> str:
    """A database value as text (bytes and memoryviews decoded)."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def database_text(engine: Any) -> tuple[str, dict[str, int]]:
    """Every row of every table of the database behind the SQLAlchemy ``engine``, as text;
    rows per table."""
    from sqlalchemy import MetaData, exc, select

    metadata = MetaData()
    with warnings.catch_warnings():
        # Expression-based indexes (Airflow 2's FAB tables) are not reflected: rows are read.
        warnings.simplefilter("ignore", exc.SAWarning)
        metadata.reflect(bind=engine)
    parts, counts = [], {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = connection.execute(select(table)).fetchall()
            counts[table.name] = len(rows)
            parts += [as_text(value) for row in rows for value in row]
    return "\n".join(parts), counts


def deployment_kept(airflow: Any, trigger_rows: Any) -> tuple[dict[str, str], str, dict[str, int]]:
    """What a deployed Airflow keeps, by where (for :meth:`Secrets.leaks`): every log file, every
    row of its metadata database, and the trigger rows captured while tasks were deferred; with
    the database's text and its rows per table."""
    from sqlalchemy import create_engine

    engine = create_engine(airflow.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        database, rows = database_text(engine)
    finally:
        engine.dispose()
    searched = {
        "task, scheduler, triggerer and other component logs": airflow.every_log(),
        "metadata database": database,
        "trigger rows while deferred (decrypted kwargs too)": "\n".join(trigger_rows),
    }
    return searched, database, rows


def decrypted_trigger_kwargs(stored: str, fernet_key: str) -> str:
    """A trigger row's ``kwargs`` column as the triggerer reads it (Airflow encrypts it with
    the deployment's Fernet key, unless it is plain JSON)."""
    from cryptography.fernet import Fernet

    if stored.startswith("{"):
        return stored
    return Fernet(fernet_key.encode()).decrypt(stored.encode()).decode()


def serialized_dag_text(dag: Any) -> str:
    """The DAG as Airflow serializes it for the database."""
    from airflow.serialization import serialized_objects

    # Airflow 3: DagSerialization; Airflow 2: SerializedDAG.
    serializer = (
        getattr(serialized_objects, "DagSerialization", None) or serialized_objects.SerializedDAG
    )
    return json.dumps(serializer.to_dict(dag), default=str)


def log_files_text(folder: Path) -> str:
    """Every ``*.log`` file under ``folder``."""
    return "\n".join(path.read_text(errors="replace") for path in sorted(folder.rglob("*.log")))
