"""``python -m simulated_k8s_cluster``: see :mod:`simulated_k8s_cluster.cli`."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
