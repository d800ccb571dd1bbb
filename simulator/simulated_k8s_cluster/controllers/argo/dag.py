"""DAG templates (``dag.go``): tasks and their ``depends`` / ``dependencies``, ``target``,
``failFast``, expanded tasks under a TaskGroup node, the DAG's phase and its outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import depends
from .common import ExecError, ParallelismReached
from .composite import _continues_on, _expand, _finish
from .expressions import TemplateError, evaluate_when, substitute
from .nodes import aggregate_scope, failed, fulfilled, local_scope

if TYPE_CHECKING:
    from .common import TemplateContext
    from .engine import Operation

Obj = dict[str, Any]


# --- DAG -----------------------------------------------------------------------------------------


class _Dag:
    """One evaluation of a DAG template (``dagContext``)."""

    def __init__(
        self, op: Operation, name: str, node: Obj, ctx: TemplateContext, tmpl: Obj, on_exit: bool
    ) -> None:
        self.op, self.name, self.node, self.ctx, self.on_exit = op, name, node, ctx, on_exit
        self.tasks = {t.get("name"): t for t in (tmpl.get("dag") or {}).get("tasks") or []}
        self.fail_fast = (tmpl.get("dag") or {}).get("failFast", True) is not False
        self.visited: set[str] = set()
        self.scope: dict[str, str] = {}
        self.resolved = {name: depends.resolve(t, self.tasks) for name, t in self.tasks.items()}

    def task_node(self, task: str) -> Obj | None:
        return self.op.nodes.get(f"{self.name}.{task}")

    def assess(self, targets: list[str]) -> str:
        """``assessDAGPhase``: Running while any node reached from the DAG is; else each target
        task's branch phase — a task's own phase once it completed, else (Skipped, Omitted) the
        phase of the branch that led to it, a failure winning — and the first failed target (with
        ``failFast``) or the last fails the DAG unless its ``continueOn`` allows it."""
        nodes = self.op.nodes
        target_phase = {node["id"]: "" for t in targets if (node := self.task_node(t)) is not None}
        queue = [(child, "Succeeded") for child in self.node.get("children") or []]
        seen: set[tuple[str, str]] = set()
        while queue:
            node_id, branch = queue.pop(0)
            if (node_id, branch) in seen:
                continue
            seen.add((node_id, branch))
            node = nodes.by_id.get(node_id)
            if node is None or not fulfilled(node):
                return "Running"
            if node.get("phase") in ("Succeeded", "Failed", "Error"):
                branch = str(node["phase"])
            if node_id in target_phase and target_phase[node_id] not in ("Failed", "Error"):
                target_phase[node_id] = branch
            if node.get("type") == "Retry":
                following = [
                    grandchild
                    for child in reversed(nodes.children(node))
                    for grandchild in (
                        [child["id"]]
                        if (child.get("nodeFlag") or {}).get("hooked")
                        else child.get("children") or []
                    )
                ]
            else:
                following = list(node.get("children") or [])
            queue.extend((child, branch) for child in following)
        result = "Succeeded"
        for task in targets:
            node = self.task_node(task)
            branch = target_phase.get(node["id"], "") if node is not None else ""
            if not branch:
                result = "Running"
                if not self.fail_fast:
                    break
            elif branch in ("Failed", "Error"):
                if _continues_on(self.tasks.get(task) or {}, branch):
                    continue
                result = branch
                if self.fail_fast:
                    break
        return result

    def deps(self, task: str) -> list[str]:
        return self.resolved[task][0] if task in self.resolved else []

    def _depends_outcome(self, task: str) -> bool | str | None:
        """``evaluateDependsLogic``: None while a dependency runs, else whether the task runs,
        or the evaluation error."""
        results: dict[str, dict[str, bool]] = {}
        for dep in self.deps(task):
            dep_node = self.task_node(dep)
            if not fulfilled(dep_node):
                return None
            assert dep_node is not None
            children = self.op.nodes.children(dep_node)
            results[dep.replace("-", "_")] = depends.task_results(dep_node, children)
        try:
            return depends.evaluate(self.resolved[task][1].replace("-", "_"), results)
        except depends.DependsError as exc:
            return str(exc)

    def run(self, task: str) -> None:
        """``executeDAGTask``: dependencies first, then the task when they all succeeded."""
        if task in self.visited:
            return
        self.visited.add(task)
        op, nodes = self.op, self.op.nodes
        task_name = f"{self.name}.{task}"
        node = nodes.get(task_name)
        for dep in self.deps(task):
            self.run(dep)
        if fulfilled(node):
            return
        deps = self.deps(task)
        outcome = self._depends_outcome(task) if node is None and deps else True
        if outcome is None:
            return  # a dependency has not finished
        if outcome is not True:
            # False: ``omitted: depends condition not met``; a string: the evaluation error.
            error = isinstance(outcome, str)
            nodes.init(
                task_name,
                "Skipped",
                str(self.tasks[task].get("template") or ""),
                self.ctx.scope,
                self.node["id"],
                "Error" if error else "Omitted",
                str(outcome) if error else "omitted: depends condition not met",
                self.tasks[task].get("templateRef"),
            )
            self._connect(task, task_name)
            return
        for dep in self._ancestors(task):
            dep_node = self.task_node(dep)
            if dep_node is not None:
                self._scope_of(dep, dep_node)
        holder = substitute(self.tasks[task], {**op.globals, **self.scope})
        try:
            expanded = _expand(holder)
            proceed = evaluate_when(str(holder.get("when") or "")) if expanded is None else True
        except TemplateError as exc:
            if node is None:
                nodes.init(
                    task_name,
                    "Skipped",
                    str(holder.get("template") or ""),
                    self.ctx.scope,
                    self.node["id"],
                    "Error",
                    str(exc),
                )
            self._connect(task, task_name)
            return
        if expanded is not None:
            self._run_group(task, task_name, holder, expanded)
            return
        if not proceed:
            if node is None:
                nodes.init(
                    task_name,
                    "Skipped",
                    str(holder.get("template") or ""),
                    self.ctx.scope,
                    self.node["id"],
                    "Skipped",
                    f"when '{holder.get('when')}' evaluated false",
                )
            self._connect(task, task_name)
            return
        try:
            op.execute_template(
                task_name,
                holder,
                self.ctx,
                holder.get("arguments"),
                self.node["id"],
                self.on_exit,
                "task",
            )
        except ParallelismReached:
            return
        except ExecError:
            pass
        self._connect(task, task_name)

    def _ancestors(self, task: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.deps(task))
        while todo:
            dep = todo.pop()
            if dep in found or dep not in self.tasks:
                continue
            found.add(dep)
            todo.extend(self.deps(dep))
        return found

    def _scope_of(self, task: str, node: Obj) -> None:
        prefix = f"tasks.{task}"
        if node.get("type") == "TaskGroup":
            aggregate_scope(prefix, self.op.nodes.children(node), self.scope)
        else:
            local_scope(self.op.nodes, prefix, node, self.scope)

    def _connect(self, task: str, task_name: str) -> None:
        nodes = self.op.nodes
        deps = self.deps(task)
        if not deps:
            nodes.add_child(self.name, task_name)
            return
        for dep in deps:
            dep_node = self.task_node(dep)
            if dep_node is None:
                continue
            for out_id in nodes.outbound(dep_node["id"]):
                nodes.add_child(nodes.by_id[out_id]["name"], task_name)

    def _run_group(self, task: str, task_name: str, holder: Obj, expanded: list[Obj]) -> None:
        op, nodes = self.op, self.op.nodes
        group = nodes.get(task_name)
        if group is None:
            if not expanded:
                nodes.init(
                    task_name,
                    "Skipped",
                    str(holder.get("template") or ""),
                    self.ctx.scope,
                    self.node["id"],
                    "Skipped",
                    "Skipped, empty params",
                )
                self._connect(task, task_name)
                return
            group = nodes.init(
                task_name,
                "TaskGroup",
                str(holder.get("template") or ""),
                self.ctx.scope,
                self.node["id"],
                "Running",
            )
        self._connect(task, task_name)
        for child in expanded:
            child_name = f"{self.name}.{child['name']}"
            try:
                op.execute_template(
                    child_name,
                    child,
                    self.ctx,
                    child.get("arguments"),
                    self.node["id"],
                    self.on_exit,
                    "task",
                )
            except ParallelismReached:
                continue
            except ExecError:
                pass
            nodes.add_child(task_name, child_name)
        children = nodes.children(group)
        if len(children) == len(expanded) and all(fulfilled(c) for c in children):
            bad = [c for c in children if failed(c) and not _continues_on(holder, c["phase"])]
            nodes.mark(task_name, "Failed" if bad else "Succeeded")


def execute_dag(
    op: Operation,
    name: str,
    ctx: TemplateContext,
    scope_name: str,
    tmpl: Obj,
    holder: Obj,
    boundary_id: str,
    on_exit: bool,
) -> Obj:
    """``executeDAG``: run what can run; Failed once nothing more can and a task failed."""
    nodes = op.nodes
    node = nodes.get(name)
    if node is None:
        node = nodes.init(
            name,
            "DAG",
            str(holder.get("template") or ""),
            scope_name,
            boundary_id,
            "Running",
            template_ref=holder.get("templateRef"),
            inputs=op.node_inputs(tmpl),
        )
    dag = _Dag(op, name, node, ctx, tmpl, on_exit)
    depended = {d for t in dag.tasks for d in dag.deps(t)}
    target = (tmpl.get("dag") or {}).get("target")
    targets = (
        str(target).replace(",", " ").split()
        if target
        else [t for t in dag.tasks if t not in depended]
    )
    for task in targets:
        if task in dag.tasks:
            dag.run(task)
    outbound = [
        o
        for t in targets
        if dag.task_node(t)
        for o in nodes.outbound(dag.task_node(t)["id"])  # type: ignore[index]
    ]
    if outbound:
        node["outboundNodes"] = outbound
    phase = dag.assess([t for t in targets if t in dag.tasks])
    if phase == "Running":
        return node
    if phase in ("Failed", "Error"):
        return nodes.mark(name, phase)
    for task in dag.tasks:
        task_node = dag.task_node(task)
        if task_node is not None:
            dag._scope_of(task, task_node)
    return _finish(op, name, tmpl, dag.scope)
