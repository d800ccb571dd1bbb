"""Loading, building, defaulting and validating the Argo Workflow a task submits."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from airflow_k8s_jobs import manifests
from airflow_k8s_jobs.errors import InvalidInputError, PermanentError
from airflow_k8s_jobs.manifests.names import TaskInstanceKey, object_name, task_labels
from airflow_k8s_jobs.manifests.workflows import (
    ARGO_EXPRESSION_ROOTS,
    CLUSTER_WORKFLOW_TEMPLATE_LABEL,
    DEFAULT_POD_GC,
    DEFAULT_TTL_STRATEGY,
    SCHEDULED_TIME_ANNOTATION,
    WORKFLOW_TEMPLATE_LABEL,
    WORKFLOWS_API_VERSION,
    WorkflowRequest,
    argo_parameter_value,
    build_workflow,
    declared_parameters,
    load_workflow,
    protect_argo_expressions,
    workflow_problems,
)

KEY = TaskInstanceKey("ml_pipeline", "score_batches", "scheduled__2026-01-01T00:00:00+00:00")
NAME = object_name(KEY)
NAMESPACE = "argo"
CLUSTER = "gke-batch"
SUBJECT = f"Workflow {NAMESPACE}/{NAME} on cluster {CLUSTER}"
SEED_FILE = (
    Path(__file__).resolve().parents[2]
    / "simulator/simulated_k8s_cluster/examples/seed_workflow.yml"
)

# The seed workload: steps, nested steps, withParam over an output parameter, and a workflow
# argument that `argo submit -p max=30` overrides.
SEED_WORKFLOW_YAML = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: workflow-sample-
spec:
  entrypoint: workflow-sample-steps
  arguments:
    parameters:
      - name: max
        value: 5
  templates:
    - name: workflow-sample-steps
      steps:
      - - name: task1
          template: task-python-pre
          arguments:
            parameters:
            - name: max
              value: "{{workflow.parameters.max}}"
      - - name: task2-3
          template: nested-steps
          arguments:
            parameters:
            - name: result1
              value: "{{item}}"
          withParam: "{{steps.task1.outputs.parameters.results}}"

    - name: nested-steps
      inputs:
        parameters:
          - name: result1
      steps:
      - - name: task2
          template: task-r
          arguments:
            parameters:
            - name: param1
              value: "{{inputs.parameters.result1}}"
      - - name: task3
          template: task-python-post
          arguments:
            parameters:
            - name: param1
              value: "{{steps.task2.outputs.parameters.result}}"

    - name: task-python-pre
      inputs:
        parameters:
          - name: max
      container:
        image: task-python:1.0
        command: [sh, -c]
        args: ["python pre-task.py {{inputs.parameters.max}}  > /tmp/results"]
      outputs:
        parameters:
          - name: results
            valueFrom:
              path: /tmp/results

    - name: task-r
      inputs:
        parameters:
          - name: param1
      container:
        image: task-r:1.0
        command: [sh, -c]
        args: ["Rscript task.R {{inputs.parameters.param1}} > /tmp/result"]
      outputs:
        parameters:
          - name: result
            valueFrom:
              path: /tmp/result

    - name: task-python-post
      inputs:
        parameters:
          - name: param1
      container:
        image: task-python:1.0
        command: [sh, -c]
        args: ["python post-task.py {{inputs.parameters.param1}}"]
"""

SEED_TEXTS = [pytest.param(SEED_WORKFLOW_YAML, id="inline")]
if SEED_FILE.exists():
    SEED_TEXTS.append(pytest.param(SEED_FILE.read_text(encoding="utf-8"), id="example-file"))

# A WorkflowTemplate as read from the cluster (for the parameter checks of a template submit).
ETL_TEMPLATE: dict[str, Any] = {
    "apiVersion": WORKFLOWS_API_VERSION,
    "kind": "WorkflowTemplate",
    "metadata": {"name": "nightly-etl", "namespace": NAMESPACE, "resourceVersion": "812"},
    "spec": {
        "entrypoint": "main",
        "workflowMetadata": {"labels": {"team": "data"}, "annotations": {"owner": "data@x"}},
        "arguments": {
            "parameters": [
                {"name": "date", "value": "1970-01-01"},
                {"name": "mode", "value": "incremental", "enum": ["incremental", "full"]},
            ]
        },
        "templates": [
            {
                "name": "main",
                "inputs": {"parameters": [{"name": "date"}, {"name": "shards", "default": "4"}]},
                "container": {"image": "etl:1", "args": ["{{inputs.parameters.date}}"]},
            },
            {"name": "backfill", "container": {"image": "etl:1"}},
        ],
    },
}


def seed() -> dict[str, Any]:
    return load_workflow(SEED_WORKFLOW_YAML)


def build(key: TaskInstanceKey = KEY, **kwargs: Any) -> dict[str, Any]:
    if "workflow" not in kwargs and not any(
        k in kwargs for k in ("workflow_template", "cluster_workflow_template")
    ):
        kwargs["workflow"] = seed()
    return build_workflow(WorkflowRequest(**kwargs), key, NAMESPACE, CLUSTER)


