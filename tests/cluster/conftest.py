"""Tests against a real Kubernetes cluster.

They run only when ``KUBECONFIG`` points at a cluster (``make test-cluster``); otherwise every
test in this folder is skipped.
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
            if skip is not None:
                item.add_marker(skip)
