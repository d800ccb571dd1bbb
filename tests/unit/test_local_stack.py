"""deploy/local/: the compose file, its image definition and the kind manifests, without Docker.

The compose files are loaded by the Compose specification's own loader (compose-go, built by
``scripts/build-composecheck`` into ``.tools/composecheck/bin/``): schema validation,
interpolation, merging of ``compose.kind.yaml``, consistency checks, exactly as ``docker compose
config`` does. The assertions are on the project it resolves. Without Go (and no binary built
before) those tests skip and say so.

The Dockerfile is checked by reading it; the slow test resolves its pip requirement set (Airflow
pinned to the image's version, the provider from this checkout) with ``uv pip install --dry-run``
in a fresh Python 3.12 environment, as the image's ``pip install`` would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
COMPOSE = LOCAL / "compose.yaml"
COMPOSE_KIND = LOCAL / "compose.kind.yaml"
ENV_EXAMPLE = LOCAL / ".env.example"
DOCKERFILE = LOCAL / "Dockerfile"
KIND = LOCAL / "kind"
BUILD_SCRIPT = ROOT / "scripts" / "build-composecheck"
BINARY = ROOT / ".tools" / "composecheck" / "bin" / "composecheck"

AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}
LONG_RUNNING = AIRFLOW_SERVICES - {"airflow-init"}
SECRETS = ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY")
REQUIRED = (*SECRETS, "AIRFLOW_ADMIN_PASSWORD")
# What a user puts into .env (values made up for the test, recognisable in the output).
FILLED = {name: f"test-value-of-{name.lower()}" for name in REQUIRED}
KUBECONFIG_FILE = "/home/someone/.kube/kind-internal.yaml"


# --- the compose file, through compose-go ------------------------------------------------------


@pytest.fixture(scope="module")
def composecheck() -> Path:
    if shutil.which("go") is None:
        if BINARY.exists():
            return BINARY
        pytest.skip(
            "the compose file is checked by the Compose specification's loader, built from Go "
            "modules, and Go is not installed: install Go >= 1.26 (or run "
            "scripts/build-composecheck where it is)"
        )
    result = subprocess.run(
        [str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, f"scripts/build-composecheck failed:\n{result.stderr}"
    return BINARY


def load(
    binary: Path,
    *files: Path,
    env: dict[str, str] | None = None,
    env_file: Path | None = ENV_EXAMPLE,
) -> subprocess.CompletedProcess[str]:
    args = [str(binary)]
    for f in files or (COMPOSE,):
        args += ["-f", str(f)]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def project_of(binary: Path, *files: Path, **env: str) -> dict[str, Any]:
    result = load(binary, *files, env={**FILLED, "KUBECONFIG_FILE": KUBECONFIG_FILE, **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def project(composecheck: Path) -> dict[str, Any]:
    return project_of(composecheck)


@pytest.fixture(scope="module")
def kind_project(composecheck: Path) -> dict[str, Any]:
    return project_of(composecheck, COMPOSE, COMPOSE_KIND)


def test_the_services(project: dict[str, Any]) -> None:
    assert set(project["services"]) == AIRFLOW_SERVICES | {"postgres"}
    commands = {name: project["services"][name]["command"] for name in LONG_RUNNING}
    assert commands == {
        "api-server": ["api-server"],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer"],
    }
    init = project["services"]["airflow-init"]
    assert init["command"][:2] == ["bash", "-c"]
    assert "airflow db migrate" in init["command"][2]
    assert init["restart"] == "no"


def test_startup_order(project: dict[str, Any]) -> None:
    services = project["services"]
    for name in LONG_RUNNING:
        deps = {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}
        assert deps["postgres"] == "service_healthy", name
        assert deps["airflow-init"] == "service_completed_successfully", name
    for name in ("scheduler", "triggerer"):
        assert services[name]["depends_on"]["api-server"]["condition"] == "service_healthy"
    assert {
        dep: spec["condition"] for dep, spec in services["airflow-init"]["depends_on"].items()
    } == {"postgres": "service_healthy"}
    # Whatever is waited for as healthy has a healthcheck, and every long-running service has one.
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            if spec["condition"] == "service_healthy":
                assert services[dep].get("healthcheck", {}).get("test"), (name, dep)
    for name in LONG_RUNNING | {"postgres"}:
        assert services[name]["healthcheck"]["test"], name
    # "$$" in the file: the container's shell sees ${HOSTNAME}, compose does not interpolate it.
    for name, job in (("dag-processor", "DagProcessorJob"), ("triggerer", "TriggererJob")):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL"
        assert f'--job-type {job} --hostname "${{HOSTNAME}}"' in test[1]
    assert services["scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"


def test_one_image_one_configuration(project: dict[str, Any]) -> None:
    services = [project["services"][name] for name in sorted(AIRFLOW_SERVICES)]
    assert len({s["image"] for s in services}) == 1
    for s in services:
        assert s["build"]["context"] == str(ROOT)
        assert (ROOT / s["build"]["dockerfile"]).resolve() == DOCKERFILE
        # Unset PROVIDER_REQUIREMENT is not passed: the Dockerfile's default applies.
        assert "PROVIDER_REQUIREMENT" not in (s["build"].get("args") or {})
    env = project["services"]["api-server"]["environment"]
    for s in services:
        shared = {k: v for k, v in s["environment"].items() if k != "AIRFLOW_ADMIN_PASSWORD"}
        assert shared == env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    # README.md's `airflow connections test gke_batch`.
    assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # The shared secrets come from .env, the same in every component.
    assert env["AIRFLOW__CORE__FERNET_KEY"] == FILLED["AIRFLOW_FERNET_KEY"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == FILLED["AIRFLOW_JWT_SECRET"]
    assert env["AIRFLOW__API__SECRET_KEY"] == FILLED["AIRFLOW_API_SECRET_KEY"]
    init_env = project["services"]["airflow-init"]["environment"]
    assert init_env["AIRFLOW_ADMIN_PASSWORD"] == FILLED["AIRFLOW_ADMIN_PASSWORD"]
    # Task processes reach the execution API of the api-server service.
    url = env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
    assert url == "http://api-server:8080/execution/"
    assert project["services"]["api-server"]["ports"][0]["target"] == 8080


def test_provider_from_the_checkout(composecheck: Path) -> None:
    project = project_of(composecheck, PROVIDER_REQUIREMENT="/src")
    for name in AIRFLOW_SERVICES:
        assert project["services"][name]["build"]["args"] == {"PROVIDER_REQUIREMENT": "/src"}


def _mounts(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["target"]: v for v in service["volumes"]}


def test_kubeconfig_and_dags_mounted_read_only(project: dict[str, Any]) -> None:
    conn = json.loads(project["services"]["scheduler"]["environment"]["AIRFLOW_CONN_GKE_BATCH"])
    kubeconfig_path = conn["extra"]["kubeconfig_path"]
    for name in AIRFLOW_SERVICES:
        mounts = _mounts(project["services"][name])
        kube = mounts[kubeconfig_path]
        assert (kube["type"], kube["source"], kube.get("read_only")) == (
            "bind",
            KUBECONFIG_FILE,
            True,
        )
        dags = mounts["/opt/airflow/dags"]
        assert (dags["type"], dags["source"], dags.get("read_only")) == (
            "bind",
            str(ROOT / "example_dags"),
            True,
        )
        # Task logs written by the scheduler's task processes are read by the api-server.
        assert mounts["/opt/airflow/logs"]["type"] == "volume"


def test_dags_folder_and_kubeconfig_defaults(composecheck: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in FILLED.items()))
    result = load(composecheck, env_file=env_file, env={"DAGS_FOLDER": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    mounts = _mounts(json.loads(result.stdout)["services"]["triggerer"])
    assert mounts["/opt/airflow/dags"]["source"] == str(tmp_path)
    # Without KUBECONFIG_FILE: the user's ~/.kube/config.
    home = os.path.expanduser("~")
    assert mounts["/opt/airflow/kube/config"]["source"] == os.path.join(home, ".kube", "config")


def test_the_connection_runs_the_example_dags(project: dict[str, Any]) -> None:
    from airflow.models import Connection

    from airflow_k8s_jobs.clusters import CONN_TYPE, ClusterSettings

    raw = project["services"]["triggerer"]["environment"]["AIRFLOW_CONN_GKE_BATCH"]
    conn = json.loads(raw)
    assert conn["conn_type"] == CONN_TYPE == "k8sjobs"
    settings = ClusterSettings.from_connection(
        Connection(
            conn_id="gke_batch", conn_type=conn["conn_type"], extra=json.dumps(conn["extra"])
        )
    )
    assert settings.kubeconfig_path == "/opt/airflow/kube/config"
    assert settings.default_namespace == "batch"
    # Every example DAG uses this connection and namespace batch.
    sources = [p.read_text() for p in (ROOT / "example_dags").glob("*.py")]
    conn_ids = {m for s in sources for m in re.findall(r'cluster_conn_id="([^"]+)"', s)}
    namespaces = {m for s in sources for m in re.findall(r'\bnamespace="([^"]+)"', s)}
    assert conn_ids == {"gke_batch"}
    assert namespaces == {"batch"}


def _readme_block(heading: str) -> list[str]:
    """The commands of the first bash block under ``heading`` in deploy/local/README.md."""
    text = (LOCAL / "README.md").read_text()
    section = text[text.index(heading) :]
    block = section[section.index("```bash\n") + 8 :]
    block = block[: block.index("```")]
    commands, current, heredoc = [], "", None
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if heredoc is None and (match := re.search(r"<<'?(\w+)'?$", line)):
            heredoc = match.group(1)
        elif heredoc is not None and line == heredoc:
            heredoc = None
        if heredoc is None and not line.endswith("\\"):
            commands.append(current)
            current = ""
    return commands


def test_quick_start_env_setup(composecheck: Path, tmp_path: Path) -> None:
    """The quick start's commands that write .env, run on a copy; compose then accepts it."""
    if shutil.which("openssl") is None:
        pytest.skip("the quick start generates secrets with openssl, which is not installed")
    from cryptography.fernet import Fernet

    commands = _readme_block("## Quick start")
    assert commands[:2] == ["cd deploy/local\n", "cp .env.example .env\n"]
    assert commands[-2:] == ["docker compose up -d --build\n", "docker compose ps\n"]
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env.example")
    script = "set -euo pipefail\n" + "".join(commands[1:-2])
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True, timeout=60)
    env_file = tmp_path / ".env"
    result = load(composecheck, env_file=env_file)
    assert result.returncode == 0, result.stderr
    project = json.loads(result.stdout)
    env = project["services"]["scheduler"]["environment"]
    Fernet(env["AIRFLOW__CORE__FERNET_KEY"].encode())  # a valid key
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) == 64
    assert len(env["AIRFLOW__API__SECRET_KEY"]) == 64
    password = project["services"]["airflow-init"]["environment"]["AIRFLOW_ADMIN_PASSWORD"]
    assert len(password) == 24
    assert project["services"]["scheduler"]["user"] == f"{os.getuid()}:0"


