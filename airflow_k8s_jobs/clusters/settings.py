"""Which cluster a connection points at, parsed from an Airflow Connection (pure, no I/O).

Two connection types are understood:

* ``k8sjobs`` (this provider's): a GKE cluster by project/location/name, a kubeconfig
  (file path or inline YAML/JSON, optional context) or in-cluster credentials, plus a default
  namespace and an allow-list of namespaces;
* ``kubernetes`` (the cncf-kubernetes provider's): ``kube_config_path``, ``kube_config``,
  ``in_cluster``, ``cluster_context``, ``namespace``, ``disable_verify_ssl`` — also with the
  legacy ``extra__kubernetes__`` prefix. With none of the first three it means "the default
  kubeconfig" (``$KUBECONFIG`` or ``~/.kube/config``), as in that provider.

Nothing here holds a token: GKE tokens are fetched at run time from Application Default
Credentials, and an inline kubeconfig is kept out of ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from airflow_k8s_jobs.errors import InvalidInputError
from airflow_k8s_jobs.kube import WATCH_SCOPES, WatchScope

CONN_TYPE = "k8sjobs"
"""This provider's connection type."""

LEGACY_CONN_TYPE = "kubernetes_jobs"
"""This provider's connection type before 0.2 (Airflow warns about ``_`` in a connection type, as
RFC 3986 forbids it in a URI scheme); connections of that type are still understood."""

CNCF_CONN_TYPE = "kubernetes"
"""The cncf-kubernetes provider's connection type, accepted as well."""

ClusterKind = Literal["gke", "kubeconfig", "in_cluster"]

_OUR_FIELDS = frozenset(
    {
        "project",
        "location",
        "cluster",
        "use_internal_ip",
        "use_dns_endpoint",
        "impersonation_chain",
        "gcp_conn_id",
        "kubeconfig_path",
        "kubeconfig",
        "context",
        "in_cluster",
        "namespace",
        "allowed_namespaces",
        "request_timeout",
        "verify_ssl",
        "watch_scope",
    }
)

