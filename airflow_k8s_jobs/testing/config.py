"""The simulated cluster's configuration: a YAML file or a dict with the same (camelCase) keys.

```yaml
timeScale: 0.05            # wall seconds per simulated second (0 = time moves only by advance())
namespaces: [batch]        # created at start, besides default / kube-system / kube-public
nodePools:
  - name: default
    nodes: 1               # Ready nodes at start
    maxNodes: 1            # autoscaler ceiling; equal to nodes = not autoscaled
    scaleUpSeconds: 60     # simulated seconds from TriggeredScaleUp to a Ready node
    capacity: {cpu: "4", memory: "16Gi"}
    labels: {cloud.google.com/gke-nodepool: default}
    taints: []
behaviours:                # what containers do; see behaviours.py
  - match: {image: "task-python:1.0", args: "pre-task.py"}
    seconds: 2
    stdout: "[1, 2, 3]"
```
"""

from __future__ import annotations

import secrets
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
    kubernetes_version: str = "1.33.2"
    bookmark_interval_seconds: float = 5.0
    """Wall seconds between watch bookmarks (the API server sends one about every minute)."""
    autoscaler_scan_seconds: float = 10.0
    """Simulated seconds between cluster-autoscaler loops."""
    history_size: int = 50_000
    extra: dict[str, Any] = field(default_factory=dict)
    """Sections for optional components (``kueue``, ``argo``), kept as given."""

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
        known = {
            "timeScale": "time_scale", "namespaces": "namespaces", "token": "token",
            "tls": "tls", "host": "host", "port": "port", "clusterName": "cluster_name",
            "kubernetesVersion": "kubernetes_version",
            "bookmarkIntervalSeconds": "bookmark_interval_seconds",
            "autoscalerScanSeconds": "autoscaler_scan_seconds", "historySize": "history_size",
        }
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in known:
                kwargs[known[key]] = value
            elif key == "nodePools":
                kwargs["node_pools"] = [_pool(p, f"{origin}: nodePools[{i}]")
                                        for i, p in enumerate(value or [])]
            elif key == "behaviours":
                if not isinstance(value, list):
                    raise ConfigError(f"{origin}: behaviours must be a list of rules")
                kwargs["behaviours"] = list(value)
            elif key in ("kueue", "argo"):
                extra[key] = value
            else:
                raise ConfigError(
                    f"{origin}: unknown key {key!r}; known keys: "
                    + ", ".join(sorted([*known, "nodePools", "behaviours", "kueue", "argo"]))
                )
        config = cls(**kwargs, extra=extra)
        if not isinstance(config.time_scale, (int, float)) or config.time_scale < 0:
            raise ConfigError(f"{origin}: timeScale must be a number >= 0")
        names = [p.name for p in config.node_pools]
        if len(set(names)) != len(names):
            raise ConfigError(f"{origin}: node pool names must be unique, got {names}")
        return config


def _pool(data: Any, where: str) -> NodePoolConfig:
    if not isinstance(data, dict) or not data.get("name"):
        raise ConfigError(f"{where}: a node pool needs at least a name")
    known = {
        "name": "name", "nodes": "nodes", "maxNodes": "max_nodes",
        "scaleUpSeconds": "scale_up_seconds", "capacity": "capacity", "labels": "labels",
        "taints": "taints",
    }
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    pool = NodePoolConfig(**{known[k]: v for k, v in data.items()})
    pool.capacity = {k: str(v) for k, v in (pool.capacity or {}).items()}
    if pool.nodes < 0 or pool.ceiling < pool.nodes:
        raise ConfigError(f"{where}: need 0 <= nodes <= maxNodes")
    for taint in pool.taints:
        if taint.get("effect") not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ConfigError(f"{where}: taint {taint} needs effect NoSchedule, "
                              "PreferNoSchedule or NoExecute")
    return pool
