"""Workflow validation as the controller does it on a Workflow's first pass
(``validate.ValidateWorkflow``): unique template names, the entrypoint, template references,
required inputs, and ``{{…}}`` references that can never resolve. Messages follow Argo's; the
caller prefixes them with ``invalid spec: ``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import depends
from .expressions import all_tags

Obj = dict[str, Any]
Finder = Callable[[str, bool], Obj | None]

_WORKFLOW_VARS = {
    "workflow.name",
    "workflow.namespace",
    "workflow.uid",
    "workflow.serviceAccountName",
    "workflow.mainEntrypoint",
    "workflow.creationTimestamp",
    "workflow.priority",
    "workflow.status",
    "workflow.failures",
    "workflow.duration",
    "workflow.scheduledTime",
    "workflow.parameters",
    "workflow.parameters.json",
    "workflow.annotations",
    "workflow.annotations.json",
    "workflow.labels",
    "workflow.labels.json",
}
_WORKFLOW_PREFIXES = (
    "workflow.creationTimestamp.",
    "workflow.annotations.",
    "workflow.labels.",
    "workflow.outputs.",
)
_CHECKED = ("inputs", "workflow", "steps", "tasks", "item", "pod", "retries")
_TYPES = (
    "container",
    "containerSet",
    "steps",
    "script",
    "resource",
    "dag",
    "suspend",
    "data",
    "http",
    "plugin",
)
_LEAF = ("container", "containerSet", "script", "resource", "suspend", "data", "http", "plugin")
_POD_TYPES = ("container", "containerSet", "script", "resource")


class Invalid(Exception):
    """The spec is invalid; the message is Argo's (without ``invalid spec: ``)."""


def _kind(tmpl: Obj) -> str:
    kinds = [k for k in _TYPES if tmpl.get(k) is not None]
    if not kinds:
        raise Invalid(
            f"templates.{tmpl.get('name')} template type unspecified. choose one of: "
            + ", ".join(_TYPES)
        )
    if len(kinds) > 1:
        raise Invalid(f"templates.{tmpl.get('name')} can only have one template type specified")
    return kinds[0]


