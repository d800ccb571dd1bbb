"""The simulated cluster's configuration: a YAML file or a dict with the same (camelCase) keys.

```yaml
timeScale: 0.05            # shortens what the cluster decides (0 = manual clock, advance())
namespaces: [batch]        # created at start, besides default / kube-system / kube-public
nodePools:
  - name: default
    nodes: 1               # Ready nodes at start
    maxNodes: 1            # autoscaler ceiling; equal to nodes = not autoscaled
    scaleUpSeconds: 60     # seconds (times timeScale) from TriggeredScaleUp to a Ready node
    capacity: {cpu: "4", memory: "16Gi"}
    labels: {cloud.google.com/gke-nodepool: default}
    taints: []
behaviours:                # what containers do; see behaviours.py
  - match: {image: "task-python:1.0", args: "pre-task.py"}
    seconds: 2
    stdout: "[1, 2, 3]"
runCommands: false         # containers without a behaviour rule run their shell command
runPython: false           # ... and python commands, on this machine's interpreter (commands.py)
rbac:                      # everything is allowed unless a deny rule matches; see rbac.py
  user: system:serviceaccount:airflow:worker
  deny:
    - {verb: create, group: batch, resource: jobs, namespace: batch}
```
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """The cluster configuration is not usable; the message says which key and why."""


@dataclass
class NodePoolConfig:
    name: str
    nodes: int = 1
    max_nodes: int | None = None
    scale_up_seconds: float = 60.0
    capacity: dict[str, str] = field(default_factory=lambda: {"cpu": "4", "memory": "16Gi"})
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ceiling(self) -> int:
        return self.nodes if self.max_nodes is None else self.max_nodes

    @property
    def autoscaled(self) -> bool:
        return self.ceiling > self.nodes


RBAC_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
"""The verbs a deny rule may name (besides ``*``): the ones the simulated API server serves."""


@dataclass(frozen=True)
class DenyRule:
    """One ``rbac.deny`` entry: a request matching every field is forbidden (``*`` matches all).

    ``resources`` hold plurals, ``plural/subresource`` (``pods/log``) or ``*/subresource``;
    ``groups`` hold API groups (``""`` is the core group). Empty ``namespaces`` match every
    namespace and cluster-scoped requests; otherwise the rule applies in those namespaces and to
    requests across all namespaces. ``scope`` narrows a rule to requests at the cluster scope
    (``cluster``: cluster-scoped objects and lists or watches across all namespaces, what an
    identity bound only by RoleBindings may not do) or to requests in a namespace
    (``namespace``); ``any`` (the default) matches both.
    """

    verbs: tuple[str, ...]
    groups: tuple[str, ...]
    resources: tuple[str, ...]
    namespaces: tuple[str, ...] = ()
    scope: str = "any"


@dataclass
class RbacConfig:
    """Who the token authenticates as, and what that identity may not do."""

    user: str | None = None
    """The user name in ``403`` messages; None: the cluster's ``clusterName``."""
    deny: list[DenyRule] = field(default_factory=list)