def problems_of(**kwargs: Any) -> str:
    with pytest.raises(InvalidInputError) as info:
        build(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{SUBJECT}: invalid input")
    assert "nothing was created" in message
    return message


def wf(spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": WORKFLOWS_API_VERSION,
        "kind": "Workflow",
        "metadata": {"generateName": "x-", **meta},
        "spec": spec,
    }


def container(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "container": {"image": "busybox:1.36"}, **extra}


# --- the seed workflow --------------------------------------------------------------------------


def test_seed_with_max_30_changes_only_the_parameter_and_adds_identity_and_defaults() -> None:
    source = seed()
    before = copy.deepcopy(source)
    workflow = build(workflow=source, parameters={"max": 30})

    assert source == before  # the given manifest is not modified
    assert workflow["apiVersion"] == WORKFLOWS_API_VERSION
    assert workflow["kind"] == "Workflow"
    meta = workflow["metadata"]
    assert meta["name"] == NAME
    assert "generateName" not in meta
    assert meta["namespace"] == NAMESPACE
    assert meta["labels"] == task_labels(KEY)

    spec = workflow["spec"]
    assert spec["arguments"] == {"parameters": [{"name": "max", "value": "30"}]}
    assert spec["ttlStrategy"] == DEFAULT_TTL_STRATEGY
    assert spec["podGC"] == DEFAULT_POD_GC
    rest = {k: v for k, v in spec.items() if k not in ("arguments", "ttlStrategy", "podGC")}
    original = {k: v for k, v in before["spec"].items() if k != "arguments"}
    assert rest == original
    assert spec["templates"] == before["spec"]["templates"]
    dumped = json.dumps(spec["templates"])
    for expression in (
        "{{workflow.parameters.max}}",
        "{{item}}",
        "{{steps.task1.outputs.parameters.results}}",
        "{{inputs.parameters.result1}}",
        "{{steps.task2.outputs.parameters.result}}",
        "python pre-task.py {{inputs.parameters.max}}  > /tmp/results",
    ):
        assert expression in dumped
    assert workflow_problems(workflow) == []


def test_seed_without_parameters_keeps_the_declared_default() -> None:
    workflow = build()
    assert workflow["spec"]["arguments"] == {"parameters": [{"name": "max", "value": 5}]}


@pytest.mark.parametrize("text", SEED_TEXTS)
def test_seed_text_survives_airflow_rendering(text: str) -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    rendered = env.from_string(protect_argo_expressions(text)).render(
        ds="2026-01-01", params={"max": 3}
    )
    assert rendered == text
    # Unprotected, Jinja would fail on Argo's variables.
    with pytest.raises(jinja2.UndefinedError):
        env.from_string(text).render(ds="2026-01-01", params={"max": 3})


@pytest.mark.parametrize("text", SEED_TEXTS)
def test_seed_text_loads_and_builds(text: str) -> None:
    workflow = build(workflow=load_workflow(text), parameters={"max": 30})
    assert workflow["spec"]["arguments"]["parameters"][0] == {"name": "max", "value": "30"}


def test_rendered_airflow_parameters_reach_the_workflow() -> None:
    text = SEED_WORKFLOW_YAML.replace("value: 5", "value: {{ params.max }}")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    rendered = env.from_string(protect_argo_expressions(text)).render(params={"max": 7})
    assert rendered == SEED_WORKFLOW_YAML.replace("value: 5", "value: 7")
    workflow = build(workflow=load_workflow(rendered))
    assert workflow["spec"]["arguments"]["parameters"] == [{"name": "max", "value": 7}]


# --- identity -----------------------------------------------------------------------------------


def test_names_are_deterministic_per_try_and_differ_across_tries() -> None:
    first = build(parameters={"max": 30})["metadata"]["name"]
    assert build(parameters={"max": 31})["metadata"]["name"] == first
    retry = TaskInstanceKey(KEY.dag_id, KEY.task_id, KEY.run_id, KEY.map_index, 2)
    mapped = TaskInstanceKey(KEY.dag_id, KEY.task_id, KEY.run_id, 3, 1)
    names = {first, build(key=retry)["metadata"]["name"], build(key=mapped)["metadata"]["name"]}
    assert len(names) == 3
    assert build(key=retry)["metadata"]["labels"]["airflow-k8s-jobs.io/try-number"] == "2"


def test_manifest_name_and_generate_name_are_replaced() -> None:
    manifest = seed()
    manifest["metadata"] = {"name": "my-run", "generateName": "my-run-"}
    meta = build(workflow=manifest)["metadata"]
    assert meta["name"] == NAME
    assert "generateName" not in meta


def test_labels_and_annotations_merge_with_identity_winning() -> None:
    manifest = seed()
    manifest["metadata"]["labels"] = {
        "team": "ml",
        "tier": "batch",
        "airflow-k8s-jobs.io/try-number": "9",
    }
    manifest["metadata"]["annotations"] = {
        "note": "from manifest",
        "airflow-k8s-jobs.io/run-id": "x",
    }
    labels = {"tier": "gpu", "app.kubernetes.io/managed-by": "someone-else"}
    annotations = {"note": "from task", "link": "https://example.com/runbook"}
    meta = build(workflow=manifest, labels=labels, annotations=annotations)["metadata"]
    assert meta["labels"] == {"team": "ml", "tier": "gpu", **task_labels(KEY)}
    assert meta["annotations"]["note"] == "from task"
    assert meta["annotations"]["link"] == "https://example.com/runbook"
    assert meta["annotations"]["airflow-k8s-jobs.io/run-id"] == KEY.run_id
    assert meta["annotations"]["airflow-k8s-jobs.io/map-index"] == "-1"


def test_server_and_controller_fields_of_an_exported_workflow_are_dropped() -> None:
    manifest = seed()
    manifest["metadata"].update(
        {
            "name": "workflow-sample-x7k2p",
            "uid": "5a0e7f3c-0b7b-4c55-9d1e-1d2f3a4b5c6d",
            "resourceVersion": "48213",
            "generation": 4,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "workflow-controller"}],
            "labels": {
                "workflows.argoproj.io/completed": "true",
                "workflows.argoproj.io/phase": "Succeeded",
                "workflows.argoproj.io/controller-instanceid": "batch",
            },
        }
    )
    manifest["status"] = {"phase": "Succeeded", "finishedAt": "2026-01-01T00:05:00Z"}
    workflow = build(workflow=manifest)
    meta = workflow["metadata"]
    for field in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"):
        assert field not in meta
    assert "status" not in workflow
    assert "workflows.argoproj.io/completed" not in meta["labels"]
    assert "workflows.argoproj.io/phase" not in meta["labels"]
    assert meta["labels"]["workflows.argoproj.io/controller-instanceid"] == "batch"


