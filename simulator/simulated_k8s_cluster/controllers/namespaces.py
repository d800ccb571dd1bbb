"""What the service account controller and the root CA certificate publisher do: every
namespace gets a ``default`` ServiceAccount and a ``kube-root-ca.crt`` ConfigMap, made again
when deleted."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ..resources import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS, ApiError
from ..state import ClusterState

Obj = dict[str, Any]

ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters."
)
# What a cluster without TLS publishes: a placeholder, not a usable certificate.
PLACEHOLDER_CA = (
    "-----BEGIN CERTIFICATE-----\nc2ltdWxhdGVkIGNsdXN0ZXI=\n-----END CERTIFICATE-----\n"
)


class NamespaceDefaults:
    """The ``default`` ServiceAccount and the ``kube-root-ca.crt`` ConfigMap of each namespace."""

    name = "namespace-defaults"

    def __init__(self, state: ClusterState, ca_pem: Callable[[], str | None]) -> None:
        self.state = state
        self.ca_pem = ca_pem

    def reconcile(self) -> float | None:
        store = self.state.store
        for namespace in list(store.objects(NAMESPACES)):
            meta = namespace["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            name = meta["name"]
            wanted: list[tuple[Any, Obj]] = []
            if store.peek(SERVICEACCOUNTS, name, "default") is None:
                wanted.append(
                    (SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": name}})
                )
            if store.peek(CONFIGMAPS, name, ROOT_CA_CONFIG_MAP) is None:
                config_map = {
                    "metadata": {
                        "name": ROOT_CA_CONFIG_MAP,
                        "namespace": name,
                        "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
                    },
                    "data": {"ca.crt": self.ca_pem() or PLACEHOLDER_CA},
                }
                wanted.append((CONFIGMAPS, config_map))
            for resource, obj in wanted:
                with contextlib.suppress(ApiError):  # the namespace went away meanwhile
                    store.create(resource, obj)
        return None
