"""Simulated Argo Workflows whose containers run their own commands (``runCommands`` /
``runPython``), expression tags and resource templates, through the real clients."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from simulated_k8s_cluster.cluster import SimulatedCluster
from simulated_k8s_cluster.config import ClusterConfig, ConfigError

NS = "batch"
GROUP, VERSION = "argoproj.io", "v1alpha1"

pytestmark = pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": [NS],
        "runCommands": True,
        "runPython": True,
        "nodePools": [{"name": "default", "nodes": 1, "capacity": {"cpu": "64", "memory": "64Gi"}}],
        "argo": {},
    }
)


@pytest.fixture
def custom(api: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api)


def run(
    cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    templates: list[dict[str, Any]],
    within: float = 600,
    **spec: Any,
) -> dict[str, Any]:
    """Submit a Workflow and advance simulated time until it finishes."""
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"generateName": "cmd-"},
        "spec": {"entrypoint": templates[0]["name"], **spec, "templates": templates},
    }
    created = custom.create_namespaced_custom_object(GROUP, VERSION, NS, "workflows", manifest)
    name = created["metadata"]["name"]
    deadline = cluster.now() + within
    while True:
        wf: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, NS, "workflows", name
        )
        if (wf.get("status") or {}).get("finishedAt"):
            return wf
        assert cluster.now() < deadline, f"{name} did not finish: {wf.get('status')}"
        cluster.advance(1)


def by_display_name(wf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["displayName"]: n for n in wf["status"]["nodes"].values()}


def params(node: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p.get("value") for p in (node.get("outputs") or {}).get("parameters") or []}


def test_shell_output_decides_when_and_files_become_output_parameters(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "flip", "template": "flip"}],
                    [
                        {
                            "name": "heads",
                            "template": "count",
                            "when": "{{steps.flip.outputs.result}} == heads",
                        },
                        {
                            "name": "tails",
                            "template": "count",
                            "when": "{{steps.flip.outputs.result}} == tails",
                        },
                    ],
                ],
            },
            {
                "name": "flip",
                "script": {
                    "image": "alpine:3",
                    "command": ["sh"],
                    "source": 'side=heads\nif [ "$side" = heads ]; then echo heads; fi\n',
                },
            },
            {
                "name": "count",
                "container": {
                    "image": "alpine:3",
                    "command": ["sh", "-xc"],
                    "args": ["n=7; echo $((n * 6 % 5)) > /tmp/n && printf 'done\\n'"],
                },
                "outputs": {"parameters": [{"name": "n", "valueFrom": {"path": "/tmp/n"}}]},
            },
        ],
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    nodes = by_display_name(wf)
    assert nodes["flip"]["outputs"]["result"] == "heads"
    assert nodes["heads"]["phase"] == "Succeeded"
    assert params(nodes["heads"]) == {"n": "2"}
    assert nodes["tails"]["phase"] == "Skipped"


def test_exit_code_of_the_command_fails_the_node(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    wf = run(
        simulated_cluster,
        custom,
        [{"name": "main", "container": {"image": "alpine:3", "command": ["sh", "-c", "exit 3"]}}],
    )
    assert wf["status"]["phase"] == "Failed"
    node = by_display_name(wf)[wf["metadata"]["name"]]
    assert node["message"] == "Error (exit code 3)"
    assert node["outputs"]["exitCode"] == "3"


def test_commands_the_simulation_cannot_interpret_keep_the_default_behaviour(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "steps": [
                    [
                        {"name": "unknown-program", "template": "ls"},
                        {"name": "missing-input", "template": "cat"},
                        {"name": "image-entrypoint", "template": "image"},
                    ]
                ],
            },
            {"name": "ls", "container": {"image": "alpine:3", "command": ["sh", "-c", "ls /"]}},
            {"name": "cat", "container": {"image": "alpine:3", "command": ["cat", "/in/x"]}},
            {"name": "image", "container": {"image": "registry.example/tool:1", "args": ["exit"]}},
        ],
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"]


def test_python_script_runs_with_its_stdout_and_files(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    source = (
        "import json, os, time\n"
        "time.sleep(30)\n"
        "os.makedirs('/work', exist_ok=True)\n"
        "with open('/work/out.json', 'w') as f:\n"
        "    json.dump({'n': {{inputs.parameters.n}} * 2}, f)\n"
        "print('secret' in os.environ, os.path.exists('/work/out.json'))\n"
    )
    started = simulated_cluster.now()
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "py",
                            "template": "py",
                            "arguments": {"parameters": [{"name": "n", "value": "21"}]},
                        }
                    ],
                    [
                        {
                            "name": "use",
                            "template": "use",
                            "arguments": {
                                "parameters": [
                                    {"name": "r", "value": "{{steps.py.outputs.result}}"}
                                ]
                            },
                        }
                    ],
                ],
            },
            {
                "name": "py",
                "inputs": {"parameters": [{"name": "n"}]},
                "script": {"image": "python:3", "command": ["python"], "source": source},
                "outputs": {
                    "parameters": [{"name": "out", "valueFrom": {"path": "/work/out.json"}}]
                },
            },
            {
                "name": "use",
                "inputs": {"parameters": [{"name": "r"}]},
                "container": {"image": "alpine:3", "command": ["echo", "{{inputs.parameters.r}}"]},
            },
        ],
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    nodes = by_display_name(wf)
    assert nodes["py"]["outputs"]["result"] == "False True"
    assert params(nodes["py"]) == {"out": '{"n": 42}'}
    assert simulated_cluster.now() - started >= 30  # time.sleep is simulated time


def test_expression_tags_in_with_param_arguments_and_argosay(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "dag": {
                    "tasks": [
                        {
                            "name": "t",
                            "template": "say",
                            "arguments": {"parameters": [{"name": "foo", "value": "{{=item}}"}]},
                            "withParam": "{{=toJson(filter([1, 3, 5], {# > 1}))}}",
                        }
                    ]
                },
            },
            {
                "name": "say",
                "inputs": {"parameters": [{"name": "foo"}]},
                "container": {
                    "image": "argoproj/argosay:v2",
                    "args": ["echo", "{{=asInt(inputs.parameters.foo) * 10}}", "/tmp/out"],
                },
                "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/out"}}]},
            },
        ],
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    outs = sorted(params(n)["out"] for n in wf["status"]["nodes"].values() if n["type"] == "Pod")
    assert outs == ["30", "50"]


def test_resource_templates_create_patch_and_wait(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    v1: kubernetes.client.CoreV1Api,
) -> None:
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: made-\ndata:\n  a: '1'\n"
    )
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "steps": [
                    [{"name": "create", "template": "create"}],
                    [
                        {
                            "name": "patch",
                            "template": "patch",
                            "arguments": {
                                "parameters": [
                                    {
                                        "name": "cm",
                                        "value": "{{steps.create.outputs.parameters.name}}",
                                    }
                                ]
                            },
                        }
                    ],
                ],
            },
            {
                "name": "create",
                "resource": {
                    "action": "create",
                    "setOwnerReference": True,
                    "manifest": manifest,
                    "successCondition": "data.a == 1",
                },
                "outputs": {
                    "parameters": [{"name": "name", "valueFrom": {"jsonPath": "{.metadata.name}"}}]
                },
            },
            {
                "name": "patch",
                "inputs": {"parameters": [{"name": "cm"}]},
                "resource": {
                    "action": "patch",
                    "mergeStrategy": "json",
                    "flags": ["configmap", "{{inputs.parameters.cm}}"],
                    "manifest": "- op: add\n  path: /data/b\n  value: '2'\n",
                },
            },
        ],
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    name = params(by_display_name(wf)["create"])["name"]
    made = v1.read_namespaced_config_map(name, NS)
    assert made.data == {"a": "1", "b": "2"}
    owner = made.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == (
        "Workflow",
        wf["metadata"]["name"],
        wf["metadata"]["uid"],
    )
    pod_images = {
        p.spec.containers[0].image
        for p in v1.list_namespaced_pod(
            NS, label_selector=f"workflows.argoproj.io/workflow={wf['metadata']['name']}"
        ).items
    }
    assert pod_images == {"quay.io/argoproj/argoexec:latest"}


def test_resource_template_failure_condition_and_errors(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fixed\ndata:\n  state: bad\n"
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "steps": [
                    [
                        {"name": "failing", "template": "failing"},
                        {"name": "missing", "template": "missing"},
                    ]
                ],
            },
            {
                "name": "failing",
                "resource": {
                    "action": "create",
                    "manifest": manifest,
                    "successCondition": "data.state == good",
                    "failureCondition": "data.state in (worse, bad)",
                },
            },
            {
                "name": "missing",
                "resource": {"action": "patch", "flags": ["pod", "nope"], "manifest": "{}"},
            },
        ],
    )
    assert wf["status"]["phase"] == "Failed"
    nodes = by_display_name(wf)
    assert nodes["failing"]["message"] == (
        "failure condition 'data.state in (worse, bad)' evaluated true"
    )
    assert nodes["missing"]["phase"] == "Failed"
    assert "not found" in nodes["missing"]["message"]


def test_step_exit_hook_sees_the_outputs_of_its_step(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "make",
                            "template": "make",
                            "hooks": {
                                "exit": {
                                    "template": "report",
                                    "arguments": {
                                        "parameters": [
                                            {
                                                "name": "msg",
                                                "value": "{{steps.make.outputs.parameters.out}}",
                                            }
                                        ]
                                    },
                                }
                            },
                        }
                    ],
                    [{"name": "after", "template": "report-default"}],
                ],
            },
            {
                "name": "make",
                "container": {"image": "alpine:3", "command": ["sh", "-c", "echo -n hi > /o"]},
                "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/o"}}]},
            },
            {
                "name": "report",
                "inputs": {"parameters": [{"name": "msg"}]},
                "container": {
                    "image": "alpine:3",
                    "command": ["echo", "{{inputs.parameters.msg}}"],
                },
            },
            {"name": "report-default", "container": {"image": "alpine:3", "command": ["true"]}},
        ],
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    nodes = {n["name"]: n for n in wf["status"]["nodes"].values()}
    name = wf["metadata"]["name"]
    hook = nodes[f"{name}[0].make.onExit"]
    assert hook["inputs"]["parameters"] == [{"name": "msg", "value": "hi"}]
    assert hook["nodeFlag"] == {"hooked": True}
    assert hook["id"] in nodes[f"{name}[0].make"]["children"]
    # the next step group starts only once the hook has finished
    assert nodes[f"{name}[1].after"]["startedAt"] >= hook["finishedAt"]


def test_a_hook_may_not_read_outputs_its_step_does_not_have(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "steps": [
                    [
                        {
                            "name": "make",
                            "template": "plain",
                            "hooks": {
                                "exit": {
                                    "template": "plain",
                                    "arguments": {
                                        "parameters": [
                                            {
                                                "name": "x",
                                                "value": "{{steps.make.outputs.parameters.nope}}",
                                            }
                                        ]
                                    },
                                }
                            },
                        }
                    ]
                ],
            },
            {"name": "plain", "container": {"image": "alpine:3", "command": ["true"]}},
        ],
    )
    assert wf["status"]["phase"] == "Failed"
    assert "failed to resolve {{steps.make.outputs.parameters.nope}}" in wf["status"]["message"]


@pytest.fixture
def local_http() -> Iterator[str]:
    """A server on loopback answering ``/ok`` (200, JSON) and anything else (503)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/ok"
            body = b'{"answer": 42}' if ok else b"busy"
            self.send_response(200 if ok else 503)
            self.send_header("X-Kind", "local")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.simulated_cluster(
    {
        "timeScale": 0,
        "namespaces": [NS],
        "argo": {
            "httpResponses": [
                {"url": "https://api.example.com/v1/", "statusCode": 201, "body": "made"}
            ]
        },
    }
)
def test_http_templates_loopback_canned_and_offline(
    simulated_cluster: SimulatedCluster,
    custom: kubernetes.client.CustomObjectsApi,
    local_http: str,
) -> None:
    def call(step: str, url: str) -> list[dict[str, Any]]:
        return [
            {
                "name": step,
                "template": "call",
                "continueOn": {"failed": True},
                "arguments": {"parameters": [{"name": "url", "value": url}]},
            }
        ]

    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "steps": [
                    call("ok", f"{local_http}/ok"),
                    call("busy", f"{local_http}/busy"),
                    call("canned", "https://api.example.com/v1/things"),
                    call("offline", "https://unreachable.example.org/x"),
                    [{"name": "check", "template": "check"}],
                ],
            },
            {
                "name": "call",
                "inputs": {"parameters": [{"name": "url"}]},
                "http": {"url": "{{inputs.parameters.url}}"},
            },
            {
                "name": "check",
                "http": {
                    "url": f"{local_http}/ok",
                    "successCondition": (
                        'response.statusCode == 200 && response.headers["X-Kind"][0] == "local"'
                        ' && jsonpath(response.body, "$.answer") == 42'
                    ),
                },
            },
        ],
    )
    nodes = by_display_name(wf)
    assert nodes["ok"]["type"] == "HTTP"
    assert (nodes["ok"]["phase"], nodes["ok"]["outputs"]["result"]) == (
        "Succeeded",
        '{"answer": 42}',
    )
    assert nodes["busy"]["phase"] == "Failed"
    assert nodes["busy"]["message"] == "received non-2xx response code: 503"
    assert (nodes["canned"]["phase"], nodes["canned"]["outputs"]["result"]) == (
        "Succeeded",
        "made",
    )
    assert nodes["offline"]["message"] == (
        'Get "https://unreachable.example.org/x": dial tcp: lookup unreachable.example.org: '
        "no such host"
    )
    assert nodes["check"]["phase"] == "Succeeded"
    assert wf["status"]["phase"] == "Succeeded"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"httpResponses": {}}, "httpResponses must be a list"),
        (
            {"httpResponses": [{"statusCode": 200}]},
            r"httpResponses\[0\] must be a mapping with a url",
        ),
        ({"httpResponses": [{"url": "x", "statusCode": 42}]}, "must be an HTTP status code"),
        ({"httpResponses": [{"url": "x", "code": 200}]}, r"unknown keys \['code'\]"),
    ],
)
def test_http_responses_configuration_is_checked(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClusterConfig.from_dict({"argo": section})


@pytest.mark.parametrize("key", ["runCommands", "runPython"])
def test_run_flags_are_booleans(key: str) -> None:
    assert getattr(
        ClusterConfig.from_dict({key: True}), key.replace("C", "_c").replace("P", "_p").lower()
    )
    with pytest.raises(ConfigError, match=key):
        ClusterConfig.from_dict({key: "yes"})


def test_tee_and_output_parameters_from_expressions(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "inputs": {"parameters": [{"name": "n", "value": "2"}]},
                "steps": [[{"name": "gen", "template": "gen"}]],
                "outputs": {
                    "parameters": [
                        {
                            "name": "picked",
                            "valueFrom": {
                                "expression": (
                                    "asInt(inputs.parameters.n) == 1 ? 'one' : "
                                    "steps['gen'].outputs.parameters.out + '!'"
                                )
                            },
                        },
                        {
                            "name": "fallback",
                            "valueFrom": {"expression": "asInt('x')", "default": "d"},
                        },
                    ]
                },
            },
            {
                "name": "gen",
                "container": {
                    "image": "busybox",
                    "command": ["sh", "-c"],
                    "args": ["mkdir -p /tmp/o && echo hi | tee /tmp/o/a.txt > /dev/null"],
                },
                "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/tmp/o/a.txt"}}]},
            },
        ],
    )
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    root = by_display_name(wf)[wf["metadata"]["name"]]
    assert params(root) == {"picked": "hi!", "fallback": "d"}


def test_set_e_stops_a_script_at_its_first_failure(
    simulated_cluster: SimulatedCluster, custom: kubernetes.client.CustomObjectsApi
) -> None:
    script = (
        "set -eu\n"
        "if false; then echo never; fi\n"
        "false || echo recovered\n"
        "printf copied > /tmp/a && cp /tmp/a /tmp/b\n"
        "test -f /tmp/missing\n"
        "echo unreachable\n"
    )
    wf = run(
        simulated_cluster,
        custom,
        [
            {
                "name": "main",
                "script": {"image": "alpine:3", "command": ["sh"], "source": script},
                "outputs": {"parameters": [{"name": "b", "valueFrom": {"path": "/tmp/b"}}]},
            }
        ],
    )
    node = by_display_name(wf)[wf["metadata"]["name"]]
    assert wf["status"]["phase"] == "Failed"
    assert node["message"] == "Error (exit code 1)"
    assert params(node) == {"b": "copied"}