def test_manifest_namespace_must_match() -> None:
    manifest = seed()
    manifest["metadata"]["namespace"] = "other"
    message = problems_of(workflow=manifest)
    assert "metadata.namespace is 'other'" in message
    manifest["metadata"]["namespace"] = NAMESPACE
    assert build(workflow=manifest)["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.timezone.utc), "2026-01-01T10:00:00Z"),
        (
            dt.datetime(2026, 1, 1, 19, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=9))),
            "2026-01-01T10:00:00Z",
        ),
        (dt.datetime(2026, 1, 1, 10, 0), "2026-01-01T10:00:00Z"),  # naive: UTC
    ],
)
def test_scheduled_time_annotation(when: dt.datetime, expected: str) -> None:
    manifest = seed()
    manifest["metadata"]["annotations"] = {SCHEDULED_TIME_ANNOTATION: "2020-01-01T00:00:00Z"}
    meta = build(workflow=manifest, scheduled_time=when)["metadata"]
    assert meta["annotations"][SCHEDULED_TIME_ANNOTATION] == expected


def test_no_scheduled_time_keeps_the_manifest_annotation_and_adds_none() -> None:
    assert SCHEDULED_TIME_ANNOTATION not in build()["metadata"]["annotations"]
    manifest = seed()
    manifest["metadata"]["annotations"] = {SCHEDULED_TIME_ANNOTATION: "2020-01-01T00:00:00Z"}
    annotations = build(workflow=manifest)["metadata"]["annotations"]
    assert annotations[SCHEDULED_TIME_ANNOTATION] == "2020-01-01T00:00:00Z"


# --- defaults -----------------------------------------------------------------------------------


def test_defaults_only_where_the_manifest_sets_nothing() -> None:
    manifest = seed()
    manifest["spec"]["ttlStrategy"] = {"secondsAfterSuccess": 60}
    manifest["spec"]["serviceAccountName"] = "workflow-runner"
    spec = build(workflow=manifest, service_account_name="other-sa")["spec"]
    assert spec["ttlStrategy"] == {"secondsAfterSuccess": 60}
    assert spec["podGC"] == DEFAULT_POD_GC
    assert spec["serviceAccountName"] == "workflow-runner"
    assert build(service_account_name="batch-sa")["spec"]["serviceAccountName"] == "batch-sa"


def test_none_leaves_ttl_and_pod_gc_unset() -> None:
    spec = build(ttl_strategy=None, pod_gc=None)["spec"]
    assert "ttlStrategy" not in spec
    assert "podGC" not in spec
    assert "serviceAccountName" not in spec


def test_request_defaults_are_fresh_copies() -> None:
    request = WorkflowRequest(workflow=seed())
    assert request.ttl_strategy == DEFAULT_TTL_STRATEGY
    built = build_workflow(request, KEY, NAMESPACE, CLUSTER)
    built["spec"]["ttlStrategy"]["secondsAfterCompletion"] = 1
    assert DEFAULT_TTL_STRATEGY == {"secondsAfterCompletion": 86400}
    assert request.ttl_strategy == {"secondsAfterCompletion": 86400}


# --- parameters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", "30"),
        ("", ""),
        (30, "30"),
        (2.5, "2.5"),
        (True, "true"),
        (False, "false"),
        (None, ""),
        ([1, 2, 3], "[1,2,3]"),
        (("a", "b"), '["a","b"]'),
        ({"a": 1, "b": [True, None]}, '{"a":1,"b":[true,null]}'),
        ({"city": "東京"}, '{"city":"東京"}'),
        (dt.date(2026, 1, 1), "2026-01-01"),
        ([dt.date(2026, 1, 1)], '["2026-01-01"]'),
    ],
)
def test_argo_parameter_value(value: Any, expected: str) -> None:
    assert argo_parameter_value(value) == expected


@pytest.mark.parametrize("value", [object(), {1, 2}, [object()]])
def test_argo_parameter_value_refuses_what_it_cannot_send(value: Any) -> None:
    with pytest.raises(InvalidInputError):
        argo_parameter_value(value)


def test_list_parameter_feeds_with_param() -> None:
    manifest = seed()
    manifest["spec"]["arguments"]["parameters"].append({"name": "shards", "value": "[]"})
    spec = build(workflow=manifest, parameters={"shards": [1, 2, 3, 4]})["spec"]
    assert spec["arguments"]["parameters"][1] == {"name": "shards", "value": "[1,2,3,4]"}
    assert json.loads(spec["arguments"]["parameters"][1]["value"]) == [1, 2, 3, 4]


def test_override_removes_value_from_and_keeps_description() -> None:
    manifest = seed()
    manifest["spec"]["arguments"]["parameters"] = [
        {
            "name": "max",
            "description": "upper bound",
            "valueFrom": {"configMapKeyRef": {"name": "limits", "key": "max"}},
        }
    ]
    spec = build(workflow=manifest, parameters={"max": 30})["spec"]
    assert spec["arguments"]["parameters"] == [
        {"name": "max", "description": "upper bound", "value": "30"}
    ]


def test_entrypoint_input_parameter_is_declared_and_appended() -> None:
    manifest = wf(
        {
            "entrypoint": "main",
            "templates": [
                container("main", inputs={"parameters": [{"name": "date", "default": "today"}]})
            ],
        }
    )
    assert declared_parameters(manifest["spec"]) == ["date"]
    spec = build(workflow=manifest, parameters={"date": "2026-01-01"})["spec"]
    assert spec["arguments"] == {"parameters": [{"name": "date", "value": "2026-01-01"}]}


def test_undeclared_parameter_lists_declared_and_suggests() -> None:
    message = problems_of(parameters={"maxx": 30, "colour": "red"})
    assert (
        "parameters maxx (did you mean max?), colour are not declared by the Workflow "
        "(declared: max); fix the name, or declare them in spec.arguments.parameters" in message
    )


