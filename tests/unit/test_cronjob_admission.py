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


def test_scheduled_timestamps_are_printed_as_go_does() -> None:
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from simulated_k8s_cluster.controllers.cronjobs import _rfc3339

    moment = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert _rfc3339(moment) == "2026-01-01T12:00:00Z"
    assert _rfc3339(moment.astimezone(ZoneInfo("Europe/Paris"))) == "2026-01-01T13:00:00+01:00"
