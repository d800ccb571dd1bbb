"""The ``workflow`` argument of ``ArgoWorkflowOperator`` read and rendered: a dict, YAML text or a
manifest file, rendered with Airflow's Jinja while Argo's own expressions reach the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest

from airflow_k8s_jobs.errors import InvalidInputError
from airflow_k8s_jobs.operators._common import argo_safe, render_workflow_argument

WORKFLOW_YAML = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: hello-
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      image: busybox
      args: ["{{ params.greeting }}", "{{inputs.parameters.message}}", "{{workflow.name}}"]
"""


def env_with(folder: Path | None = None) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader([str(folder)]) if folder else None
    return argo_safe(jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined))


def rendered(source: Any, env: jinja2.Environment) -> dict[str, Any]:
    def render(value: Any) -> Any:  # what BaseOperator.render_template does, for these shapes
        if isinstance(value, str):
            return env.from_string(value).render(params={"greeting": "hi"})
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v) for v in value]
        return value

    return render_workflow_argument(source, env, "task t, argument workflow", render)


def args_of(workflow: dict[str, Any]) -> list[str]:
    args: list[str] = workflow["spec"]["templates"][0]["container"]["args"]
    return args


def test_yaml_text_is_loaded_then_rendered_leaving_argo_expressions() -> None:
    workflow = rendered(WORKFLOW_YAML, env_with())
    assert workflow["kind"] == "Workflow"
    assert args_of(workflow) == ["hi", "{{inputs.parameters.message}}", "{{workflow.name}}"]


def test_a_file_is_found_through_the_search_path(tmp_path: Path) -> None:
    (tmp_path / "hello.yaml").write_text(WORKFLOW_YAML)
    workflow = rendered("hello.yaml", env_with(tmp_path))
    assert args_of(workflow)[0] == "hi"
    with pytest.raises(InvalidInputError, match=r"^task t, argument workflow, file nope\.yaml: "):
        rendered("nope.yaml", env_with(tmp_path))


def test_a_dict_is_rendered_as_it_is() -> None:
    source = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "{{ params.greeting }}-wf"},
        "spec": {},
    }
    assert rendered(source, env_with())["metadata"]["name"] == "hi-wf"


def test_another_type_is_bad_input() -> None:
    with pytest.raises(InvalidInputError) as info:
        rendered(["kind: Workflow"], env_with())
    assert str(info.value) == (
        "task t, argument workflow: expected a dict, a .yaml/.yml/.json file name or YAML text, "
        "got list"
    )


def test_a_jinja_error_names_the_argument_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(WORKFLOW_YAML.replace("params.greeting", "nothing.x"))
    with pytest.raises(InvalidInputError, match=r"file broken\.yaml: Jinja: 'nothing'"):
        rendered("broken.yaml", env_with(tmp_path))