def test_kind_recipe_env_setup(composecheck: Path, tmp_path: Path) -> None:
    """The kind recipe's last step, on the .env of the quick start: compose in deploy/local then
    reads both files (COMPOSE_FILE) and mounts the internal kubeconfig."""
    commands = _readme_block("## A kind cluster")
    start = commands.index("cd deploy/local\n")
    edits = commands[start + 1 : commands.index("docker compose up -d --build\n", start)]
    assert edits and all(c.startswith("echo ") for c in edits), edits
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text() + "".join(f"{k}={v}\n" for k, v in FILLED.items()))
    subprocess.run(["bash", "-c", "set -euo pipefail\n" + "".join(edits)], cwd=tmp_path, check=True)
    # As `docker compose` run in deploy/local with this .env: no -f.
    result = subprocess.run(
        [str(composecheck), "-C", str(LOCAL), "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    project = json.loads(result.stdout)
    assert project["networks"]["kind"]["external"] is True
    mounts = _mounts(project["services"]["triggerer"])
    kubeconfig = os.path.expanduser("~/.kube/airflow-k8s-jobs-kind.yaml")
    assert mounts["/opt/airflow/kube/config"]["source"] == kubeconfig
    # The file the recipe's step 6 writes is the one mounted.
    assert any("> ~/.kube/airflow-k8s-jobs-kind.yaml" in c for c in commands)


def test_no_secret_in_the_files() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    env = compose["x-airflow"]["environment"]
    for key, var in (
        ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_FERNET_KEY"),
        ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW_JWT_SECRET"),
        ("AIRFLOW__API__SECRET_KEY", "AIRFLOW_API_SECRET_KEY"),
    ):
        # Required, no default: "${VAR:?message}".
        assert re.fullmatch(rf"\$\{{{var}:\?[^}}]*\}}", env[key]), env[key]
    admin = compose["services"]["airflow-init"]["environment"]["AIRFLOW_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{AIRFLOW_ADMIN_PASSWORD:\?[^}]*\}", admin), admin
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {k: example[k] for k in REQUIRED} == dict.fromkeys(REQUIRED, "")
    # Nothing that looks like a Fernet key or a long hex secret anywhere in deploy/local.
    for path in LOCAL.rglob("*"):
        # .env: the user's own file (git-ignored), where the secrets belong.
        if path.is_file() and path.name != ".env" and path.suffix not in {".sum", ".mod", ".go"}:
            text = path.read_text()
            assert not re.search(r"[A-Za-z0-9_-]{43}=", text), path
            assert not re.search(r"\b[0-9a-f]{32,}\b", text), path


def test_unfilled_env_is_refused(composecheck: Path) -> None:
    result = load(composecheck)
    assert result.returncode == 1
    for var in REQUIRED:
        assert f"required variable {var} is missing a value" in result.stderr
        assert f"set {var} in .env" in result.stderr


def test_kind_override(kind_project: dict[str, Any]) -> None:
    assert kind_project["networks"]["kind"]["external"] is True
    assert kind_project["networks"]["kind"]["name"] == "kind"
    for name in AIRFLOW_SERVICES:
        assert set(kind_project["services"][name]["networks"]) == {"default", "kind"}, name
    assert set(kind_project["services"]["postgres"].get("networks") or {"default": None}) == {
        "default"
    }


# --- the Dockerfile ----------------------------------------------------------------------------


def _dockerfile() -> list[str]:
    """The instructions, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return lines


def _af3_spec() -> tuple[str, str]:
    """The Makefile's Airflow 3 environment: (Python minor version, Airflow requirement)."""
    makefile = (ROOT / "Makefile").read_text()
    python = re.search(r"^ENV_af3_PY := (\S+)", makefile, re.M)
    req = re.search(r'^ENV_af3_REQ := "(apache-airflow[^"]+)"', makefile, re.M)
    assert python and req
    return python.group(1), req.group(1)


def _base_image() -> tuple[str, str]:
    froms = [line.split()[1] for line in _dockerfile() if line.startswith("FROM ")]
    assert len(froms) == 1, froms
    match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", froms[0])
    assert match, froms[0]
    return match.group(1), match.group(2)


def _args() -> dict[str, str]:
    out = {}
    for line in _dockerfile():
        if line.startswith("ARG "):
            name, _, default = line[4:].partition("=")
            out[name] = default
    return out


def _pip_requirements() -> list[str]:
    """The requirements of the image's one ``pip install``, ``${...}`` left as written."""
    runs = [line for line in _dockerfile() if line.startswith("RUN ") and "pip install" in line]
    assert len(runs) == 1, runs
    words = shlex.split(runs[0].split("pip install", 1)[1])
    return [w for w in words if not w.startswith("-")]


def test_base_image_is_the_airflow_we_test() -> None:
    from packaging.specifiers import SpecifierSet

    version, python = _base_image()
    af3_python, af3_req = _af3_spec()
    assert python == af3_python
    assert version in SpecifierSet(af3_req.removeprefix("apache-airflow"))
    # The exact release of the Airflow 3 environment, when it is set up.
    installed = sorted((ROOT / ".venv-af3").glob("lib/python*/site-packages/apache_airflow-*"))
    installed = [p for p in installed if re.fullmatch(r"apache_airflow-[\d.]+\.dist-info", p.name)]
    if installed:
        assert installed[0].name == f"apache_airflow-{version}.dist-info"


def test_image_installs_the_provider_with_airflow_pinned() -> None:
    assert _pip_requirements() == ["apache-airflow==${AIRFLOW_VERSION}", "${PROVIDER_REQUIREMENT}"]
    init = (ROOT / "airflow_k8s_jobs" / "__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    assert version
    # By default the checkout the Dockerfile belongs to; a release is one build argument away.
    assert _args() == {"PROVIDER_REQUIREMENT": "/src"}
    readme = (LOCAL / "README.md").read_text()
    assert f"`airflow-k8s-jobs=={version.group(1)}` installs that release from PyPI" in readme
    run = next(line for line in _dockerfile() if "pip install" in line)
    # The checkout is mounted for the install only, at the path the docs name.
    assert "--mount=type=bind,source=.,target=/src" in run


def test_build_context_sends_what_the_install_needs() -> None:
    """Dockerfile.dockerignore (the repository root is the context) keeps the package's files."""
    import fnmatch

    patterns = [
        line.strip()
        for line in (LOCAL / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def sent(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
                keep = negate
        return keep

    for path in ("pyproject.toml", "README.md", "airflow_k8s_jobs/__init__.py"):
        assert sent(path), path
    assert not sent(".venv-af3/bin/python")
    assert not sent(".tools/bin/uv")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_image_requirements_resolve_with_airflow_unchanged(tmp_path: Path) -> None:
    """Resolve the image's ``pip install`` (provider: this checkout) on the image's Python."""
    uv = ROOT / ".tools" / "bin" / "uv"
    python = ROOT / ".venv-af3" / "bin" / "python"
    if not (uv.exists() and python.exists()):
        pytest.skip("needs .tools/bin/uv and .venv-af3 (make setup-af3)")
    version, _ = _base_image()
    requirements = [
        r.replace("${AIRFLOW_VERSION}", version).replace("${PROVIDER_REQUIREMENT}", str(ROOT))
        for r in _pip_requirements()
    ]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    venv = tmp_path / "image"
    subprocess.run(
        [str(uv), "venv", "--quiet", "--python", str(python), str(venv)],
        check=True,
        env=env,
        timeout=60,
    )
    result = subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "--dry-run",
            "--python",
            str(venv / "bin" / "python"),
            *requirements,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stderr + result.stdout
    planned = dict(re.findall(r"^ \+ ([A-Za-z0-9_.-]+)==(\S+)$", output, re.M))
    assert planned.get("apache-airflow") == version, output
    # The provider: this checkout.
    assert re.search(rf"^ \+ airflow-k8s-jobs @ {re.escape(ROOT.as_uri())}$", output, re.M), output


# --- the kind manifests ------------------------------------------------------------------------

EXPECTED_KINDS = {
    "cluster.yaml": [("kind.x-k8s.io/v1alpha4", "Cluster", "airflow-k8s-jobs", None)],
    "namespaces.yaml": [
        ("v1", "Namespace", "batch", None),
        ("v1", "Namespace", "airflow", None),
        ("v1", "ServiceAccount", "airflow", "airflow"),
    ],
    "argo-executor.yaml": [
        ("rbac.authorization.k8s.io/v1", "Role", "argo-executor", "batch"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", "argo-executor", "batch"),
    ],
    "kueue-queues.yaml": [
        ("kueue.x-k8s.io/v1beta2", "ResourceFlavor", "default", None),
        ("kueue.x-k8s.io/v1beta2", "ClusterQueue", "team-a", None),
        ("kueue.x-k8s.io/v1beta2", "LocalQueue", "team-a-queue", "batch"),
    ],
}


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((KIND / name).read_text()) if d]


def _identity(doc: dict[str, Any]) -> tuple[str, str, str, str | None]:
    if doc["kind"] == "Cluster":  # kind's own configuration: the name at the top
        return doc["apiVersion"], doc["kind"], doc["name"], None
    meta = doc["metadata"]
    return doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace")


def test_kind_manifests() -> None:
    assert {p.name for p in KIND.glob("*.yaml")} == set(EXPECTED_KINDS)
    for name, expected in EXPECTED_KINDS.items():
        got = [_identity(d) for d in _documents(name)]
        assert got == expected, name
    # The Role of docs/rbac binds the service account namespaces.yaml creates.
    rbac = list(yaml.safe_load_all((ROOT / "docs" / "rbac" / "airflow-k8s-jobs.yaml").read_text()))
    binding = next(d for d in rbac if d["kind"] == "RoleBinding")
    assert {"kind": "ServiceAccount", "name": "airflow", "namespace": "airflow"} in binding[
        "subjects"
    ]


def test_kueue_queues_match_the_example_dag() -> None:
    dag = (ROOT / "example_dags" / "kueue_queued.py").read_text()
    queue = re.search(r'queue_name="([^"]+)"', dag)
    assert queue
    docs = {d["kind"]: d for d in _documents("kueue-queues.yaml")}
    local = docs["LocalQueue"]
    assert (local["metadata"]["name"], local["metadata"]["namespace"]) == (queue.group(1), "batch")
    assert local["spec"]["clusterQueue"] == docs["ClusterQueue"]["metadata"]["name"]
    flavors = [
        f["name"] for g in docs["ClusterQueue"]["spec"]["resourceGroups"] for f in g["flavors"]
    ]
    assert flavors == [docs["ResourceFlavor"]["metadata"]["name"]]
    # The quota admits the example's Job: parallelism x requests.
    quota = {
        r["name"]: r["nominalQuota"]
        for g in docs["ClusterQueue"]["spec"]["resourceGroups"]
        for f in g["flavors"]
        for r in f["resources"]
    }
    cpu = re.search(r'"cpu": "(\d+)"', dag)
    parallelism = re.search(r"parallelism=(\d+)", dag)
    assert cpu and parallelism
    assert int(quota["cpu"]) >= int(cpu.group(1)) * int(parallelism.group(1))


def _kueue_crds() -> Path | None:
    module = ROOT / ".tools" / "realcluster" / "bin" / "kueue.module"
    if module.exists():
        lines = module.read_text().splitlines()
        if len(lines) > 1:
            crds = Path(lines[1]) / "config" / "components" / "crd" / "bases"
            if crds.is_dir():
                return crds
    return None


def test_kueue_queues_against_kueue_crds() -> None:
    """Each object validates against the OpenAPI schema of the Kueue release the suite builds."""
    jsonschema = pytest.importorskip("jsonschema")
    crds = _kueue_crds()
    if crds is None:
        pytest.skip("Kueue's CRDs come with its Go module: run scripts/build-real-cluster kueue")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schemas = {}
    for doc in _documents("kueue-queues.yaml"):
        crd = yaml.load((crds / f"kueue.x-k8s.io_{doc['kind'].lower()}s.yaml").read_text(), loader)
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = (version, crd["spec"]["scope"])
    for doc in _documents("kueue-queues.yaml"):
        version, scope = schemas[(doc["apiVersion"], doc["kind"])]
        assert version["served"] and not version.get("deprecated"), doc["kind"]
        assert ("namespace" in doc["metadata"]) == (scope == "Namespaced"), doc["kind"]
        jsonschema.validate(
            {k: v for k, v in doc.items() if k != "metadata"}, version["schema"]["openAPIV3Schema"]
        )


def test_readme_names_the_versions_in_use() -> None:
    """The image, the provider's default and Kueue's release in README.md are those in use."""
    readme = (LOCAL / "README.md").read_text()
    version, python = _base_image()
    assert f"`apache/airflow:{version}-python{python}`" in readme
    assert f"unset: `{_args()['PROVIDER_REQUIREMENT']}`, this checkout" in readme
    # The Kueue release whose CRDs the queues are checked against (realcluster/kueue/go.mod).
    urls = re.findall(r"kubernetes-sigs/kueue/releases/download/(v[\d.]+)/manifests\.yaml", readme)
    assert len(urls) == 1
    gomod = ROOT / "realcluster" / "kueue" / "go.mod"
    if gomod.exists():
        kueue = re.search(r"sigs\.k8s\.io/kueue (v[\d.]+)", gomod.read_text())
        assert kueue
        assert urls == [kueue.group(1)]


def test_documented_files_exist() -> None:
    """Every file deploy/local/README.md tells to apply or copy is in the repository."""
    readme = (LOCAL / "README.md").read_text()
    paths = set(re.findall(r"(?<![\w/.-])((?:deploy|docs|example_dags)/[\w./-]+\w)", readme))
    assert paths
    for path in sorted(paths):
        assert (ROOT / path).exists(), path