@dataclass
class ClusterConfig:
    time_scale: float = 1.0
    namespaces: list[str] = field(default_factory=list)
    node_pools: list[NodePoolConfig] = field(
        default_factory=lambda: [NodePoolConfig(name="default")]
    )
    behaviours: list[dict[str, Any]] = field(default_factory=list)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    tls: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    cluster_name: str = "simulated"
    kubernetes_version: str = "1.34.2"
    bookmark_interval_seconds: float = 5.0
    """Wall seconds between watch bookmarks (the API server sends one about every minute)."""
    watch_list: bool | None = None
    """kube-apiserver's ``WatchList`` feature gate: watches that begin with the current state
    (``sendInitialEvents``). None: its default in ``kubernetes_version`` (on in 1.32 and from
    1.34, off in 1.33 and before 1.32)."""
    autoscaler_scan_seconds: float = 10.0
    """Seconds (times ``timeScale``) between cluster-autoscaler loops."""
    history_size: int = 50_000
    run_commands: bool = False
    """Containers without a behaviour rule run their shell command (see commands.py)."""
    run_python: bool = False
    """With ``run_commands``: ``python`` commands run with this machine's interpreter."""
    rbac: RbacConfig = field(default_factory=RbacConfig)
    extra: dict[str, Any] = field(default_factory=dict)
    """Sections for optional components (``kueue``, ``argo``), kept as given."""

    @property
    def watch_list_enabled(self) -> bool:
        if self.watch_list is not None:
            return self.watch_list
        major, minor = (int(p) for p in self.kubernetes_version.split(".")[:2])
        return (major, minor) == (1, 32) or (major, minor) >= (1, 34)

    @classmethod
    def load(cls, source: ClusterConfig | dict[str, Any] | str | Path | None) -> ClusterConfig:
        if source is None:
            return cls()
        if isinstance(source, ClusterConfig):
            return source
        if isinstance(source, (str, Path)):
            path = Path(source)
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"cannot read cluster config {path}: {exc}") from exc
            return cls.from_dict(data, origin=str(path))
        return cls.from_dict(source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "cluster config") -> ClusterConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: expected a mapping at the top level")
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in _TOP_LEVEL:
                attribute, check = _TOP_LEVEL[key]
                kwargs[attribute] = check(value, f"{origin}: {key}")
            elif key == "nodePools":
                pools = _list(value, f"{origin}: nodePools", "a list of node pools")
                kwargs["node_pools"] = [
                    _pool(p, f"{origin}: nodePools[{i}]") for i, p in enumerate(pools)
                ]
            elif key == "behaviours":
                rules = _list(value, f"{origin}: behaviours", "a list of rules")
                for i, rule in enumerate(rules):
                    if not isinstance(rule, dict):
                        raise ConfigError(
                            f"{origin}: behaviours[{i}] must be a mapping, got {rule!r}"
                        )
                kwargs["behaviours"] = rules
            elif key == "rbac":
                kwargs["rbac"] = _rbac(value, f"{origin}: rbac")
            elif key in ("kueue", "argo"):
                if key == "kueue":
                    from .controllers.kueue import check_config

                    check_config(value, f"{origin}: kueue")
                else:
                    from .controllers.argo.config import check_config as check_argo

                    check_argo(value, f"{origin}: argo")
                extra[key] = value
            else:
                raise ConfigError(
                    f"{origin}: unknown key {key!r}; known keys: "
                    + ", ".join(
                        sorted([*_TOP_LEVEL, "nodePools", "behaviours", "kueue", "argo", "rbac"])
                    )
                )
        config = cls(**kwargs, extra=extra)
        names = [p.name for p in config.node_pools]
        if len(set(names)) != len(names):
            raise ConfigError(f"{origin}: nodePools: node pool names must be unique, got {names}")
        return config


# --- value checks: each returns the (normalised) value or raises a ConfigError naming the key --


