"""Steps and DAG templates (``steps.go``, ``dag.go``): step groups, tasks and their
dependencies, ``withItems`` / ``withParam`` / ``withSequence`` fan-out, ``when``, and outputs."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from . import exprlang
from .common import ExecError, ParallelismReached
from .expressions import (
    TemplateError,
    evaluate_when,
    expanded_name,
    expansion_items,
    item_scope,
    substitute,
)
from .nodes import add_outputs, aggregate_scope, failed, fulfilled, local_scope

if TYPE_CHECKING:
    from .common import TemplateContext
    from .engine import Operation

Obj = dict[str, Any]


def _continues_on(holder: Obj, phase: str) -> bool:
    """``ContinuesOn``: ``continueOn.failed`` / ``continueOn.error``."""
    continue_on = holder.get("continueOn") or {}
    return bool(
        (phase == "Failed" and continue_on.get("failed"))
        or (phase == "Error" and continue_on.get("error"))
    )


def _expand(holder: Obj) -> list[Obj] | None:
    """``expandStep`` / ``expandTask``: one holder per item, named ``<name>(<i>:<item>)``."""
    items = expansion_items(holder)
    if items is None:
        return None
    base = {k: v for k, v in holder.items() if k not in ("withItems", "withParam", "withSequence")}
    expanded = []
    for index, item in enumerate(items):
        scope, desc = item_scope(item)
        new = substitute(base, scope)
        new["name"] = expanded_name(str(holder.get("name")), index, desc)
        new["template"] = holder.get("template")
        if holder.get("templateRef"):
            new["templateRef"] = holder["templateRef"]
        expanded.append(new)
    return expanded


def _outputs(op: Operation, tmpl: Obj, scope: dict[str, str]) -> Obj | None:
    """``getTemplateOutputsFromScope``: ``valueFrom.parameter`` / ``expression`` references."""
    params = []
    for declared in (tmpl.get("outputs") or {}).get("parameters") or []:
        param = copy.deepcopy(declared)
        value_from = declared.get("valueFrom") or {}
        reference = value_from.get("parameter")
        if reference is not None:
            value = substitute(str(reference), {**op.globals, **scope})
            if "{{" in value and value_from.get("default") is not None:
                value = str(value_from["default"])
            param["value"] = value
        elif value_from.get("expression") is not None:
            env = {**op.globals, **scope}
            for given in (tmpl.get("inputs") or {}).get("parameters") or []:
                if given.get("value") is not None:
                    env[f"inputs.parameters.{given.get('name')}"] = str(given["value"])
            try:
                result = exprlang.evaluate(str(value_from["expression"]), exprlang.expand(env))
            except exprlang.ExprError:
                if value_from.get("default") is None:
                    continue
                result = str(value_from["default"])
            param["value"] = exprlang.render(result)
        elif declared.get("value") is None:
            continue
        params.append(param)
    return {"parameters": params} if params else None


def _finish(op: Operation, name: str, tmpl: Obj, scope: dict[str, str]) -> Obj:
    outputs = _outputs(op, tmpl, scope)
    if outputs:
        op.nodes.require(name)["outputs"] = outputs
        op.add_global_outputs(outputs)
    return op.nodes.mark(name, "Succeeded")


# --- steps ---------------------------------------------------------------------------------------


def _exit_hook(step: Obj) -> Obj | None:
    """``GetExitHook``: a step's ``onExit`` template or its ``exit`` hook."""
    if step.get("onExit"):
        return {"template": step["onExit"]}
    hook = (step.get("hooks") or {}).get("exit")
    return hook if isinstance(hook, dict) else None


def _run_exit_hook(
    op: Operation,
    step: Obj,
    child: Obj,
    ctx: TemplateContext,
    scope: dict[str, str],
    boundary_id: str,
) -> bool:
    """``runOnExitNode`` for a finished step: its exit hook as node ``<step>.onExit``, with the
    step's own outputs in scope; False while the hook runs."""
    hook = _exit_hook(step)
    if hook is None or child.get("phase") not in ("Succeeded", "Failed", "Error"):
        return True
    if not op.should_execute(True):
        return True
    local = dict(scope)
    prefix = f"steps.{step.get('name')}"
    outputs = child.get("outputs") or {}
    retried = op.nodes.children(child) if child.get("type") == "Retry" else []
    if retried:
        outputs = retried[-1].get("outputs") or {}
    for param in outputs.get("parameters") or []:
        local[f"{prefix}.outputs.parameters.{param.get('name')}"] = str(param.get("value", ""))
    local[f"{prefix}.status"] = str(child.get("phase"))
    args = substitute(hook.get("arguments") or {}, {**op.globals, **local})
    holder = {k: hook[k] for k in ("template", "templateRef") if hook.get(k)}
    exit_name = f"{child['name']}.onExit"
    node = op.execute_template(
        exit_name, holder, ctx, args, boundary_id, True, flag={"hooked": True}
    )
    op.nodes.add_child(child["name"], exit_name)
    return fulfilled(node)


