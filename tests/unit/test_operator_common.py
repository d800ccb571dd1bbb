"""The pure parts of the operators' contract with Airflow: which failures are final, manifest
files, the manifest shown as a rendered template field, and the class attributes Airflow reads."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from airflow_k8s_jobs import ArgoWorkflowOperator, KubeJobOperator
from airflow_k8s_jobs._compat import AirflowFailException, is_sensitive_name
from airflow_k8s_jobs.errors import InvalidInputError, JobFailedError, WorkflowFailedError
from airflow_k8s_jobs.operators._common import (
    MASKED,
    RENDERED_MANIFEST,
    FatalInvalidInputError,
    FatalJobFailedError,
    FatalWorkflowFailedError,
    bad_input_is_final,
    jinja_errors_in,
    looks_like_manifest_file,
    manifest_yaml,
    mask_sensitive_values,
    no_retry_on_bad_input,
    read_manifest_file,
)
from airflow_k8s_jobs.status.workflows import interpret_workflow

# --- final failures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("final", "ours"),
    [
        (FatalInvalidInputError, InvalidInputError),
        (FatalJobFailedError, JobFailedError),
        (FatalWorkflowFailedError, WorkflowFailedError),
    ],
)
def test_final_failures_are_ours_and_airflows(final: type, ours: type) -> None:
    error = final("why")
    assert isinstance(error, ours)  # what tests and users catch
    assert isinstance(error, AirflowFailException)  # what Airflow does not retry
    assert str(error) == "why"


def test_bad_input_becomes_final_with_its_message_and_cause() -> None:
    cause = KeyError("origin")

    def fails() -> None:
        raise InvalidInputError("task t: namespace 'team-b' is not allowed") from cause

    with pytest.raises(FatalInvalidInputError) as info, bad_input_is_final():
        fails()
    assert str(info.value) == "task t: namespace 'team-b' is not allowed"
    assert info.value.__cause__ is cause
    # The traceback still reaches where the input was found bad.
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "fails" in frames


def test_bad_input_without_a_cause_shows_no_chain() -> None:
    with pytest.raises(FatalInvalidInputError) as info, bad_input_is_final():
        raise InvalidInputError("bad")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert "During handling" not in "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize(
    "error",
    [JobFailedError("a Job failed"), RuntimeError("boom"), FatalInvalidInputError("already")],
)
def test_other_errors_pass_through_unchanged(error: Exception) -> None:
    with pytest.raises(type(error)) as info, bad_input_is_final():
        raise error
    assert info.value is error


def test_the_decorator_keeps_the_method() -> None:
    class Op:
        @no_retry_on_bad_input
        def execute(self, context: Any) -> Any:
            """Doc."""
            if context == "bad":
                raise InvalidInputError("bad input")
            return context

    assert Op().execute("ok") == "ok"
    assert Op.execute.__name__ == "execute" and Op.execute.__doc__ == "Doc."
    with pytest.raises(FatalInvalidInputError, match="bad input"):
        Op().execute("bad")


# --- manifest files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("job.yaml", True),
        (" workflows/workflow.yml ", True),
        ("JOB.JSON", True),
        ("result.txt", False),
        ("kind: Job\nmetadata: {name: x.yaml}", False),
        ({"kind": "Job"}, False),
        (None, False),
    ],
)
def test_looks_like_manifest_file(value: Any, expected: bool) -> None:
    assert looks_like_manifest_file(value) is expected


def test_manifest_files_are_found_through_the_search_path(tmp_path: Path) -> None:
    dags, shared = tmp_path / "dags", tmp_path / "shared"
    (dags / "sub").mkdir(parents=True)
    shared.mkdir()
    (dags / "sub" / "job.yaml").write_text("kind: Job # dags\n")
    (shared / "job.yaml").write_text("kind: Job # shared\n")
    (shared / "other.yml").write_text("kind: Workflow\n")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(dags), str(shared)]))

    assert read_manifest_file(env, "sub/job.yaml", "w") == "kind: Job # dags\n"
    assert read_manifest_file(env, "job.yaml", "w") == "kind: Job # shared\n"
    assert read_manifest_file(env, "other.yml", "w") == "kind: Workflow\n"
    # An absolute path is read as it is.
    absolute = tmp_path / "elsewhere.json"
    absolute.write_text('{"kind": "Job"}')
    assert read_manifest_file(env, str(absolute), "w") == '{"kind": "Job"}'


def test_a_missing_manifest_file_names_the_file_and_where_it_was_looked_for(
    tmp_path: Path,
) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(tmp_path / "dags"), "/tpl"]))
    with pytest.raises(InvalidInputError) as info:
        read_manifest_file(env, "nightly.yaml", "task t, job file nightly.yaml")
    message = str(info.value)
    assert message.startswith("task t, job file nightly.yaml: file not found (searched ")
    assert f"{tmp_path / 'dags'}, /tpl" in message
    assert "template_searchpath" in message
    assert not isinstance(info.value, jinja2.TemplateNotFound)


def test_a_manifest_file_without_a_loader(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no template search path"):
        read_manifest_file(jinja2.Environment(), "job.yaml", "w")
    path = tmp_path / "job.yaml"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(InvalidInputError, match="cannot read the file"):
        read_manifest_file(jinja2.Environment(), str(path), "w")


def test_jinja_errors_name_the_manifest() -> None:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    syntax = r"^w: Jinja syntax error at line 2: "
    with pytest.raises(InvalidInputError, match=syntax) as info, jinja_errors_in("w"):
        env.from_string("a: 1\nb: {{ oops }\n").render()
    assert isinstance(info.value.__cause__, jinja2.TemplateSyntaxError)
    undefined = r"^w: Jinja: 'nope' is undefined"
    with pytest.raises(InvalidInputError, match=undefined), jinja_errors_in("w"):
        env.from_string("{{ nope }}").render()


# --- the rendered manifest ----------------------------------------------------------------------


def test_sensitive_env_values_and_parameters_are_masked() -> None:
    manifest = {
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "env": [
                        {"name": "CONFIG", "value": "settings.yaml"},
                        {"name": "API_TOKEN", "value": "t0k3n"},
                        {"name": "DB_PASSWORD", "value": "pw"},
                        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    ],
                }
            ],
            "arguments": {"parameters": [{"name": "aws_secret", "value": "x"}]},
        }
    }
    masked = mask_sensitive_values(manifest)
    env = {e["name"]: e.get("value") for e in masked["spec"]["containers"][0]["env"]}
    assert env == {
        "CONFIG": "settings.yaml",
        "API_TOKEN": MASKED,
        "DB_PASSWORD": MASKED,
        "KEY": None,
    }
    assert masked["spec"]["containers"][0]["env"][3]["valueFrom"]["secretKeyRef"]["name"] == "s"
    assert masked["spec"]["arguments"]["parameters"][0]["value"] == MASKED
    # The manifest itself is left alone (it is what gets submitted).
    assert manifest["spec"]["containers"][0]["env"][1]["value"] == "t0k3n"


def test_manifest_yaml_keeps_the_order_and_masks() -> None:
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "main", "args": ["a.json"]}]}}},
        "env": [{"name": "PASSWORD", "value": "x"}],
    }
    text = manifest_yaml(manifest)
    assert text.startswith("apiVersion: batch/v1\nkind: Job\n")
    loaded = yaml.safe_load(text)
    assert loaded["spec"] == manifest["spec"]
    assert loaded["env"] == [{"name": "PASSWORD", "value": MASKED}]


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [("API_TOKEN", True), ("db_password", True), ("CONFIG", False), ("", False)],
)
def test_sensitive_names_are_airflows(name: str, sensitive: bool) -> None:
    assert is_sensitive_name(name) is sensitive


# --- what Airflow reads from the classes --------------------------------------------------------


@pytest.mark.parametrize("operator", [KubeJobOperator, ArgoWorkflowOperator])
def test_no_templated_string_is_read_as_a_file(operator: type) -> None:
    assert tuple(operator.template_ext) == ()
    assert RENDERED_MANIFEST in operator.template_fields
    assert operator.template_fields_renderers[RENDERED_MANIFEST] == "yaml"


@pytest.mark.parametrize(
    ("message", "rejected"),
    [
        ("invalid spec: templates.main.container.args failed to resolve {{inputs.x}}", True),
        ("child 'x' failed", False),
        ("Stopped with strategy 'Terminate'", False),
    ],
)
def test_a_workflow_the_controller_refused_is_rejected(message: str, rejected: bool) -> None:
    workflow = {
        "metadata": {"name": "w", "namespace": "n"},
        "status": {"phase": "Failed", "finishedAt": "2026-01-01T00:00:00Z", "message": message},
    }
    assert interpret_workflow(workflow, name="w", namespace="n").rejected is rejected
    running = {**workflow, "status": {"phase": "Running", "message": message}}
    assert not interpret_workflow(running, name="w", namespace="n").rejected
