"""CronJob defaulting and validation (simulated_k8s_cluster.admission)."""

from __future__ import annotations

from typing import Any

import pytest

from simulated_k8s_cluster import admission
from simulated_k8s_cluster.resources import CRONJOBS, ApiError


def _cronjob(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {}}, **spec},
    }


def test_defaults() -> None:
    spec = admission.admit_create(CRONJOBS, _cronjob())["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"schedule": "not cron"}, "spec.schedule"),
        ({"schedule": "0 * * * * *"}, "spec.schedule"),
        ({"schedule": ""}, "spec.schedule"),
        ({"concurrencyPolicy": "Never"}, "spec.concurrencyPolicy"),
        ({"timeZone": "Mars/Olympus"}, "spec.timeZone"),
        ({"jobTemplate": None}, "spec.jobTemplate"),
    ],
)
def test_invalid(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as refused:
        admission.admit_create(CRONJOBS, _cronjob(**spec))
    assert refused.value.code == 422 and field in refused.value.message


def test_macros_and_zones_are_valid() -> None:
    admission.admit_create(CRONJOBS, _cronjob(schedule="@hourly", timeZone="Europe/Paris"))