_CNCF_PREFIX = "extra__kubernetes__"
_OUR_PREFIX = f"extra__{CONN_TYPE}__"


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how to reach one target cluster; no secrets in ``repr``.

    ``request_timeout`` (seconds) is the timeout for ordinary API calls: the clients built by
    :class:`~airflow_k8s_jobs.clusters.hook.KubeClusterHook` apply it to every call that does
    not pass its own ``_request_timeout``; streaming calls (watches, followed logs) must pass
    theirs, since one total timeout would cut a long watch short.
    """

    conn_id: str
    kind: ClusterKind
    project: str | None = None
    location: str | None = None
    cluster: str | None = None
    use_internal_ip: bool = False
    use_dns_endpoint: bool = False
    impersonation_chain: tuple[str, ...] = ()
    gcp_conn_id: str | None = None
    """An Airflow Google Cloud connection to take the GKE identity from (default: ADC)."""
    kubeconfig_path: str | None = None
    kubeconfig: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    context: str | None = None
    default_namespace: str = "default"
    allowed_namespaces: tuple[str, ...] = ()
    request_timeout: float = 60.0
    verify_ssl: bool = True
    watch_scope: WatchScope = "auto"
    """How waiting tasks watch the cluster (:data:`~airflow_k8s_jobs.watching.WatchScope`):
    ``auto`` watches each namespace until tasks wait in a second one, then all namespaces at
    once where the credentials may; ``namespace`` never watches across namespaces;
    ``cluster`` always does where the credentials may."""

    @property
    def display_name(self) -> str:
        """A human name for messages: which cluster, never a credential."""
        if self.kind == "gke":
            return f"GKE cluster {self.project}/{self.location}/{self.cluster}"
        if self.kind == "in_cluster":
            return "in-cluster"
        if self.context:
            return f"kubeconfig context {self.context}"
        if self.kubeconfig is not None:
            current = self.kubeconfig.get("current-context")
            return f"kubeconfig context {current}" if current else "inline kubeconfig"
        if self.kubeconfig_path:
            return f"kubeconfig {self.kubeconfig_path}"
        return "default kubeconfig"

    @property
    def gke_cluster_name(self) -> str:
        """The GKE resource name ``projects/P/locations/L/clusters/C``."""
        return f"projects/{self.project}/locations/{self.location}/clusters/{self.cluster}"

    def check_namespace(self, namespace: str) -> None:
        """Raise :class:`InvalidInputError` if the connection does not allow ``namespace``."""
        if not namespace:
            raise InvalidInputError(
                f"No namespace given for {self.display_name} (connection {self.conn_id!r}): "
                "pass namespace=... or set 'namespace' in the connection's extras."
            )
        if self.allowed_namespaces and namespace not in self.allowed_namespaces:
            allowed = ", ".join(self.allowed_namespaces)
            raise InvalidInputError(
                f"Namespace {namespace!r} is not allowed by connection {self.conn_id!r} "
                f"({self.display_name}); its allowed_namespaces are: {allowed}. Use one of "
                f"those, or add {namespace!r} to 'allowed_namespaces' in the connection's extras."
            )

    @classmethod
    def from_connection(cls, conn: Any) -> ClusterSettings:
        """Parse an Airflow ``Connection`` (ours or a cncf ``kubernetes`` one)."""
        return cls.from_parts(conn.conn_id, conn.conn_type, conn.extra_dejson)

    @classmethod
    def from_parts(
        cls, conn_id: str, conn_type: str | None, extras: Mapping[str, Any] | None
    ) -> ClusterSettings:
        """Parse a connection given as its id, type and extras (the async path needs this)."""
        extras = dict(extras or {})
        if conn_type in (CONN_TYPE, LEGACY_CONN_TYPE):
            return _parse_ours(conn_id, extras, f"extra__{conn_type}__")
        if conn_type == CNCF_CONN_TYPE:
            return _parse_cncf(conn_id, extras)
        raise InvalidInputError(
            f"Connection {conn_id!r} has type {conn_type!r}; use a {CONN_TYPE!r} connection "
            f"(Kubernetes cluster (airflow-k8s-jobs)) or a cncf {CNCF_CONN_TYPE!r} connection."
        )


class _Extras:
    """Typed access to a connection's extras, with errors naming the connection and key."""

    def __init__(self, conn_id: str, extras: dict[str, Any], prefix: str) -> None:
        self.conn_id = conn_id
        self.extras = extras
        self.prefix = prefix

    def raw(self, key: str) -> Any:
        value = self.extras.get(key)
        if value is None or value == "":
            value = self.extras.get(self.prefix + key)
        return None if value == "" else value

    def fail(self, key: str, problem: str) -> InvalidInputError:
        return InvalidInputError(
            f"Connection {self.conn_id!r}: extra {key!r} {problem}. "
            "Fix it in the connection's extras."
        )

    def text(self, key: str) -> str | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {type(value).__name__}")
        return value.strip() or None

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
            return False
        raise self.fail(key, f"must be true or false, not {value!r}")

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        value = self.raw(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return default
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value.strip().lower()

    def seconds(self, key: str, default: float) -> float:
        value = self.raw(key)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.fail(key, f"must be a number of seconds, not {value!r}") from None
        if not number > 0:
            raise self.fail(key, f"must be positive, not {value!r}")
        return number

    def names(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if isinstance(value, str):
            items: Sequence[Any] = value.split(",")
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            raise self.fail(key, "must be a comma-separated string or a list of strings")
        result = []
        for item in items:
            if not isinstance(item, str):
                raise self.fail(key, f"must contain only strings, not {item!r}")
            if item.strip():
                result.append(item.strip())
        return tuple(result)

    def kubeconfig_dict(self, key: str) -> dict[str, Any] | None:
        value = self.raw(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)  # YAML is a superset of JSON
            except yaml.YAMLError:
                # Never echo the text: it holds credentials.
                raise self.fail(key, "is not valid YAML or JSON") from None
        if not isinstance(value, dict) or not value:
            raise self.fail(key, "must be a kubeconfig (a YAML/JSON mapping)")
        return value


def _namespaces(ex: _Extras) -> tuple[str, tuple[str, ...]]:
    allowed = ex.names("allowed_namespaces")
    namespace = ex.text("namespace")
    if namespace is None:
        namespace = allowed[0] if allowed else "default"
    if allowed and namespace not in allowed:
        raise ex.fail(
            "namespace",
            f"is {namespace!r}, which is not in allowed_namespaces ({', '.join(allowed)})",
        )
    return namespace, allowed


def _parse_ours(conn_id: str, extras: dict[str, Any], prefix: str = _OUR_PREFIX) -> ClusterSettings:
    ex = _Extras(conn_id, extras, prefix)
    unknown = sorted(
        k for k in extras if k.removeprefix(prefix) not in _OUR_FIELDS and extras[k] != ""
    )
    if unknown:
        raise InvalidInputError(
            f"Connection {conn_id!r}: unknown extra(s) {', '.join(map(repr, unknown))}. "
            f"Known extras: {', '.join(sorted(_OUR_FIELDS))}."
        )
    project, location, cluster = ex.text("project"), ex.text("location"), ex.text("cluster")
    kubeconfig_path, kubeconfig = ex.text("kubeconfig_path"), ex.kubeconfig_dict("kubeconfig")
    context = ex.text("context")
    in_cluster = ex.flag("in_cluster")
    use_internal_ip, use_dns_endpoint = ex.flag("use_internal_ip"), ex.flag("use_dns_endpoint")
    chain = ex.names("impersonation_chain")
    gcp_conn_id = ex.text("gcp_conn_id")
    namespace, allowed = _namespaces(ex)
    common: dict[str, Any] = {
        "conn_id": conn_id,
        "default_namespace": namespace,
        "allowed_namespaces": allowed,
        "request_timeout": ex.seconds("request_timeout", 60.0),
        "verify_ssl": ex.flag("verify_ssl", True),
        "watch_scope": ex.choice("watch_scope", WATCH_SCOPES, "auto"),
    }

    gke_given = [
        k for k, v in (("project", project), ("location", location), ("cluster", cluster)) if v
    ]
    kubeconfig_given = [
        k for k, v in (("kubeconfig_path", kubeconfig_path), ("kubeconfig", kubeconfig)) if v
    ]
    chosen = [
        name
        for name, present in (
            ("GKE (project/location/cluster)", bool(gke_given)),
            ("kubeconfig", bool(kubeconfig_given)),
            ("in_cluster", in_cluster),
        )
        if present
    ]
    if len(chosen) > 1:
        raise InvalidInputError(
            f"Connection {conn_id!r} sets more than one way to reach a cluster: "
            f"{' and '.join(chosen)}. Keep exactly one of them."
        )
    gke_only = [
        k
        for k, v in (
            ("use_internal_ip", use_internal_ip),
            ("use_dns_endpoint", use_dns_endpoint),
            ("impersonation_chain", chain),
            ("gcp_conn_id", gcp_conn_id),
        )
        if v
    ]
    if gke_only and not gke_given:
        raise InvalidInputError(
            f"Connection {conn_id!r}: {', '.join(gke_only)} only apply to GKE clusters; "
            "remove them, or set project, location and cluster."
        )
    if gke_given:
        missing = [k for k in ("project", "location", "cluster") if k not in gke_given]
        if missing:
            raise InvalidInputError(
                f"Connection {conn_id!r} names a GKE cluster but lacks {', '.join(missing)}: "
                "set project, location (region or zone) and cluster in its extras."
            )
        if use_internal_ip and use_dns_endpoint:
            raise InvalidInputError(
                f"Connection {conn_id!r} sets both use_internal_ip and use_dns_endpoint; "
                "choose one way to reach the control plane."
            )
        if context:
            raise InvalidInputError(
                f"Connection {conn_id!r}: 'context' only applies to kubeconfig connections; "
                "remove it from this GKE connection."
            )
        return ClusterSettings(
            kind="gke",
            project=project,
            location=location,
            cluster=cluster,
            use_internal_ip=use_internal_ip,
            use_dns_endpoint=use_dns_endpoint,
            impersonation_chain=chain,
            gcp_conn_id=gcp_conn_id,
            **common,
        )
    if in_cluster:
        if context:
            raise InvalidInputError(
                f"Connection {conn_id!r}: 'context' only applies to kubeconfig connections; "
                "remove it or unset in_cluster."
            )
        return ClusterSettings(kind="in_cluster", **common)
    if kubeconfig_path and kubeconfig:
        raise InvalidInputError(
            f"Connection {conn_id!r} sets both kubeconfig_path and kubeconfig; keep one."
        )
    if not kubeconfig_given and not context:
        raise InvalidInputError(
            f"Connection {conn_id!r} does not say which cluster to use: set project, location "
            "and cluster (GKE), kubeconfig_path or kubeconfig (with an optional context), or "
            "in_cluster: true in its extras."
        )
    return ClusterSettings(
        kind="kubeconfig",
        kubeconfig_path=kubeconfig_path,
        kubeconfig=kubeconfig,
        context=context,
        **common,
    )


def _parse_cncf(conn_id: str, extras: dict[str, Any]) -> ClusterSettings:
    ex = _Extras(conn_id, extras, _CNCF_PREFIX)
    in_cluster = ex.flag("in_cluster")
    kubeconfig_path = ex.text("kube_config_path")
    kubeconfig = ex.kubeconfig_dict("kube_config")
    context = ex.text("cluster_context")
    given = [
        k
        for k, v in (
            ("in_cluster", in_cluster),
            ("kube_config_path", kubeconfig_path),
            ("kube_config", kubeconfig),
        )
        if v
    ]
    if len(given) > 1:
        raise InvalidInputError(
            f"Connection {conn_id!r} sets {' and '.join(given)}; a kubernetes connection takes "
            "only one of in_cluster, kube_config_path and kube_config."
        )
    namespace = ex.text("namespace") or "default"
    common: dict[str, Any] = {
        "conn_id": conn_id,
        "default_namespace": namespace,
        "verify_ssl": not ex.flag("disable_verify_ssl"),
    }
    if in_cluster:
        return ClusterSettings(kind="in_cluster", **common)
    return ClusterSettings(
        kind="kubeconfig",
        kubeconfig_path=kubeconfig_path,
        kubeconfig=kubeconfig,
        context=context,
        **common,
    )
