"""Imports that moved between Airflow 2.11 and 3.x, in one place."""

from __future__ import annotations

import importlib
from collections.abc import Callable
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
    from airflow.sdk.exceptions import AirflowFailException
elif AIRFLOW_V_3_0_PLUS:
    try:  # task-sdk >= 1.2 (Airflow 3.2): the task runner catches this class
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # Airflow 3.0 / 3.1: task-sdk catches the core class
        from airflow.exceptions import AirflowFailException
else:
    from airflow.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Context
else:
    Context = dict[str, Any]

if TYPE_CHECKING:
    from airflow.sdk import BaseOperatorLink
    from airflow.sdk.bases.xcom import BaseXCom as XCom
elif AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import BaseOperatorLink

    try:  # task-sdk >= 1.1 (Airflow 3.1): the configured XCom backend
        from airflow.sdk.execution_time.xcom import XCom
    except ImportError:  # Airflow 3.0
        from airflow.sdk.bases.xcom import BaseXCom as XCom
else:
    from airflow.models.baseoperatorlink import BaseOperatorLink
    from airflow.models.xcom import XCom


def _secrets_masker_key_check() -> Callable[[str], bool] | None:
    """Airflow's own test for a sensitive name (``password``, ``token``, ...), where it lives."""
    modules = (
        "airflow.sdk._shared.secrets_masker",  # task-sdk >= 1.1 (Airflow 3.1)
        "airflow.sdk.execution_time.secrets_masker",  # Airflow 3.0
        "airflow.utils.log.secrets_masker",  # Airflow 2
    )
    for module in modules if AIRFLOW_V_3_0_PLUS else modules[-1:]:
        try:
            check = getattr(importlib.import_module(module), "should_hide_value_for_key", None)
        except ImportError:
            continue
        if callable(check):
            return check
    return None


_SHOULD_HIDE = _secrets_masker_key_check()
# Airflow's defaults, for the unlikely case that none of its maskers can be imported.
_SENSITIVE_WORDS = (
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
    "keyfile_dict",
    "service_account",
)


def is_sensitive_name(name: str) -> bool:
    """Whether Airflow hides the value of something called ``name`` (as the secrets masker does
    for a template field's dict keys and for Kubernetes ``V1EnvVar`` names)."""
    if not isinstance(name, str) or not name:
        return False
    if _SHOULD_HIDE is not None:
        try:
            return bool(_SHOULD_HIDE(name))
        except Exception:  # a masker not configured in this process: use the defaults
            pass
    lowered = name.strip().lower()
    return any(word in lowered for word in _SENSITIVE_WORDS)


__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowFailException",
    "AirflowTaskTimeout",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseTrigger",
    "Context",
    "TriggerEvent",
    "XCom",
    "is_sensitive_name",
]