def test_enum_values_are_enforced() -> None:
    manifest = seed()
    manifest["spec"]["arguments"]["parameters"].append(
        {"name": "mode", "value": "fast", "enum": ["fast", "exact", 3]}
    )
    assert build(workflow=manifest, parameters={"mode": "exact"})["spec"]["arguments"][
        "parameters"
    ][1] == {"name": "mode", "value": "exact", "enum": ["fast", "exact", 3]}
    assert build(workflow=manifest, parameters={"mode": 3})  # compared as strings
    message = problems_of(workflow=manifest, parameters={"mode": "slow"})
    assert "parameter mode='slow' is not one of its enum values: 'fast', 'exact', '3'" in message


def test_declared_parameter_without_any_value() -> None:
    manifest = seed()
    manifest["spec"]["arguments"]["parameters"] = [{"name": "max"}]
    message = problems_of(workflow=manifest)
    assert "parameter max has no value; pass parameters={'max': ...}" in message
    assert build(workflow=manifest, parameters={"max": 1})


def test_entrypoint_input_without_value() -> None:
    manifest = wf(
        {
            "entrypoint": "main",
            "templates": [container("main", inputs={"parameters": [{"name": "day"}]})],
        }
    )
    message = problems_of(workflow=manifest)
    assert "input day of the entrypoint template main gets no value" in message
    assert build(workflow=manifest, parameters={"day": "mon"})


def test_bad_parameter_arguments() -> None:
    message = problems_of(parameters={"max": object(), "bad name": 1})
    assert "parameters['max']: parameter value" in message
    assert "parameter name 'bad name' is invalid" in message
    assert "parameters must be a dict" in problems_of(parameters=[("max", 1)])


def test_parameters_are_not_modified() -> None:
    parameters = {"max": [1, 2]}
    build(parameters=parameters)
    assert parameters == {"max": [1, 2]}


def test_declared_parameters() -> None:
    assert declared_parameters(seed()["spec"]) == ["max"]
    assert declared_parameters(ETL_TEMPLATE["spec"]) == ["date", "mode", "shards"]
    assert declared_parameters({"entrypoint": "nope", "templates": "broken"}) == []


# --- template submissions -----------------------------------------------------------------------


def test_from_workflow_template_like_argo_submit_from() -> None:
    workflow = build(workflow_template="nightly-etl", parameters={"date": "2026-01-01"})
    assert workflow == {
        "apiVersion": WORKFLOWS_API_VERSION,
        "kind": "Workflow",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {WORKFLOW_TEMPLATE_LABEL: "nightly-etl", **task_labels(KEY)},
            "annotations": workflow["metadata"]["annotations"],
        },
        "spec": {
            "workflowTemplateRef": {"name": "nightly-etl"},
            "arguments": {"parameters": [{"name": "date", "value": "2026-01-01"}]},
            "ttlStrategy": DEFAULT_TTL_STRATEGY,
            "podGC": DEFAULT_POD_GC,
        },
    }


def test_from_cluster_workflow_template() -> None:
    workflow = build(cluster_workflow_template="shared-etl", entrypoint="backfill")
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "shared-etl", "clusterScope": True}
    assert workflow["spec"]["entrypoint"] == "backfill"
    assert "arguments" not in workflow["spec"]
    labels = workflow["metadata"]["labels"]
    assert labels[CLUSTER_WORKFLOW_TEMPLATE_LABEL] == "shared-etl"
    assert WORKFLOW_TEMPLATE_LABEL not in labels


def test_template_label_is_not_overridable() -> None:
    labels = {WORKFLOW_TEMPLATE_LABEL: "spoof", "team": "data"}
    workflow = build(workflow_template="nightly-etl", labels=labels)
    assert workflow["metadata"]["labels"][WORKFLOW_TEMPLATE_LABEL] == "nightly-etl"
    assert workflow["metadata"]["labels"]["team"] == "data"


def test_known_template_checks_parameters_and_copies_workflow_metadata() -> None:
    template = copy.deepcopy(ETL_TEMPLATE)
    workflow = build(
        workflow_template="nightly-etl",
        template=template,
        parameters={"date": "2026-01-01", "mode": "full", "shards": 8},
    )
    assert template == ETL_TEMPLATE
    assert workflow["spec"]["arguments"]["parameters"] == [
        {"name": "date", "value": "2026-01-01"},
        {"name": "mode", "value": "full"},
        {"name": "shards", "value": "8"},
    ]
    assert workflow["metadata"]["labels"]["team"] == "data"
    assert workflow["metadata"]["annotations"]["owner"] == "data@x"

    message = problems_of(
        workflow_template="nightly-etl", template=template, parameters={"dat": "x", "mode": "all"}
    )
    assert (
        "parameter dat (did you mean date?) is not declared by the WorkflowTemplate nightly-etl "
        "(declared: date, mode, shards); fix the name, or declare it" in message
    )
    assert "parameter mode='all' is not one of its enum values: 'incremental', 'full'" in message


def test_unknown_template_skips_the_parameter_check() -> None:
    workflow = build(workflow_template="nightly-etl", parameters={"anything": 1})
    assert workflow["spec"]["arguments"]["parameters"] == [{"name": "anything", "value": "1"}]


def test_template_that_sets_ttl_and_pod_gc_is_not_overridden() -> None:
    template = copy.deepcopy(ETL_TEMPLATE)
    template["spec"]["ttlStrategy"] = {"secondsAfterSuccess": 600}
    template["spec"]["podGC"] = {"strategy": "OnPodCompletion"}
    spec = build(workflow_template="nightly-etl", template=template)["spec"]
    assert "ttlStrategy" not in spec
    assert "podGC" not in spec


