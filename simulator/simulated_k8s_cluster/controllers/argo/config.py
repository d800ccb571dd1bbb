"""The ``argo`` section of the simulated cluster's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...config import ConfigError

Obj = dict[str, Any]

KNOWN_KEYS = (
    "parallelism",
    "compressNodes",
    "offloadNodes",
    "workflowTemplates",
    "clusterWorkflowTemplates",
    "httpResponses",
)


@dataclass
class ArgoSettings:
    """What the ``argo`` section configures (see :func:`check_config`)."""

    parallelism: int | None = None
    """Controller-wide maximum of running Workflows (``parallelism`` in the controller
    ConfigMap); None is unlimited."""
    compress_nodes: bool = False
    """Store ``status.compressedNodes`` instead of ``status.nodes``."""
    offload_nodes: bool = False
    """Pretend the nodes live in the offload database: ``status.offloadNodeStatusVersion``."""
    workflow_templates: list[Obj] = field(default_factory=list)
    cluster_workflow_templates: list[Obj] = field(default_factory=list)
    http_responses: list[Obj] = field(default_factory=list)
    """Canned answers to http templates: ``{url: PREFIX, statusCode, body, headers}``."""


def check_config(value: Any, where: str = "argo") -> ArgoSettings:
    """Validate the ``argo`` section; raise a ``ConfigError`` naming the key."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {list(KNOWN_KEYS)}")
    settings = ArgoSettings()
    parallelism = value.get("parallelism")
    if parallelism is not None:
        if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
            raise ConfigError(
                f"{where}.parallelism must be a whole number >= 1, got {parallelism!r}"
            )
        settings.parallelism = parallelism
    for key, attribute in (("compressNodes", "compress_nodes"), ("offloadNodes", "offload_nodes")):
        flag = value.get(key, False)
        if not isinstance(flag, bool):
            raise ConfigError(f"{where}.{key} must be true or false, got {flag!r}")
        setattr(settings, attribute, flag)
    if settings.compress_nodes and settings.offload_nodes:
        raise ConfigError(f"{where}: compressNodes and offloadNodes cannot both be true")
    for key, attribute, namespaced in (
        ("workflowTemplates", "workflow_templates", True),
        ("clusterWorkflowTemplates", "cluster_workflow_templates", False),
    ):
        items = value.get(key) or []
        if not isinstance(items, list):
            raise ConfigError(f"{where}.{key} must be a list of manifests, got {items!r}")
        for i, item in enumerate(items):
            at = f"{where}.{key}[{i}]"
            if not isinstance(item, dict):
                raise ConfigError(f"{at} must be a mapping, got {item!r}")
            meta = item.get("metadata")
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                raise ConfigError(f"{at} needs metadata.name")
            if not isinstance(item.get("spec"), dict):
                raise ConfigError(f"{at} needs a spec")
            if not isinstance(item["spec"].get("templates"), list):
                raise ConfigError(f"{at}.spec.templates must be a list")
            namespace = meta.get("namespace")
            if (
                namespaced
                and namespace is not None
                and (not isinstance(namespace, str) or not namespace)
            ):
                raise ConfigError(f"{at}.metadata.namespace must be a non-empty string")
        setattr(settings, attribute, items)
    responses = value.get("httpResponses", [])
    if not isinstance(responses, list):
        raise ConfigError(f"{where}.httpResponses must be a list, got {responses!r}")
    for i, entry in enumerate(responses):
        at = f"{where}.httpResponses[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError(f"{at} must be a mapping with a url (prefix)")
        unknown_keys = sorted(set(entry) - {"url", "statusCode", "body", "headers"})
        if unknown_keys:
            raise ConfigError(f"{at}: unknown keys {unknown_keys}")
        code = entry.get("statusCode", 200)
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ConfigError(f"{at}.statusCode must be an HTTP status code, got {code!r}")
        if not isinstance(entry.get("headers") or {}, dict):
            raise ConfigError(f"{at}.headers must be a mapping")
    settings.http_responses = responses
    return settings
