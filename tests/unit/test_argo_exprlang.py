"""The expr-lang subset of the simulated Argo controller's expression tags (``{{= …}}``)."""

from __future__ import annotations

from typing import Any

import pytest

from simulated_k8s_cluster.controllers.argo import exprlang
from simulated_k8s_cluster.controllers.argo.expressions import evaluate_when, substitute_text

ENV = exprlang.expand(
    {
        "inputs.parameters.foo": "3",
        "inputs.parameters.should-print": "true",
        "workflow.parameters.config": (
            '{"a": 1, "b": "x", "employees": '
            '[{"name": "Ann", "age": 43}, {"name": "Bo", "age": 30}]}'
        ),
        "workflow.name": "wf-1",
    }
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("7 / 2", 3.5),
        ("7 % 4", 3),
        ("2 ** 3", 8.0),
        ("-(1 + 1)", -2),
        ("'a' + 'b'", "ab"),
        ("1 == 1.0", True),
        ("'a' < 'b' && !false", True),
        ("true and not false or false", True),
        ("1 > 2 ? 'yes' : 'no'", "no"),
        ("nil ?? 'default'", "default"),
        ("2 in [1, 2, 3]", True),
        ("4 not in [1, 2, 3]", True),
        ("'key' in {key: 1}", True),
        ("'hello' matches '^h.l'", True),
        ("'hello' contains 'ell'", True),
        ("'hello' startsWith 'he' && 'hello' endsWith 'lo'", True),
        ("[1, 2, 3][1]", 2),
        ("[1, 2, 3][1:]", [2, 3]),
        ("len('abc')", 3),
        ("filter([1, 3, 5], {# > 1})", [3, 5]),
        ("map([1, 2], {# * 10})", [10, 20]),
        ("all([1, 2], {# > 0}) && any([1, 2], {# > 1}) && none([1], {# > 1})", True),
        ("count([{'v': 1}, {'v': 2}], {.v > 1})", 1),
        ("asInt(inputs.parameters.foo) * 10", 30),
        ("asFloat('2.5') + 1", 3.5),
        ("inputs.parameters[\"should-print\"] == 'true'", True),
        ("inputs.parameters['foo']", "3"),
        ("toJson(filter([1, 3], {# > 1}))", "[3]"),
        ("toJson({'b': 1, 'a': [true, nil]})", '{"a":[true,null],"b":1}'),
        ("jsonpath(workflow.parameters.config, '$.a')", 1),
        ("jsonpath(workflow.parameters.config, '$.employees[0].name')", "Ann"),
        ("jsonpath(workflow.parameters.config, '$.employees[*].name')", ["Ann", "Bo"]),
        ("jsonpath(workflow.parameters.config, '$.employees[0:1]')", [{"name": "Ann", "age": 43}]),
        (
            "jsonpath(workflow.parameters.config, '$.employees[?(@.age>42 && @.age<44)].name')",
            ["Ann"],
        ),
        ("sprig.upper(workflow.name)", "WF-1"),
        ("sprig.trim('  x ')", "x"),
        ("sprig.replace('-', '_', workflow.name)", "wf_1"),
    ],
)
def test_evaluates_like_expr(expression: str, expected: Any) -> None:
    assert exprlang.evaluate(expression, ENV) == expected


def test_sprig_date_formats_with_a_go_layout() -> None:
    assert exprlang.evaluate("sprig.date('2006-01-02', 0)", ENV) == "1970-01-01"
    year = exprlang.evaluate("sprig.date('2006', workflow.name)", ENV)
    assert isinstance(year, str) and len(year) == 4 and year.isdigit()


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 +", "unexpected end"),
        ("'a' * 2", "invalid operation"),
        ("asInt('x')", "invalid syntax"),
        ("1 / 0", "division by zero"),
        ("unknown.thing", "unknown name"),
        ("1 @ 2", "unexpected character"),
        ("[1][5]", "index out of range"),
        ("1 && true", "expected bool"),
    ],
)
def test_errors(expression: str, message: str) -> None:
    with pytest.raises(exprlang.ExprError, match=message):
        exprlang.evaluate(expression, ENV)


def test_identifiers_are_dotted_paths() -> None:
    tree = exprlang.parse("asInt(inputs.parameters.foo) + len(steps.a.outputs.result) + item")
    assert exprlang.identifiers(tree) == [
        "inputs.parameters.foo",
        "steps.a.outputs.result",
        "item",
    ]


def test_tags_are_substituted_once_their_variables_are_known() -> None:
    scope = {"inputs.parameters.foo": "3", "item": "5"}
    text = "x={{=asInt(inputs.parameters.foo) * 10}} y={{=item}} z={{=steps.a.outputs.result}}"
    assert substitute_text(text, scope) == "x=30 y=5 z={{=steps.a.outputs.result}}"
    # a failing expression stays as written (Argo substitutes with allowUnresolved)
    assert substitute_text("{{=asInt('x')}}", scope) == "{{=asInt('x')}}"
    # non-strings are written as JSON
    assert substitute_text("{{=[1, 'a']}}|{{=1.5}}|{{=2.0}}", scope) == '[1,"a"]|1.5|2'


def test_when_with_an_expression_tag() -> None:
    scope = {"inputs.parameters.should-print": "true"}
    when = substitute_text("{{= inputs.parameters[\"should-print\"] == 'true'}}", scope)
    assert when == "true"
    assert evaluate_when(when) is True