def test_template_entrypoint_must_exist_when_the_template_is_known() -> None:
    assert build(workflow_template="nightly-etl", template=ETL_TEMPLATE, entrypoint="backfill")
    message = problems_of(workflow_template="nightly-etl", template=ETL_TEMPLATE, entrypoint="man")
    assert "entrypoint='man' names no template of the template" in message
    assert "did you mean main?" in message


def test_template_entrypoint_changes_the_declared_inputs() -> None:
    # "backfill" has no inputs: "shards" is an input of "main" only.
    message = problems_of(
        workflow_template="nightly-etl",
        template=ETL_TEMPLATE,
        entrypoint="backfill",
        parameters={"shards": 2},
    )
    assert "parameter shards is not declared" in message


def test_template_object_must_match_what_is_submitted() -> None:
    message = problems_of(cluster_workflow_template="nightly-etl", template=ETL_TEMPLATE)
    assert "template is a WorkflowTemplate, but ClusterWorkflowTemplate 'nightly-etl'" in message
    message = problems_of(workflow_template="other", template=ETL_TEMPLATE)
    assert "template is 'nightly-etl', but WorkflowTemplate 'other' is submitted" in message


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"workflow": SEED_WORKFLOW_YAML, "workflow_template": "a"},
        {"workflow_template": "a", "cluster_workflow_template": "b"},
    ],
)
def test_exactly_one_source(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as info:
        build_workflow(WorkflowRequest(**kwargs), KEY, NAMESPACE, CLUSTER)
    assert "exactly one source" in str(info.value) or "nothing to run" in str(info.value)


def test_invalid_template_name_and_namespace() -> None:
    with pytest.raises(InvalidInputError) as info:
        build_workflow(WorkflowRequest(workflow_template="Nightly_ETL"), KEY, "Bad_NS", CLUSTER)
    message = str(info.value)
    assert "workflow_template='Nightly_ETL' is invalid" in message
    assert "namespace 'Bad_NS'" in message


# --- validation ---------------------------------------------------------------------------------


def test_spec_must_be_a_mapping() -> None:
    assert "spec must be a mapping, not list" in problems_of(workflow=wf([]))  # type: ignore[arg-type]
    manifest = wf({})
    del manifest["spec"]
    assert "the Workflow has no spec" in problems_of(workflow=manifest)


def test_entrypoint_must_name_a_template() -> None:
    manifest = seed()
    manifest["spec"]["entrypoint"] = "workflow-sample-step"
    message = problems_of(workflow=manifest)
    assert "spec.entrypoint 'workflow-sample-step' names no template" in message
    assert "did you mean workflow-sample-steps?" in message
    del manifest["spec"]["entrypoint"]
    assert "spec.entrypoint is missing" in problems_of(workflow=manifest)


def test_entrypoint_argument_must_name_a_template_of_the_manifest() -> None:
    spec = build(entrypoint="task-r", parameters={"param1": "7"})["spec"]
    assert spec["entrypoint"] == "task-r"
    assert spec["arguments"]["parameters"][1] == {"name": "param1", "value": "7"}
    assert "input param1 of the entrypoint template task-r gets no value" in problems_of(
        entrypoint="task-r"
    )
    message = problems_of(entrypoint="task-rr")
    assert "entrypoint='task-rr' names no template of the Workflow" in message
    assert "did you mean task-r?" in message


def test_workflow_template_ref_needs_no_entrypoint_or_templates() -> None:
    manifest = wf({"workflowTemplateRef": {"name": "nightly-etl"}})
    workflow = build(workflow=manifest, parameters={"date": "x"}, entrypoint="anything")
    assert workflow["spec"]["entrypoint"] == "anything"
    assert workflow["spec"]["arguments"]["parameters"] == [{"name": "date", "value": "x"}]


def test_template_names_unique_and_valid() -> None:
    manifest = wf(
        {
            "entrypoint": "a",
            "templates": [container("a"), container("a"), container("b_c"), container("")],
        }
    )
    message = problems_of(workflow=manifest)
    assert "spec.templates[1].name 'a' is used by two templates" in message
    assert "spec.templates[2].name 'b_c' must consist of letters, digits and '-'" in message
    assert "spec.templates[3].name '' must not be empty" in message


def test_referenced_templates_must_exist() -> None:
    manifest = seed()
    manifest["spec"]["templates"][1]["steps"][0][0]["template"] = "task-rr"
    manifest["spec"]["onExit"] = "cleanup"
    message = problems_of(workflow=manifest)
    assert (
        "template nested-steps.steps[0][0] (task2).template 'task-rr' is not a template of this "
        "Workflow" in message
    )
    assert "did you mean task-r?" in message
    assert "spec.onExit 'cleanup' is not a template of this Workflow" in message


def test_template_refs_to_other_workflow_templates_are_not_checked() -> None:
    manifest = seed()
    step = manifest["spec"]["templates"][1]["steps"][0][0]
    del step["template"]
    step["templateRef"] = {"name": "shared", "template": "score"}
    assert build(workflow=manifest)


def test_steps_must_be_a_list_of_lists() -> None:
    manifest = wf(
        {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [{"name": "one", "template": "leaf"}]},
                container("leaf"),
            ],
        }
    )
    message = problems_of(workflow=manifest)
    assert "template main.steps must be a list of step groups" in message
    assert "steps[0] is a single step, write it as '- - name: …'" in message
    manifest["spec"]["templates"][0]["steps"] = "one"
    assert "template main.steps must be a list of step groups" in problems_of(workflow=manifest)


def test_step_names_unique_and_step_runs_something() -> None:
    manifest = wf(
        {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "steps": [
                        [{"name": "a", "template": "leaf"}],
                        [{"name": "a", "template": "leaf"}, {"name": "b"}],
                    ],
                },
                container("leaf"),
            ],
        }
    )
    message = problems_of(workflow=manifest)
    assert "steps[1][0].name 'a' is used by two steps of this template" in message
    assert "steps[1][1] (b) runs nothing" in message


