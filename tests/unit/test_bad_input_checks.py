"""The pure checks behind "refused before anything is created": image references, label
selectors, ``depends`` expressions, quantities, durations, the errors of a request that got no
HTTP answer, and a dry run's refusals."""

from __future__ import annotations

import ssl
from datetime import timedelta
from typing import Any

import pytest
import urllib3

from airflow_k8s_jobs.clusters.preflight import refusal
from airflow_k8s_jobs.errors import (
    InvalidInputError,
    UnreachableError,
    UntrustedCertificateError,
    api_error,
)
from airflow_k8s_jobs.kube import JOBS, transport_error
from airflow_k8s_jobs.manifests.jobs import duration_seconds
from airflow_k8s_jobs.manifests.problems import annotation_problems
from airflow_k8s_jobs.manifests.validation import (
    argo_hint,
    image_reference_problem,
    label_selector_problem,
    quantity_value,
)
from airflow_k8s_jobs.manifests.workflows import depends_syntax_problem


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "python:3.12-slim",
        "contract/app:1",
        "localhost:5000/team/app:v1",
        "Registry.Example.com/team/app:1",  # the host may have capitals
        "us-docker.pkg.dev/project/repo/image@sha256:" + "a" * 64,
        "gcr.io/x/y:Tag_1",
        "[::1]:5000/app:1",
        "a__b/c-d.e:1",
    ],
)
def test_image_references_the_kubelet_takes(image: str) -> None:
    assert image_reference_problem(image) is None


@pytest.mark.parametrize(
    ("image", "words"),
    [
        ("Registry.example.com/Team/App:1", "'Team/App' must be lower case"),
        ("UPPER:1", "'UPPER' must be lower case"),
        ("app:-bad", "the tag '-bad'"),
        ("app@sha256:xyz", "the digest"),
        ("team//app", "component ''"),
        ("a:b:c", "component 'a:b'"),
    ],
)
def test_image_references_the_kubelet_refuses(image: str, words: str) -> None:
    problem = image_reference_problem(image)
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize(
    "selector",
    [
        "",
        "app",
        "!canary",
        "a=b",
        "a==b",
        "a!=b",
        "tier in (a, b)",
        "tier notin (a)",
        "x>3",
        "app.kubernetes.io/managed-by=airflow-k8s-jobs,team=a",
    ],
)
def test_label_selectors_that_parse(selector: str) -> None:
    assert label_selector_problem(selector) is None


@pytest.mark.parametrize(
    ("selector", "words"),
    [
        ("team in (a", "not closed"),
        ("a=b=c", "cannot parse"),
        ("bad key=1", "cannot parse"),
        ("x>big", "must be an integer"),
        ("team=a b", "cannot parse"),
        ("a=" + "v" * 64, "63 characters"),
    ],
)
def test_label_selectors_that_do_not(selector: str, words: str) -> None:
    problem = label_selector_problem(selector)
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize(
    "expression", ["a", "a && b", "a.Succeeded || (b.Failed && !c)", "a-1.AnySucceeded"]
)
def test_depends_expressions_that_parse(expression: str) -> None:
    assert depends_syntax_problem(expression) is None


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("a.Succeeded &&", "ends where a task name was expected"),
        ("a b", "unexpected 'b'"),
        ("(a", "not closed"),
        ("a)", "unexpected ')'"),
        ("a.Sucess", "unknown result 'Sucess'"),
        ("a || || b", "'||' where a task name"),
        ("a & b", "unexpected '&"),
    ],
)
def test_depends_expressions_that_do_not(expression: str, words: str) -> None:
    problem = depends_syntax_problem(expression)
    assert problem is not None and words in problem, problem


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("500m", 0.5), ("2Gi", 2 * 2**30), ("1k", 1000), ("1e3", 1000), (2, 2), ("1.5", 1.5)],
)
def test_quantity_values(quantity: Any, value: float) -> None:
    assert quantity_value(quantity) == pytest.approx(value)


def test_annotations_over_256_kib_in_all() -> None:
    assert annotation_problems({"a": "x" * 1000}, "metadata.annotations") == []
    (problem,) = annotation_problems(
        {"a": "x" * (200 * 1024), "b": "y" * (100 * 1024)}, "metadata.annotations"
    )
    assert "256 KiB" in problem and "metadata.annotations" in problem


@pytest.mark.parametrize(
    ("value", "positive", "optional", "words"),
    [
        (-5, True, True, "must be more than 0"),
        (0, True, True, "must be more than 0"),
        ("1h", True, True, "not a duration"),
        (timedelta(minutes=-1), False, False, "must be 0 or more"),
        (None, False, False, "not a duration"),
        (True, True, True, "not a duration"),
    ],
)
def test_bad_durations(value: Any, positive: bool, optional: bool, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        duration_seconds("knob", value, where="task t", positive=positive, optional=optional)


def test_good_durations() -> None:
    assert duration_seconds("k", None, where="t", positive=True, optional=True) is None
    assert (
        duration_seconds("k", timedelta(hours=1), where="t", positive=True, optional=True) == 3600
    )
    assert duration_seconds("k", 0, where="t", positive=False, optional=False) == 0


def test_argo_hint_only_for_argo_variables() -> None:
    assert "Argo expression" in argo_hint("'inputs' is undefined")
    assert argo_hint("'model_config' is undefined") == ""
    assert argo_hint(None) == ""


def test_no_answer_from_the_api_server() -> None:
    refused = urllib3.exceptions.MaxRetryError(
        None,  # type: ignore[arg-type]
        "/apis/batch/v1",
        urllib3.exceptions.NewConnectionError(
            None, "Failed to establish a new connection: refused"
        ),  # type: ignore[arg-type]
    )
    error = transport_error(refused, "https://10.0.0.1", "creating Job")
    assert isinstance(error, UnreachableError)
    assert "cannot reach the API server at https://10.0.0.1" in str(error)
    untrusted = urllib3.exceptions.MaxRetryError(
        None,  # type: ignore[arg-type]
        "/apis/batch/v1",
        urllib3.exceptions.SSLError(ssl.SSLCertVerificationError("certificate verify failed")),
    )
    with pytest.raises(UntrustedCertificateError, match="is not trusted"):
        transport_error(untrusted, "https://10.0.0.1", "creating Job")


def test_refusals_of_a_dry_run() -> None:
    missing = api_error(
        404,
        'namespaces "nope" not found',
        {
            "message": 'namespaces "nope" not found',
            "details": {"name": "nope", "kind": "namespaces"},
        },
    )
    with pytest.raises(InvalidInputError, match="namespace nope does not exist"):
        refusal(missing, "Job", JOBS, "nope", "Job nope/x")
    forbidden = api_error(403, "forbidden", {"message": 'jobs.batch is forbidden: User "u"'})
    with pytest.raises(InvalidInputError, match="Grant the connection's identity the 'create'"):
        refusal(forbidden, "Job", JOBS, "batch", "Job batch/x")
    with pytest.raises(InvalidInputError, match="after retrying"):
        refusal(UnreachableError("cannot reach the API server at h"), "Job", JOBS, "b", "w")
    refusal(api_error(503, "unavailable"), "Job", JOBS, "b", "w")  # not a refusal: returns
