"""Test-only DAGs: realistic mistakes in a manifest, a parameter, a connection or a template
(tests/e2e/test_bad_input_table.py).

Every task of ``bad_input_jobs``, ``bad_input_argo`` and ``bad_input_cleanup`` must fail on its
first try (``retries=2``), before anything is created, with a message that names the field or
object and says what to do. :data:`CASES` is the table: the DAG and the test both read it.
:data:`PARSE_TIME_CASES` are refused when the DAG file is parsed (the operator's constructor).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from airflow import DAG

from airflow_k8s_jobs import ArgoWorkflowOperator, KubeCleanupOperator, KubeJobOperator

START = datetime(2026, 11, 1)
IMAGE = "contract/app:1"


class Case(NamedTuple):
    """One mistake: the task that makes it and words its error message must hold."""

    task_id: str
    operator: type
    kwargs: dict[str, Any]
    words: tuple[str, ...]
    dag_id: str = ""


def _workflow(templates: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "bad-input-"},
        "spec": {"entrypoint": "main", **spec, "templates": templates},
    }


def _leaf(name: str = "main") -> dict[str, Any]:
    return {"name": name, "container": {"image": IMAGE}}


def _job(**changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": IMAGE}]}}},
    }
    manifest.update(changes)
    return manifest


J, A, C = KubeJobOperator, ArgoWorkflowOperator, KubeCleanupOperator

JOB_CASES = [
    # --- manifest files and templates
    Case("non_utf8_file", J, {"job": "bad_input_latin1.yaml"}, ("bad_input_latin1.yaml", "UTF-8")),
    Case(
        "jinja_syntax_error",
        J,
        {"job": "bad_input_jinja_syntax.yaml"},
        ("bad_input_jinja_syntax.yaml", "Jinja syntax error", "line 9"),
    ),
    Case(
        "undefined_variable",
        J,
        {"job": "bad_input_undefined.yaml"},
        ("bad_input_undefined.yaml", "model_config", "undefined"),
    ),
    Case(
        "argo_expression_in_job",
        J,
        {"image": IMAGE, "arguments": ["--x", "{{inputs.parameters.x}}"]},
        ("arguments", "inputs", "Argo"),
    ),
    Case("missing_manifest_file", J, {"job": "no_such_manifest.yaml"}, ("file not found",)),
    Case("yaml_list", J, {"job": "bad_input_list.yaml"}, ("bad_input_list.yaml", "list")),
    Case("yaml_scalar", J, {"job": "bad_input_scalar.yaml"}, ("bad_input_scalar.yaml", "string")),
    Case("wrong_kind", J, {"job": _job(kind="Pod")}, ("kind", "Pod", "Job")),
    Case(
        "wrong_api_version",
        J,
        {"job": _job(apiVersion="batch/v2")},
        ("(batch/v2)", "needs a batch/v1 Job"),
    ),
    Case(
        "two_documents",
        J,
        {"job": "bad_input_two_documents.yaml"},
        ("bad_input_two_documents.yaml", "2 YAML documents"),
    ),
    # --- knobs
    Case(
        "parallelism_zero", J, {"image": IMAGE, "parallelism": 0}, ("parallelism=0", "greater than")
    ),
    Case("parallelism_negative", J, {"image": IMAGE, "parallelism": -1}, ("parallelism=-1",)),
    Case(
        "completions_below_parallelism",
        J,
        {"image": IMAGE, "indexed": True, "completions": 2, "parallelism": 4},
        ("parallelism=4", "completions=2"),
    ),
    Case("backoff_limit_negative", J, {"image": IMAGE, "backoff_limit": -1}, ("backoff_limit=-1",)),
    # --- metadata
    Case(
        "annotations_too_large",
        J,
        {"image": IMAGE, "annotations": {"notes": "x" * (300 * 1024)}},
        ("annotations", "256 KiB"),
    ),
    Case(
        "label_value_too_long",
        J,
        {"image": IMAGE, "labels": {"team": "t" * 64}},
        ("labels[team]", "63 characters"),
    ),
    Case(
        "label_value_bad_characters",
        J,
        {"image": IMAGE, "labels": {"owner": "jane@example.com"}},
        ("labels[owner]", "letters, digits"),
    ),
    Case(
        "name_too_long",
        J,
        {
            "job": _job(
                spec={"template": {"spec": {"containers": [{"name": "c" * 70, "image": IMAGE}]}}}
            )
        },
        ("containers[0].name", "63 characters"),
    ),
    Case(
        "namespace_name_too_long",
        J,
        {"image": IMAGE, "namespace": "n" * 70},
        ("namespace", "63 characters"),
    ),
    # --- the container
    Case(
        "uppercase_image_repository",
        J,
        {"image": "Registry.example.com/Team/App:1"},
        ("Registry.example.com/Team/App:1", "lower case"),
    ),
    Case("env_name_invalid", J, {"image": IMAGE, "env": {"A=B": "1"}}, ("env name", "'A=B'")),
    Case(
        "bad_quantity",
        J,
        {"image": IMAGE, "container_resources": {"requests": {"cpu": "two"}}},
        ("requests", "cpu", "'two'", "quantity"),
    ),
    Case(
        "limits_below_requests",
        J,
        {
            "image": IMAGE,
            "container_resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}},
        },
        ("memory", "limit", "request"),
    ),
    # --- the cluster
    Case(
        "missing_local_queue",
        J,
        {"image": IMAGE, "queue_name": "no-such-queue"},
        ("LocalQueue", "no-such-queue", "batch"),
    ),
    Case(
        "namespace_not_allowed",
        J,
        {"image": IMAGE, "cluster_conn_id": "bad_input_restricted", "namespace": "team-b"},
        ("'team-b'", "allowed_namespaces"),
    ),
    Case(
        "namespace_missing",
        J,
        {"image": IMAGE, "namespace": "no-such-namespace"},
        ("no-such-namespace", "does not exist"),
    ),
    Case(
        "forbidden_by_rbac",
        J,
        {"image": IMAGE, "namespace": "locked"},
        ("forbidden", "create", "jobs", "locked", "Grant"),
    ),
    Case(
        "connection_missing",
        J,
        {"image": IMAGE, "cluster_conn_id": "bad_input_no_such_connection"},
        ("bad_input_no_such_connection", "not defined"),
    ),
    Case(
        "dead_endpoint",
        J,
        {"image": IMAGE, "cluster_conn_id": "bad_input_dead_endpoint"},
        ("cannot reach the API server at",),
    ),
    Case(
        "ca_missing",
        J,
        {"image": IMAGE, "cluster_conn_id": "bad_input_tls_no_ca"},
        ("certificate", "not trusted"),
    ),
    Case(
        "ca_wrong",
        J,
        {"image": IMAGE, "cluster_conn_id": "bad_input_tls_wrong_ca"},
        ("certificate", "not trusted"),
    ),
]

ARGO_CASES = [
    Case(
        "undeclared_parameter",
        A,
        {"workflow": "operator_contract_workflow.yml", "parameters": {"outt": "x"}},
        ("outt", "did you mean out?"),
    ),
    Case(
        "unknown_template_ref",
        A,
        {
            "workflow": _workflow(
                [{"name": "main", "steps": [[{"name": "a", "template": "trian"}]]}, _leaf("train")]
            )
        },
        ("trian", "did you mean train?"),
    ),
    Case(
        "entrypoint_missing",
        A,
        {"workflow": _workflow([_leaf("train")])},
        ("entrypoint", "main"),
    ),
    Case(
        "bad_depends_expression",
        A,
        {
            "workflow": _workflow(
                [
                    {
                        "name": "main",
                        "dag": {
                            "tasks": [
                                {"name": "a", "template": "leaf"},
                                {"name": "b", "template": "leaf", "depends": "a.Succeeded &&"},
                            ]
                        },
                    },
                    _leaf("leaf"),
                ]
            )
        },
        ("depends", "a.Succeeded &&"),
    ),
    Case(
        "parameters_not_a_dict",
        A,
        {"workflow": "operator_contract_workflow.yml", "parameters": ["out=x"]},
        ("parameters", "dict"),
    ),
    Case(
        "argo_namespace_not_allowed",
        A,
        {
            "workflow": "operator_contract_workflow.yml",
            "cluster_conn_id": "bad_input_restricted",
            "namespace": "team-b",
        },
        ("'team-b'", "allowed_namespaces"),
    ),
]

CLEANUP_CASES = [
    Case(
        "cleanup_namespace_not_allowed",
        C,
        {"cluster_conn_id": "bad_input_restricted", "namespaces": ["batch", "team-b"]},
        ("'team-b'", "allowed_namespaces"),
    ),
    Case(
        "cleanup_connection_missing",
        C,
        {"cluster_conn_id": "bad_input_no_such_connection"},
        ("bad_input_no_such_connection", "not defined"),
    ),
]

PARSE_TIME_CASES = [
    Case(
        "cleanup_bad_selector",
        C,
        {"label_selector": "team in (a"},
        ("label_selector", "team in (a"),
    ),
    Case(
        "capacity_timeout_negative",
        J,
        {"image": IMAGE, "capacity_timeout": -5},
        ("capacity_timeout",),
    ),
    Case(
        "capacity_timeout_zero", J, {"image": IMAGE, "capacity_timeout": 0}, ("capacity_timeout",)
    ),
    Case(
        "capacity_timeout_string",
        J,
        {"image": IMAGE, "capacity_timeout": "1h"},
        ("capacity_timeout", "'1h'"),
    ),
    Case(
        "image_pull_grace_negative",
        J,
        {"image": IMAGE, "image_pull_grace": timedelta(minutes=-1)},
        ("image_pull_grace",),
    ),
    Case("cleanup_older_than_negative", C, {"older_than": -60}, ("older_than",)),
    Case("cleanup_older_than_string", C, {"older_than": "7d"}, ("older_than", "'7d'")),
]

DAGS = {
    "bad_input_jobs": JOB_CASES,
    "bad_input_argo": ARGO_CASES,
    "bad_input_cleanup": CLEANUP_CASES,
}
CASES = [
    Case(c.task_id, c.operator, c.kwargs, c.words, dag_id)
    for dag_id, cases in DAGS.items()
    for c in cases
]


FAILURES: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
"""(dag id, task id) → the (exception type, message, try number) of each failed try."""


def record_failure(context: Any) -> None:
    """``on_failure_callback``: remember the exception that failed the try."""
    ti = context["ti"]
    error = context.get("exception")
    FAILURES.setdefault((ti.dag_id, ti.task_id), []).append(
        (type(error).__name__, str(error), int(ti.try_number))
    )


def _dag(dag_id: str) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        tags=["airflow-k8s-jobs", "test"],
        default_args={
            "cluster_conn_id": "gke_batch",
            "retries": 2,
            "retry_delay": timedelta(seconds=0),
            "execution_timeout": timedelta(seconds=60),  # a case that is not caught
            "on_failure_callback": record_failure,
            "on_retry_callback": record_failure,
        },
    )


for _dag_id, _cases in DAGS.items():
    with _dag(_dag_id) as _the_dag:
        for _case in _cases:
            _case.operator(task_id=_case.task_id, **_case.kwargs)
    globals()[_dag_id] = _the_dag