def dag_workflow(*tasks: dict[str, Any]) -> dict[str, Any]:
    return wf(
        {
            "entrypoint": "main",
            "templates": [{"name": "main", "dag": {"tasks": list(tasks)}}, container("leaf")],
        }
    )


def test_dag_tasks_names_and_dependencies() -> None:
    manifest = dag_workflow(
        {"name": "extract", "template": "leaf"},
        {"name": "transform", "template": "leaf", "dependencies": ["extrct"]},
        {"template": "leaf"},
        {"name": "load", "template": "leaf", "depends": "transform.Succeeded && (lod || extract)"},
    )
    message = problems_of(workflow=manifest)
    assert "dag.tasks[1] (transform) depends on 'extrct', which is not a task" in message
    assert "did you mean extract?" in message
    assert "dag.tasks[2].name None must be a string" in message
    assert "dag.tasks[3] (load).depends names 'lod'" in message
    assert "'transform'" not in message.split("depends names")[1].split("\n")[0]


def test_valid_dag_passes() -> None:
    manifest = dag_workflow(
        {"name": "extract", "template": "leaf"},
        {"name": "transform", "template": "leaf", "dependencies": ["extract"]},
        {"name": "load", "template": "leaf", "depends": "transform.Succeeded || !extract.Failed"},
        {"name": "fan", "template": "leaf", "depends": "{{inputs.parameters.after}}"},
    )
    assert workflow_problems(build(workflow=manifest)) == []


def test_dag_must_have_tasks() -> None:
    manifest = wf({"entrypoint": "main", "templates": [{"name": "main", "dag": [{"name": "a"}]}]})
    assert "template main.dag must be a mapping with a list of tasks" in problems_of(
        workflow=manifest
    )


def test_each_template_has_exactly_one_type() -> None:
    manifest = wf(
        {
            "entrypoint": "a",
            "templates": [
                {"name": "a", "containers": [{"image": "x"}], "metadata": {}},
                {"name": "b", "container": {"image": "x"}, "script": {"image": "y", "source": ""}},
            ],
        }
    )
    message = problems_of(workflow=manifest)
    assert "template a has no template type; give exactly one of container," in message
    assert "did you mean container?" in message
    assert "did you mean data?" not in message
    assert "template b has 2 template types (container, script)" in message


@pytest.mark.parametrize(
    ("where", "field", "value", "expected"),
    [
        (
            "spec",
            "activeDeadlineSeconds",
            -1,
            "spec.activeDeadlineSeconds is -1; it must be 0 or more",
        ),
        ("spec", "activeDeadlineSeconds", "1h", "spec.activeDeadlineSeconds must be an integer"),
        ("spec", "parallelism", True, "spec.parallelism must be an integer"),
        ("spec", "parallelism", -2, "spec.parallelism is -2"),
        ("template", "parallelism", "2", "template task-r.parallelism must be an integer"),
        ("template", "activeDeadlineSeconds", -5, "template task-r.activeDeadlineSeconds is -5"),
        ("template", "activeDeadlineSeconds", "soon", "activeDeadlineSeconds must be an integer"),
    ],
)
def test_counts(where: str, field: str, value: Any, expected: str) -> None:
    manifest = seed()
    holder = manifest["spec"] if where == "spec" else manifest["spec"]["templates"][3]
    holder[field] = value
    assert expected in problems_of(workflow=manifest)


def test_template_deadline_may_be_an_expression() -> None:
    manifest = seed()
    manifest["spec"]["templates"][3]["activeDeadlineSeconds"] = "{{inputs.parameters.param1}}"
    manifest["spec"]["templates"][4]["activeDeadlineSeconds"] = "600"
    assert build(workflow=manifest)


def test_cleanup_settings() -> None:
    manifest = seed()
    manifest["spec"]["ttlStrategy"] = {"secondsAfterCompletion": "1d", "afterSuccess": 5}
    manifest["spec"]["podGC"] = {"strategy": "OnWorkflowSucess", "deleteDelayDuration": "5 min"}
    message = problems_of(workflow=manifest)
    assert "spec.ttlStrategy.secondsAfterCompletion must be a number of seconds" in message
    assert "spec.ttlStrategy.afterSuccess is not a ttlStrategy field" in message
    assert "spec.podGC.strategy 'OnWorkflowSucess' is not supported" in message
    assert "did you mean OnWorkflowSuccess?" in message
    assert "spec.podGC.deleteDelayDuration '5 min' is not a duration" in message


def test_labels_and_annotations_are_validated() -> None:
    manifest = seed()
    manifest["metadata"]["labels"] = {"team": "ML Platform", "bad key!": "x", "cost": 3}
    manifest["metadata"]["annotations"] = {"retries": 3}
    message = problems_of(workflow=manifest)
    assert "metadata.labels[team] value 'ML Platform'" in message
    assert "metadata.labels: key 'bad key!'" in message
    assert "metadata.labels[cost] value 3: label values must be strings" in message
    assert "metadata.annotations[retries] value 3: annotation values must be strings" in message
    assert "metadata.labels: key 'a/b/c'" in problems_of(labels={"a/b/c": "x"})


def test_every_problem_is_listed_at_once() -> None:
    manifest = seed()
    manifest["spec"]["entrypoint"] = "missing"
    manifest["spec"]["parallelism"] = -1
    manifest["spec"]["templates"][2]["script"] = {"image": "x", "source": "print(1)"}
    manifest["metadata"]["labels"] = {"team": "a b"}
    with pytest.raises(InvalidInputError) as info:
        build(workflow=manifest)
    message = str(info.value)
    assert message.startswith(f"{SUBJECT}: invalid input (4 problems); nothing was created:\n")
    assert message.count("\n  - ") == 4
    assert message.endswith(
        "Fix the task's arguments or its Workflow manifest and run the task again."
    )
    assert isinstance(info.value, PermanentError)


