"""Parsing the simulated cluster's configuration, and its error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulated_k8s_cluster import ClusterConfig, ConfigError, NodePoolConfig

ISSUE_EXAMPLE = """
timeScale: 0.05
nodePools:
  - name: default
    nodes: 1
    maxNodes: 1
    scaleUpSeconds: 60
    capacity: {cpu: "4", memory: "16Gi"}
    labels: {cloud.google.com/gke-nodepool: default}
    taints: []
behaviours:
  - match: {image: "task-python:1.0", args: "pre-task.py"}
    seconds: 2
    exitCode: 0
    stdout: "[1, 2, 3]"
    files: {"/tmp/results": "[1, 2, 3]"}
"""


def test_issue_example(tmp_path: Path) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(ISSUE_EXAMPLE)
    config = ClusterConfig.load(path)
    assert config.time_scale == 0.05
    assert config.node_pools == [
        NodePoolConfig(
            name="default",
            nodes=1,
            max_nodes=1,
            scale_up_seconds=60,
            capacity={"cpu": "4", "memory": "16Gi"},
            labels={"cloud.google.com/gke-nodepool": "default"},
            taints=[],
        )
    ]
    assert not config.node_pools[0].autoscaled
    assert config.behaviours[0]["match"] == {"image": "task-python:1.0", "args": "pre-task.py"}


def test_shipped_example_parses() -> None:
    import simulated_k8s_cluster as testing

    example = Path(testing.__file__).parent / "examples" / "cluster.yaml"
    config = ClusterConfig.load(example)
    assert config.node_pools and config.behaviours


def test_defaults_and_sources() -> None:
    default = ClusterConfig.load(None)
    assert default.time_scale == 1.0
    assert [p.name for p in default.node_pools] == ["default"]
    assert default.token
    assert ClusterConfig.load(default) is default
    config = ClusterConfig.load(
        {
            "timeScale": 0,
            "namespaces": ["a", "b"],
            "tls": True,
            "port": 6443,
            "clusterName": "sim",
            "kubernetesVersion": "1.31",
            "bookmarkIntervalSeconds": 0.5,
            "autoscalerScanSeconds": 5,
            "historySize": 10,
            "token": "t",
            "nodePools": [
                {
                    "name": "gpu",
                    "nodes": 0,
                    "maxNodes": 3,
                    "capacity": {"cpu": 8, "nvidia.com/gpu": 1},
                    "taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
                }
            ],
            "kueue": {"localQueues": []},
        }
    )
    assert config.time_scale == 0
    assert config.namespaces == ["a", "b"]
    assert config.port == 6443
    assert config.token == "t"
    pool = config.node_pools[0]
    assert pool.capacity == {"cpu": "8", "nvidia.com/gpu": "1"}  # numbers become quantities
    assert pool.autoscaled and pool.ceiling == 3
    assert config.extra == {"kueue": {"localQueues": []}}


def test_empty_node_pools() -> None:
    assert ClusterConfig.load({"nodePools": []}).node_pools == []
    assert ClusterConfig.load({"nodePools": None}).node_pools == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timescale": 1}, "unknown key 'timescale'; known keys: "),
        ({"timeScale": -1}, "timeScale must be a number >= 0, got -1"),
        ({"timeScale": "fast"}, "timeScale must be a number >= 0, got 'fast'"),
        ({"timeScale": True}, "timeScale must be a number >= 0"),
        ({"namespaces": "batch"}, "namespaces must be a list of strings, got 'batch'"),
        ({"namespaces": [1]}, "namespaces item must be a non-empty string, got 1"),
        ({"tls": "yes"}, "tls must be true or false, got 'yes'"),
        ({"port": 70000}, "port must be a whole number between 0 and 65535, got 70000"),
        ({"port": "80"}, "port must be a whole number between 0 and 65535"),
        ({"kubernetesVersion": "latest"}, "kubernetesVersion must be a version like"),
        ({"bookmarkIntervalSeconds": 0}, "bookmarkIntervalSeconds must be a number > 0, got 0"),
        ({"historySize": 0}, "historySize must be a whole number >= 1, got 0"),
        ({"token": ""}, "token must be a non-empty string"),
        ({"behaviours": {"match": {}}}, "behaviours must be a list of rules"),
        ({"behaviours": ["sleep"]}, "behaviours[0] must be a mapping, got 'sleep'"),
        ({"nodePools": {"name": "a"}}, "nodePools must be a list of node pools"),
        ({"nodePools": ["a"]}, "nodePools[0] must be a mapping with at least a name, got 'a'"),
        ({"nodePools": [{"nodes": 1}]}, "nodePools[0]: a node pool needs a name"),
        ({"nodePools": [{"name": "a", "size": 1}]}, "nodePools[0]: unknown keys ['size']"),
        (
            {"nodePools": [{"name": "a", "nodes": "two"}]},
            "nodePools[0].nodes must be a whole number >= 0, got 'two'",
        ),
        ({"nodePools": [{"name": "a", "nodes": -1}]}, "nodePools[0].nodes must be a whole number"),
        (
            {"nodePools": [{"name": "a", "nodes": 3, "maxNodes": 2}]},
            "nodePools[0]: maxNodes (2) must be >= nodes (3)",
        ),
        (
            {"nodePools": [{"name": "a", "scaleUpSeconds": "1m"}]},
            "nodePools[0].scaleUpSeconds must be a number >= 0, got '1m'",
        ),
        (
            {"nodePools": [{"name": "a", "capacity": 4}]},
            "nodePools[0].capacity must be a mapping, got 4",
        ),
        (
            {"nodePools": [{"name": "a", "labels": {"x": ["y"]}}]},
            "nodePools[0].labels.x must be a string or a number",
        ),
        (
            {"nodePools": [{"name": "a", "taints": [{"key": "k", "effect": "Never"}]}]},
            "nodePools[0].taints[0]: effect must be NoSchedule, PreferNoSchedule or NoExecute, "
            "got 'Never'",
        ),
        (
            {"nodePools": [{"name": "a", "taints": [{"effect": "NoSchedule"}]}]},
            "nodePools[0].taints[0] needs a key",
        ),
        (
            {"nodePools": [{"name": "a"}, {"name": "a"}]},
            "nodePools: node pool names must be unique, got ['a', 'a']",
        ),
    ],
)
def test_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        ClusterConfig.from_dict(data)
    assert str(err.value).startswith("cluster config: ")
    assert message in str(err.value)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match=r"cannot read cluster config .*missing\.yaml"):
        ClusterConfig.load(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("nodePools: [\n")
    with pytest.raises(ConfigError, match=r"cannot read cluster config .*broken\.yaml"):
        ClusterConfig.load(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("timeScale: -2\n")
    with pytest.raises(ConfigError) as err:
        ClusterConfig.load(wrong)
    assert str(err.value) == f"{wrong}: timeScale must be a number >= 0, got -2"
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level"):
        ClusterConfig.load(listed)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
