"""Imports that moved between Airflow 2.11 and 3.x, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.triggers.base import BaseTrigger, TriggerEvent
from packaging.version import Version

_VERSION = Version(Version(AIRFLOW_VERSION).base_version)
AIRFLOW_V_3_0_PLUS = Version("3.0.0") <= _VERSION
AIRFLOW_V_3_1_PLUS = Version("3.1.0") <= _VERSION
AIRFLOW_V_3_3_PLUS = Version("3.3.0") <= _VERSION

if TYPE_CHECKING or not AIRFLOW_V_3_1_PLUS:
    from airflow.exceptions import AirflowTaskTimeout
    from airflow.models import BaseOperator
else:
    from airflow.sdk import BaseOperator

    try:  # task-sdk >= 1.2 (Airflow 3.2)
        from airflow.sdk.exceptions import AirflowTaskTimeout
    except ImportError:  # Airflow 3.0 / 3.1 raise the core class
        from airflow.exceptions import AirflowTaskTimeout

if TYPE_CHECKING:
    from airflow.sdk import Context
else:
    Context = dict[str, Any]

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowTaskTimeout",
    "BaseOperator",
    "BaseTrigger",
    "Context",
    "TriggerEvent",
]
