"""Label and field selectors of the simulated API server."""

from __future__ import annotations

import pytest

from simulated_k8s_cluster.resources import CONFIGMAPS, EVENTS, JOBS, PODS, ApiError
from simulated_k8s_cluster.selectors import (
    Requirement,
    field_value,
    fields_match,
    labels_match,
    object_filter,
    parse_field_selector,
    parse_label_selector,
    selector_from_dict,
)

LABELS = {"app": "web", "tier": "front", "example.com/team": "data"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("app=web", [Requirement("app", "In", ("web",))]),
        ("app==web", [Requirement("app", "In", ("web",))]),
        ("app != web", [Requirement("app", "NotIn", ("web",))]),
        ("app in (web, db)", [Requirement("app", "In", ("web", "db"))]),
        ("app notin (web)", [Requirement("app", "NotIn", ("web",))]),
        ("tier", [Requirement("tier", "Exists")]),
        ("!tier", [Requirement("tier", "DoesNotExist")]),
        (
            "example.com/team=data,!gone",
            [Requirement("example.com/team", "In", ("data",)), Requirement("gone", "DoesNotExist")],
        ),
        ("a in (x,y),b", [Requirement("a", "In", ("x", "y")), Requirement("b", "Exists")]),
        ("", []),
        (None, []),
    ],
)
def test_parse_label_selector(text: str | None, expected: list[Requirement]) -> None:
    assert parse_label_selector(text) == expected


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("app=web", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),  # != matches objects without the label
        ("app in (db,web)", True),
        ("app notin (db,web)", False),
        ("missing notin (x)", True),
        ("missing in (x)", False),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("app=web,tier=back", False),
        ("example.com/team=data", True),
    ],
)
def test_labels_match(text: str, matches: bool) -> None:
    assert labels_match(parse_label_selector(text), LABELS) is matches


def test_empty_selector_matches_everything() -> None:
    assert labels_match([], None)
    assert labels_match(parse_label_selector(""), {"a": "b"})


@pytest.mark.parametrize(
    "text",
    ["app in web", "app in (web", "!app=web", "=web", "app web", "app notin web", "app in ()"],
)
def test_malformed_label_selectors_are_400(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(text)
    assert err.value.code == 400
    assert err.value.reason == "BadRequest"


def test_selector_from_dict() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    requirements = selector_from_dict(selector)
    assert requirements == [
        Requirement("app", "In", ("web",)),
        Requirement("tier", "In", ("front", "back")),
        Requirement("legacy", "DoesNotExist"),
    ]
    assert labels_match(requirements, LABELS)
    assert not labels_match(requirements, {**LABELS, "legacy": "1"})
    assert selector_from_dict(None) == []


# --- field selectors ----------------------------------------------------------------------------

POD = {
    "metadata": {"name": "p", "namespace": "batch"},
    "spec": {"nodeName": "node-1", "restartPolicy": "Never"},
    "status": {"phase": "Running"},
}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("metadata.name=p", True),
        ("metadata.name==p", True),
        ("metadata.name!=p", False),
        ("metadata.namespace=batch,status.phase=Running", True),
        ("status.phase=Pending", False),
        ("spec.nodeName=node-1", True),
        ("status.podIP=", True),  # a missing field compares as the empty string
        ("status.podIP!=", False),
    ],
)
def test_pod_field_selectors(text: str, matches: bool) -> None:
    assert fields_match(parse_field_selector(text, PODS), POD) is matches


def test_event_field_selectors() -> None:
    event = {
        "metadata": {"name": "e", "namespace": "batch"},
        "involvedObject": {"kind": "Job", "name": "j"},
        "reason": "Completed",
        "source": {"component": "job-controller"},
        "type": "Normal",
    }
    assert fields_match(parse_field_selector("involvedObject.name=j", EVENTS), event)
    assert not fields_match(parse_field_selector("involvedObject.name=k", EVENTS), event)
    assert fields_match(parse_field_selector("source=job-controller,type=Normal", EVENTS), event)


def test_job_successful_is_the_succeeded_count() -> None:
    """``status.successful`` selects on ``status.succeeded``; a Job without it counts 0."""
    done = {"metadata": {"name": "a"}, "status": {"succeeded": 1}}
    fresh = {"metadata": {"name": "b"}, "status": {}}
    one = parse_field_selector("status.successful=1", JOBS)
    zero = parse_field_selector("status.successful=0", JOBS)
    assert fields_match(one, done) and not fields_match(one, fresh)
    assert fields_match(zero, fresh) and not fields_match(zero, done)
    assert field_value({"metadata": {}}, "status.successful") == "0"


def test_event_source_falls_back_to_the_reporting_controller() -> None:
    """events.k8s.io/v1 writers fill ``reportingComponent``, not ``source``: selecting by
    ``source`` finds them by it, as kube-apiserver does."""
    new_style = {"metadata": {"name": "e"}, "reportingComponent": "kueue-admission"}
    both = {**new_style, "source": {"component": "job-controller"}}
    empty = {**new_style, "source": {}}
    source = parse_field_selector("source=kueue-admission", EVENTS)
    assert fields_match(source, new_style)
    assert fields_match(source, empty)
    assert not fields_match(source, both)
    assert fields_match(parse_field_selector("source=job-controller", EVENTS), both)
    assert fields_match(parse_field_selector("reportingComponent=kueue-admission", EVENTS), both)
    assert field_value({"metadata": {"name": "e"}}, "source") == ""


@pytest.mark.parametrize("text", ["status.phase=Running", "data.key=x", "spec.nodeName=n"])
def test_unsupported_field_labels_are_400(text: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_field_selector(text, CONFIGMAPS)
    assert err.value.code == 400
    assert err.value.message == f"field label not supported: {text.split('=')[0]}"


def test_field_selector_without_operator_is_400() -> None:
    with pytest.raises(ApiError) as err:
        parse_field_selector("metadata.name", PODS)
    assert err.value.code == 400


def test_field_value() -> None:
    assert field_value({"spec": {"unschedulable": True}}, "spec.unschedulable") == "true"
    assert field_value({"status": {"succeeded": 1}}, "status.succeeded") == "1"
    assert field_value({"spec": "not-a-mapping"}, "spec.x") == ""


def test_object_filter_combines_both() -> None:
    obj = {**POD, "metadata": {**POD["metadata"], "labels": {"app": "web"}}}
    assert object_filter(
        parse_label_selector("app=web"), parse_field_selector("status.phase=Running", PODS)
    )(obj)
    assert not object_filter(
        parse_label_selector("app=db"), parse_field_selector("status.phase=Running", PODS)
    )(obj)
    assert not object_filter(
        parse_label_selector("app=web"), parse_field_selector("status.phase=Failed", PODS)
    )(obj)
