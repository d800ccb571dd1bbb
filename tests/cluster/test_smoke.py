"""Smoke test: the configured cluster answers through the ``kubernetes`` client."""

from __future__ import annotations

from kubernetes import client, config


def test_list_namespaces() -> None:
    config.load_kube_config()
    namespaces = client.CoreV1Api().list_namespace(limit=50)
    assert namespaces.items, "the cluster returned no namespaces"
    assert all(ns.metadata.name for ns in namespaces.items)
