"""Session-wide test setup.

Airflow reads its configuration when it is first imported, so the environment is set here, at
import time of the root conftest, before any test module imports ``airflow``. Each pytest
session gets its own ``AIRFLOW_HOME`` (config, SQLite database, logs) in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import pytest

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")

os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
# Every real deployment has a fernet key, and connections are then read through Fernet (which is
# how cryptography 51 broke Airflow 2.11): test with one set.
os.environ["AIRFLOW__CORE__FERNET_KEY"] = "tVL0uwE0J0kz2ZozpMzYj0bH5dxEAxXwdlYRF7Cc8hU="
# Airflow 3's dag.test() runs the DAG as serialized from the DAGs folder, so the folder holds a
# copy of the example DAGs and of the test-only DAGs in tests/e2e/dags and tests/cluster/dags.
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DAGS_FOLDER = os.path.join(_AIRFLOW_HOME, "dags")
shutil.copytree(os.path.join(_REPO, "example_dags"), os.path.join(_DAGS_FOLDER, "examples"))
for _suite in ("e2e", "cluster"):
    if os.path.isdir(os.path.join(_REPO, "tests", _suite, "dags")):
        shutil.copytree(
            os.path.join(_REPO, "tests", _suite, "dags"), os.path.join(_DAGS_FOLDER, _suite)
        )
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = _DAGS_FOLDER

if "airflow" in sys.modules:  # pragma: no cover - only when a plugin imported it earlier
    warnings.warn(
        "airflow was imported before tests/conftest.py set AIRFLOW_HOME; "
        "Airflow may be using the default configuration",
        stacklevel=1,
    )


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated Airflow metadata database in the session's AIRFLOW_HOME."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=300,
    )


def pytest_unconfigure() -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
