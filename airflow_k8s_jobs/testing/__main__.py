"""``python -m airflow_k8s_jobs.testing``: see :mod:`airflow_k8s_jobs.testing.cli`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