def test_parameter_entries_are_validated() -> None:
    manifest = seed()
    manifest["spec"]["arguments"]["parameters"].append({"name": "max", "value": 1})
    manifest["spec"]["arguments"]["parameters"].append({"name": "bad name", "value": 1})
    message = problems_of(workflow=manifest)
    assert "spec.arguments.parameters: 'max' is declared twice" in message
    assert "spec.arguments.parameters[2].name 'bad name' is invalid" in message


# --- loading ------------------------------------------------------------------------------------


def test_load_workflow_from_text_file_and_dict(tmp_path: Path) -> None:
    path = tmp_path / "workflow.yml"
    path.write_text(SEED_WORKFLOW_YAML, encoding="utf-8")
    from_file = load_workflow(str(path))
    assert from_file == load_workflow(path) == load_workflow(SEED_WORKFLOW_YAML)
    source = yaml.safe_load(SEED_WORKFLOW_YAML)
    loaded = load_workflow(source)
    assert loaded == source and loaded is not source
    bare = load_workflow({"spec": {"entrypoint": "a"}})
    assert bare["apiVersion"] == WORKFLOWS_API_VERSION and bare["kind"] == "Workflow"


def test_load_workflow_wrong_kind() -> None:
    with pytest.raises(InvalidInputError) as info:
        load_workflow(
            {"apiVersion": "batch/v1", "kind": "Job"}, where="task run, argument workflow"
        )
    message = str(info.value)
    assert message.startswith("task run, argument workflow: the manifest is a Job (batch/v1)")
    assert "needs a argoproj.io/v1alpha1 Workflow" in message


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        ("WorkflowTemplate", "pass its name as workflow_template="),
        ("ClusterWorkflowTemplate", "pass its name as cluster_workflow_template="),
        ("CronWorkflow", "give its spec.workflowSpec as the spec of a Workflow manifest"),
    ],
)
def test_load_workflow_template_kinds_say_what_to_do(kind: str, hint: str, tmp_path: Path) -> None:
    manifest = {"apiVersion": WORKFLOWS_API_VERSION, "kind": kind, "metadata": {"name": "t"}}
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    for source in (manifest, yaml.safe_dump(manifest), path):
        with pytest.raises(InvalidInputError) as info:
            load_workflow(source)  # type: ignore[arg-type]
        assert f"the manifest is a {kind}" in str(info.value)
        assert hint in str(info.value)


def test_template_given_as_workflow_is_refused_by_build() -> None:
    template = copy.deepcopy(ETL_TEMPLATE)
    message = problems_of(workflow=template)
    assert "the manifest is a WorkflowTemplate" in message
    assert "workflow_template=" in message


def test_load_workflow_malformed_yaml_has_the_line() -> None:
    text = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  entrypoint: [a\n  x: 1\n"
    with pytest.raises(InvalidInputError) as info:
        load_workflow(text, where="task run")
    message = str(info.value)
    assert message.startswith("task run: malformed YAML at line ")
    assert "line 5" in message


def test_load_workflow_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_workflow(str(tmp_path / "nope.yaml"))
    assert "manifest file not found" in str(info.value)


def test_load_workflow_duplicate_keys() -> None:
    text = "kind: Workflow\nspec:\n  entrypoint: a\n  entrypoint: b\n"
    with pytest.raises(InvalidInputError) as info:
        load_workflow(text)
    assert "duplicate key 'entrypoint'" in str(info.value)


# --- protecting Argo expressions from Jinja ----------------------------------------------------


def render(text: str, **context: Any) -> str:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, extensions=["jinja2.ext.do"]
    )
    return env.from_string(protect_argo_expressions(text)).render(**context)


AIRFLOW_CONTEXT: dict[str, Any] = {
    "ds": "2026-01-01",
    "params": {"max": 3},
    "var": {"value": {"bucket": "gs://data"}},
    "data_interval_start": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    "macros": type("Macros", (), {"ds_add": staticmethod(lambda ds, n: f"{ds}+{n}")}),
}


@pytest.mark.parametrize(
    "expression",
    [
        "{{inputs.parameters.x}}",
        "{{ item }}",
        "{{item.name}}",
        "{{ item.name }}",
        "{{workflow.parameters.max}}",
        "{{workflow.scheduledTime}}",
        "{{steps.task1.outputs.parameters.results}}",
        "{{tasks.a.outputs.result}}",
        "{{pod.name}}",
        "{{node.name}}",
        "{{retries}}",
        "{{lastRetry.exitCode}}",
        "{{outputs.parameters.result.path}}",
        "{{status}}",
        "{{=asInt(inputs.parameters.x) + 1}}",
        "{{=inputs.parameters['my-param']}}",
        "{{=sprig.trim(inputs.parameters['name'])}}",
        "{{=toJson(filter([1, 2, 3], {# > 1}))}}",
        "{{=map([1, 2], { # * 2 })}}",
        '{{=jsonpath(inputs.parameters.json, "$.a{b}")}}',
        "{{=sprig.dict('a', '{', 'b', \"}\")}}",
        "{{=asInt(lastRetry.exitCode) >= 2}}",
        "{{=steps['task-1'].outputs.result == \"{}\"}}",
    ],
)
def test_argo_expressions_pass_through_unchanged(expression: str) -> None:
    for text in (
        expression,
        f'value: "{expression}"',
        f"args: ['echo {expression}', \"{expression}\"]",
        f"- {expression}\n- {expression}\n",
    ):
        assert render(text, **AIRFLOW_CONTEXT) == text


