"""What users install: the two wheels built from this repository, in fresh virtualenvs.

- ``pip install airflow-k8s-jobs`` brings the provider's runtime code and no simulated cluster;
- ``pip install 'airflow-k8s-jobs[testing]'`` adds ``simulated-k8s-cluster``, and the README's
  offline DAG test (a simulated cluster, then ``airflow dags test``) runs as written;
- ``simulated-k8s-cluster`` alone needs no Airflow.

The virtualenvs get the versions of the environment running the tests (as constraints), so the
install only links packages from uv's cache.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 600
RUN_TIMEOUT = 600


def uv() -> str:
    found = REPO / ".tools" / "bin" / "uv"
    if found.exists():
        return str(found)
    on_path = shutil.which("uv")
    if on_path is None:  # pragma: no cover - make test bootstraps .tools/bin/uv
        pytest.fail("uv is needed to build and install the wheels: run `make setup-af3`")
    return on_path


def run(*args: str | Path, timeout: float = INSTALL_TIMEOUT, **kw: object) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


@dataclass
class Wheels:
    folder: Path
    provider: Path
    simulator: Path


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    out = tmp_path_factory.mktemp("dist")
    for project in (REPO, REPO / "simulator"):
        run(uv(), "build", "--wheel", "--quiet", "--out-dir", out, project)
    (provider,) = out.glob("airflow_k8s_jobs-*.whl")
    (simulator,) = out.glob("simulated_k8s_cluster-*.whl")
    return Wheels(out, provider, simulator)


@pytest.fixture(scope="module")
def constraints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This environment's versions, to install the same ones into the fresh virtualenvs."""
    frozen = run(uv(), "pip", "freeze", "--exclude-editable", "--python", sys.executable)
    path = tmp_path_factory.mktemp("constraints") / "constraints.txt"
    path.write_text(frozen)
    return path


class Venv:
    def __init__(self, path: Path, constraints: Path) -> None:
        self.path, self.constraints = path, constraints
        run(uv(), "venv", "--quiet", "--python", sys.executable, path)
        self.python = path / "bin" / "python"

    def install(self, *requirements: str | Path, find_links: Path | None = None) -> None:
        links = ["--find-links", str(find_links)] if find_links else []
        run(
            uv(), "pip", "install", "--quiet", "--python", self.python,
            "-c", self.constraints, *links, *requirements,
        )  # fmt: skip

    def python_says(self, code: str) -> str:
        """What ``code`` prints, run as a user would: none of this session's Airflow settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        return run(self.python, "-c", code, timeout=RUN_TIMEOUT, env=env).strip()

    def distributions(self) -> set[str]:
        listed = json.loads(run(uv(), "pip", "list", "--format", "json", "--python", self.python))
        return {d["name"].lower() for d in listed}


@pytest.fixture(scope="module")
def provider_venv(
    wheels: Wheels, constraints: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Venv]:
    venv = Venv(tmp_path_factory.mktemp("venv") / "provider", constraints)
    venv.install(wheels.provider)
    yield venv


def wheel_metadata(wheel: Path) -> tuple[list[str], str, str]:
    """The wheel's file names, its METADATA and its entry_points.txt."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        entry_points = (
            zf.read(f"{dist_info}/entry_points.txt").decode()
            if f"{dist_info}/entry_points.txt" in names
            else ""
        )
    return names, metadata, entry_points


def requirements(metadata: str) -> list[str]:
    return re.findall(r"^Requires-Dist: (.+)$", metadata, re.MULTILINE)


def test_the_provider_wheel_holds_runtime_code_only(wheels: Wheels) -> None:
    names, metadata, entry_points = wheel_metadata(wheels.provider)
    code = [n for n in names if n.endswith(".py")]
    assert "airflow_k8s_jobs/operators/jobs.py" in code
    assert not [n for n in code if not n.startswith("airflow_k8s_jobs/")]
    assert not [n for n in code if n.startswith("airflow_k8s_jobs/testing/")]
    assert "airflow_k8s_jobs/demo.py" not in code
    unconditional = [r for r in requirements(metadata) if "extra ==" not in r]
    assert not [r for r in unconditional if r.startswith(("simulated", "jsonpatch", "pytest"))]
    assert "simulated-k8s-cluster<0.3,>=0.2; extra == 'testing'" in requirements(metadata)
    assert "[pytest11]" not in entry_points
    assert "[apache_airflow_provider]" in entry_points


