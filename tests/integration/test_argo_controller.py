"""The simulated cluster's Argo workflow controller, through the real clients.

Workflows and templates are written and read with ``CustomObjectsApi`` (``argoproj.io`` /
``v1alpha1``), pods with ``CoreV1Api``. Time is frozen (``timeScale: 0``) and moves only by
``advance``; ``settle`` lets the controllers catch up before asserting that something has *not*
happened. Node ids and pod names are cross-checked with ``airflow_k8s_jobs.status.workflows``.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.rest import ApiException

import simulated_k8s_cluster
from airflow_k8s_jobs.status.workflows import decode_nodes, interpret_workflow, node_id
from simulated_k8s_cluster.cluster import SimulatedCluster
from simulated_k8s_cluster.config import ClusterConfig, ConfigError
from simulated_k8s_cluster.controllers.argo.names import fnv32a, step_or_task_name

NS = "batch"
GROUP, VERSION = "argoproj.io", "v1alpha1"
BEHAVIOUR = "sim.airflow-k8s-jobs/behaviour"
SEED = Path(simulated_k8s_cluster.__file__).parent / "examples" / "seed_workflow.yml"
IMAGE = "work:1"
NODE_NAME = "workflows.argoproj.io/node-name"
POSTPONED = "Workflow processing has been postponed because too many workflows are already running"

SEED_BEHAVIOURS = [
    {"match": {"args": "pre-task.py 3 "}, "files": {"/tmp/results": "[1, 2, 3]"}},
    *({"match": {"args": f"task.R {n} "}, "files": {"/tmp/result": str(n * n)}} for n in (1, 2, 3)),
]


def config(**argo: Any) -> dict[str, Any]:
    return {
        "timeScale": 0,
        "namespaces": [NS],
        "nodePools": [
            {"name": "default", "nodes": 2, "capacity": {"cpu": "64", "memory": "256Gi"}}
        ],
        "behaviours": SEED_BEHAVIOURS,
        "argo": argo,
    }


pytestmark = pytest.mark.simulated_cluster(config())


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def custom(api: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api)


def container(name: str = "main", seconds: float | None = None, **behaviour: Any) -> dict[str, Any]:
    """A container template that runs ``seconds`` simulated seconds (and behaves as told)."""
    tmpl: dict[str, Any] = {"name": name, "container": {"image": IMAGE, "args": [name]}}
    if seconds is not None:
        behaviour["seconds"] = seconds
    if behaviour:
        tmpl["metadata"] = {"annotations": {BEHAVIOUR: json.dumps(behaviour)}}
    return tmpl


def workflow(name: str, templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    spec.setdefault("entrypoint", templates[0]["name"])
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {**spec, "templates": templates},
    }


def submit(custom: kubernetes.client.CustomObjectsApi, manifest: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, NS, "workflows", manifest
    )
    return created


def get(custom: kubernetes.client.CustomObjectsApi, name: str) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object(
        GROUP, VERSION, NS, "workflows", name
    )
    return found


def status(custom: kubernetes.client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return dict(get(custom, name).get("status") or {})


def nodes(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The nodes by name (decoded when compressed)."""
    decoded, _ = decode_nodes(wf.get("status") or {})
    return {n["name"]: n for n in decoded.values()}


def run(
    cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    name: str,
    within: float = 600,
    step: float = 1,
) -> dict[str, Any]:
    """Advance simulated time until the Workflow finishes; fail after ``within`` seconds."""
    deadline = cluster.now() + within
    while True:
        wf = get(custom, name)
        if (wf.get("status") or {}).get("finishedAt"):
            return wf
        if cluster.now() >= deadline:
            raise AssertionError(f"{name} did not finish within {within}s: {wf.get('status')}")
        cluster.advance(step)


def pods(v1: kubernetes.client.CoreV1Api, workflow_name: str) -> list[Any]:
    return list(
        v1.list_namespaced_pod(
            NS, label_selector=f"workflows.argoproj.io/workflow={workflow_name}"
        ).items
    )


def seed(value: str = "3") -> dict[str, Any]:
    manifest = yaml.safe_load(SEED.read_text())
    manifest["spec"]["arguments"]["parameters"][0]["value"] = value
    return dict(manifest)


# --- the seed workflow --------------------------------------------------------------------------


def test_seed_workflow_runs_like_argo(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    created = submit(custom, seed())
    name = created["metadata"]["name"]
    assert name.startswith("workflow-sample-")

    wf = run(simulated_cluster, custom, name)

    st = wf["status"]
    assert st["phase"] == "Succeeded"
    assert st["progress"] == "7/7"
    assert st["startedAt"] and st["finishedAt"] and "message" not in st
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "PodRunning": "False",
        "Completed": "True",
    }
    assert wf["metadata"]["labels"]["workflows.argoproj.io/phase"] == "Succeeded"
    assert wf["metadata"]["labels"]["workflows.argoproj.io/completed"] == "true"
    assert wf["metadata"]["annotations"]["workflows.argoproj.io/pod-name-format"] == "v2"

    by_name = nodes(wf)
    for node in st["nodes"].values():
        assert node["id"] == node_id(name, node["name"])
        assert node["templateScope"] == f"local/{name}"
        assert node["phase"] == "Succeeded"
    root = by_name[name]
    assert root["id"] == name and root["type"] == "Steps" and "boundaryID" not in root
    assert root["displayName"] == name and root["progress"] == "7/7"
    assert by_name[f"{name}[0]"]["type"] == "StepGroup"
    assert by_name[f"{name}[0]"]["displayName"] == "[0]"
    task1 = by_name[f"{name}[0].task1"]
    assert (task1["type"], task1["templateName"], task1["displayName"]) == (
        "Pod",
        "task-python-pre",
        "task1",
    )
    assert task1["inputs"]["parameters"] == [{"name": "max", "value": "3"}]
    assert task1["outputs"]["parameters"][0]["value"] == "[1, 2, 3]"
    assert task1["outputs"]["exitCode"] == "0"
    assert task1["hostNodeName"] in {n.metadata.name for n in v1.list_node().items}
    assert task1["children"] == [node_id(name, f"{name}[1]")]

    fanned = [by_name[f"{name}[1].task2-3({i}:{v})"] for i, v in enumerate((1, 2, 3))]
    assert by_name[f"{name}[1]"]["children"] == [n["id"] for n in fanned]
    for item, steps in zip((1, 2, 3), fanned, strict=True):
        assert steps["type"] == "Steps" and steps["displayName"] == f"task2-3({item - 1}:{item})"
        assert steps["boundaryID"] == name
        assert steps["inputs"]["parameters"] == [{"name": "result1", "value": str(item)}]
        task2 = by_name[f"{steps['name']}[0].task2"]
        task3 = by_name[f"{steps['name']}[1].task3"]
        assert (task2["type"], task3["type"]) == ("Pod", "Pod")
        assert task2["boundaryID"] == task3["boundaryID"] == steps["id"]
        assert task2["outputs"]["parameters"][0]["value"] == str(item * item)
        assert task3["inputs"]["parameters"] == [{"name": "param1", "value": str(item * item)}]
        assert steps["outboundNodes"] == [task3["id"]]
    assert root["outboundNodes"] == [by_name[f"{n['name']}[1].task3"]["id"] for n in fanned]

    state = interpret_workflow(wf, name=name, namespace=NS)
    expected_pods = {state.pod_name(node) for node in state.nodes.values() if node.type == "Pod"}
    found = pods(v1, name)
    assert {p.metadata.name for p in found} == expected_pods
    assert f"{name}-task-python-pre-{task1['id'].rsplit('-', 1)[1]}" in expected_pods
    args = sorted(
        p.spec.containers[0].args[0] for p in found if "post-task" in p.spec.containers[0].args[0]
    )
    assert args == ["python post-task.py 1", "python post-task.py 4", "python post-task.py 9"]
    for pod in found:
        node = state.nodes[pod.metadata.annotations["workflows.argoproj.io/node-id"]]
        assert pod.metadata.annotations["workflows.argoproj.io/node-name"] == node.name
        assert pod.metadata.labels["workflows.argoproj.io/completed"] == "true"
        assert [c.name for c in pod.spec.containers] == ["main"]
        assert pod.spec.restart_policy == "Never"
        (ref,) = pod.metadata.owner_references
        assert (ref.kind, ref.name, ref.uid, ref.controller, ref.block_owner_deletion) == (
            "Workflow",
            name,
            created["metadata"]["uid"],
            True,
            True,
        )


