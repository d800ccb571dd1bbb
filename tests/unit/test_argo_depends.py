"""The simulated Argo controller's ``depends`` expressions, as pure functions."""

from __future__ import annotations

import pytest

from simulated_k8s_cluster.controllers.argo import depends

TASKS = {
    "a": {"name": "a"},
    "b-1": {"name": "b-1", "continueOn": {"failed": True}},
    "c": {"name": "c", "depends": "a && (b-1.Failed || !b-1.Succeeded)"},
    "d": {"name": "d", "dependencies": ["a", "b-1"]},
}


def test_bare_names_expand_and_continue_on_counts() -> None:
    names, logic = depends.resolve(TASKS["c"], TASKS)
    assert names == ["a", "b-1"]
    assert logic == "(a.Succeeded || a.Skipped || a.Daemoned) && (b-1.Failed || !b-1.Succeeded)"
    names, logic = depends.resolve(TASKS["d"], TASKS)
    assert names == ["a", "b-1"]
    assert logic == (
        "(a.Succeeded || a.Skipped || a.Daemoned) && "
        "(b-1.Succeeded || b-1.Skipped || b-1.Daemoned || b-1.Failed)"
    )
    assert depends.resolve(TASKS["a"], TASKS) == ([], "")


def results(**phases: str) -> dict[str, dict[str, bool]]:
    return {n: depends.task_results({"phase": p}, []) for n, p in phases.items()}


@pytest.mark.parametrize(
    ("logic", "expected"),
    [
        ("a.Succeeded && b.Failed", True),
        ("a.Failed || b.Failed && a.Succeeded", True),  # && binds tighter than ||
        ("(a.Failed || b.Failed) && a.Failed", False),
        ("!a.Succeeded", False),
        ("!!a.Succeeded", True),
        ("b.Errored || b.Omitted || b.Skipped", False),
    ],
)
def test_evaluate(logic: str, expected: bool) -> None:
    assert depends.evaluate(logic, results(a="Succeeded", b="Failed")) is expected


@pytest.mark.parametrize(
    "logic", ["a.Succeeded &&", "a.Succeeded) ", "x.Succeeded", "a.Succeeded b"]
)
def test_evaluate_rejects_what_is_not_an_expression(logic: str) -> None:
    with pytest.raises(depends.DependsError, match="unable to evaluate expression"):
        depends.evaluate(logic, results(a="Succeeded"))


def test_results_of_a_task_group() -> None:
    group = {"type": "TaskGroup", "phase": "Failed"}
    failed_children = [{"phase": "Failed"}, {"phase": "Failed"}]
    assert depends.task_results(group, failed_children)["AllFailed"] is True
    assert depends.task_results(group, failed_children)["AnySucceeded"] is False
    mixed = [{"phase": "Failed"}, {"phase": "Succeeded"}]
    assert depends.task_results(group, mixed)["AnySucceeded"] is True
    assert depends.task_results({"phase": "Error"}, [])["Errored"] is True


def test_invalid_results_are_named() -> None:
    assert depends.invalid_results({"depends": "a.Done && b.Failed"}) == [
        "task result 'Done' for task 'a' is invalid"
    ]