def test_the_simulator_wheel_needs_no_airflow(wheels: Wheels) -> None:
    names, metadata, entry_points = wheel_metadata(wheels.simulator)
    assert "simulated_k8s_cluster/apiserver.py" in names
    assert "simulated_k8s_cluster/examples/cluster.yaml" in names
    # The alias under the provider's name, without the provider's own package file.
    assert "airflow_k8s_jobs/testing/__init__.py" in names
    assert "airflow_k8s_jobs/__init__.py" not in names
    assert not [r for r in requirements(metadata) if "airflow" in r]
    assert "simulated_k8s_cluster = simulated_k8s_cluster.pytest_plugin" in entry_points
    assert "simulated-k8s-cluster = simulated_k8s_cluster.cli:main" in entry_points


def test_a_plain_install_brings_no_simulated_cluster(provider_venv: Venv) -> None:
    assert "simulated-k8s-cluster" not in provider_venv.distributions()
    said = provider_venv.python_says(
        "import importlib.metadata as m\n"
        "import airflow_k8s_jobs.operators.jobs, airflow_k8s_jobs.triggers.jobs\n"
        "for name in ('simulated_k8s_cluster', 'airflow_k8s_jobs.testing'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "        print(name, 'imported')\n"
        "    except ModuleNotFoundError as e:\n"
        "        print(name, 'missing:', e.name)\n"
        "ours = ('airflow-k8s-jobs', 'simulated-k8s-cluster')\n"
        "plugins = [e.value for e in m.entry_points(group='pytest11') if e.dist.name in ours]\n"
        "print('pytest plugins:', plugins)\n"
    )
    assert said.splitlines() == [
        "simulated_k8s_cluster missing: simulated_k8s_cluster",
        "airflow_k8s_jobs.testing missing: airflow_k8s_jobs.testing",
        "pytest plugins: []",
    ]


def readme_offline_dag_test() -> str:
    """The README's shell recipe for testing a DAG without a cluster."""
    readme = (REPO / "README.md").read_text()
    found = re.search(r"<!-- offline-dag-test -->\s*```sh\n(.*?)```", readme, re.DOTALL)
    assert found, "README.md: the offline DAG test recipe (<!-- offline-dag-test -->) is missing"
    return found[1]


def test_the_testing_extra_runs_the_readme_offline_dag_test(
    provider_venv: Venv, wheels: Wheels, tmp_path: Path
) -> None:
    recipe = readme_offline_dag_test()
    install, _, rest = recipe.partition("\n")
    assert install.strip() == "pip install 'airflow-k8s-jobs[testing]'"
    provider_venv.install(f"{wheels.provider}[testing]", find_links=wheels.folder)
    assert "simulated-k8s-cluster" in provider_venv.distributions()

    home, dags = tmp_path / "airflow-home", tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO / "example_dags" / "gke_batch_job.py", dags)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "KUBECONFIG"))}
    env.update(
        PATH=f"{provider_venv.path / 'bin'}{os.pathsep}{env['PATH']}",
        VIRTUAL_ENV=str(provider_venv.path),
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", rest],
        cwd=work, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "simulated cluster ready at" in output
    with sqlite3.connect(home / "airflow.db") as db:
        states = dict(
            db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = 'gke_batch_job'"
            ).fetchall()
        )
    assert states == {"preprocess": "success", "train": "success"}, output[-6000:]


def test_the_old_name_still_serves(provider_venv: Venv, wheels: Wheels, tmp_path: Path) -> None:
    provider_venv.install(f"{wheels.provider}[testing]", find_links=wheels.folder)
    said = provider_venv.python_says(
        "import airflow_k8s_jobs.testing as old, simulated_k8s_cluster as new\n"
        "print(old.SimulatedCluster is new.SimulatedCluster,"
        " old.ClusterConfig is new.ClusterConfig)"
    )
    assert said == "True True"
    serve(provider_venv.python, "-m", "airflow_k8s_jobs.testing", tmp_path)


def serve(python: Path, flag: str, module: str, tmp_path: Path) -> None:
    """``python -m MODULE serve`` prints its ready line, answers ``/version``, stops on SIGTERM."""
    kubeconfig = tmp_path / "kubeconfig.yaml"
    proc = subprocess.Popen(
        [str(python), flag, module, "serve", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the line or the end of the output
        assert "ready at http" in line, line + proc.stdout.read()
        version = run(
            python, "-c",
            "import kubernetes as k\n"
            f"k.config.load_kube_config({str(kubeconfig)!r})\n"
            "print(k.client.VersionApi().get_code().git_version)",
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
        assert version.startswith("v1.")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_the_simulated_cluster_alone_runs_without_airflow(
    wheels: Wheels, constraints: Path, tmp_path: Path
) -> None:
    venv = Venv(tmp_path / "venv", constraints)
    venv.install(wheels.simulator)
    installed = venv.distributions()
    assert "simulated-k8s-cluster" in installed
    assert not [d for d in installed if d.startswith("apache-airflow")]
    serve(venv.python, "-m", "simulated_k8s_cluster", tmp_path)