class _Validator:
    def __init__(self, spec: Obj, find: Finder) -> None:
        self.spec = spec
        self.find = find
        self.templates = {t.get("name"): t for t in spec.get("templates") or []}
        self.params = {
            str(p.get("name")) for p in (spec.get("arguments") or {}).get("parameters") or []
        }
        self.checked: set[tuple[str, str]] = set()

    # --- references ----------------------------------------------------------------------------

    def _global(self, tag: str) -> bool:
        if tag in _WORKFLOW_VARS or tag.startswith(_WORKFLOW_PREFIXES):
            return True
        if tag.startswith("workflow.parameters."):
            return tag[len("workflow.parameters.") :] in self.params
        return not tag.startswith("workflow.")

    def _check(self, obj: Any, ok: Callable[[str], bool], where: str) -> None:
        for tag in all_tags(obj):
            head = tag.split(".", 1)[0]
            if head not in _CHECKED:
                continue
            if head == "workflow" and self._global(tag):
                continue
            if head != "workflow" and ok(tag):
                continue
            raise Invalid(f"{where} failed to resolve {{{{{tag}}}}}")

    @staticmethod
    def _inputs_ok(tmpl: Obj) -> Callable[[str], bool]:
        names = {str(p.get("name")) for p in (tmpl.get("inputs") or {}).get("parameters") or []}
        kind = next((k for k in _TYPES if tmpl.get(k) is not None), "")
        retries = tmpl.get("retryStrategy") is not None

        def ok(tag: str) -> bool:
            if tag.startswith("inputs.parameters."):
                return tag[len("inputs.parameters.") :] in names
            if tag.startswith("inputs."):
                return True
            if tag == "pod.name":
                return kind in _POD_TYPES
            if tag == "retries":
                return retries
            # always allowed by Argo's resolveAllVariables (resolved at run time)
            return tag.startswith(("steps.name", "tasks.name", "node.name", "outputs."))

        return ok

    def _outputs_of(self, holder: Obj, ctx: dict[str, Obj]) -> set[str] | None:
        """Output parameter names of the template a step or task runs (None: unknown)."""
        tmpl = None if holder.get("templateRef") else ctx.get(str(holder.get("template")))
        if tmpl is None:
            return None
        return {str(p.get("name")) for p in (tmpl.get("outputs") or {}).get("parameters") or []}

    @staticmethod
    def _node_ref_ok(tag: str, prefix: str, known: dict[str, set[str] | None]) -> bool:
        if not tag.startswith(prefix + "."):
            return False
        rest = tag[len(prefix) + 1 :]
        for name, outputs in known.items():
            if not rest.startswith(name + "."):
                continue
            field = rest[len(name) + 1 :]
            if field.startswith("outputs.parameters."):
                wanted = field[len("outputs.parameters.") :]
                return outputs is None or wanted in outputs
            return True
        return False

    # --- templates ------------------------------------------------------------------------------

    def holder(self, holder: Obj, ctx: dict[str, Obj], args: Obj | None, where: str) -> None:
        """``validateTemplateHolder``: the template exists, its inputs are supplied, it is valid."""
        ref = holder.get("templateRef")
        if ref:
            found = self.find(str(ref.get("name")), bool(ref.get("clusterScope")))
            tmpls = {
                t.get("name"): t for t in ((found or {}).get("spec") or {}).get("templates") or []
            }
            tmpl = tmpls.get(ref.get("template"))
            if tmpl is None:
                raise Invalid(
                    f"{where}template reference {ref.get('name')}.{ref.get('template')} not found"
                )
            ctx = tmpls
        elif isinstance(holder.get("inline"), dict):
            tmpl = holder["inline"]  # an inline template: validated like a named one
        else:
            name = holder.get("template")
            if not name:
                raise Invalid(f"{where}template name cannot be empty")
            tmpl = ctx.get(name)
            if tmpl is None:
                raise Invalid(f"{where}template name '{name}' undefined")
        if args is not None:
            supplied = {
                p.get("name")
                for p in args.get("parameters") or []
                if "value" in p or (p.get("valueFrom") or {}).get("configMapKeyRef")
            }
            for param in (tmpl.get("inputs") or {}).get("parameters") or []:
                required = (
                    param.get("value") is None
                    and param.get("default") is None
                    and not (param.get("valueFrom") or {}).get("configMapKeyRef")
                )
                if required and param.get("name") not in supplied:
                    raise Invalid(
                        f"{where}templates.{tmpl.get('name')} inputs.parameters."
                        f"{param.get('name')} was not supplied"
                    )
        try:
            self.template(tmpl, ctx)
        except Invalid as exc:
            raise Invalid(f"{where}{exc}") from exc

    def template(self, tmpl: Obj, ctx: dict[str, Obj]) -> None:
        key = (str(tmpl.get("name")), str(id(ctx)))
        if key in self.checked:
            return
        self.checked.add(key)
        kind = _kind(tmpl)
        name = tmpl.get("name")
        ok = self._inputs_ok(tmpl)
        if kind in _LEAF:
            self._check(tmpl, ok, f"templates.{name}:")
            return
        body = {k: v for k, v in tmpl.items() if k not in ("steps", "dag", "outputs")}
        self._check(body, ok, f"templates.{name}:")
        if kind == "steps":
            self._steps(tmpl, ctx, ok)
        else:
            self._dag(tmpl, ctx, ok)

    def _steps(self, tmpl: Obj, ctx: dict[str, Obj], ok: Callable[[str], bool]) -> None:
        name = tmpl.get("name")
        known: dict[str, set[str] | None] = {}
        for i, group in enumerate(tmpl.get("steps") or []):
            group = group or []
            for step in group:
                expands = any(step.get(k) for k in ("withItems", "withParam", "withSequence"))

                def step_ok(tag: str, expands: bool = expands) -> bool:
                    if tag == "item" or tag.startswith("item."):
                        return expands
                    return ok(tag) or tag == "steps.name" or self._node_ref_ok(tag, "steps", known)

                body = {k: v for k, v in step.items() if k != "hooks"}
                self._check(body, step_ok, f"templates.{name}.steps")
                # a hook also sees the outputs of its own step
                mine = {**known, str(step.get("name")): self._outputs_of(step, ctx)}

                def hook_ok(tag: str, mine: dict[str, set[str] | None] = mine) -> bool:
                    return ok(tag) or self._node_ref_ok(tag, "steps", mine)

                for hook_name, hook in (step.get("hooks") or {}).items():
                    self._check(hook, hook_ok, f"templates.{name}.steps")
                    where = f"templates.{name}.steps[{i}].{step.get('name')}.hooks.{hook_name} "
                    if hook.get("template") or hook.get("templateRef"):
                        self.holder(hook, ctx, hook.get("arguments") or {}, where)
            for step in group:
                where = f"templates.{name}.steps[{i}].{step.get('name')} "
                self.holder(step, ctx, step.get("arguments") or {}, where)
                known[str(step.get("name"))] = self._outputs_of(step, ctx)
        self._check(
            tmpl.get("outputs") or {},
            lambda tag: ok(tag) or self._node_ref_ok(tag, "steps", known),
            f"templates.{name}.outputs",
        )

    def _dag(self, tmpl: Obj, ctx: dict[str, Obj], ok: Callable[[str], bool]) -> None:
        name = tmpl.get("name")
        tasks = {t.get("name"): t for t in (tmpl.get("dag") or {}).get("tasks") or []}
        using_depends = any(t.get("depends") for t in tasks.values())
        for task_name, task in tasks.items():
            if using_depends and task.get("dependencies"):
                raise Invalid(
                    f"templates.{name} cannot use both 'depends' and 'dependencies' in the same "
                    "DAG template"
                )
            if using_depends and task.get("continueOn") is not None:
                raise Invalid(
                    f"templates.{name} cannot use 'continueOn' when using 'depends'. Instead use "
                    "'dep-task.Failed'/'dep-task.Errored'"
                )
            for problem in depends.invalid_results(task):
                raise Invalid(f"templates.{name}.tasks.{task_name} {problem}")
            for dep in depends.resolve(task, tasks)[0]:
                if dep not in tasks:
                    raise Invalid(
                        f"templates.{name}.tasks.{task_name} dependency '{dep}' not defined"
                    )
            ancestors: dict[str, set[str] | None] = {}
            todo = list(depends.resolve(task, tasks)[0])
            while todo:
                dep = todo.pop()
                if dep in ancestors or dep not in tasks:
                    continue
                ancestors[dep] = self._outputs_of(tasks[dep], ctx)
                todo.extend(depends.resolve(tasks[dep], tasks)[0])
            expands = any(task.get(k) for k in ("withItems", "withParam", "withSequence"))

            def task_ok(tag: str, expands: bool = expands, known: Any = ancestors) -> bool:
                if tag == "item" or tag.startswith("item."):
                    return expands
                return ok(tag) or tag == "tasks.name" or self._node_ref_ok(tag, "tasks", known)

            self._check(task, task_ok, f"templates.{name}.tasks.{task_name}")
            self.holder(
                task, ctx, task.get("arguments") or {}, f"templates.{name}.tasks.{task_name} "
            )
        every = {n: self._outputs_of(t, ctx) for n, t in tasks.items()}
        self._check(
            tmpl.get("outputs") or {},
            lambda tag: ok(tag) or self._node_ref_ok(tag, "tasks", every),
            f"templates.{name}.outputs",
        )


