"""``python -m airflow_k8s_jobs.testing.nodeagent``: see :mod:`simulated_k8s_cluster.nodeagent`."""

from __future__ import annotations

import sys

from simulated_k8s_cluster.nodeagent import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