def _number(minimum: float, strict: bool = False) -> Callable[[Any, str], float]:
    def check(value: Any, where: str) -> float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or value < minimum or (strict and value == minimum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise ConfigError(f"{where} must be a number {bound}, got {value!r}")
        return value

    return check


def _integer(minimum: int, maximum: int | None = None) -> Callable[[Any, str], int]:
    def check(value: Any, where: str) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{where} must be a whole number {bound}, got {value!r}")
        return value

    return check


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _version(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", value):
        raise ConfigError(f'{where} must be a version like "1.33.2", got {value!r}')
    return value


def _list(value: Any, where: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be {what}, got {value!r}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    items = _list(value, where, "a list of strings")
    for item in items:
        _string(item, f"{where} item")
    return items


def _scalar_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {value!r}")
    out = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ConfigError(f"{where}.{key} must be a string or a number, got {item!r}")
        out[str(key)] = str(item)
    return out


_TOP_LEVEL: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "timeScale": ("time_scale", _number(0)),
    "namespaces": ("namespaces", _strings),
    "token": ("token", _string),
    "tls": ("tls", _boolean),
    "host": ("host", _string),
    "port": ("port", _integer(0, 65535)),
    "clusterName": ("cluster_name", _string),
    "kubernetesVersion": ("kubernetes_version", _version),
    "bookmarkIntervalSeconds": ("bookmark_interval_seconds", _number(0, strict=True)),
    "watchList": ("watch_list", _boolean),
    "autoscalerScanSeconds": ("autoscaler_scan_seconds", _number(0, strict=True)),
    "historySize": ("history_size", _integer(1)),
    "runCommands": ("run_commands", _boolean),
    "runPython": ("run_python", _boolean),
}

_POOL_KEYS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "name": ("name", _string),
    "nodes": ("nodes", _integer(0)),
    "maxNodes": ("max_nodes", _integer(0)),
    "scaleUpSeconds": ("scale_up_seconds", _number(0)),
    "capacity": ("capacity", _scalar_map),
    "labels": ("labels", _scalar_map),
    "taints": ("taints", lambda v, where: _list(v, where, "a list of taints")),
}
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _pool(data: Any, where: str) -> NodePoolConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with at least a name, got {data!r}")
    if "name" not in data:
        raise ConfigError(f"{where}: a node pool needs a name")
    unknown = set(data) - set(_POOL_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(_POOL_KEYS)}")
    kwargs = {}
    for key, value in data.items():
        attribute, check = _POOL_KEYS[key]
        if value is None and key == "maxNodes":
            continue
        kwargs[attribute] = check(value, f"{where}.{key}")
    pool = NodePoolConfig(**kwargs)
    if pool.ceiling < pool.nodes:
        raise ConfigError(f"{where}: maxNodes ({pool.max_nodes}) must be >= nodes ({pool.nodes})")
    for i, taint in enumerate(pool.taints):
        if not isinstance(taint, dict):
            raise ConfigError(f"{where}.taints[{i}] must be a mapping, got {taint!r}")
        if not taint.get("key"):
            raise ConfigError(f"{where}.taints[{i}] needs a key")
        if taint.get("effect") not in _TAINT_EFFECTS:
            raise ConfigError(
                f"{where}.taints[{i}]: effect must be NoSchedule, "
                f"PreferNoSchedule or NoExecute, got {taint.get('effect')!r}"
            )
    return pool


_DENY_KEYS = ("verb", "group", "resource", "namespace")
DENY_SCOPES = ("any", "cluster", "namespace")


def _rbac(data: Any, where: str) -> RbacConfig:
    if data is None:
        return RbacConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with user and/or deny, got {data!r}")
    unknown = sorted(set(data) - {"user", "deny"})
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: ['deny', 'user']")
    user = data.get("user")
    if user is not None:
        user = _string(user, f"{where}.user")
    rules = _list(data.get("deny"), f"{where}.deny", "a list of rules")
    return RbacConfig(user=user, deny=[_deny(r, f"{where}.deny[{i}]") for i, r in enumerate(rules)])


def _deny(data: Any, where: str) -> DenyRule:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with verb, group and resource, got {data!r}")
    unknown = sorted(set(data) - {*_DENY_KEYS, "scope"})
    if unknown:
        known = sorted([*_DENY_KEYS, "scope"])
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {known}")
    scope = data.get("scope", "any")
    if scope not in DENY_SCOPES:
        raise ConfigError(f"{where}.scope must be one of {', '.join(DENY_SCOPES)}, got {scope!r}")
    missing = [key for key in ("verb", "group", "resource") if key not in data]
    if missing:
        raise ConfigError(
            f'{where} needs {", ".join(missing)} (group "" is the core group, "*" any group)'
        )
    values: dict[str, tuple[str, ...]] = {}
    for key in _DENY_KEYS:
        if key not in data:
            continue
        raw = data[key]
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise ConfigError(f"{where}.{key} must not be empty")
        for item in items:
            if not isinstance(item, str) or (not item and key != "group"):
                what = "a string" if key == "group" else "a non-empty string"
                raise ConfigError(f"{where}.{key} must be {what} or a list of them, got {raw!r}")
        values[key] = tuple(items)
    for verb in values["verb"]:
        if verb != "*" and verb not in RBAC_VERBS:
            raise ConfigError(
                f"{where}.verb must be one of {', '.join(RBAC_VERBS)} or *, got {verb!r}"
            )
    return DenyRule(
        verbs=values["verb"],
        groups=values["group"],
        resources=values["resource"],
        namespaces=values.get("namespace", ()),
        scope=scope,
    )