def test_seed_workflow_progress_while_running(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    name = submit(custom, seed())["metadata"]["name"]
    simulated_cluster.settle()
    st = status(custom, name)
    assert st["phase"] == "Running" and st["progress"] == "0/1" and st["finishedAt"] is None
    by_name = {n["name"]: n for n in st["nodes"].values()}
    assert by_name[f"{name}[0].task1"]["phase"] in ("Pending", "Running")
    assert f"{name}[1]" not in by_name
    simulated_cluster.advance(2)
    st = status(custom, name)
    assert st["progress"] == "1/4"  # task1 done, three task2 pods created
    simulated_cluster.advance(1)
    st = status(custom, name)
    running = [n for n in st["nodes"].values() if n["type"] == "Pod" and n["phase"] == "Running"]
    assert len(running) == 3
    assert {c["type"]: c["status"] for c in st["conditions"]}["PodRunning"] == "True"
    # Nothing changes while time stands still: the controller writes only on change.
    store = simulated_cluster.state.store
    version = simulated_cluster.call(lambda: store.resource_version)
    simulated_cluster.settle()
    simulated_cluster.settle()
    assert simulated_cluster.call(lambda: store.resource_version) == version


def test_the_resources_are_served_like_the_crds(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    registry = simulated_cluster.state.registry
    for kind in ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate"):
        assert registry.by_kind(f"{GROUP}/{VERSION}", kind) is not None
    made = simulated_cluster.create(
        {
            **workflow("direct", [container(seconds=1)]),
            "metadata": {"name": "direct", "namespace": NS},
        }
    )
    assert made["kind"] == "Workflow"
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "workflows")["items"]
    assert [w["metadata"]["name"] for w in listed] == ["direct"]
    for kind, meta in (
        ("WorkflowTemplate", {"name": "t", "namespace": NS}),
        ("ClusterWorkflowTemplate", {"name": "ct"}),
    ):
        made = simulated_cluster.create(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": kind,
                "metadata": meta,
                "spec": {"templates": [container("leaf")]},
            }
        )
        assert made["kind"] == kind
    ref = {"name": "ct", "template": "leaf", "clusterScope": True}
    submit(
        custom,
        workflow("viaref", [{"name": "main", "steps": [[{"name": "a", "templateRef": ref}]]}]),
    )
    assert run(simulated_cluster, custom, "viaref")["status"]["phase"] == "Succeeded"
    dry = custom.create_namespaced_custom_object(
        GROUP, VERSION, NS, "workflows", workflow("dry", [container()]), dry_run="All"
    )
    assert dry["metadata"]["name"] == "dry"
    simulated_cluster.settle()
    with pytest.raises(ApiException) as caught:
        get(custom, "dry")
    assert caught.value.status == 404


@pytest.mark.simulated_cluster({"timeScale": 0, "namespaces": [NS]})
def test_without_an_argo_section_there_is_no_argo(
    custom: kubernetes.client.CustomObjectsApi,
) -> None:
    with pytest.raises(ApiException) as caught:
        custom.list_namespaced_custom_object(GROUP, VERSION, NS, "workflows")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"parallelism": 0}, "argo.parallelism must be a whole number >= 1, got 0"),
        ({"compressNodes": "yes"}, "argo.compressNodes must be true or false"),
        ({"paralellism": 1}, "argo: unknown keys ['paralellism']"),
        ({"workflowTemplates": [{"spec": {}}]}, "argo.workflowTemplates[0] needs metadata.name"),
        ("on", "argo must be a mapping"),
    ],
)
def test_config_errors_name_the_key(section: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ClusterConfig.from_dict({"argo": section})
    assert message in str(caught.value)


# --- parameters and validation -----------------------------------------------------------------


def test_parameters_are_substituted(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    tmpl = {
        "name": "main",
        "inputs": {"parameters": [{"name": "a", "default": "dflt"}, {"name": "b"}, {"name": "n"}]},
        "container": {
            "image": IMAGE,
            "command": ["echo"],
            "args": [
                "{{inputs.parameters.a}}",
                "{{ inputs.parameters.b }}",
                "{{workflow.parameters.n}}",
                "{{workflow.name}}/{{workflow.namespace}}/{{workflow.uid}}",
                "{{workflow.scheduledTime}}",
                "{{pod.name}}",
            ],
        },
    }
    manifest = workflow(
        "params",
        [tmpl],
        arguments={"parameters": [{"name": "n", "value": 5}, {"name": "b", "value": "bee"}]},
    )
    manifest["metadata"]["annotations"] = {
        "workflows.argoproj.io/scheduled-time": "2026-11-01T00:00:00Z"
    }
    uid = submit(custom, manifest)["metadata"]["uid"]
    wf = run(simulated_cluster, custom, "params")
    assert wf["status"]["phase"] == "Succeeded"
    (pod,) = pods(v1, "params")
    assert pod.metadata.name == "params"  # a pod root node is named after the Workflow
    assert pod.spec.containers[0].args == [
        "dflt",
        "bee",
        "5",
        f"params/{NS}/{uid}",
        "2026-11-01T00:00:00Z",
        "params",
    ]
    root = nodes(wf)["params"]
    assert root["inputs"]["parameters"] == [
        {"name": "a", "default": "dflt", "value": "dflt"},
        {"name": "b", "value": "bee"},
        {"name": "n", "value": "5"},
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"entrypoint": "", "templates": [container()]},
            "invalid spec: spec.entrypoint is required",
        ),
        (
            {"entrypoint": "nope", "templates": [container()]},
            "invalid spec: template name 'nope' undefined",
        ),
        (
            {"entrypoint": "main", "templates": [container(), container()]},
            "invalid spec: spec.templates[1].name 'main' is not unique",
        ),
        (
            {
                "entrypoint": "main",
                "templates": [{"name": "main", "steps": [[{"name": "a", "template": "ghost"}]]}],
            },
            "invalid spec: templates.main.steps[0].a template name 'ghost' undefined",
        ),
        (
            {
                "entrypoint": "main",
                "templates": [
                    {"name": "main", "steps": [[{"name": "a", "template": "echo"}]]},
                    {**container("echo"), "inputs": {"parameters": [{"name": "x"}]}},
                ],
            },
            "invalid spec: templates.main.steps[0].a templates.echo inputs.parameters.x was not "
            "supplied",
        ),
        (
            {
                "entrypoint": "main",
                "templates": [
                    {
                        "name": "main",
                        "container": {"image": IMAGE, "args": ["{{inputs.parameters.nope}}"]},
                    }
                ],
            },
            "invalid spec: templates.main: failed to resolve {{inputs.parameters.nope}}",
        ),
        (
            {
                "entrypoint": "main",
                "templates": [
                    {
                        "name": "main",
                        "steps": [
                            [
                                {
                                    "name": "a",
                                    "template": "echo",
                                    "arguments": {
                                        "parameters": [
                                            {"name": "x", "value": "{{workflow.parameters.typo}}"}
                                        ]
                                    },
                                }
                            ]
                        ],
                    },
                    {**container("echo"), "inputs": {"parameters": [{"name": "x"}]}},
                ],
            },
            "invalid spec: templates.main.steps failed to resolve {{workflow.parameters.typo}}",
        ),
    ],
    ids=[
        "no-entrypoint",
        "missing-entrypoint",
        "duplicate",
        "missing-step",
        "not-supplied",
        "unresolvable",
        "unresolvable-in-step",
    ],
)
def test_an_invalid_spec_fails_the_workflow(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
    spec: dict[str, Any],
    message: str,
) -> None:
    submit(
        custom,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Workflow",
            "metadata": {"name": "bad"},
            "spec": spec,
        },
    )
    simulated_cluster.settle()
    st = status(custom, "bad")
    assert (st["phase"], st["message"]) == ("Failed", message)
    assert st["startedAt"] and st["finishedAt"]
    assert not pods(v1, "bad")


