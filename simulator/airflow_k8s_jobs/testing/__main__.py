"""``python -m airflow_k8s_jobs.testing``: the same as ``python -m simulated_k8s_cluster``."""

from __future__ import annotations

import sys

from simulated_k8s_cluster.cli import main

sys.exit(main())
