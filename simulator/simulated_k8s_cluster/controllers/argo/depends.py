"""DAG ``depends`` expressions (``workflow/common/ancestry.go`` and ``evaluateDependsLogic``).

``depends: "A && (B.Failed || C.Errored)"`` names the tasks a task waits for and when it runs. A
bare task name means ``(A.Succeeded || A.Skipped || A.Daemoned)`` (plus ``A.Failed`` /
``A.Errored`` when A has ``continueOn``); ``dependencies: [A, B]`` is the same as ``A && B``.
The expression is evaluated once every task it names has finished: true runs the task, false
omits it (``omitted: depends condition not met``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]

RESULTS = (
    "Succeeded",
    "Failed",
    "Errored",
    "Skipped",
    "Omitted",
    "Daemoned",
    "AnySucceeded",
    "AllFailed",
)
_REFERENCE = re.compile(r"([a-zA-Z0-9][-a-zA-Z0-9]*?\.[A-Z][a-zA-Z]+)|([a-zA-Z0-9][-a-zA-Z0-9]*)")
_TOKEN = re.compile(r"\s*(&&|\|\||!|\(|\)|[a-zA-Z0-9_][-a-zA-Z0-9_]*\.[A-Za-z]+|[^\s()!]+)")


class DependsError(ValueError):
    """An expression that cannot be evaluated; the message is Argo's."""


def _expand(name: str, task: Mapping[str, Any] | None) -> str:
    """``expandDependency``: what a bare task name stands for."""
    results = ["Succeeded", "Skipped", "Daemoned"]
    continue_on = (task or {}).get("continueOn") or {}
    if continue_on.get("error"):
        results.append("Errored")
    if continue_on.get("failed"):
        results.append("Failed")
    return "(" + " || ".join(f"{name}.{r}" for r in results) + ")"


def resolve(
    task: Mapping[str, Any], tasks: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], str]:
    """``GetTaskDependencies``: the tasks ``task`` waits for, in order of appearance, and its
    expression with every bare name expanded ("" without ``depends`` or ``dependencies``)."""
    depends = str(task.get("depends") or "")
    if not depends:
        names = [str(d) for d in task.get("dependencies") or []]
        return names, " && ".join(_expand(n, tasks.get(n)) for n in names)
    found: list[str] = []
    pieces: list[str] = []
    pos = 0
    for match in _REFERENCE.finditer(depends):
        if match.group(1):
            name = match.group(1).split(".")[0]
        else:
            name = match.group(2)
            pieces.append(depends[pos : match.start()])
            pieces.append(_expand(name, tasks.get(name)))
            pos = match.end()
        if name not in found:
            found.append(name)
    pieces.append(depends[pos:])
    return found, "".join(pieces)


def invalid_results(task: Mapping[str, Any]) -> list[str]:
    """``ValidateTaskResults``: ``task result 'X' for task 'A' is invalid`` for each bad one."""
    depends = str(task.get("depends") or "")
    return [
        f"task result '{result}' for task '{name}' is invalid"
        for name, result in (
            m.group(1).split(".", 1) for m in _REFERENCE.finditer(depends) if m.group(1)
        )
        if result not in RESULTS
    ]


def task_results(node: Obj, children: list[Obj]) -> dict[str, bool]:
    """What a finished task's node says to an expression."""
    phase = node.get("phase")
    group = node.get("type") == "TaskGroup"
    return {
        "Succeeded": phase == "Succeeded",
        "Failed": phase == "Failed",
        "Errored": phase == "Error",
        "Skipped": phase == "Skipped",
        "Omitted": phase == "Omitted",
        "Daemoned": False,  # daemons are not modelled
        "AnySucceeded": group and any(c.get("phase") == "Succeeded" for c in children),
        "AllFailed": group and bool(children) and all(c.get("phase") == "Failed" for c in children),
    }


def evaluate(logic: str, results: Mapping[str, Mapping[str, bool]]) -> bool:
    """The expression's value, given each task's results; ``DependsError`` when it is not a
    boolean expression over those results."""
    tokens = [t for t in _TOKEN.findall(logic) if t]
    position = 0

    def fail(why: str) -> DependsError:
        argo_form = logic.replace("-", "_")
        return DependsError(f"unable to evaluate expression '{argo_form}': {why}")

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        token = peek()
        if token is None:
            raise fail("unexpected end of expression")
        position += 1
        return token

    def disjunction() -> bool:
        value = conjunction()
        while peek() == "||":
            take()
            value = conjunction() or value
        return value

    def conjunction() -> bool:
        value = negation()
        while peek() == "&&":
            take()
            value = negation() and value
        return value

    def negation() -> bool:
        if peek() == "!":
            take()
            return not negation()
        return atom()

    def atom() -> bool:
        token = take()
        if token == "(":
            value = disjunction()
            if take() != ")":
                raise fail("missing )")
            return value
        name, _, result = token.partition(".")
        if name not in results or result not in results[name]:
            raise fail(f"unknown name {token}")
        return bool(results[name][result])

    value = disjunction()
    if peek() is not None:
        raise fail(f"unexpected token {peek()}")
    return value


def handled_failures(tasks: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """Tasks whose failure some ``depends`` expression asks about (``A.Failed``,
    ``A.Errored``, ``A.AllFailed``…): their failure is a branch of the DAG, not a reason to stop
    scheduling."""
    handled: set[str] = set()
    for task in tasks.values():
        for match in _REFERENCE.finditer(str(task.get("depends") or "")):
            if match.group(1):
                name, result = match.group(1).split(".", 1)
                if result in ("Failed", "Errored", "AllFailed", "AnySucceeded", "Omitted"):
                    handled.add(name)
    return handled
