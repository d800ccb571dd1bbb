"""Session-wide test setup.

Airflow reads its configuration when it is first imported, so the environment is set here, at
import time of the root conftest, before any test module imports ``airflow``. Each pytest
session gets its own ``AIRFLOW_HOME`` (config, SQLite database, logs) in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")

os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
# The example DAGs are the DAGs folder: Airflow 3's dag.test() runs the serialized DAG from it.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example_dags"
)

if "airflow" in sys.modules:  # pragma: no cover - only when a plugin imported it earlier
    warnings.warn(
        "airflow was imported before tests/conftest.py set AIRFLOW_HOME; "
        "Airflow may be using the default configuration",
        stacklevel=1,
    )


def pytest_unconfigure() -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
