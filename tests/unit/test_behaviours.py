"""Behaviour rules of the simulated cluster: parsing, validation, matching, expansion; and the
kubelet's image reference parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from simulated_k8s_cluster.behaviours import (
    DEFAULT_BEHAVIOUR,
    Behaviour,
    ContainerFacts,
    RuleBook,
    expand,
    parse_annotation,
    parse_rule,
    parse_rules,
)
from simulated_k8s_cluster.config import ClusterConfig, ConfigError
from simulated_k8s_cluster.controllers.kubelet import normalize_image


def facts(**overrides: Any) -> ContainerFacts:
    values: dict[str, Any] = {
        "namespace": "batch",
        "pod_name": "p",
        "container": "main",
        "image": "task-python:1.0",
        "command_line": "python pre-task.py --day 2026-01-01",
        "env": {"JOB_COMPLETION_INDEX": "3"},
        "labels": {"app": "etl"},
    }
    values.update(overrides)
    return ContainerFacts(**values)


def test_defaults() -> None:
    rule = parse_rule({}, "behaviours[0]")
    assert rule.behaviour == Behaviour(seconds=1.0, exit_code=0)
    assert rule.times is None
    assert rule.match.matches(facts())
    assert DEFAULT_BEHAVIOUR.reason == "Completed"


def test_full_rule() -> None:
    rule = parse_rule(
        {
            "match": {
                "image": "task-python:1.0",
                "args": "pre-task.py",
                "env": {"JOB_COMPLETION_INDEX": 3},
                "namespace": "batch",
                "container": "main",
                "labels": {"app": "etl"},
            },
            "seconds": 2,
            "exitCode": 3,
            "stdout": "[1, 2, 3]\nsecond line",
            "files": {"/tmp/results": "[1, 2, 3]"},
            "terminationMessage": "bye",
            "imagePull": "ErrImagePull",
            "imagePullSeconds": 30,
            "times": 2,
        },
        "behaviours[0]",
    )
    behaviour = rule.behaviour
    assert behaviour.seconds == 2.0
    assert behaviour.exit_code == 3 and behaviour.reason == "Error"
    assert behaviour.stdout == ("[1, 2, 3]", "second line")
    assert behaviour.files == {"/tmp/results": "[1, 2, 3]"}
    assert behaviour.termination_message == "bye"
    assert behaviour.image_pull == "ErrImagePull" and behaviour.image_pull_seconds == 30
    assert rule.times == 2
    assert rule.match.env == {"JOB_COMPLETION_INDEX": "3"}
    assert rule.match.matches(facts())


def test_stdout_as_list_and_oom() -> None:
    behaviour = parse_rule({"stdout": ["a", "b"], "oomKilled": True}, "r").behaviour
    assert behaviour.stdout == ("a", "b")
    assert behaviour.exit_code == 137 and behaviour.reason == "OOMKilled"


def test_preemption_defaults_to_once() -> None:
    assert parse_rule({"preemptAfterSeconds": 5}, "r").times == 1
    assert parse_rule({"preemptAfterSeconds": 5, "times": 3}, "r").times == 3


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"secnds": 1}, "behaviours[1].secnds: unknown field"),
        ({"match": {"imgae": "x"}}, "behaviours[1].match.imgae: unknown field"),
        ({"match": "x"}, "behaviours[1].match: must be a mapping"),
        ({"seconds": -1}, "behaviours[1].seconds: must be a number >= 0"),
        ({"seconds": "2"}, "behaviours[1].seconds: must be a number"),
        ({"exitCode": 256}, "behaviours[1].exitCode: must be an integer from 0 to 255"),
        ({"exitCode": True}, "behaviours[1].exitCode"),
        ({"stdout": 3}, "behaviours[1].stdout: must be a string or a list of strings"),
        ({"files": ["x"]}, "behaviours[1].files: must be a mapping of strings"),
        ({"imagePull": "Nope"}, "behaviours[1].imagePull: must be one of ErrImagePull"),
        ({"imagePullSeconds": 3}, "behaviours[1].imagePullSeconds: needs imagePull"),
        ({"times": 0}, "behaviours[1].times: must be an integer >= 1"),
        ({"oomKilled": True, "exitCode": 1}, "behaviours[1].oomKilled"),
        ({"match": {"env": {"A": [1]}}}, "behaviours[1].match.env.A: must be a string"),
        ("fast", "behaviours[1]: a behaviour rule must be a mapping"),
    ],
)
def test_validation_names_rule_and_field(rule: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_rules([{}, rule])


def test_config_rules_are_validated_when_the_kubelet_reads_them() -> None:
    config = ClusterConfig.from_dict({"behaviours": [{"exitcode": 1}]})
    with pytest.raises(ConfigError, match=r"behaviours\[0\]\.exitcode: unknown field"):
        RuleBook(config.behaviours)


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"image": "task-python:1.0"}, True),
        ({"image": "task-python:2.0"}, False),
        ({"image": "task-python:*"}, True),
        ({"image": "task-*"}, True),
        ({"image": "task-python"}, False),
        ({"args": "pre-task.py"}, True),
        ({"args": "post-task.py"}, False),
        ({"env": {"JOB_COMPLETION_INDEX": "3"}}, True),
        ({"env": {"JOB_COMPLETION_INDEX": "4"}}, False),
        ({"env": {"MISSING": ""}}, False),
        ({"namespace": "batch"}, True),
        ({"namespace": "default"}, False),
        ({"container": "main"}, True),
        ({"container": "side"}, False),
        ({"labels": {"app": "etl"}}, True),
        ({"labels": {"app": "web"}}, False),
        ({"image": "task-python:1.0", "container": "side"}, False),
    ],
)
def test_matching(match: dict[str, Any], expected: bool) -> None:
    assert parse_rule({"match": match}, "r").match.matches(facts()) is expected


def test_rule_book_order_and_times() -> None:
    book = RuleBook(
        [
            {"match": {"image": "task-python:*"}, "exitCode": 1, "times": 2},
            {"match": {"image": "task-python:*"}, "exitCode": 2},
        ]
    )
    assert book.select("pod-a", facts()).exit_code == 1
    # The same pod counts once (another container of it, or a second look).
    assert book.select("pod-a", facts(container="side")).exit_code == 1
    assert book.select("pod-b", facts()).exit_code == 1
    assert book.select("pod-c", facts()).exit_code == 2
    # Added rules come first, the latest added before earlier ones.
    book.add({"exitCode": 5})
    book.add({"match": {"container": "main"}, "exitCode": 6})
    assert book.select("pod-d", facts()).exit_code == 6
    assert book.select("pod-e", facts(container="side")).exit_code == 5
    assert book.select("pod-f", facts(image="other:1", container="x")).exit_code == 5


def test_rule_book_default() -> None:
    assert RuleBook().select("p", facts()) is DEFAULT_BEHAVIOUR


def test_added_rule_errors_name_the_rule() -> None:
    book = RuleBook()
    book.add({})
    with pytest.raises(ConfigError, match=r"add_behaviour rule #2\.seconds"):
        book.add({"seconds": -3})


def test_preempting_rule_applies_once() -> None:
    book = RuleBook([{"preemptAfterSeconds": 5}])
    assert book.select("first", facts()).preempt_after_seconds == 5
    assert book.select("second", facts()) is DEFAULT_BEHAVIOUR


def test_annotation_plain_object_applies_to_regular_containers() -> None:
    result = parse_annotation(json.dumps({"seconds": 5, "exitCode": 3}), ["main", "side"], ["init"])
    assert set(result) == {"main", "side"}
    assert result["main"].exit_code == 3 and result["main"].seconds == 5


def test_annotation_keyed_by_container() -> None:
    result = parse_annotation(
        json.dumps({"main": {"exitCode": 1}, "init": {"seconds": 9}}), ["main", "side"], ["init"]
    )
    assert set(result) == {"main", "init"}
    assert result["main"].exit_code == 1 and result["init"].seconds == 9


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1]", "must be a JSON object"),
        ('{"match": {}}', r"behaviour\.match: unknown field"),
        ('{"main": {"exitCode": 300}}', r"\[main\]\.exitCode"),
    ],
)
def test_annotation_errors(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_annotation(value, ["main"], [])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-two"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("cost $$5", "cost $5"),
        ("$(A", "$(A"),
        ("plain", "plain"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "two"}) == expected


@pytest.mark.parametrize(
    ("image", "normalized"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("task-python:1.0", "docker.io/library/task-python:1.0"),
        ("user/app:v1", "docker.io/user/app:v1"),
        ("index.docker.io/user/app", "docker.io/user/app:latest"),
        ("localhost:5000/app:1", "localhost:5000/app:1"),
        ("europe-docker.pkg.dev/proj/repo/img:2.0", "europe-docker.pkg.dev/proj/repo/img:2.0"),
        ("gcr.io/p/img@sha256:" + "a" * 64, "gcr.io/p/img@sha256:" + "a" * 64),
    ],
)
def test_valid_images(image: str, normalized: str) -> None:
    assert normalize_image(image) == (None, normalized)


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("registry.hub.docker.com/library//nginx:latest", "invalid reference format"),
        ("busybox:", "invalid reference format"),
        ("task python:1.0", "invalid reference format"),
        (
            "busyBOX",
            "invalid reference format: repository name (library/busyBOX) must be lowercase",
        ),
        (
            "a" * 64,
            "invalid repository name (" + "a" * 64 + "), cannot specify 64-byte "
            "hexadecimal strings",
        ),
    ],
)
def test_invalid_images(image: str, why: str) -> None:
    error, _ = normalize_image(image)
    assert error == (
        f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": {why}'
    )