def test_mixed_string_renders_only_the_airflow_part() -> None:
    text = (
        "python run.py --date {{ ds }} --max {{ params.max }} --next {{ macros.ds_add(ds, 1) }} "
        "--out {{ var.value.bucket }}/{{ data_interval_start.year }} "
        "--shard {{item}} --x {{inputs.parameters.x}} --y {{=asInt(inputs.parameters.y) + 1}}"
    )
    assert render(text, **AIRFLOW_CONTEXT) == (
        "python run.py --date 2026-01-01 --max 3 --next 2026-01-01+1 --out gs://data/2026 "
        "--shard {{item}} --x {{inputs.parameters.x}} --y {{=asInt(inputs.parameters.y) + 1}}"
    )


def test_jinja_blocks_still_work() -> None:
    text = (
        "{% if params.max > 2 %}big: {{ item }}{% else %}small{% endif %}\n"
        "{% for i in range(2) %}- {{ i }}: {{inputs.parameters.x}}\n{% endfor %}"
        "{% set label = 'ds-' ~ ds %}{{ label }}"
    )
    assert render(text, **AIRFLOW_CONTEXT) == (
        "big: {{ item }}\n- 0: {{inputs.parameters.x}}\n- 1: {{inputs.parameters.x}}\nds-2026-01-01"
    )


def test_argo_expressions_inside_jinja_strings_are_left_to_jinja() -> None:
    text = "{{ '{{inputs.parameters.x}}' }} {% set a = \"{{item}}\" %}{{ a }} {{ '{{' }}"
    assert render(text, **AIRFLOW_CONTEXT) == "{{inputs.parameters.x}} {{item}} {{"


def test_text_already_in_raw_blocks_is_left_alone_and_protection_is_idempotent() -> None:
    text = (
        "a: {% raw %}{{inputs.parameters.x}} {{ ds }}{% endraw %}\n"
        "b: {%- raw -%} {{item}} {%- endraw %}\n"
        "c: {{item}} {{ ds }}\n"
    )
    once = protect_argo_expressions(text)
    assert protect_argo_expressions(once) == once
    assert once.count("{% raw %}") == 2  # only c's {{item}} was wrapped
    assert render(text, **AIRFLOW_CONTEXT) == (
        "a: {{inputs.parameters.x}} {{ ds }}\nb:{{item}}\nc: {{item}} 2026-01-01\n"
    )


def test_protecting_the_seed_twice_changes_nothing() -> None:
    once = protect_argo_expressions(SEED_WORKFLOW_YAML)
    assert protect_argo_expressions(once) == once
    assert once != SEED_WORKFLOW_YAML


def test_airflow_expressions_are_not_wrapped() -> None:
    for text in (
        "{{ ds }}",
        "{{ params.max }}",
        "{{ macros.ds_add(ds, 1) }}",
        "{{ var.value.x }}",
        "{{ data_interval_start }}",
        "{{ task.task_id }}",
        "{{ ti.xcom_pull(task_ids='a') }}",
        "{{- ds -}}",
        "{% if x %}{% endif %}",
        "{{ {'a': {'b': 1}} }}",
    ):
        assert protect_argo_expressions(text) == text


def test_shell_length_expansion_is_not_a_jinja_comment() -> None:
    text = 'args: ["n=${#files[@]}; echo {{ ds }} $n {{inputs.parameters.x}}"]'
    assert render(text, **AIRFLOW_CONTEXT) == (
        'args: ["n=${#files[@]}; echo 2026-01-01 $n {{inputs.parameters.x}}"]'
    )


@pytest.mark.parametrize(
    "text",
    [
        # expr-lang closures in a data template's transformation, outside any {{ }}
        '- expression: "filter(data, {# endsWith \\"main.log\\"})"',
        "- expression: \"map(data, {#.size})\"\n- expression: 'all(data, {# > 0})'",
        # printf formats and other "{%" that start no Jinja statement
        'args: ["printf \'{%s}\\n\' x", "date +{%Y}"]',
        "cmd: awk '{%d}' {{inputs.parameters.x}}",
    ],
)
def test_what_only_looks_like_jinja_is_submitted_as_written(text: str) -> None:
    assert render(text, **AIRFLOW_CONTEXT) == text
    once = protect_argo_expressions(text)
    assert protect_argo_expressions(once) == once


def test_jinja_comments_and_statements_stay_jinjas() -> None:
    text = (
        "a: 1 {# a comment, {{ ds }} inside #}\n"
        "b: {%- if params.max > 2 %}big{% endif %} {# two\nlines #}c: {{ ds }} {#x}"
    )
    assert render(text, **AIRFLOW_CONTEXT) == "a: 1 \nb:big c: 2026-01-01 {#x}"


def test_unclosed_braces_are_left_for_jinja_to_report() -> None:
    assert protect_argo_expressions("echo {{inputs.parameters.x") == "echo {{inputs.parameters.x"
    with pytest.raises(jinja2.TemplateSyntaxError):
        render("echo {{ ds")


def test_expression_ends_at_the_first_closing_braces_as_in_argo() -> None:
    # Argo's tag parser stops at the first "}}", so do we; the rest is plain text to both.
    text = "{{=toJson({'a': {'b': 1}})}} {{ ds }}"
    assert protect_argo_expressions(text) == (
        "{% raw %}{{=toJson({'a': {'b': 1}}{% endraw %})}} {{ ds }}"
    )
    assert render(text, **AIRFLOW_CONTEXT) == "{{=toJson({'a': {'b': 1}})}} 2026-01-01"


def test_roots_cover_the_argo_variables() -> None:
    for root in ("inputs", "outputs", "item", "workflow", "steps", "tasks", "pod", "retries"):
        assert root in ARGO_EXPRESSION_ROOTS
    for airflow_name in ("ds", "params", "macros", "var", "ti", "task", "dag_run", "conn"):
        assert airflow_name not in ARGO_EXPRESSION_ROOTS


def test_package_exports() -> None:
    assert manifests.WorkflowRequest is WorkflowRequest
    assert manifests.build_workflow is build_workflow
    assert manifests.load_workflow is load_workflow
    assert manifests.protect_argo_expressions is protect_argo_expressions
