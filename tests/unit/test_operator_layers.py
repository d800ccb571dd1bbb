"""The pure helpers the operators' Airflow glue delegates to: deadlines, whether a try is an
automatic retry, the wait durations, a rendered manifest file, and the names the operator
modules keep importable after moving their helpers out."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path

import jinja2
import pytest

from airflow_k8s_jobs.errors import InvalidInputError
from airflow_k8s_jobs.manifests.jobs import wait_durations
from airflow_k8s_jobs.status.deadlines import BACKSTOP_SECONDS, backstop, deadline_after
from airflow_k8s_jobs.status.tries import is_automatic_retry
from airflow_k8s_jobs.templating import render_manifest_file


def test_the_deadline_counts_from_the_start_of_the_try() -> None:
    assert deadline_after(None, 1000.0) is None
    assert deadline_after(timedelta(minutes=2), 1000.0) == 1120.0


def test_the_backstop_fires_a_minute_after_the_deadline_never_before_now() -> None:
    assert backstop(None, 0.0) is None
    assert backstop(1100.0, now=1000.0) == timedelta(seconds=100 + BACKSTOP_SECONDS)
    assert backstop(900.0, now=1000.0) == timedelta(seconds=BACKSTOP_SECONDS)


@pytest.mark.parametrize(
    ("max_tries", "retries", "automatic"),
    [
        (3, 3, True),  # the task's own retries
        (0, None, True),
        (5, 3, False),  # clearing raised max_tries past the retries
        (None, 2, True),  # unknown: counts as a retry
        ("3", 3, True),
    ],
)
def test_a_cleared_task_is_not_an_automatic_retry(
    max_tries: object, retries: int | None, automatic: bool
) -> None:
    assert is_automatic_retry(max_tries, retries) is automatic


def test_wait_durations_in_seconds_and_checked() -> None:
    assert wait_durations(timedelta(hours=1), timedelta(minutes=5), "task t") == (3600.0, 300.0)
    assert wait_durations(None, 0, "task t") == (None, 0.0)
    with pytest.raises(InvalidInputError, match=r"task t: capacity_timeout=0 is invalid"):
        wait_durations(0, 5, "task t")
    with pytest.raises(InvalidInputError, match=r"task t: image_pull_grace=None is not a"):
        wait_durations(None, None, "task t")  # type: ignore[arg-type]


def test_a_manifest_file_is_found_and_rendered(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("image: {{ params.image }}\n", encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(tmp_path)]))

    def render(text: str) -> str:
        return env.from_string(text).render(params={"image": "busybox"})

    assert render_manifest_file(env, "job.yaml", "task t", render) == "image: busybox"


def test_jinja_errors_of_a_manifest_file_name_it(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text("image: {{ oops(\n", encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(tmp_path)]))
    with pytest.raises(InvalidInputError, match=r"task t, job file job.yaml: Jinja syntax error"):
        render_manifest_file(
            env, "job.yaml", "task t, job file job.yaml", lambda t: env.from_string(t).render()
        )


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            "airflow_k8s_jobs.operators._common",
            "MASKED RENDERED_MANIFEST FatalInvalidInputError argo_safe create_or_adopt list_pods "
            "manifest_yaml print_pod_log read_manifest_file read_pod_log render_workflow_argument",
        ),
        ("airflow_k8s_jobs.operators.base", "BACKSTOP_SECONDS backstop SubmitAndWaitOperator"),
        ("airflow_k8s_jobs.operators.argo", "MAIN_CONTAINER MAX_LOGGED_PODS"),
        (
            "airflow_k8s_jobs.operators.links",
            "GOOGLE_CONSOLE POD_JOB_NAME_LABEL argo_ui_base gke_job_url workflow_link_data",
        ),
    ],
)
def test_moved_names_stay_importable_where_they_were(module: str, names: str) -> None:
    loaded = importlib.import_module(module)
    assert [n for n in names.split() if not hasattr(loaded, n)] == []
