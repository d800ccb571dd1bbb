"""Error answers of the Kubernetes API: the type each code gets, its family, the parsed Status."""

from __future__ import annotations

import json

import pytest

from airflow_k8s_jobs.errors import (
    BadRequest,
    Conflict,
    Expired,
    Forbidden,
    Invalid,
    KubeApiError,
    NotFound,
    PermanentApiError,
    PermanentError,
    ServerError,
    TooManyRequests,
    TransientError,
    Unauthorized,
    api_error,
)
from airflow_k8s_jobs.kube import error_for


def status(code: int, reason: str, message: str = "m", **details: object) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
        "details": details,
    }


@pytest.mark.parametrize(
    ("code", "reason", "kind", "transient"),
    [
        (400, "BadRequest", BadRequest, False),
        (401, "Unauthorized", Unauthorized, False),
        (403, "Forbidden", Forbidden, False),
        (404, "NotFound", NotFound, False),
        (409, "AlreadyExists", Conflict, False),
        (409, "Conflict", Conflict, False),
        (410, "Expired", Expired, False),
        (422, "Invalid", Invalid, False),
        (429, "TooManyRequests", TooManyRequests, True),
        (500, "InternalError", ServerError, True),
        (503, "ServiceUnavailable", ServerError, True),
        (504, "Timeout", ServerError, True),
        (405, "MethodNotAllowed", PermanentApiError, False),
    ],
)
def test_each_code_has_its_type_and_family(
    code: int, reason: str, kind: type[KubeApiError], transient: bool
) -> None:
    body = status(code, reason, f"it is {reason}")
    error = error_for(code, json.dumps(body).encode(), {}, "reading Job batch/a")
    assert type(error) is kind
    assert isinstance(error, KubeApiError)
    assert isinstance(error, TransientError) is transient
    assert isinstance(error, PermanentError) is not transient
    assert error.code == code
    assert error.status == body  # the parsed Status, also for 429 and 5xx
    assert error.reason == reason
    assert error.api_message == f"it is {reason}"
    assert str(error) == f"reading Job batch/a: it is {reason} (HTTP {code})"


def test_retry_after_from_the_header_or_the_status() -> None:
    header = error_for(429, json.dumps(status(429, "TooManyRequests")), {"Retry-After": "7"}, "x")
    assert header.retry_after == 7.0
    details = status(503, "ServiceUnavailable", retryAfterSeconds=3)
    assert error_for(503, json.dumps(details), {}, "x").retry_after == 3.0
    assert error_for(500, b"", {}, "x").retry_after is None


def test_an_answer_without_a_status_keeps_its_text() -> None:
    error = error_for(502, b"Bad Gateway from the proxy", {}, "listing pods")
    assert isinstance(error, ServerError)
    assert error.status == {}
    assert error.reason == ""
    assert str(error) == "listing pods: Bad Gateway from the proxy (HTTP 502)"


def test_api_error_is_constructed_directly() -> None:
    error = api_error(599, "odd", None)
    assert isinstance(error, ServerError) and error.status == {}
    assert isinstance(api_error(418, "teapot"), PermanentApiError)