def execute_steps(
    op: Operation,
    name: str,
    ctx: TemplateContext,
    scope_name: str,
    tmpl: Obj,
    holder: Obj,
    boundary_id: str,
    on_exit: bool,
) -> Obj:
    """``executeSteps``: the step groups in order; a failed group fails the Steps node."""
    nodes = op.nodes
    node = nodes.get(name)
    if node is None:
        node = nodes.init(
            name,
            "Steps",
            str(holder.get("template") or ""),
            scope_name,
            boundary_id,
            "Running",
            template_ref=holder.get("templateRef"),
            inputs=op.node_inputs(tmpl),
        )
    scope: dict[str, str] = {}
    add_outputs("workflow", op.status.get("outputs"), scope)
    groups = tmpl.get("steps") or []
    for i, group in enumerate(groups):
        sg_name = f"{name}[{i}]"
        sg = nodes.get(sg_name)
        if sg is None:
            nodes.init(
                sg_name, "StepGroup", str(tmpl.get("name") or ""), ctx.scope, node["id"], "Running"
            )
        elif not fulfilled(sg):
            nodes.mark(sg_name, "Running")
        if i == 0:
            nodes.add_child(name, sg_name)
        else:
            previous = nodes.require(f"{name}[{i - 1}]")
            if not previous.get("children"):
                nodes.add_child(previous["name"], sg_name)
            for child_id in previous.get("children") or []:
                for out_id in nodes.outbound(child_id):
                    nodes.add_child(nodes.by_id[out_id]["name"], sg_name)
        sg = _execute_step_group(op, list(group or []), sg_name, ctx, scope, node["id"], on_exit)
        if not fulfilled(sg):
            return node
        if failed(sg):
            _update_outbound(op, name, len(groups))
            return nodes.mark(name, "Failed", str(sg.get("message", "")))
        for step in group or []:
            child_name = f"{sg_name}.{step.get('name')}"
            prefix = f"steps.{step.get('name')}"
            child = nodes.get(child_name)
            if child is not None:
                local_scope(nodes, prefix, child, scope)
                continue
            expanded = [
                n
                for n in nodes.values()
                if n.get("boundaryID") == node["id"]
                and str(n.get("name", "")).startswith(child_name + "(")
                and n.get("type") != "Skipped"
            ]
            if expanded:
                aggregate_scope(prefix, expanded, scope)
    _update_outbound(op, name, len(groups))
    return _finish(op, name, tmpl, scope)


def _update_outbound(op: Operation, name: str, count: int) -> None:
    """``updateOutboundNodes``: the outbound nodes of the last initialised step group."""
    nodes = op.nodes
    for i in range(count - 1, -1, -1):
        last = nodes.get(f"{name}[{i}]")
        if last is not None:
            outbound = [o for c in last.get("children") or [] for o in nodes.outbound(c)]
            node = nodes.require(name)
            if outbound:
                node["outboundNodes"] = outbound
            return


def _execute_step_group(
    op: Operation,
    group: list[Obj],
    sg_name: str,
    ctx: TemplateContext,
    scope: dict[str, str],
    boundary_id: str,
    on_exit: bool,
) -> Obj:
    """``executeStepGroup``: resolve references, expand, run every step, then assess."""
    nodes = op.nodes
    sg = nodes.require(sg_name)
    if fulfilled(sg):
        return sg
    try:
        resolved = [substitute(step, {**op.globals, **scope}) for step in group]
        steps: list[Obj] = []
        for step in resolved:
            expanded = _expand(step)
            if expanded is None:
                steps.append(step)
                continue
            if not expanded:
                child_name = f"{sg_name}.{step.get('name')}"
                if nodes.get(child_name) is None:
                    nodes.init(
                        child_name,
                        "Skipped",
                        str(step.get("template") or ""),
                        ctx.scope,
                        boundary_id,
                        "Skipped",
                        "Skipped, empty params",
                    )
                    nodes.add_child(sg_name, child_name)
            steps.extend(expanded)
    except TemplateError as exc:
        return nodes.mark(sg_name, "Error", str(exc))
    holders: dict[str, Obj] = {}
    for step in steps:
        child_name = f"{sg_name}.{step.get('name')}"
        try:
            proceed = evaluate_when(str(step.get("when") or ""))
        except TemplateError as exc:
            if nodes.get(child_name) is None:
                nodes.init(
                    child_name,
                    "Skipped",
                    str(step.get("template") or ""),
                    ctx.scope,
                    boundary_id,
                    "Error",
                    str(exc),
                )
            nodes.add_child(sg_name, child_name)
            return nodes.mark(sg_name, "Error", str(exc))
        if not proceed:
            if nodes.get(child_name) is None:
                nodes.init(
                    child_name,
                    "Skipped",
                    str(step.get("template") or ""),
                    ctx.scope,
                    boundary_id,
                    "Skipped",
                    f"when '{step.get('when')}' evaluated false",
                )
                nodes.add_child(sg_name, child_name)
            continue
        try:
            child = op.execute_template(
                child_name, step, ctx, step.get("arguments"), boundary_id, on_exit, "step"
            )
        except ParallelismReached:
            continue
        except ExecError as exc:
            nodes.add_child(sg_name, child_name)
            return nodes.mark(
                sg_name,
                "Error",
                f"step group deemed errored due to child {child_name} error: {exc.message}",
            )
        holders[child["name"]] = step
        nodes.add_child(sg_name, child_name)
    sg = nodes.require(sg_name)
    children = nodes.children(sg)
    if not all(fulfilled(child) for child in children):
        return sg
    hooks_done = True
    for child in children:
        step = holders.get(child["name"]) or {}
        try:
            if not _run_exit_hook(op, step, child, ctx, scope, boundary_id):
                hooks_done = False
        except ExecError as exc:
            return nodes.mark(sg_name, "Error", exc.message)
        except ParallelismReached:
            hooks_done = False
    if not hooks_done:
        return nodes.require(sg_name)
    for child in children:
        step = holders.get(child["name"]) or {}
        if failed(child) and not _continues_on(step, child["phase"]):
            return nodes.mark(sg_name, "Failed", f"child '{child['id']}' failed")
    return nodes.mark(sg_name, "Succeeded")
