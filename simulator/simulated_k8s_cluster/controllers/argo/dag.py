"""DAG templates (``dag.go``): tasks and their ``dependencies``, ``target``, ``failFast``,
expanded tasks under a TaskGroup node, and the DAG's outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        self.blocked: set[str] = set()
        self.scope: dict[str, str] = {}

    def task_node(self, task: str) -> Obj | None:
        return self.op.nodes.get(f"{self.name}.{task}")

    def any_failed(self) -> bool:
        for task, holder in self.tasks.items():
            node = self.task_node(task)
            if failed(node) and not _continues_on(holder, node["phase"]):  # type: ignore[index]
                return True
        return False

    def deps(self, task: str) -> list[str]:
        return [str(d) for d in self.tasks[task].get("dependencies") or []]

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
        if any(dep in self.blocked for dep in deps):
            self.blocked.add(task)
            return
        dep_nodes = [self.task_node(dep) for dep in deps]
        if not all(fulfilled(dep_node) for dep_node in dep_nodes):
            return
        pairs = zip(deps, dep_nodes, strict=True)
        if not all(self._satisfied(dep, dep_node) for dep, dep_node in pairs):
            # ``dependencies`` are ``(<dep>.Succeeded || <dep>.Skipped || <dep>.Daemoned)``.
            if node is None:
                nodes.init(
                    task_name,
                    "Skipped",
                    str(self.tasks[task].get("template") or ""),
                    self.ctx.scope,
                    self.node["id"],
                    "Omitted",
                    "omitted: depends condition not met",
                    self.tasks[task].get("templateRef"),
                )
            self._connect(task, task_name)
            return
        if node is None and (self.fail_fast and self.any_failed()):
            self.blocked.add(task)
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

    def _satisfied(self, dep: str, node: Obj | None) -> bool:
        phase = (node or {}).get("phase")
        return phase in ("Succeeded", "Skipped") or (
            phase in ("Failed", "Error") and _continues_on(self.tasks[dep], str(phase))
        )

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
    running = False
    for task in dag.tasks:
        task_node = dag.task_node(task)
        if (task_node is not None and not fulfilled(task_node)) or (
            task_node is None and task not in dag.blocked and task in dag.visited
        ):
            running = True
    outbound = [
        o
        for t in targets
        if dag.task_node(t)
        for o in nodes.outbound(dag.task_node(t)["id"])  # type: ignore[index]
    ]
    if outbound:
        node["outboundNodes"] = outbound
    if running:
        return node
    if dag.any_failed() or dag.blocked:
        return nodes.mark(name, "Failed")
    for task in dag.tasks:
        task_node = dag.task_node(task)
        if task_node is not None:
            dag._scope_of(task, task_node)
    return _finish(op, name, tmpl, dag.scope)
