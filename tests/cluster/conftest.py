"""Tests against a real Kubernetes cluster.

They run only when ``KUBECONFIG`` points at a cluster (``make test-cluster``); otherwise every
test in this folder is skipped, except those of modules that start a cluster of their own
(``STARTS_OWN_CLUSTER = True``, e.g. test_real_control_plane.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = None
    if not os.environ.get("KUBECONFIG"):
        skip = pytest.mark.skip(reason="needs a real cluster: set KUBECONFIG")
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.cluster)
            if skip is not None and not getattr(
                getattr(item, "module", None), "STARTS_OWN_CLUSTER", False
            ):
                item.add_marker(skip)
