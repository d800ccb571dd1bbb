"""Differential testing: every scenario of differential_scenarios.py runs against the upstream
control plane (``scripts/real-cluster`` with the node agent) and against the simulated cluster
started with the same configuration, and what a client sees must be the same.

``-k`` selects scenarios (only those are observed); ``DIFFERENTIAL_OBSERVATIONS=FILE`` writes
both clusters' observations to FILE as JSON.

The real control plane is the judge. A scenario whose observations differ fails, unless it is
listed in ``KNOWN_DIFFERENCES`` with the reason (docs/testing.md has the same table); a listed
scenario must still differ, so a fix shows up as a failure asking to remove it from the list.

Both clusters run at once and the scenarios run in parallel threads, each in a namespace of its
own; the module takes under a minute once the control plane is built.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config

from simulated_k8s_cluster import SimulatedCluster

from .conftest import NODES_CONFIG, START_TIMEOUT, run_cluster_with_nodes
from .differential_scenarios import (
    INDEXED_TASK_BEHAVIOURS,
    KNOWN_DIFFERENCES,
    SCENARIOS,
    namespace_context,
)

# Not skipped without KUBECONFIG (see conftest.py): both clusters are started here.
STARTS_OWN_CLUSTER = True

pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT + 600)]

WORKERS = 8
KUBECTL_SCENARIOS = {name for name in SCENARIOS if name.startswith("kubectl_")}
CONFIG = {**NODES_CONFIG, "behaviours": INDEXED_TASK_BEHAVIOURS}


def find_kubectl() -> Path | None:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    return Path(found) if found else None


def run_scenario(kind: str, kubeconfig: Path, kubectl: Path | None, name: str) -> Any:
    """The scenario's observation, or ``{"error": ...}`` when it raised."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        for ctx in namespace_context(kind, api, kubeconfig, kubectl or Path("kubectl"), "d"):
            observed = SCENARIOS[name](ctx)
        # Tuples become lists: both sides are compared as plain JSON values.
        return json.loads(json.dumps(observed, default=str))
    except Exception as exc:
        return {"error": "".join(traceback.format_exception_only(exc)).strip()}
    finally:
        api.close()


def selected_scenarios(session: pytest.Session) -> set[str]:
    """The scenarios whose tests this run selected (``-k``): only those are observed."""
    return {
        item.callspec.params["name"]
        for item in session.items
        if item.module is sys.modules[__name__] and hasattr(item, "callspec")
    }


@pytest.fixture(scope="module")
def observations(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, dict[str, Any]]]:
    kubectl = find_kubectl()
    selected = selected_scenarios(request.session)
    names = [
        n
        for n in SCENARIOS
        if n in selected and (kubectl is not None or n not in KUBECTL_SCENARIOS)
    ]
    # kubectl (client-go) sends its bearer token over HTTPS only: the simulated cluster serves
    # HTTPS like the real one.
    sim_config = {**CONFIG, "tls": True}
    with (
        run_cluster_with_nodes(tmp_path_factory, CONFIG) as real,
        SimulatedCluster(sim_config) as simulated,
    ):
        sim_kubeconfig = simulated.write_kubeconfig(
            tmp_path_factory.mktemp("simulated") / "kubeconfig.yaml"
        )
        targets = {"real": real.kubeconfig, "simulated": sim_kubeconfig}
        started = time.monotonic()
        runs = [(kind, name) for name in names for kind in targets]
        with ThreadPoolExecutor(WORKERS) as pool:
            results = list(
                pool.map(lambda run: run_scenario(run[0], targets[run[0]], kubectl, run[1]), runs)
            )
        found: dict[str, dict[str, Any]] = {}
        for (kind, name), observed in zip(runs, results, strict=True):
            found.setdefault(name, {})[kind] = observed
        differ = sorted(n for n, o in found.items() if o["real"] != o["simulated"])
        print(
            f"differential: {len(found)} scenarios in {time.monotonic() - started:.1f}s, "
            f"{len(differ)} differ ({len(KNOWN_DIFFERENCES)} known): {', '.join(differ)}"
        )
        dump = os.environ.get("DIFFERENTIAL_OBSERVATIONS")
        if dump:  # both clusters' observations, to look at side by side
            Path(dump).write_text(json.dumps(found, indent=1, sort_keys=True))
        yield found


def test_known_differences_name_scenarios() -> None:
    assert set(KNOWN_DIFFERENCES) <= set(SCENARIOS)
    assert all(reason.strip() for reason in KNOWN_DIFFERENCES.values())


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(observations: dict[str, dict[str, Any]], name: str) -> None:
    if name not in observations:
        pytest.skip("needs kubectl on PATH or next to the Python interpreter")
    real, simulated = observations[name]["real"], observations[name]["simulated"]
    assert not (isinstance(real, dict) and "error" in real), (
        f"the scenario fails on the real control plane: {real['error']}"
    )
    if name in KNOWN_DIFFERENCES:
        assert simulated != real, (
            f"{name} now sees the same on both clusters: remove it from KNOWN_DIFFERENCES "
            "(differential_scenarios.py) and from the table in docs/testing.md"
        )
        return
    assert simulated == real, (
        f"simulated cluster:\n{json.dumps(simulated, indent=1)}\n"
        f"real control plane:\n{json.dumps(real, indent=1)}"
    )
