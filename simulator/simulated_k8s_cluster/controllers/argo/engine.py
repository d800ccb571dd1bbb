"""Executing templates (the controller's ``executeTemplate``): template resolution, arguments,
parallelism and the Retry node around an attempt. Leaves and retries are in :mod:`.leaves`,
steps in :mod:`.composite`, DAGs in :mod:`.dag`; the Workflow lifecycle around the root
template is in :mod:`.workflow`."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...resources import CONFIGMAPS
from . import composite, dag, leaves
from .common import (
    ExecError,
    Host,
    ParallelismReached,
    TemplateContext,
    holder_template_name,
    template_type,
)
from .expressions import param_text, substitute
from .names import node_id, pod_name, step_or_task_name
from .nodes import Nodes, fulfilled

CONFIGMAP_TYPE_LABEL = "workflows.argoproj.io/configmap-type"

Obj = dict[str, Any]


@dataclass
class Operation:
    """One pass over one Workflow (the controller's ``wfOperationCtx``)."""

    host: Host
    workflow: Obj
    """A copy of the stored Workflow; the pass writes its status (and labels) into it."""
    spec: Obj
    """The execution spec (the Workflow's, or the WorkflowTemplate's merged with it)."""
    nodes: Nodes
    pods: dict[str, Obj]
    """The Workflow's pods by node id."""
    now: float
    pod_templates: dict[str, Obj]
    """Processed templates of Pod nodes by node id (what the pod was made from)."""
    globals: dict[str, str] = field(default_factory=dict)
    global_error: str = ""
    """Why the global parameters could not be set (``setGlobalParameters``), if they could not."""
    active_pods: int = 0
    wake_at: float | None = None
    deadline: float | None = None

    def __post_init__(self) -> None:
        meta = self.workflow["metadata"]
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.uid: str = meta["uid"]
        self.status: Obj = self.workflow.setdefault("status", {})
        self.shutdown: str = str((self.workflow.get("spec") or {}).get("shutdown") or "")
        self.local = TemplateContext(
            {
                str(t.get("name")): t
                for t in self.spec.get("templates") or []
                if isinstance(t, dict)
            },
            f"local/{self.name}",
        )

    # --- small helpers -----------------------------------------------------------------------

    @property
    def clock(self) -> Any:
        return self.host.state.clock

    def stamp(self) -> str:
        return str(self.clock.timestamp(self.now))

    def wake(self, at: float) -> None:
        if self.wake_at is None or at < self.wake_at:
            self.wake_at = at

    def should_execute(self, on_exit: bool) -> bool:
        """``ShutdownStrategy.ShouldExecute``: Terminate runs nothing, Stop only exit handlers."""
        if not self.shutdown:
            return True
        return self.shutdown == "Stop" and on_exit

    def deadline_passed(self) -> bool:
        return self.deadline is not None and self.now >= self.deadline

    def is_exit_handler(self, node: Obj) -> bool:
        return str(node.get("name", "")).startswith(f"{self.name}.onExit")

    def count_active_pods(self) -> int:
        return sum(
            1
            for n in self.nodes.values()
            if n.get("type") == "Pod" and n.get("phase") in ("Pending", "Running")
        )

    def count_active_pods_of(self, boundary_id: str) -> int:
        """``getActivePods``: created pods of this boundary that are Pending or Running."""
        return sum(
            1
            for n in self.nodes.values()
            if n.get("boundaryID") == boundary_id
            and n.get("type") == "Pod"
            and n.get("phase") in ("Pending", "Running")
            and n["id"] in self.pods
        )

    def count_active_children(self, boundary_id: str) -> int:
        return sum(
            1
            for n in self.nodes.values()
            if n.get("boundaryID") == boundary_id
            and n.get("type") in ("Pod", "Steps", "DAG")
            and n.get("phase") in ("Pending", "Running")
        )

    def add_global_outputs(self, outputs: Obj | None) -> None:
        """``addOutputsToGlobalScope``: parameters with a ``globalName``."""
        for param in (outputs or {}).get("parameters") or []:
            global_name = param.get("globalName")
            if not global_name or param.get("value") is None:
                continue
            value = str(param["value"])
            self.globals[f"workflow.outputs.parameters.{global_name}"] = value
            params = self.status.setdefault("outputs", {}).setdefault("parameters", [])
            for existing in params:
                if existing.get("name") == global_name:
                    existing["value"] = value
                    break
            else:
                params.append({"name": global_name, "value": value})

    # --- templates ---------------------------------------------------------------------------

    def resolve(self, holder: Obj, ctx: TemplateContext) -> tuple[TemplateContext, Obj]:
        """``ResolveTemplate``: a template by name in ``ctx``, or by ``templateRef``."""
        ref = holder.get("templateRef")
        if ref:
            cluster = bool(ref.get("clusterScope"))
            kind = "clusterworkflowtemplates" if cluster else "workflowtemplates"
            found = self.host.find_template(self.namespace, str(ref.get("name")), cluster)
            if found is None:
                raise ExecError(f'{kind}.argoproj.io "{ref.get("name")}" not found')
            templates = {t.get("name"): t for t in (found.get("spec") or {}).get("templates") or []}
            scope = f"{'cluster' if cluster else 'namespaced'}/{ref.get('name')}"
            tmpl = templates.get(ref.get("template"))
            if tmpl is None:
                raise ExecError(
                    f"template {ref.get('template')} not found in workflow template "
                    f"{ref.get('name')}"
                )
            return TemplateContext(templates, scope), tmpl
        if isinstance(holder.get("inline"), dict):
            return ctx, holder["inline"]
        name = holder_template_name(holder)
        tmpl = ctx.templates.get(name)
        if tmpl is None:
            raise ExecError(f"template {name} not found")
        return ctx, tmpl

    def configmap_value(self, ref: Obj) -> tuple[str | None, str, bool]:
        """``GetConfigMapValue``: (value, error, whether it is a not-found error). The
        ConfigMap must carry the label ``workflows.argoproj.io/configmap-type: Parameter``."""
        name = substitute(str(ref.get("name") or ""), self.globals)
        key = substitute(str(ref.get("key") or ""), self.globals)
        found = self.host.state.store.peek(CONFIGMAPS, self.namespace, name)
        if found is None:
            return (
                None,
                f"ConfigMap '{name}' does not exist. Please make sure it has the label "
                f"{CONFIGMAP_TYPE_LABEL}: Parameter to be detectable by the controller",
                True,
            )
        if (found["metadata"].get("labels") or {}).get(CONFIGMAP_TYPE_LABEL) != "Parameter":
            return (
                None,
                f"ConfigMap '{name}' needs to have the label {CONFIGMAP_TYPE_LABEL}: Parameter "
                "to load parameters",
                False,
            )
        data = found.get("data") or {}
        if key not in data:
            return None, f"ConfigMap '{name}' does not have the key '{key}'", True
        return str(data[key]), "", False

    def configmap_parameter(self, name: str, value_from: Obj) -> str:
        """An input parameter from ``valueFrom.configMapKeyRef`` (its ``default`` when the
        ConfigMap or key is missing)."""
        value, error, not_found = self.configmap_value(value_from["configMapKeyRef"])
        if value is not None:
            return value
        if not_found and value_from.get("default") is not None:
            return param_text(value_from["default"])
        raise ExecError(f"unable to retrieve inputs.parameters.{name} from ConfigMap: {error}")

    def retry_strategy(self, tmpl: Obj) -> Obj | None:
        strategy = tmpl.get("retryStrategy")
        if strategy is None and template_type(tmpl) in ("container", "script", "resource"):
            strategy = self.spec.get("retryStrategy")
        return strategy if isinstance(strategy, dict) else None

    def process_args(self, tmpl: Obj, args: Obj | None, local: dict[str, str]) -> Obj:
        """``ProcessArgs`` + ``SubstituteParams``: inputs from arguments (or defaults), then
        globals and locals, then ``inputs.parameters.*``, leaving unknown tags as written."""
        tmpl = copy.deepcopy(tmpl)
        supplied = {p.get("name"): p for p in (args or {}).get("parameters") or []}
        for param in (tmpl.get("inputs") or {}).get("parameters") or []:
            value = param.get("value")
            if value is None:
                value = param.get("default")
            arg = supplied.get(param.get("name"))
            value_from = param.get("valueFrom") or {}
            if arg is not None and arg.get("value") is not None:
                value = arg["value"]
            elif arg is not None and arg.get("valueFrom") is not None:
                value_from = arg["valueFrom"]
            if value_from.get("configMapKeyRef") is not None:
                value = self.configmap_parameter(str(param.get("name")), value_from)
            if value is None:
                raise ExecError(f"inputs.parameters.{param.get('name')} was not supplied")
            param["value"] = param_text(value)
        tmpl = substitute(tmpl, {**self.globals, **local})
        inputs = (tmpl.get("inputs") or {}).get("parameters") or []
        scope = {f"inputs.parameters.{p['name']}": str(p["value"]) for p in inputs}
        if inputs:
            scope["inputs.parameters"] = json.dumps(inputs, separators=(",", ":"))
        return substitute(tmpl, scope) if scope else tmpl

    @staticmethod
    def node_inputs(tmpl: Obj) -> Obj | None:
        params = (tmpl.get("inputs") or {}).get("parameters")
        return {"parameters": copy.deepcopy(params)} if params else None

    def check_parallelism(self, tmpl: Obj, node: Obj | None, boundary_id: str) -> None:
        """``checkParallelism``: the Workflow's, the template's and the boundary's."""
        limit = self.spec.get("parallelism")
        if limit is not None and self.active_pods >= int(limit):
            raise ParallelismReached()
        if node is not None and template_type(tmpl) in ("steps", "dag"):
            # Its own pods only: nested steps and DAGs under it must go on to finish.
            own = tmpl.get("parallelism")
            if own is not None and self.count_active_pods_of(node["id"]) >= int(own):
                raise ParallelismReached()
        if boundary_id and (node is None or node.get("phase") not in ("Running", "Pending")):
            boundary = self.nodes.by_id.get(boundary_id)
            if boundary is not None:
                btmpl = self.template_of(boundary)
                limit = (btmpl or {}).get("parallelism")
                if limit is not None and self.count_active_children(boundary_id) >= int(limit):
                    raise ParallelismReached()

    def result_referenced(self, node: Obj) -> bool:
        """``includeScriptOutput``: whether the template that called this step or task refers
        to its ``outputs.result`` (``steps.<name>.outputs.result``, ``tasks['<name>']…``)."""
        boundary = self.nodes.by_id.get(str(node.get("boundaryID") or ""))
        parent = self.template_of(boundary) if boundary is not None else None
        if not parent:
            return False
        name = step_or_task_name(str(node.get("name") or ""))
        kind = "tasks" if parent.get("dag") is not None else "steps" if parent.get("steps") else ""
        text = json.dumps(parent)
        return bool(
            re.search(rf"{kind}\.{re.escape(name)}\.outputs\.result", text)
            or re.search(rf"{kind}\[['\"]{re.escape(name)}['\"]\]\.outputs.result", text)
        )

    def template_of(self, node: Obj) -> Obj | None:
        """``GetNodeTemplate``: the (unprocessed) template a node runs."""
        holder: Obj = {"template": node.get("templateName")}
        if node.get("templateRef"):
            holder = {"templateRef": node["templateRef"]}
        scope = str(node.get("templateScope") or "")
        ctx = self.local
        kind, _, name = scope.partition("/")
        if kind in ("namespaced", "cluster") and not node.get("templateRef"):
            found = self.host.find_template(self.namespace, name, kind == "cluster")
            if found is None:
                return None
            templates = (found.get("spec") or {}).get("templates") or []
            ctx = TemplateContext({t.get("name"): t for t in templates}, scope)
        try:
            return self.resolve(holder, ctx)[1]
        except ExecError:
            return None

    # --- executeTemplate -----------------------------------------------------------------------

    def execute_template(
        self,
        name: str,
        holder: Obj,
        ctx: TemplateContext,
        args: Obj | None,
        boundary_id: str,
        on_exit: bool = False,
        kind: str = "",
        flag: Obj | None = None,
    ) -> Obj:
        """Evaluate one node (creating it when new); raises ``ParallelismReached`` or
        ``ExecError``."""
        node = self.nodes.get(name)
        if fulfilled(node):
            assert node is not None
            return node
        scope = ctx.scope
        ref = holder.get("templateRef")
        try:
            new_ctx, tmpl = self.resolve(holder, ctx)
            local = {"node.name": name}
            tmpl_type = template_type(tmpl)
            if tmpl_type in ("container", "script", "resource") and not self.retry_strategy(tmpl):
                local["pod.name"] = pod_name(self.name, name, str(tmpl.get("name") or ""))
            if kind == "task":
                local["tasks.name"] = str(holder.get("name"))
            elif kind == "step":
                local["steps.name"] = str(holder.get("name"))
            processed = self.process_args(tmpl, args, local)
        except ExecError as exc:
            marked = self._mark_error(node, name, holder, scope, boundary_id, exc)
            raise ExecError(exc.message, marked) from exc
        self.check_parallelism(processed, node, boundary_id)

        retry = self.retry_strategy(processed)
        retry_name = ""
        if retry is not None:
            retry_name = name
            retry_node = node or self.nodes.init(
                name,
                "Retry",
                holder_template_name(holder),
                scope,
                boundary_id,
                "Running",
                template_ref=ref,
                inputs=self.node_inputs(processed),
                flag=flag,
            )
            if not leaves.process_retries(self, retry_node, retry, on_exit) or fulfilled(
                retry_node
            ):
                return retry_node
            attempts = self.nodes.children(retry_node)
            last = attempts[-1] if attempts else None
            if last is not None and not fulfilled(last):
                name, node, number = last["name"], last, len(attempts) - 1
            else:
                number = len(attempts)
                name, node = f"{retry_name}({number})", None
                self.nodes.add_child(retry_name, name)
            local = {"retries": str(number), "node.name": name}
            if template_type(processed) in ("container", "script", "resource"):
                local["pod.name"] = pod_name(self.name, name, str(processed.get("name") or ""))
            if last is not None:
                local["lastRetry.exitCode"] = str((last.get("outputs") or {}).get("exitCode", "0"))
                local["lastRetry.status"] = str(last.get("phase", ""))
                local["lastRetry.message"] = str(last.get("message", ""))
            processed = substitute(processed, local)
            flag = {**(flag or {}), "retried": True}

        try:
            node = self._execute_type(
                name, new_ctx, scope, processed, holder, boundary_id, on_exit, flag
            )
        except ExecError as exc:
            node = self.nodes.get(name)
            if node is None:
                node = self.nodes.init(
                    name,
                    "Skipped",
                    holder_template_name(holder),
                    scope,
                    boundary_id,
                    "Error",
                    exc.message,
                    ref,
                )
            else:
                self.nodes.mark(name, "Error", exc.message)
            if not retry_name:
                raise ExecError(exc.message, node) from exc
        if retry_name:
            retry_node = self.nodes.require(retry_name)
            if not fulfilled(retry_node) and fulfilled(node):
                return self.execute_template(
                    retry_name, holder, ctx, args, boundary_id, on_exit, kind
                )
            return retry_node
        return node

    def _mark_error(
        self, node: Obj | None, name: str, holder: Obj, scope: str, boundary_id: str, exc: ExecError
    ) -> Obj:
        """``initializeNodeOrMarkError``."""
        if node is not None:
            return self.nodes.mark(name, "Error", exc.message)
        return self.nodes.init(
            name,
            "Skipped",
            holder_template_name(holder),
            scope,
            boundary_id,
            "Error",
            exc.message,
            holder.get("templateRef"),
        )

    def _execute_type(
        self,
        name: str,
        ctx: TemplateContext,
        scope: str,
        tmpl: Obj,
        holder: Obj,
        boundary_id: str,
        on_exit: bool,
        flag: Obj | None,
    ) -> Obj:
        kind = template_type(tmpl)
        if kind in ("container", "script", "containerSet", "resource"):
            return leaves.execute_container(
                self, name, scope, tmpl, holder, boundary_id, on_exit, flag
            )
        if kind == "http":
            return leaves.execute_http(self, name, scope, tmpl, holder, boundary_id, on_exit, flag)
        if kind == "suspend":
            return leaves.execute_suspend(
                self, name, scope, tmpl, holder, boundary_id, on_exit, flag
            )
        if kind == "steps":
            return composite.execute_steps(
                self, name, ctx, scope, tmpl, holder, boundary_id, on_exit
            )
        if kind == "dag":
            return dag.execute_dag(self, name, ctx, scope, tmpl, holder, boundary_id, on_exit)
        if kind:
            raise ExecError(f"{kind} templates are not modelled by the simulated Argo controller")
        raise ExecError(f"Template '{tmpl.get('name')}' missing specification")


def pod_node_id(workflow_name: str, pod: Obj) -> str:
    """``woc.nodeID(pod)``: the node-id annotation, else the id of the node-name annotation."""
    annotations = pod["metadata"].get("annotations") or {}
    found = annotations.get("workflows.argoproj.io/node-id")
    if found:
        return str(found)
    return node_id(workflow_name, str(annotations.get("workflows.argoproj.io/node-name", "")))


Callback = Callable[[Obj], None]
