"""Operator arguments turned into requests, without a cluster: the Job spec and Workflow
requests, the template a submission names, the shutdown strategy, the scheduled time and the
options of a deletion."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from airflow_k8s_jobs.errors import Forbidden, InvalidInputError
from airflow_k8s_jobs.manifests import JobSpecRequest, WorkflowRequest
from airflow_k8s_jobs.manifests.arguments import (
    TemplateRef,
    check_shutdown_on_kill,
    delete_options,
    request_from,
    scheduled_time,
    template_ref,
)


def test_a_job_spec_request_takes_every_knob_from_the_operator() -> None:
    knobs = {f.name: f"value of {f.name}" for f in fields(JobSpecRequest)}
    operator = SimpleNamespace(**knobs, delete_on_kill=True)
    request = request_from(JobSpecRequest, operator, job={"kind": "Job"})
    assert request.job == {"kind": "Job"}
    assert {k: v for k, v in vars(request).items() if k != "job"} == {
        k: v for k, v in knobs.items() if k != "job"
    }


def test_a_workflow_request_takes_what_is_given_before_the_operators_attributes() -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    operator = SimpleNamespace(**{f.name: None for f in fields(WorkflowRequest)})
    operator.workflow = "workflow.yaml"  # the argument, not the rendered manifest
    operator.parameters = {"message": "hi"}
    request = request_from(
        WorkflowRequest, operator, workflow={"kind": "Workflow"}, template=None, scheduled_time=when
    )
    assert request.workflow == {"kind": "Workflow"}
    assert request.parameters == {"message": "hi"} and request.scheduled_time == when
    assert request.ttl_strategy is None  # the operator's None: no ttlStrategy


def test_a_missing_attribute_is_a_programming_error() -> None:
    with pytest.raises(AttributeError):
        request_from(JobSpecRequest, SimpleNamespace(image="busybox"), job=None)


def test_deletions_are_preconditioned_on_the_uid() -> None:
    assert delete_options("u-1", "Foreground") == {
        "propagationPolicy": "Foreground",
        "preconditions": {"uid": "u-1"},
    }


@pytest.mark.parametrize("value", ["Terminate", "Stop", None])
def test_shutdown_strategies(value: str | None) -> None:
    check_shutdown_on_kill(value, "task t")


def test_an_unknown_shutdown_strategy_is_bad_input() -> None:
    with pytest.raises(InvalidInputError) as info:
        check_shutdown_on_kill("Kill", "task t")
    assert str(info.value) == (
        "task t: shutdown_on_kill must be one of Terminate, Stop or None, got 'Kill'"
    )


def test_the_scheduled_time_is_the_end_of_the_data_interval_else_the_logical_date() -> None:
    end = datetime(2026, 1, 2, tzinfo=timezone.utc)
    logical = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert scheduled_time({"data_interval_end": end, "logical_date": logical}) == end
    assert scheduled_time({"data_interval_end": None, "logical_date": logical}) == logical
    assert scheduled_time({"logical_date": "2026-01-01"}) is None  # not a datetime
    assert scheduled_time({}) is None


def test_the_template_a_submission_names() -> None:
    assert template_ref("task t", None, None, "batch", "c") is None
    ref = template_ref("task t", "hello", None, "batch", "c")
    assert ref == TemplateRef("hello", "batch", "WorkflowTemplate batch/hello on c")
    assert ref.argument == "workflow_template"
    cluster_ref = template_ref("task t", None, "hello", "batch", "c")
    assert cluster_ref == TemplateRef("hello", None, "ClusterWorkflowTemplate hello on c")
    assert cluster_ref.argument == "cluster_workflow_template"
    with pytest.raises(InvalidInputError, match=r"^task t: give workflow_template or cluster_"):
        template_ref("task t", "a", "b", "batch", "c")


def test_what_is_said_of_a_template_that_cannot_be_read_or_does_not_exist() -> None:
    ref = TemplateRef("hello", "batch", "WorkflowTemplate batch/hello on c")
    error = Forbidden('workflowtemplates.argoproj.io "hello" is forbidden', 403)
    assert str(ref.unreadable(error, "workflowtemplates")).startswith(
        "Cannot read WorkflowTemplate batch/hello on c to check the parameters: "
    )
    assert "'get' and 'list' on workflowtemplates.argoproj.io" in str(
        ref.unreadable(error, "workflowtemplates")
    )
    assert str(ref.not_found(["zeta", "alpha"])) == (
        "WorkflowTemplate batch/hello on c not found; there are: alpha, zeta. Create it (argo "
        "template create / kubectl apply) or fix the task's workflow_template; nothing was "
        "created."
    )
    cluster_ref = TemplateRef("hello", None, "ClusterWorkflowTemplate hello on c")
    assert "; there are none. " in str(cluster_ref.not_found([]))
    assert "fix the task's cluster_workflow_template;" in str(cluster_ref.not_found([]))