def validate(spec: Obj, find: Finder) -> None:
    """Raise ``Invalid`` with Argo's message when the execution spec is not valid."""
    templates = spec.get("templates") or []
    seen: set[str] = set()
    for i, tmpl in enumerate(templates):
        name = tmpl.get("name") if isinstance(tmpl, dict) else None
        if not name:
            raise Invalid(f"spec.templates[{i}].name is required")
        if name in seen:
            raise Invalid(f"spec.templates[{i}].name '{name}' is not unique")
        seen.add(name)
    strategy = (spec.get("podGC") or {}).get("strategy", "")
    if strategy not in (
        "",
        "OnPodCompletion",
        "OnPodSuccess",
        "OnWorkflowCompletion",
        "OnWorkflowSuccess",
    ):
        raise Invalid(f"podGC.strategy unknown strategy '{strategy}'")
    entrypoint = spec.get("entrypoint")
    if not entrypoint:
        raise Invalid("spec.entrypoint is required")
    checker = _Validator(spec, find)
    checker.holder({"template": entrypoint}, checker.templates, spec.get("arguments") or {}, "")
    if spec.get("onExit"):
        checker.holder({"template": spec["onExit"]}, checker.templates, None, "")
    for tmpl in templates:
        try:
            checker.template(tmpl, checker.templates)
        except Invalid as exc:
            raise Invalid(f"templates.{tmpl.get('name')} {exc}") from exc
