"""Manifests as Airflow templates: manifest files found as Airflow finds template files, Jinja
errors reported as bad input, a Jinja environment that leaves Argo's own expressions to Argo, the
``workflow`` argument rendered, and the built manifest shown (sensitive values masked) as a
rendered template field. No Kubernetes I/O."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import yaml

from ._compat import is_sensitive_name
from .errors import InvalidInputError
from .manifests.validation import argo_hint, not_utf8
from .manifests.workflows import load_workflow, protect_argo_expressions

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
RENDERED_MANIFEST = "rendered_manifest"
"""The template field that shows the built manifest under "Rendered Template"."""
MASKED = "***"


def looks_like_manifest_file(value: Any) -> bool:
    """A one-line string ending in ``.yaml``, ``.yml`` or ``.json``: a manifest file's name."""
    return (
        isinstance(value, str)
        and "\n" not in value.strip()
        and value.strip().lower().endswith(MANIFEST_SUFFIXES)
    )


def search_path(env: jinja2.Environment) -> list[str]:
    """The folders the template environment's loader looks in (the DAG's folder first)."""
    found = getattr(env.loader, "searchpath", None) or []
    return [os.fspath(p) for p in found]


def read_manifest_file(env: jinja2.Environment, name: str, where: str) -> str:
    """The text of the manifest file ``name``, found as Airflow finds template files: through
    the template search path (the DAG's folder and its ``template_searchpath``); an absolute
    path, or one relative to the working directory, is read as it is.

    Raises :class:`InvalidInputError` naming the file and the folders searched.
    """
    loader = env.loader
    try:
        if loader is not None:
            try:
                return str(loader.get_source(env, name)[0])
            except jinja2.TemplateNotFound:
                pass
        path = Path(name).expanduser()
        if path.is_file():
            return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(not_utf8(where, exc)) from None
    except OSError as exc:
        raise InvalidInputError(f"{where}: cannot read the file: {exc}") from None
    folders = ", ".join(search_path(env)) or "no template search path"
    raise InvalidInputError(
        f"{where}: file not found (searched {folders}, and {Path(name).expanduser().absolute()}"
        "); put it next to the DAG file, add its folder to the DAG's template_searchpath, or "
        "give an absolute path"
    )


@contextlib.contextmanager
def jinja_errors_in(where: str) -> Iterator[None]:
    """Report a Jinja error of a manifest as bad input naming the manifest (and the line)."""
    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        line = f" at line {exc.lineno}" if exc.lineno else ""
        raise InvalidInputError(f"{where}: Jinja syntax error{line}: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise InvalidInputError(f"{where}: Jinja: {exc.message}{argo_hint(exc.message)}") from exc


def render_manifest_file(
    env: jinja2.Environment, name: str, where: str, render: Callable[[str], Any]
) -> Any:
    """The manifest file ``name`` (found as :func:`read_manifest_file` finds it) rendered by
    ``render`` (Airflow's Jinja); Jinja errors are bad input naming ``where``."""
    text = read_manifest_file(env, name, where)
    with jinja_errors_in(where):
        return render(text)


class _ArgoExpressions(jinja2.ext.Extension):
    """Leaves Argo's own ``{{…}}`` expressions to Argo when Airflow renders a template."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return protect_argo_expressions(source)


def argo_safe(env: jinja2.Environment) -> jinja2.Environment:
    """An overlay of ``env`` (same loader, macros, undefined) that keeps Argo expressions."""
    if any(isinstance(ext, _ArgoExpressions) for ext in env.extensions.values()):
        return env
    return env.overlay(extensions=[_ArgoExpressions])


def render_workflow_argument(
    source: Any, env: jinja2.Environment, where: str, render: Callable[[Any], Any]
) -> dict[str, Any]:
    """A ``workflow`` argument — a dict, a manifest file's name or YAML text — loaded, then
    rendered by ``render`` (Airflow's Jinja in ``env``, an :func:`argo_safe` environment, so
    Argo's own expressions are left alone) and loaded again.

    Raises :class:`InvalidInputError` naming ``where`` (and the file).
    """
    if looks_like_manifest_file(source):
        name = str(source).strip()
        where += f", file {name}"
        source = read_manifest_file(env, name, where)
    if not isinstance(source, (str, dict)):
        raise InvalidInputError(
            f"{where}: expected a dict, a .yaml/.yml/.json file name or YAML text, got "
            f"{type(source).__name__}"
        )
    if isinstance(source, str):
        source = load_workflow(source, where=where)
    with jinja_errors_in(where):
        rendered = render(source)
    return load_workflow(rendered, where=where)


def mask_sensitive_values(value: Any) -> Any:
    """A copy of ``value`` in which every ``{"name": n, "value": v}`` entry (a container's env
    variable, an Argo parameter) whose name Airflow deems sensitive has its value masked, as
    Airflow masks the keys of a template field's dicts and Kubernetes ``V1EnvVar`` objects."""
    if isinstance(value, dict):
        masked = {k: mask_sensitive_values(v) for k, v in value.items()}
        name = value.get("name")
        if "value" in value and isinstance(name, str) and is_sensitive_name(name):
            masked["value"] = MASKED
        return masked
    if isinstance(value, list):
        return [mask_sensitive_values(v) for v in value]
    return value


def manifest_yaml(manifest: dict[str, Any]) -> str:
    """The manifest as the YAML text shown under "Rendered Template", sensitive values masked."""
    return yaml.safe_dump(
        mask_sensitive_values(manifest), sort_keys=False, default_flow_style=False, width=100
    )