def test_with_items_of_maps_and_with_param(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    echo = {**container("echo"), "inputs": {"parameters": [{"name": "x"}]}}
    echo["container"] = {"image": IMAGE, "args": ["echo {{inputs.parameters.x}}"]}
    main = {
        "name": "main",
        "steps": [
            [
                {
                    "name": "fan",
                    "template": "echo",
                    "arguments": {"parameters": [{"name": "x", "value": "{{item.a}}-{{item.b}}"}]},
                    "withItems": [{"a": 1, "b": "x"}, {"b": "y", "a": 2}],
                },
                {
                    "name": "list",
                    "template": "echo",
                    "arguments": {"parameters": [{"name": "x", "value": "{{item}}"}]},
                    "withParam": '["p", 7]',
                },
                {
                    "name": "seq",
                    "template": "echo",
                    "arguments": {"parameters": [{"name": "x", "value": "n{{item}}"}]},
                    "withSequence": {"start": "3", "count": "2"},
                },
            ]
        ],
    }
    submit(custom, workflow("items", [main, echo]))
    wf = run(simulated_cluster, custom, "items")
    assert wf["status"]["phase"] == "Succeeded"
    by_name = nodes(wf)
    assert [n for n in by_name if n.startswith("items[0].")] == [
        "items[0].fan(0:a:1,b:x)",
        "items[0].fan(1:a:2,b:y)",
        "items[0].list(0:p)",
        "items[0].list(1:7)",
        "items[0].seq(0:3)",
        "items[0].seq(1:4)",
    ]
    assert sorted(p.spec.containers[0].args[0] for p in pods(v1, "items")) == [
        "echo 1-x",
        "echo 2-y",
        "echo 7",
        "echo n3",
        "echo n4",
        "echo p",
    ]


def test_with_param_that_is_not_a_list_fails(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    main = {
        "name": "main",
        "steps": [[{"name": "fan", "template": "leaf", "withParam": "nope"}]],
    }
    submit(custom, workflow("badparam", [main, container("leaf")]))
    simulated_cluster.settle()
    st = status(custom, "badparam")
    message = "withParam value could not be parsed as a JSON list: nope"
    assert (st["phase"], st["message"]) == ("Failed", message)
    sg = nodes(get(custom, "badparam"))["badparam[0]"]
    assert (sg["phase"], sg["message"]) == ("Error", message)


def test_empty_with_param_skips_the_step(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    main = {"name": "main", "steps": [[{"name": "fan", "template": "leaf", "withParam": "[]"}]]}
    submit(custom, workflow("empty", [main, container("leaf")]))
    wf = run(simulated_cluster, custom, "empty")
    skipped = nodes(wf)["empty[0].fan"]
    assert (wf["status"]["phase"], wf["status"]["progress"]) == ("Succeeded", "0/0")
    assert (skipped["type"], skipped["phase"], skipped["message"]) == (
        "Skipped",
        "Skipped",
        "Skipped, empty params",
    )


def test_when_skips_a_step(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    main = {
        "name": "main",
        "inputs": {"parameters": [{"name": "go", "value": "no"}]},
        "steps": [
            [
                {"name": "yes", "template": "leaf", "when": "{{inputs.parameters.go}} == no"},
                {"name": "no", "template": "leaf", "when": "'{{inputs.parameters.go}}' == 'yes'"},
            ]
        ],
    }
    submit(custom, workflow("when", [main, container("leaf")]))
    wf = run(simulated_cluster, custom, "when")
    by_name = nodes(wf)
    assert by_name["when[0].yes"]["phase"] == "Succeeded"
    assert (by_name["when[0].no"]["type"], by_name["when[0].no"]["message"]) == (
        "Skipped",
        "when ''no' == 'yes'' evaluated false",
    )


# --- DAG ----------------------------------------------------------------------------------------


def dag_workflow(name: str, fail: str | None = None) -> dict[str, Any]:
    def task(task_name: str, deps: list[str], **extra: Any) -> dict[str, Any]:
        found: dict[str, Any] = {"name": task_name, "template": "leaf", "dependencies": deps}
        found.update(extra)
        if task_name == fail:
            found["template"] = "broken"
        return found

    out = {**container("out", seconds=1, files={"/tmp/x": "hello"})}
    out["outputs"] = {"parameters": [{"name": "x", "valueFrom": {"path": "/tmp/x"}}]}
    use = {
        **container("use"),
        "inputs": {"parameters": [{"name": "x"}]},
    }
    use["container"] = {"image": IMAGE, "args": ["got {{inputs.parameters.x}}"]}
    dag = {
        "name": "main",
        "dag": {
            "tasks": [
                task("A", [], template="out"),
                task("B", ["A"], seconds=1),
                task("C", ["A"]),
                {
                    "name": "D",
                    "template": "use",
                    "dependencies": ["B", "C"],
                    "arguments": {
                        "parameters": [{"name": "x", "value": "{{tasks.A.outputs.parameters.x}}"}]
                    },
                },
                {"name": "E", "template": "leaf", "dependencies": ["A"], "withItems": [1, 2]},
            ]
        },
    }
    return workflow(
        name, [dag, container("leaf", seconds=2), out, use, container("broken", exitCode=1)]
    )


def test_dag_runs_tasks_after_their_dependencies(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    submit(custom, dag_workflow("dag"))
    wf = run(simulated_cluster, custom, "dag")
    assert wf["status"]["phase"] == "Succeeded"
    by_name = nodes(wf)
    ids = {n: by_name[f"dag.{n}"]["id"] for n in "ABCDE"}
    root = by_name["dag"]
    assert root["type"] == "DAG" and root["children"] == [ids["A"]]
    assert by_name["dag.A"]["children"] == [ids["B"], ids["C"], ids["E"]]
    assert by_name["dag.B"]["children"] == by_name["dag.C"]["children"] == [ids["D"]]
    assert by_name["dag.B"]["displayName"] == "B" and by_name["dag.B"]["boundaryID"] == "dag"
    group = by_name["dag.E"]
    assert group["type"] == "TaskGroup"
    assert [n["name"] for n in wf["status"]["nodes"].values() if n["id"] in group["children"]] == [
        "dag.E(0:1)",
        "dag.E(1:2)",
    ]
    assert by_name["dag.D"]["startedAt"] >= by_name["dag.B"]["finishedAt"]
    assert sorted(root["outboundNodes"]) == sorted(
        [ids["D"], by_name["dag.E(0:1)"]["id"], by_name["dag.E(1:2)"]["id"]]
    )
    assert any(p.spec.containers[0].args == ["got hello"] for p in pods(v1, "dag"))
    assert wf["status"]["progress"] == "6/6"


def test_a_failed_dag_task_stops_its_dependents(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    submit(custom, dag_workflow("dagfail", fail="B"))
    wf = run(simulated_cluster, custom, "dagfail")
    by_name = nodes(wf)
    assert wf["status"]["phase"] == "Failed"
    assert by_name["dagfail.B"]["phase"] == "Failed"
    assert by_name["dagfail.B"]["message"] == "Error (exit code 1)"
    assert by_name["dagfail.C"]["phase"] == "Succeeded"  # already running: it finishes
    omitted = by_name["dagfail.D"]
    assert (omitted["type"], omitted["phase"], omitted["message"]) == (
        "Skipped",
        "Omitted",
        "omitted: depends condition not met",
    )
    assert "startedAt" in omitted and not [
        p for p in by_name.values() if p["type"] == "Pod" and p["name"] == "dagfail.D"
    ]
    assert by_name["dagfail"]["phase"] == "Failed"


# --- suspend, outputs, failures ------------------------------------------------------------------


def test_a_suspend_template_waits_without_a_pod(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    submit(custom, workflow("pause", [{"name": "pause", "suspend": {"duration": "60"}}]))
    simulated_cluster.settle()
    st = status(custom, "pause")
    node = st["nodes"]["pause"]
    assert (st["phase"], node["type"], node["phase"]) == ("Running", "Suspend", "Running")
    simulated_cluster.advance(59)
    assert status(custom, "pause")["phase"] == "Running"
    simulated_cluster.advance(1)
    st = status(custom, "pause")
    assert (st["phase"], st["progress"]) == ("Succeeded", "1/1")
    assert not pods(v1, "pause")


def test_suspend_durations_in_go_syntax(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    submit(custom, workflow("pause5m", [{"name": "pause", "suspend": {"duration": "5m"}}]))
    simulated_cluster.advance(299)
    assert status(custom, "pause5m")["phase"] == "Running"
    simulated_cluster.advance(1)
    assert status(custom, "pause5m")["phase"] == "Succeeded"


def test_output_parameters_defaults_and_global_names(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    tmpl = container("main", files={"/tmp/a": "value a\n"})
    tmpl["outputs"] = {
        "parameters": [
            {"name": "a", "valueFrom": {"path": "/tmp/a"}, "globalName": "ga"},
            {"name": "b", "valueFrom": {"path": "/tmp/b", "default": "fallback"}},
        ]
    }
    submit(custom, workflow("outs", [tmpl]))
    wf = run(simulated_cluster, custom, "outs")
    assert wf["status"]["phase"] == "Succeeded"
    params = {p["name"]: p["value"] for p in nodes(wf)["outs"]["outputs"]["parameters"]}
    assert params == {"a": "value a", "b": "fallback"}
    assert wf["status"]["outputs"] == {"parameters": [{"name": "ga", "value": "value a"}]}


def test_a_missing_output_file_errors_the_node(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    tmpl = container("main")
    tmpl["outputs"] = {"parameters": [{"name": "a", "valueFrom": {"path": "/tmp/nope"}}]}
    submit(custom, workflow("nofile", [tmpl]))
    wf = run(simulated_cluster, custom, "nofile")
    message = (
        "Error (exit code 1): open /var/run/argo/outputs/parameters/tmp/nope: "
        "no such file or directory"
    )
    node = nodes(wf)["nofile"]
    assert (node["phase"], node["message"]) == ("Error", message)
    assert (wf["status"]["phase"], wf["status"]["message"]) == ("Error", message)


def test_a_failed_step_fails_the_workflow_naming_the_child(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    main = {
        "name": "main",
        "steps": [[{"name": "a", "template": "boom"}], [{"name": "b", "template": "boom"}]],
    }
    submit(
        custom, workflow("fails", [main, container("boom", exitCode=3, terminationMessage="bad")])
    )
    wf = run(simulated_cluster, custom, "fails")
    by_name = nodes(wf)
    a = by_name["fails[0].a"]
    assert (a["phase"], a["message"], a["outputs"]["exitCode"]) == (
        "Failed",
        "Error (exit code 3): bad",
        "3",
    )
    child_failed = f"child '{a['id']}' failed"
    assert (by_name["fails[0]"]["phase"], by_name["fails[0]"]["message"]) == (
        "Failed",
        child_failed,
    )
    assert "fails[1]" not in by_name
    st = wf["status"]
    assert (st["phase"], st["message"], st["progress"]) == ("Failed", child_failed, "0/1")
    assert wf["metadata"]["labels"]["workflows.argoproj.io/phase"] == "Failed"


def test_continue_on_failed_lets_the_steps_go_on(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    main = {
        "name": "main",
        "steps": [
            [{"name": "a", "template": "boom", "continueOn": {"failed": True}}],
            [{"name": "b", "template": "leaf"}],
        ],
    }
    submit(custom, workflow("goon", [main, container("boom", exitCode=2), container("leaf")]))
    wf = run(simulated_cluster, custom, "goon")
    assert wf["status"]["phase"] == "Succeeded"
    assert nodes(wf)["goon[1].b"]["phase"] == "Succeeded"


def test_an_unschedulable_pod_keeps_its_node_pending(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    tmpl = container("big")
    tmpl["container"]["resources"] = {"requests": {"cpu": "500"}}
    submit(custom, workflow("big", [tmpl]))
    simulated_cluster.advance(5)
    st = status(custom, "big")
    node = st["nodes"]["big"]
    assert st["phase"] == "Running"
    assert node["phase"] == "Pending"
    assert node["message"].startswith("Unschedulable: 0/2 nodes are available")


def test_a_pending_pod_deleted_is_created_again(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    tmpl = container("big")
    tmpl["container"]["resources"] = {"requests": {"cpu": "500"}}
    submit(custom, workflow("again", [tmpl]))
    simulated_cluster.advance(5)
    (first,) = pods(v1, "again")
    v1.delete_namespaced_pod("again", NS, grace_period_seconds=0)
    simulated_cluster.settle()
    (second,) = pods(v1, "again")
    assert second.metadata.name == "again" and second.metadata.uid != first.metadata.uid
    assert status(custom, "again")["nodes"]["again"]["phase"] == "Pending"


def test_a_pod_deleted_behind_the_controllers_back_errors_its_node(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    submit(custom, workflow("gone", [container("main", seconds=100)]))
    simulated_cluster.advance(5)
    assert status(custom, "gone")["nodes"]["gone"]["phase"] == "Running"
    v1.delete_namespaced_pod("gone", NS, grace_period_seconds=0)
    simulated_cluster.settle()
    st = status(custom, "gone")
    assert (st["nodes"]["gone"]["phase"], st["nodes"]["gone"]["message"]) == (
        "Error",
        "pod deleted",
    )
    assert (st["phase"], st["message"]) == ("Error", "pod deleted")


# --- shutdown, suspend, deadlines ---------------------------------------------------------------


def two_steps(name: str, on_exit: bool = False) -> dict[str, Any]:
    main = {
        "name": "main",
        "steps": [[{"name": "long", "template": "long"}], [{"name": "next", "template": "long"}]],
    }
    templates = [main, container("long", seconds=300), container("bye", seconds=5)]
    return workflow(name, templates, **({"onExit": "bye"} if on_exit else {}))


@pytest.mark.parametrize("strategy", ["Terminate", "Stop"])
def test_shutdown_stops_the_workflow(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
    strategy: str,
) -> None:
    name = f"shut-{strategy.lower()}"
    submit(custom, two_steps(name, on_exit=True))
    simulated_cluster.advance(10)
    assert status(custom, name)["phase"] == "Running"
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "workflows", name, {"spec": {"shutdown": strategy}}
    )
    simulated_cluster.settle()
    wf = get(custom, name)
    by_name = nodes(wf)
    long = by_name[f"{name}[0].long"]
    assert (long["phase"], long["message"]) == (
        "Failed",
        f"workflow shutdown with strategy:  {strategy}",
    )
    assert f"{name}[1]" not in by_name
    # The running pod is killed (deleted): none of it is left running.
    assert not [
        p for p in pods(v1, name) if "long" in p.metadata.name and not p.metadata.deletion_timestamp
    ]
    if strategy == "Terminate":
        st = wf["status"]
        assert (st["phase"], st["message"]) == ("Failed", "Stopped with strategy 'Terminate'")
        assert f"{name}.onExit" not in by_name
        assert interpret_workflow(wf, name=name, namespace=NS).reason == "Terminated"
        return
    # Stop: the exit handler still runs, then the Workflow fails.
    assert by_name[f"{name}.onExit"]["phase"] in ("Pending", "Running")
    assert wf["status"]["phase"] == "Running"
    wf = run(simulated_cluster, custom, name)
    st = wf["status"]
    assert (st["phase"], st["message"]) == ("Failed", "Stopped with strategy 'Stop'")
    assert interpret_workflow(wf, name=name, namespace=NS).reason == "Stopped"
    exit_node = nodes(wf)[f"{name}.onExit"]
    assert (exit_node["phase"], exit_node["displayName"]) == ("Succeeded", f"{name}.onExit")
    bye = next(p for p in pods(v1, name) if "bye" in p.metadata.name)
    assert bye.metadata.labels["workflows.argoproj.io/on-exit"] == "true"


def test_terminate_fails_a_suspended_node(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    submit(custom, workflow("napping", [{"name": "nap", "suspend": {"duration": "600"}}]))
    simulated_cluster.advance(10)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "workflows", "napping", {"spec": {"shutdown": "Terminate"}}
    )
    simulated_cluster.settle()
    st = status(custom, "napping")
    assert (st["phase"], st["message"]) == ("Failed", "Stopped with strategy 'Terminate'")
    assert st["nodes"]["napping"]["message"] == "Stopped with strategy 'Terminate'"


def test_a_finished_workflow_ignores_shutdown(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    submit(custom, workflow("done", [container()]))
    wf = run(simulated_cluster, custom, "done")
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "workflows", "done", {"spec": {"shutdown": "Terminate"}}
    )
    simulated_cluster.advance(5)
    after = get(custom, "done")
    assert after["status"] == wf["status"]


def test_exit_handler_sees_the_workflow_status(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    bye = container("bye")
    bye["container"]["args"] = ["status={{workflow.status}}"]
    submit(custom, workflow("exits", [container("main", exitCode=1), bye], onExit="bye"))
    wf = run(simulated_cluster, custom, "exits")
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == "Error (exit code 1)"
    exit_pod = next(p for p in pods(v1, "exits") if "bye" in p.metadata.name)
    assert exit_pod.spec.containers[0].args == ["status=Failed"]
    assert nodes(wf)["exits.onExit"]["phase"] == "Succeeded"


def test_spec_suspend_holds_new_steps(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    main = {
        "name": "main",
        "steps": [[{"name": "a", "template": "leaf"}], [{"name": "b", "template": "leaf"}]],
    }
    submit(custom, workflow("held", [main, container("leaf", seconds=5)]))
    simulated_cluster.advance(1)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "workflows", "held", {"spec": {"suspend": True}}
    )
    simulated_cluster.advance(30)
    by_name = nodes(get(custom, "held"))
    assert by_name["held[0].a"]["phase"] == "Succeeded"  # what runs goes on
    assert "held[1]" not in by_name
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, NS, "workflows", "held", {"spec": {"suspend": False}}
    )
    wf = run(simulated_cluster, custom, "held")
    assert wf["status"]["phase"] == "Succeeded"


def test_active_deadline_seconds_fails_the_workflow(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    submit(custom, workflow("late", [container("main", seconds=300)], activeDeadlineSeconds=30))
    simulated_cluster.advance(5)
    (pod,) = pods(v1, "late")
    assert 0 < pod.spec.active_deadline_seconds <= 30
    simulated_cluster.advance(24)
    assert status(custom, "late")["phase"] == "Running"
    simulated_cluster.advance(1)
    st = status(custom, "late")
    assert (st["phase"], st["message"]) == ("Failed", "Step exceeded its deadline")
    assert st["nodes"]["late"]["message"] == "Step exceeded its deadline"
    wf = get(custom, "late")
    assert interpret_workflow(wf, name="late", namespace=NS).reason == "DeadlineExceeded"


def test_workflow_parallelism_limits_running_pods(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    main = {
        "name": "main",
        "steps": [[{"name": "fan", "template": "leaf", "withItems": [1, 2, 3, 4, 5]}]],
    }
    submit(custom, workflow("narrow", [main, container("leaf", seconds=10)], parallelism=2))
    most = 0
    for _ in range(60):
        simulated_cluster.advance(1)
        st = status(custom, "narrow")
        active = [
            n
            for n in st["nodes"].values()
            if n["type"] == "Pod" and n["phase"] in ("Pending", "Running")
        ]
        most = max(most, len(active))
        if st.get("finishedAt"):
            break
    assert (st["phase"], most) == ("Succeeded", 2)


def test_template_parallelism_limits_a_steps_template(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    main = {
        "name": "main",
        "parallelism": 1,
        "steps": [[{"name": "fan", "template": "leaf", "withItems": [1, 2, 3]}]],
    }
    submit(custom, workflow("serial", [main, container("leaf", seconds=10)]))
    simulated_cluster.advance(5)
    st = status(custom, "serial")
    assert sum(1 for n in st["nodes"].values() if n["type"] == "Pod") == 1
    wf = run(simulated_cluster, custom, "serial")
    assert wf["status"]["phase"] == "Succeeded"
    assert wf["status"]["progress"] == "3/3"


# --- controller parallelism ---------------------------------------------------------------------


@pytest.mark.simulated_cluster(config(parallelism=1))
def test_controller_parallelism_postpones_workflows(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    for name in ("first", "second", "third"):
        submit(custom, workflow(name, [container("main", seconds=30)]))
    simulated_cluster.advance(10)
    assert status(custom, "first")["phase"] == "Running"
    for name in ("second", "third"):
        st = get(custom, name)
        assert (st["status"]["phase"], st["status"]["message"]) == ("Pending", POSTPONED)
        assert st["status"]["startedAt"] is None
        assert st["metadata"]["labels"]["workflows.argoproj.io/phase"] == "Pending"
    simulated_cluster.advance(25)
    assert status(custom, "first")["phase"] == "Succeeded"
    second = status(custom, "second")
    assert second["phase"] == "Running" and "message" not in second
    assert status(custom, "third")["phase"] == "Pending"
    run(simulated_cluster, custom, "third")
    assert status(custom, "third")["phase"] == "Succeeded"


# --- retries ------------------------------------------------------------------------------------


def test_retries_until_the_limit(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    tmpl = container("flaky", exitCode=1)
    tmpl["container"]["args"] = ["attempt {{retries}}"]
    tmpl["retryStrategy"] = {"limit": 2}
    submit(custom, workflow("retry", [tmpl]))
    wf = run(simulated_cluster, custom, "retry")
    by_name = nodes(wf)
    root = by_name["retry"]
    assert root["type"] == "Retry"
    assert root["children"] == [by_name[f"retry({i})"]["id"] for i in range(3)]
    for i in range(3):
        attempt = by_name[f"retry({i})"]
        assert (attempt["type"], attempt["phase"], attempt["displayName"]) == (
            "Pod",
            "Failed",
            f"retry({i})",
        )
        assert attempt["nodeFlag"] == {"retried": True}
    assert (root["phase"], root["message"]) == ("Failed", "No more retries left")
    assert (wf["status"]["phase"], wf["status"]["message"]) == ("Failed", "No more retries left")
    state = interpret_workflow(wf, name="retry", namespace=NS)
    expected = {state.pod_name(n) for n in state.nodes.values() if n.type == "Pod"}
    found = pods(v1, "retry")
    assert {p.metadata.name for p in found} == expected
    assert sorted(p.spec.containers[0].args[0] for p in found) == [
        "attempt 0",
        "attempt 1",
        "attempt 2",
    ]


def test_a_retry_that_succeeds_and_backoff(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    simulated_cluster.add_behaviour({"match": {"args": "flaky"}, "exitCode": 1, "times": 2})
    tmpl = container("flaky")
    tmpl["retryStrategy"] = {"limit": 3, "backoff": {"duration": "10", "factor": 2}}
    submit(custom, workflow("backoff", [tmpl]))
    simulated_cluster.advance(3)
    by_name = nodes(get(custom, "backoff"))
    assert by_name["backoff(0)"]["phase"] == "Failed"
    assert by_name["backoff"]["message"] == "Backoff for 10 seconds"
    assert "backoff(1)" not in by_name
    first_done = simulated_cluster.state.clock.parse(by_name["backoff(0)"]["finishedAt"])
    simulated_cluster.advance(first_done + 10 - simulated_cluster.now())
    by_name = nodes(get(custom, "backoff"))
    assert "backoff(1)" in by_name
    wf = run(simulated_cluster, custom, "backoff")
    by_name = nodes(wf)
    second_done = simulated_cluster.state.clock.parse(by_name["backoff(1)"]["finishedAt"])
    third_start = simulated_cluster.state.clock.parse(by_name["backoff(2)"]["startedAt"])
    assert third_start - second_done == 20  # 10 s * 2^1
    assert wf["status"]["phase"] == "Succeeded"
    assert by_name["backoff"]["outputs"]["exitCode"] == "0"
    assert "message" not in by_name["backoff"]


def test_retry_policy_on_error_does_not_retry_a_failure(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    tmpl = container("flaky", exitCode=1)
    tmpl["retryStrategy"] = {"limit": 3, "retryPolicy": "OnError"}
    submit(custom, workflow("onerror", [tmpl]))
    wf = run(simulated_cluster, custom, "onerror")
    by_name = nodes(wf)
    assert [n for n in by_name if n.startswith("onerror(")] == ["onerror(0)"]
    assert (by_name["onerror"]["phase"], by_name["onerror"]["message"]) == (
        "Failed",
        "Error (exit code 1)",
    )


# --- templates ----------------------------------------------------------------------------------

TEMPLATES = {
    "workflowTemplates": [
        {
            "metadata": {"name": "greet", "namespace": NS},
            "spec": {
                "entrypoint": "main",
                "arguments": {
                    "parameters": [
                        {"name": "who", "value": "world"},
                        {"name": "how", "value": "hi"},
                    ]
                },
                "templates": [
                    {
                        "name": "main",
                        "container": {
                            "image": IMAGE,
                            "args": ["{{workflow.parameters.how}} {{workflow.parameters.who}}"],
                        },
                    }
                ],
            },
        }
    ],
    "clusterWorkflowTemplates": [
        {"metadata": {"name": "shared"}, "spec": {"templates": [container("leaf")]}}
    ],
}


@pytest.mark.simulated_cluster(config(**TEMPLATES))
def test_workflow_template_ref(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "workflowtemplates")
    assert [t["metadata"]["name"] for t in listed["items"]] == ["greet"]
    shared = custom.get_cluster_custom_object(GROUP, VERSION, "clusterworkflowtemplates", "shared")
    assert shared["kind"] == "ClusterWorkflowTemplate"
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"generateName": "greet-"},
        "spec": {
            "workflowTemplateRef": {"name": "greet"},
            "arguments": {"parameters": [{"name": "who", "value": "sim"}]},
        },
    }
    name = submit(custom, manifest)["metadata"]["name"]
    wf = run(simulated_cluster, custom, name)
    assert wf["status"]["phase"] == "Succeeded"
    stored = wf["status"]["storedWorkflowTemplateSpec"]
    assert stored["entrypoint"] == "main"
    assert stored["arguments"]["parameters"] == [
        {"name": "who", "value": "sim"},
        {"name": "how", "value": "hi"},
    ]
    (pod,) = pods(v1, name)
    assert pod.spec.containers[0].args == ["hi sim"]


@pytest.mark.simulated_cluster(config(**TEMPLATES))
@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ({"name": "ghost"}, 'workflowtemplates.argoproj.io "ghost" not found'),
        (
            {"name": "ghost", "clusterScope": True},
            'clusterworkflowtemplates.argoproj.io "ghost" not found',
        ),
    ],
)
def test_a_missing_workflow_template_errors_the_workflow(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    ref: dict[str, Any],
    message: str,
) -> None:
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": "orphan"},
        "spec": {"workflowTemplateRef": ref},
    }
    submit(custom, manifest)
    simulated_cluster.settle()
    st = status(custom, "orphan")
    assert (st["phase"], st["message"]) == ("Error", message)
    assert st["finishedAt"]


@pytest.mark.simulated_cluster(config(**TEMPLATES))
def test_template_ref_in_a_step(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    ref = {"name": "shared", "template": "leaf", "clusterScope": True}
    main = {"name": "main", "steps": [[{"name": "a", "templateRef": ref}]]}
    submit(custom, workflow("refs", [main]))
    wf = run(simulated_cluster, custom, "refs")
    assert wf["status"]["phase"] == "Succeeded"
    node = nodes(wf)["refs[0].a"]
    assert node["templateRef"] == ref and "templateName" not in node
    (pod,) = pods(v1, "refs")
    assert pod.metadata.name == f"refs-leaf-{node['id'].rsplit('-', 1)[1]}"
    assert pod.metadata.name == interpret_workflow(wf, name="refs", namespace=NS).pod_name(
        interpret_workflow(wf, name="refs", namespace=NS).nodes[node["id"]]
    )


# --- cleanup: TTL and pod GC ----------------------------------------------------------------------


def test_ttl_deletes_the_workflow_and_its_pods(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    submit(custom, workflow("ttl", [container()], ttlStrategy={"secondsAfterCompletion": 30}))
    wf = run(simulated_cluster, custom, "ttl")
    done = simulated_cluster.state.clock.parse(wf["status"]["finishedAt"])
    simulated_cluster.advance(done + 29 - simulated_cluster.now())
    assert get(custom, "ttl") and pods(v1, "ttl")
    simulated_cluster.advance(1)
    with pytest.raises(ApiException) as caught:
        get(custom, "ttl")
    assert caught.value.status == 404
    simulated_cluster.settle()
    assert not pods(v1, "ttl")


def test_ttl_after_failure_wins_for_a_failed_workflow(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    ttl = {"secondsAfterCompletion": 100, "secondsAfterSuccess": 1, "secondsAfterFailure": 10}
    submit(custom, workflow("ttlfail", [container(exitCode=1)], ttlStrategy=ttl))
    wf = run(simulated_cluster, custom, "ttlfail")
    done = simulated_cluster.state.clock.parse(wf["status"]["finishedAt"])
    simulated_cluster.advance(done + 9 - simulated_cluster.now())
    assert get(custom, "ttlfail")
    simulated_cluster.advance(1)
    assert simulated_cluster.get("workflows", NS, "ttlfail") is None


def test_pods_stay_without_pod_gc(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    submit(custom, workflow("keep", [container()]))
    run(simulated_cluster, custom, "keep")
    simulated_cluster.advance(3600)
    assert [p.status.phase for p in pods(v1, "keep")] == ["Succeeded"]


def test_pod_gc_on_pod_completion(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    main = {
        "name": "main",
        "steps": [[{"name": "a", "template": "short"}], [{"name": "b", "template": "long"}]],
    }
    templates = [main, container("short", seconds=1), container("long", seconds=60)]
    submit(custom, workflow("gcpod", templates, podGC={"strategy": "OnPodCompletion"}))
    simulated_cluster.advance(10)
    assert status(custom, "gcpod")["phase"] == "Running"
    assert [p.metadata.name.split("-")[1] for p in pods(v1, "gcpod")] == ["long"]
    wf = run(simulated_cluster, custom, "gcpod")
    assert wf["status"]["phase"] == "Succeeded"
    simulated_cluster.settle()
    assert not pods(v1, "gcpod")


@pytest.mark.parametrize(("exit_code", "kept"), [(0, False), (1, True)])
def test_pod_gc_on_workflow_success_after_a_delay(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
    exit_code: int,
    kept: bool,
) -> None:
    gc = {"strategy": "OnWorkflowSuccess", "deleteDelayDuration": "30s"}
    submit(custom, workflow("gcwf", [container(exitCode=exit_code)], podGC=gc))
    wf = run(simulated_cluster, custom, "gcwf")
    done = simulated_cluster.state.clock.parse(wf["status"]["finishedAt"])
    simulated_cluster.advance(done + 29 - simulated_cluster.now())
    assert len(pods(v1, "gcwf")) == 1
    simulated_cluster.advance(1)
    assert len(pods(v1, "gcwf")) == int(kept)


def test_deleting_the_workflow_deletes_its_pods(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    submit(custom, workflow("doomed", [container("main", seconds=100)]))
    simulated_cluster.advance(5)
    assert pods(v1, "doomed")
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, "workflows", "doomed")
    simulated_cluster.advance(1)
    assert not [p for p in pods(v1, "doomed") if not p.metadata.deletion_timestamp]


# --- status storage -------------------------------------------------------------------------------


@pytest.mark.simulated_cluster(config(compressNodes=True))
def test_compressed_nodes(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    import base64
    import gzip

    submit(custom, seed())
    name = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "workflows")["items"][0][
        "metadata"
    ]["name"]
    wf = run(simulated_cluster, custom, name)
    st = wf["status"]
    assert "nodes" not in st and st["phase"] == "Succeeded" and st["progress"] == "7/7"
    raw = json.loads(gzip.decompress(base64.b64decode(st["compressedNodes"])))
    assert len(raw) == 19 and raw[name]["phase"] == "Succeeded"
    assert nodes(wf)[f"{name}[0].task1"]["outputs"]["parameters"][0]["value"] == "[1, 2, 3]"


@pytest.mark.simulated_cluster(config(offloadNodes=True))
def test_offloaded_nodes(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    name = submit(custom, seed())["metadata"]["name"]
    simulated_cluster.advance(3)
    first = status(custom, name)
    assert "nodes" not in first and "compressedNodes" not in first
    assert first["offloadNodeStatusVersion"]
    wf = run(simulated_cluster, custom, name)
    st = wf["status"]
    assert (st["phase"], st["progress"]) == ("Succeeded", "7/7")
    assert st["offloadNodeStatusVersion"] != first["offloadNodeStatusVersion"]
    assert decode_nodes(st)[0] == {}


# --- pods ---------------------------------------------------------------------------------------


def test_the_pod_carries_the_template(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    tmpl = {
        "name": "main",
        "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        "nodeSelector": {"disk": "ssd"},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "container": {
            "image": IMAGE,
            "command": ["python"],
            "args": ["run.py"],
            "env": [{"name": "MODE", "value": "test"}],
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        },
    }
    submit(custom, workflow("shaped", [tmpl], serviceAccountName="runner"))
    simulated_cluster.advance(1)
    (pod,) = pods(v1, "shaped")
    assert pod.metadata.labels["team"] == "a"
    assert pod.metadata.labels["workflows.argoproj.io/completed"] == "false"
    assert pod.metadata.annotations["note"] == "x"
    assert pod.spec.node_selector == {"disk": "ssd"}
    assert pod.spec.tolerations[0].key == "gpu"
    assert pod.spec.service_account_name == "runner"
    main = pod.spec.containers[0]
    assert (main.name, main.command, main.args) == ("main", ["python"], ["run.py"])
    assert [(e.name, e.value) for e in main.env] == [("MODE", "test")]
    assert main.resources.requests == {"cpu": "1", "memory": "1Gi"}
    node = status(custom, "shaped")["nodes"]["shaped"]
    assert node["phase"] == "Pending"  # no node has disk=ssd
    assert node["message"].startswith("Unschedulable: ")


# --- scale ----------------------------------------------------------------------------------------


def test_200_small_workflows(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    import time

    manifests = [
        {
            **workflow(f"w{i:03d}", [container("main", seconds=30)]),
            "metadata": {"name": f"w{i:03d}", "namespace": NS},
        }
        for i in range(200)
    ]
    started = time.monotonic()
    simulated_cluster.call(lambda: [simulated_cluster.create(m) for m in manifests])
    simulated_cluster.advance(5)
    simulated_cluster.advance(30)
    items = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "workflows")["items"]
    assert [w["status"]["phase"] for w in items] == ["Succeeded"] * 200
    assert time.monotonic() - started < 60


def test_50_workflows_of_30_pods(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    import time

    main = {
        "name": "main",
        "steps": [
            [{"name": "first", "template": "leaf"}],
            [{"name": "fan", "template": "leaf", "withItems": list(range(28))}],
            [{"name": "last", "template": "leaf"}],
        ],
    }
    manifests = [
        {
            **workflow(f"big{i:02d}", [main, container("leaf", seconds=5)]),
            "metadata": {"name": f"big{i:02d}", "namespace": NS},
        }
        for i in range(50)
    ]
    started = time.monotonic()
    simulated_cluster.call(lambda: [simulated_cluster.create(m) for m in manifests])
    # 1400 pods of the fan-out step share two nodes of 110 pods each.
    for _ in range(60):
        simulated_cluster.advance(10)
        items = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "workflows")["items"]
        if all(w["status"].get("finishedAt") for w in items):
            break
    assert [(w["status"]["phase"], w["status"]["progress"]) for w in items] == [
        ("Succeeded", "30/30")
    ] * 50
    assert time.monotonic() - started < 120


# --- script templates and outputs.result --------------------------------------------------------


def script(name: str, stdout: str, source: str = "print('hi')") -> dict[str, Any]:
    """A script template whose container prints ``stdout``."""
    return {
        "name": name,
        "metadata": {"annotations": {BEHAVIOUR: json.dumps({"stdout": stdout, "seconds": 1})}},
        "script": {"image": "python:3.12", "command": ["python"], "source": source},
    }


def test_a_script_template_runs_its_source_and_its_result_feeds_the_next_step(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    templates = [
        {
            "name": "main",
            "steps": [
                [{"name": "gen", "template": "gen"}, {"name": "quiet", "template": "quiet"}],
                [
                    {
                        "name": "use",
                        "template": "use",
                        "arguments": {
                            "parameters": [{"name": "n", "value": "{{steps.gen.outputs.result}}"}]
                        },
                        "when": "{{steps.gen.outputs.result}} == 42",
                    }
                ],
            ],
        },
        script("gen", "42\n", "import random\nprint(42)\n"),
        script("quiet", "not read by anyone\n"),
        {
            "name": "use",
            "inputs": {"parameters": [{"name": "n"}]},
            "container": {"image": IMAGE, "args": ["got {{inputs.parameters.n}}"]},
        },
    ]
    submit(custom, workflow("scripted", templates))
    wf = run(simulated_cluster, custom, "scripted")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    by_name = nodes(wf)
    gen, quiet = by_name["scripted[0].gen"], by_name["scripted[0].quiet"]
    assert gen["type"] == "Pod" and gen["outputs"]["result"] == "42"
    # Argo keeps a result only where the calling template refers to it.
    assert "result" not in quiet.get("outputs", {})
    assert by_name["scripted[1].use"]["phase"] == "Succeeded"
    containers = {
        p.metadata.annotations[NODE_NAME]: p.spec.containers[0] for p in pods(v1, "scripted")
    }
    main = containers["scripted[0].gen"]
    assert (main.image, main.command, main.args) == (
        "python:3.12",
        ["python"],
        ["/argo/staging/script"],
    )
    assert containers["scripted[1].use"].args == ["got 42"]


def test_a_dag_task_reads_a_containers_result(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    templates = [
        {
            "name": "main",
            "dag": {
                "tasks": [
                    {"name": "count", "template": "count"},
                    {
                        "name": "report",
                        "template": "report",
                        "dependencies": ["count"],
                        "arguments": {
                            "parameters": [{"name": "n", "value": "{{tasks.count.outputs.result}}"}]
                        },
                    },
                ]
            },
        },
        container("count", seconds=1, stdout="7 rows\nok"),
        {
            "name": "report",
            "inputs": {"parameters": [{"name": "n"}]},
            "outputs": {"parameters": [{"name": "n", "value": "{{inputs.parameters.n}}"}]},
            "container": {"image": IMAGE, "args": ["report"]},
        },
    ]
    submit(custom, workflow("counted", templates))
    wf = run(simulated_cluster, custom, "counted")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    by_name = nodes(wf)
    assert by_name["counted.count"]["outputs"]["result"] == "7 rows\nok"
    assert by_name["counted.report"]["inputs"]["parameters"] == [
        {"name": "n", "value": "7 rows\nok"}
    ]


@pytest.mark.parametrize(
    ("node_name", "expected"),
    [
        ("wf[0].gen", "gen"),
        ("wf.fanout(0:1)(0)", "fanout"),
        ("wf[1].outer[0].inner(2:c)[3]", "inner"),
        ("wf", "wf"),
    ],
)
def test_step_or_task_name(node_name: str, expected: str) -> None:
    assert step_or_task_name(node_name) == expected


# --- DAG depends expressions ---------------------------------------------------------------------


def depends_workflow(name: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return workflow(
        name,
        [
            {"name": "main", "dag": {"tasks": tasks}},
            container("ok", seconds=1),
            container("slow", seconds=5),
            container("broken", seconds=1, exitCode=1),
        ],
    )


def phases(wf: dict[str, Any], name: str) -> dict[str, str]:
    prefix = f"{name}."
    return {
        n[len(prefix) :]: node["phase"] for n, node in nodes(wf).items() if n.startswith(prefix)
    }


def test_depends_runs_a_failure_handler_and_omits_what_needed_success(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    submit(
        custom,
        depends_workflow(
            "handled",
            [
                {"name": "train", "template": "broken"},
                {"name": "alert", "template": "ok", "depends": "train.Failed"},
                {"name": "publish", "template": "ok", "depends": "train"},
            ],
        ),
    )
    wf = run(simulated_cluster, custom, "handled")
    assert phases(wf, "handled") == {"train": "Failed", "alert": "Succeeded", "publish": "Omitted"}
    by_name = nodes(wf)
    assert by_name["handled.publish"]["message"] == "omitted: depends condition not met"
    assert by_name["handled.alert"]["startedAt"] >= by_name["handled.train"]["finishedAt"]
    # publish is a target whose branch (through train) failed: the DAG fails, as in Argo.
    assert wf["status"]["phase"] == "Failed"


def test_a_failure_that_depends_asks_for_does_not_fail_the_dag(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    submit(
        custom,
        depends_workflow(
            "recovered",
            [
                {"name": "try-fast", "template": "broken"},
                {"name": "fallback", "template": "ok", "depends": "try-fast.Failed"},
            ],
        ),
    )
    wf = run(simulated_cluster, custom, "recovered")
    assert phases(wf, "recovered") == {"try-fast": "Failed", "fallback": "Succeeded"}
    assert wf["status"]["phase"] == "Succeeded"


def test_depends_operators_precedence_and_hyphenated_names(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    submit(
        custom,
        depends_workflow(
            "logic",
            [
                {"name": "step-a", "template": "ok"},
                {"name": "step-b", "template": "slow"},
                {"name": "not-b", "template": "ok", "depends": "step-a && !step-b.Failed"},
                {
                    "name": "either",
                    "template": "ok",
                    "depends": "step-a.Failed || step-a.Succeeded && step-b.Succeeded",
                },
                {
                    "name": "grouped",
                    "template": "ok",
                    "depends": "(step-a.Failed || step-a.Succeeded) && step-b.Errored",
                },
            ],
        ),
    )
    wf = run(simulated_cluster, custom, "logic")
    assert phases(wf, "logic") == {
        "step-a": "Succeeded",
        "step-b": "Succeeded",
        "not-b": "Succeeded",
        "either": "Succeeded",
        "grouped": "Omitted",
    }
    by_name = nodes(wf)
    # "either" waited for both tasks it names, though the first would already decide "||".
    assert by_name["logic.either"]["startedAt"] >= by_name["logic.step-b"]["finishedAt"]
    assert wf["status"]["phase"] == "Succeeded"


def test_any_succeeded_and_all_failed_read_a_fan_out(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    template = {"name": "shard", "inputs": {"parameters": [{"name": "n"}]}, "container": {
        "image": IMAGE, "args": ["shard {{inputs.parameters.n}}"]}}  # fmt: skip
    manifest = depends_workflow(
        "fanout",
        [
            {
                "name": "shards",
                "template": "shard",
                "withItems": [1, 2, 3],
                "arguments": {"parameters": [{"name": "n", "value": "{{item}}"}]},
            },
            {"name": "some", "template": "ok", "depends": "shards.AnySucceeded"},
            {"name": "none", "template": "ok", "depends": "shards.AllFailed"},
        ],
    )
    manifest["spec"]["templates"].append(template)
    simulated_cluster.add_behaviour({"match": {"args": "shard 2"}, "exitCode": 1})
    submit(custom, manifest)
    wf = run(simulated_cluster, custom, "fanout")
    got = phases(wf, "fanout")
    assert (got["shards"], got["some"], got["none"]) == ("Failed", "Succeeded", "Omitted")


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (
            [
                {"name": "a", "template": "ok"},
                {"name": "b", "template": "ok", "depends": "a"},
                {"name": "c", "template": "ok", "dependencies": ["a"]},
            ],
            "invalid spec: templates.main cannot use both 'depends' and 'dependencies' in the "
            "same DAG template",
        ),
        (
            [{"name": "a", "template": "ok"}, {"name": "b", "template": "ok", "depends": "a.Done"}],
            "invalid spec: templates.main.tasks.b task result 'Done' for task 'a' is invalid",
        ),
        (
            [{"name": "a", "template": "ok"}, {"name": "b", "template": "ok", "depends": "x && a"}],
            "invalid spec: templates.main.tasks.b dependency 'x' not defined",
        ),
    ],
)
def test_invalid_depends_fail_the_workflow_with_argos_words(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    tasks: list[dict[str, Any]],
    message: str,
) -> None:
    submit(custom, depends_workflow("baddeps", tasks))
    simulated_cluster.settle()
    st = status(custom, "baddeps")
    assert (st["phase"], st["message"]) == ("Failed", message)


@pytest.mark.parametrize("inner_kind", ["steps", "dag"])
def test_template_parallelism_over_nested_templates_runs_them_one_at_a_time(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi, inner_kind: str
) -> None:
    """A steps template with ``parallelism: 1`` over nested steps or DAGs that each run two pods
    at once: its own limit counts its own pods, so the nested ones finish and the next starts."""
    jobs = {"name": "jobs", "template": "job", "withItems": [1, 2]}
    inner: dict[str, Any] = {"name": "inner", "inputs": {"parameters": [{"name": "id"}]}}
    inner[inner_kind] = [[jobs]] if inner_kind == "steps" else {"tasks": [jobs]}
    templates = [
        {
            "name": "outer",
            "parallelism": 1,
            "steps": [
                [
                    {
                        "name": "each",
                        "template": "inner",
                        "withItems": ["a", "b", "c"],
                        "arguments": {"parameters": [{"name": "id", "value": "{{item}}"}]},
                    }
                ]
            ],
        },
        inner,
        container("job", seconds=30),
    ]
    submit(custom, workflow(f"nested-{inner_kind}", templates))
    wf = run(simulated_cluster, custom, f"nested-{inner_kind}")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    each = sorted(
        (n for n in nodes(wf).values() if n["type"] in ("Steps", "DAG") and ".each(" in n["name"]),
        key=lambda n: n["startedAt"],
    )
    assert len(each) == 3
    for before, after in itertools.pairwise(each):
        assert after["startedAt"] >= before["finishedAt"]


# --- parameters from ConfigMaps ------------------------------------------------------------------

PARAMETER_LABEL = {"workflows.argoproj.io/configmap-type": "Parameter"}


def echo_input(name: str = "echo") -> dict[str, Any]:
    return {
        "name": name,
        "inputs": {"parameters": [{"name": "msg"}]},
        "container": {"image": IMAGE, "args": ["say {{inputs.parameters.msg}}"]},
    }


def test_input_and_global_parameters_from_a_configmap(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    v1.create_namespaced_config_map(
        NS,
        {"metadata": {"name": "params", "labels": PARAMETER_LABEL}, "data": {"msg": "from cm"}},
    )
    from_input = {
        "name": "main",
        "inputs": {
            "parameters": [
                {"name": "msg", "valueFrom": {"configMapKeyRef": {"name": "params", "key": "msg"}}}
            ]
        },
        "container": {"image": IMAGE, "args": ["say {{inputs.parameters.msg}}"]},
    }
    submit(custom, workflow("cm-input", [from_input]))
    globally = workflow("cm-global", [echo_input()])
    globally["spec"]["arguments"] = {
        "parameters": [
            {"name": "msg", "valueFrom": {"configMapKeyRef": {"name": "params", "key": "msg"}}}
        ]
    }
    globally["spec"]["templates"][0]["inputs"]["parameters"][0]["value"] = (
        "{{workflow.parameters.msg}}"
    )
    submit(custom, globally)
    for name in ("cm-input", "cm-global"):
        wf = run(simulated_cluster, custom, name)
        assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
        assert [p.spec.containers[0].args for p in pods(v1, name)] == [["say from cm"]]


@pytest.mark.parametrize(
    ("configmap", "default", "phase", "message"),
    [
        (None, "fallback", "Succeeded", ""),
        (
            None,
            None,
            "Error",
            "failed to set global parameter msg from configmap with name params and key msg: "
            "ConfigMap 'params' does not exist. Please make sure it has the label "
            "workflows.argoproj.io/configmap-type: Parameter to be detectable by the controller",
        ),
        (
            {"metadata": {"name": "params"}, "data": {"msg": "x"}},
            "fallback",
            "Error",
            # The global parameter falls back to its default on any error; the entry template,
            # which gets the Workflow's arguments, only when the ConfigMap or key is missing.
            "error in entry template execution: unable to retrieve inputs.parameters.msg from "
            "ConfigMap: ConfigMap 'params' needs to have the label "
            "workflows.argoproj.io/configmap-type: Parameter to load parameters",
        ),
    ],
)
def test_a_configmap_parameter_that_cannot_be_read(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
    configmap: dict[str, Any] | None,
    default: str | None,
    phase: str,
    message: str,
) -> None:
    if configmap is not None:
        v1.create_namespaced_config_map(NS, configmap)
    value_from: dict[str, Any] = {"configMapKeyRef": {"name": "params", "key": "msg"}}
    if default is not None:
        value_from["default"] = default
    manifest = workflow("cm-missing", [echo_input()])
    manifest["spec"]["arguments"] = {"parameters": [{"name": "msg", "valueFrom": value_from}]}
    manifest["spec"]["templates"][0]["inputs"]["parameters"][0]["value"] = (
        "{{workflow.parameters.msg}}"
    )
    submit(custom, manifest)
    wf = run(simulated_cluster, custom, "cm-missing")
    assert (wf["status"]["phase"], wf["status"].get("message", "")) == (phase, message)


@pytest.mark.parametrize("kind", ["steps", "dag"])
def test_inline_templates(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
    kind: str,
) -> None:
    inline = {
        "name": "a",
        "inline": {"container": {"image": IMAGE, "args": ["hello inline"]}},
    }
    main: dict[str, Any] = {"name": "main"}
    main[kind] = [[inline]] if kind == "steps" else {"tasks": [inline]}
    name = f"inline-{kind}"
    submit(custom, workflow(name, [main]))
    wf = run(simulated_cluster, custom, name)
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    node_name = f"{name}[0].a" if kind == "steps" else f"{name}.a"
    node = nodes(wf)[node_name]
    assert node["type"] == "Pod" and not node.get("templateName")
    (pod,) = pods(v1, name)
    # An inline template has no name: the pod is named after the Workflow alone.
    assert pod.metadata.name == f"{name}-{fnv32a(node_name)}"
    assert pod.spec.containers[0].args == ["hello inline"]


# --- containerSet templates ----------------------------------------------------------------------


def container_set(fail: str | None = None) -> dict[str, Any]:
    def member(name: str, *deps: str) -> dict[str, Any]:
        found: dict[str, Any] = {"name": name, "image": IMAGE, "args": [f"{name} step"]}
        if deps:
            found["dependencies"] = list(deps)
        return found

    behaviours = {"main": {"seconds": 1}}
    if fail:
        behaviours[fail] = {"exitCode": 1}
    return {
        "name": "set",
        "metadata": {"annotations": {BEHAVIOUR: json.dumps(behaviours)}},
        "containerSet": {
            "volumeMounts": [{"name": "workspace", "mountPath": "/workspace"}],
            "containers": [
                member("a"),
                member("b", "a"),
                member("c", "a"),
                member("main", "b", "c"),
            ],
        },
        "volumes": [{"name": "workspace", "emptyDir": {}}],
    }


def test_a_container_set_runs_in_one_pod_with_a_node_per_container(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    main = {
        "name": "main",
        "dag": {
            "tasks": [
                {"name": "graph", "template": "set"},
                {"name": "after", "template": "done", "dependencies": ["graph"]},
            ]
        },
    }
    submit(custom, workflow("ctrset", [main, container_set(), container("done")]))
    wf = run(simulated_cluster, custom, "ctrset")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    by_name = nodes(wf)
    pod_node = by_name["ctrset.graph"]
    ids = {c: by_name[f"ctrset.graph.{c}"]["id"] for c in ("a", "b", "c", "main")}
    assert pod_node["type"] == "Pod" and pod_node["children"] == [ids["a"]]
    assert by_name["ctrset.graph.a"]["children"] == [ids["b"], ids["c"]]
    assert by_name["ctrset.graph.b"]["children"] == [ids["main"]]
    for c in ids:
        node = by_name[f"ctrset.graph.{c}"]
        assert (node["type"], node["phase"], node["boundaryID"]) == (
            "Container",
            "Succeeded",
            pod_node["id"],
        )
    # The next task hangs off the last container of the graph.
    assert by_name["ctrset.graph.main"]["children"] == [by_name["ctrset.after"]["id"]]
    graph_pods = [
        p for p in pods(v1, "ctrset") if p.metadata.annotations[NODE_NAME] == "ctrset.graph"
    ]
    (pod,) = graph_pods
    assert [c.name for c in pod.spec.containers] == ["a", "b", "c", "main"]
    assert all(
        [m.mount_path for m in c.volume_mounts or [] if m.name == "workspace"] == ["/workspace"]
        for c in pod.spec.containers
    )


def test_a_failed_container_fails_its_node_and_the_pod(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    submit(custom, workflow("ctrfail", [container_set(fail="b")]))
    wf = run(simulated_cluster, custom, "ctrfail")
    by_name = nodes(wf)
    assert wf["status"]["phase"] == "Failed"
    failed_node = by_name["ctrfail.b"]
    assert failed_node["phase"] == "Failed"
    assert failed_node["message"].startswith("b: Error (exit code 1)")
    assert by_name["ctrfail"]["phase"] == "Failed"
