"""Loading, building, defaulting and validating the Job a task submits."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_k8s_jobs.errors import InvalidInputError, PermanentError
from airflow_k8s_jobs.manifests import schema
from airflow_k8s_jobs.manifests.jobs import (
    PREEMPTION_RULE,
    JobSpecRequest,
    build_job,
    job_problems,
    load_manifest,
)
from airflow_k8s_jobs.manifests.names import TaskInstanceKey, object_name, task_labels
from simulated_k8s_cluster import admission
from simulated_k8s_cluster import schema as simulated_schema
from simulated_k8s_cluster.resources import JOBS, ApiError

KEY = TaskInstanceKey("ml_training", "train_model", "scheduled__2026-03-01T00:00:00+00:00", -1, 1)
NAME = object_name(KEY)
SUBJECT = f"Job batch/{NAME} on cluster gke-batch"

# The seed case: a training Job for a GPU node pool, as a team would keep it in the DAG folder.
TRAINING_JOB_YAML = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: train-resnet            # replaced by the task's deterministic name
  labels:
    team: ml-platform
    app.kubernetes.io/name: trainer
spec:
  backoffLimit: 2
  template:
    metadata:
      labels:
        app.kubernetes.io/name: trainer
      annotations:
        cluster-autoscaler.kubernetes.io/safe-to-evict: "false"
    spec:
      serviceAccountName: trainer
      containers:
        - name: trainer
          image: asia-northeast1-docker.pkg.dev/ml-prod/models/trainer:4f2c1e7
          command: ["python", "-m", "trainer.main"]
          args: ["--epochs", "20", "--data", "gs://ml-prod-data/features/2026-03-01"]
          env:
            - name: CUDA_VISIBLE_DEVICES
              value: "0"
            - name: WANDB_API_KEY
              valueFrom:
                secretKeyRef: {name: wandb, key: api-key}
          resources:
            requests: {cpu: "8", memory: 30Gi}
            limits: {memory: 30Gi, nvidia.com/gpu: 1}
          volumeMounts:
            - {name: shm, mountPath: /dev/shm}
      volumes:
        - name: shm
          emptyDir: {medium: Memory, sizeLimit: 8Gi}
"""


def build(request: JobSpecRequest, key: TaskInstanceKey = KEY) -> dict[str, Any]:
    return build_job(request, key, "batch", "gke-batch")


def quick(**kwargs: Any) -> JobSpecRequest:
    kwargs.setdefault("image", "python:3.12-slim")
    return JobSpecRequest(**kwargs)


def training_job() -> dict[str, Any]:
    return load_manifest(TRAINING_JOB_YAML)


def invalid(request: JobSpecRequest, key: TaskInstanceKey = KEY) -> str:
    with pytest.raises(InvalidInputError) as info:
        build(request, key)
    message = str(info.value)
    assert message.startswith(f"Job batch/{object_name(key)} on cluster gke-batch: invalid input")
    assert "nothing was created" in message
    assert message.rstrip().endswith("run the task again.")
    return message


def problems_of(message: str) -> list[str]:
    return [line[4:] for line in message.splitlines() if line.startswith("  - ")]


def admitted(job: dict[str, Any]) -> dict[str, Any]:
    """What the simulated API server (the same validation as a real one) makes of it."""
    obj = copy.deepcopy(job)
    job_schema = simulated_schema.kind_definition("batch/v1", "Job")
    assert job_schema is not None
    assert simulated_schema.prune(obj, job_schema) == []
    try:
        return admission.admit_create(JOBS, obj)
    except ApiError as e:  # pragma: no cover - the message is the point
        pytest.fail(f"the API server would reject the Job: {e}")


# --- load_manifest ------------------------------------------------------------------------------


def test_load_dict_is_a_deep_copy() -> None:
    source: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": {"spec": {}}},
    }
    loaded = load_manifest(source)
    loaded["spec"]["template"]["spec"]["containers"] = []
    assert source["spec"]["template"]["spec"] == {}


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_load_yaml_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"train{suffix}"
    path.write_text(TRAINING_JOB_YAML)
    for source in (path, str(path)):
        job = load_manifest(source)
        assert job["spec"]["template"]["spec"]["containers"][0]["name"] == "trainer"


def test_load_json_file_and_json_text(tmp_path: Path) -> None:
    manifest = training_job()
    path = tmp_path / "train.json"
    path.write_text(json.dumps(manifest, indent=2))
    assert load_manifest(path) == manifest
    assert load_manifest(json.dumps(manifest)) == manifest


def test_load_yaml_text_with_document_markers() -> None:
    text = "---\n" + TRAINING_JOB_YAML + "---\n"
    assert load_manifest(text)["metadata"]["labels"]["team"] == "ml-platform"


def test_manifest_without_kind_and_api_version_is_taken_as_a_job() -> None:
    job = load_manifest({"spec": {"template": {"spec": {"containers": []}}}})
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "jobs" / "train.yaml"
    with pytest.raises(InvalidInputError, match=r"train\.yaml: manifest file not found") as info:
        load_manifest(str(missing), where="task train")
    assert str(info.value).startswith(f"task train: {missing}")


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: batch/v1\nkind: Job\nspec:\n  template:\n   - a\n  b: [1, 2\n")
    with pytest.raises(InvalidInputError) as info:
        load_manifest(path)
    message = str(info.value)
    assert message.startswith(f"{path}: malformed YAML at line ")
    assert re.search(r"line \d+, column \d+", message)


def test_malformed_yaml_text_reports_the_line() -> None:
    text = "apiVersion: batch/v1\nkind: Job\nspec:\n  template: {spec: [}\n"
    with pytest.raises(InvalidInputError, match=r"^task t: malformed YAML at line 4, column"):
        load_manifest(text, where="task t")


def test_tab_indentation_is_reported_with_its_line() -> None:
    text = "apiVersion: batch/v1\nkind: Job\nspec:\n\tbackoffLimit: 1\n"
    with pytest.raises(InvalidInputError, match=r"malformed YAML at line 4, column 1"):
        load_manifest(text)


def test_duplicate_keys_are_an_error_with_the_line() -> None:
    text = "apiVersion: batch/v1\nkind: Job\nspec:\n  backoffLimit: 1\n  backoffLimit: 3\n"
    with pytest.raises(InvalidInputError) as info:
        load_manifest(text)
    assert "malformed YAML at line 5, column 3" in str(info.value)
    assert "duplicate key 'backoffLimit'" in str(info.value)


def test_malformed_json_file_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    path.write_text('{\n  "apiVersion": "batch/v1",\n  "kind": "Job",\n}\n')
    with pytest.raises(InvalidInputError, match=r"job\.json: malformed JSON at line 4, column 1"):
        load_manifest(path)


def test_more_than_one_document_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(TRAINING_JOB_YAML + "---\napiVersion: v1\nkind: ConfigMap\n")
    with pytest.raises(InvalidInputError) as info:
        load_manifest(path)
    assert str(info.value) == (
        f"{path}: contains 2 YAML documents (Job, ConfigMap); a task submits one object, so keep "
        "one document per file"
    )


def test_a_single_line_that_is_not_a_manifest_file_gets_a_hint() -> None:
    with pytest.raises(InvalidInputError) as info:
        load_manifest("jobs/train.txt")
    assert "the manifest is a string, not a mapping" in str(info.value)
    assert "a manifest file name must end with .yaml, .yml or .json" in str(info.value)


@pytest.mark.parametrize(
    ("text", "shown"),
    [("- a\n- b\n", "a list"), ("just a string\n", "a string"), ("42\n", "a int")],
)
def test_top_level_must_be_a_mapping(text: str, shown: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_manifest(text)
    assert f"the manifest is {shown}, not a mapping" in str(info.value)
    assert "write one batch/v1 Job object" in str(info.value)


def test_empty_manifest() -> None:
    with pytest.raises(InvalidInputError, match="the manifest is empty"):
        load_manifest("---\n# nothing here\n")


def test_a_pod_is_not_a_job() -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n"
    with pytest.raises(InvalidInputError) as info:
        load_manifest(pod, where="task train, argument job")
    assert str(info.value) == (
        "task train, argument job: the manifest is a Pod (v1); KubeJobOperator needs a batch/v1 Job"
    )


def test_an_old_api_version_is_not_accepted() -> None:
    with pytest.raises(InvalidInputError, match=r"is a Job \(batch/v1beta1\); KubeJobOperator"):
        load_manifest({"apiVersion": "batch/v1beta1", "kind": "Job"})


def test_kind_without_api_version() -> None:
    with pytest.raises(InvalidInputError, match="the manifest has no apiVersion; KubeJobOperator"):
        load_manifest({"kind": "Job", "spec": {}})


def test_other_expected_kinds() -> None:
    workflow = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": {}}
    assert (
        load_manifest(
            workflow, expected_kind="Workflow", expected_api_version="argoproj.io/v1alpha1"
        )
        == workflow
    )
    with pytest.raises(
        InvalidInputError, match=r"this task needs a argoproj\.io/v1alpha1 Workflow"
    ):
        load_manifest(
            {"apiVersion": "batch/v1", "kind": "Job"},
            expected_kind="Workflow",
            expected_api_version="argoproj.io/v1alpha1",
        )


def test_unsupported_source_type() -> None:
    with pytest.raises(InvalidInputError, match=r"expected a dict, a path .* got int"):
        load_manifest(42)  # type: ignore[arg-type]


def test_invalid_input_is_permanent() -> None:
    assert issubclass(InvalidInputError, PermanentError)


# --- build_job: the quick form ------------------------------------------------------------------


def test_quick_form_builds_a_complete_job() -> None:
    job = build(
        quick(
            image="python:3.12-slim",
            cmds=["python", "-c"],
            arguments=["print('hi')"],
            env={"STAGE": "prod", "EMPTY": ""},
        )
    )
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"] == NAME
    assert job["metadata"]["namespace"] == "batch"
    spec = job["spec"]
    pod_spec = spec["template"]["spec"]
    assert pod_spec["containers"] == [
        {
            "name": "main",
            "image": "python:3.12-slim",
            "command": ["python", "-c"],
            "args": ["print('hi')"],
            "env": [{"name": "STAGE", "value": "prod"}, {"name": "EMPTY", "value": ""}],
        }
    ]
    assert pod_spec["restartPolicy"] == "Never"
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert spec["podFailurePolicy"] == {
        "rules": [
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            }
        ]
    }
    assert "backoffLimit" not in spec and "suspend" not in spec and "completionMode" not in spec
    assert "tolerations" not in pod_spec and "affinity" not in pod_spec
    admitted(job)


def test_labels_and_annotations_on_the_job_and_its_pods() -> None:
    job = build(quick(labels={"team": "data"}, annotations={"owner": "data@example.com"}))
    for meta in (job["metadata"], job["spec"]["template"]["metadata"]):
        assert meta["labels"] == {**task_labels(KEY), "team": "data"}
        assert meta["annotations"]["owner"] == "data@example.com"
        assert meta["annotations"]["airflow-k8s-jobs.io/run-id"] == KEY.run_id
        assert meta["annotations"]["airflow-k8s-jobs.io/map-index"] == "-1"


def test_identity_labels_win_over_the_users() -> None:
    job = build(
        quick(
            labels={
                "app.kubernetes.io/managed-by": "helm",
                "airflow-k8s-jobs.io/try-number": "9",
                "app.kubernetes.io/name": "etl",
            }
        )
    )
    labels = job["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "airflow-k8s-jobs"
    assert labels["airflow-k8s-jobs.io/try-number"] == "1"
    assert labels["app.kubernetes.io/name"] == "etl"


def test_container_resources_and_service_account_in_the_quick_form() -> None:
    resources = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    job = build(quick(container_resources=resources, service_account_name="etl-runner"))
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["resources"] == resources
    assert pod_spec["serviceAccountName"] == "etl-runner"
    resources["requests"]["cpu"] = "9"  # the Job does not share the caller's dicts
    assert pod_spec["containers"][0]["resources"]["requests"]["cpu"] == "500m"


def test_ttl_none_and_no_preemption_rule() -> None:
    job = build(quick(ttl_seconds_after_finished=None, ignore_preemption=False))
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert "podFailurePolicy" not in job["spec"]


def test_same_key_same_job_new_try_new_name() -> None:
    request = quick(cmds=["true"])
    assert build(request) == build(request)
    retry = TaskInstanceKey(KEY.dag_id, KEY.task_id, KEY.run_id, KEY.map_index, 2)
    assert build(request, retry)["metadata"]["name"] != NAME


# --- build_job: a manifest ----------------------------------------------------------------------


def test_seed_training_job_for_a_gpu_node_pool() -> None:
    manifest = training_job()
    original = copy.deepcopy(manifest)
    job = build(JobSpecRequest(job=manifest, node_pool="a100-spot"))
    assert manifest == original  # the request's manifest is not modified

    assert job["metadata"]["name"] == NAME  # not train-resnet
    assert job["metadata"]["labels"]["team"] == "ml-platform"
    spec = job["spec"]
    assert spec["backoffLimit"] == 2
    pod_spec = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "trainer"
    assert (
        spec["template"]["metadata"]["annotations"][
            "cluster-autoscaler.kubernetes.io/safe-to-evict"
        ]
        == "false"
    )
    assert pod_spec["serviceAccountName"] == "trainer"
    assert pod_spec["affinity"] == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "cloud.google.com/gke-nodepool",
                                "operator": "In",
                                "values": ["a100-spot"],
                            }
                        ]
                    }
                ]
            }
        }
    }
    assert "nodeSelector" not in pod_spec  # node affinity: what the autoscaler honours
    assert pod_spec["tolerations"] == [
        {
            "key": "cloud.google.com/gke-nodepool",
            "operator": "Equal",
            "value": "a100-spot",
            "effect": "NoSchedule",
        },
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert pod_spec["restartPolicy"] == "Never"
    assert spec["podFailurePolicy"]["rules"] == [PREEMPTION_RULE]
    assert spec["ttlSecondsAfterFinished"] == 86400
    container = pod_spec["containers"][0]
    assert container["env"][1]["valueFrom"] == {"secretKeyRef": {"name": "wandb", "key": "api-key"}}
    stored = admitted(job)
    assert stored["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == NAME


def test_gpu_toleration_without_a_node_pool() -> None:
    job = build(quick(container_resources={"limits": {"nvidia.com/gpu": "2"}}))
    assert job["spec"]["template"]["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


@pytest.mark.parametrize(
    "existing",
    [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists"},
        {"operator": "Exists"},
    ],
)
def test_an_existing_gpu_toleration_is_kept_and_not_duplicated(existing: dict[str, str]) -> None:
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["tolerations"] = [existing]
    job = build(JobSpecRequest(job=manifest))
    assert job["spec"]["template"]["spec"]["tolerations"] == [existing]


def test_node_pool_is_added_to_every_existing_node_selector_term() -> None:
    manifest = training_job()
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["asia-northeast1-a"]}
    arch = {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
    manifest["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [zone]}, {"matchExpressions": [arch]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [arch]}}
            ],
        },
        "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []},
    }
    job = build(JobSpecRequest(job=manifest, node_pool="a100-spot"))
    affinity = job["spec"]["template"]["spec"]["affinity"]
    pool = {"key": "cloud.google.com/gke-nodepool", "operator": "In", "values": ["a100-spot"]}
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [{"matchExpressions": [zone, pool]}, {"matchExpressions": [arch, pool]}]
    assert "podAffinity" in affinity
    assert "preferredDuringSchedulingIgnoredDuringExecution" in affinity["nodeAffinity"]
    admitted(job)


def test_node_pool_already_required_by_the_manifest_is_not_repeated() -> None:
    manifest = training_job()
    pool = {"key": "cloud.google.com/gke-nodepool", "operator": "In", "values": ["a100-spot"]}
    manifest["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [pool]}]
            }
        }
    }
    job = build(JobSpecRequest(job=manifest, node_pool="a100-spot"))
    terms = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [pool]}]


def test_generate_name_is_replaced_by_the_deterministic_name() -> None:
    manifest = training_job()
    del manifest["metadata"]["name"]
    manifest["metadata"]["generateName"] = "train-"
    job = build(JobSpecRequest(job=manifest))
    assert job["metadata"]["name"] == NAME
    assert "generateName" not in job["metadata"]


def test_a_job_exported_from_a_cluster_can_be_submitted_again() -> None:
    manifest = training_job()
    uid = "0b8d3c2e-1111-2222-3333-444455556666"
    manifest["metadata"].update(
        uid=uid,
        resourceVersion="123",
        creationTimestamp="2026-03-01T00:00:00Z",
        generation=1,
        managedFields=[{"manager": "kubectl"}],
    )
    manifest["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    manifest["spec"]["template"]["metadata"]["labels"].update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "controller-uid": uid,
            "batch.kubernetes.io/job-name": "train-resnet",
            "job-name": "train-resnet",
        }
    )
    manifest["status"] = {"succeeded": 1}
    job = build(JobSpecRequest(job=manifest))
    assert "status" not in job and "selector" not in job["spec"]
    assert not {"uid", "resourceVersion", "creationTimestamp", "managedFields"} & set(
        job["metadata"]
    )
    assert "job-name" not in job["spec"]["template"]["metadata"]["labels"]
    admitted(job)


def test_manifest_defaults_are_respected() -> None:
    manifest = training_job()
    spec = manifest["spec"]
    spec["ttlSecondsAfterFinished"] = 600
    spec["podFailurePolicy"] = {
        "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]
    }
    job = build(JobSpecRequest(job=manifest))
    assert job["spec"]["ttlSecondsAfterFinished"] == 600
    assert job["spec"]["podFailurePolicy"] == spec["podFailurePolicy"]


def test_on_failure_restart_policy_gets_no_preemption_rule() -> None:
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    job = build(JobSpecRequest(job=manifest))
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert "podFailurePolicy" not in job["spec"]
    admitted(job)


def test_manifest_namespace_equal_to_the_tasks_is_fine() -> None:
    manifest = training_job()
    manifest["metadata"]["namespace"] = "batch"
    assert build(JobSpecRequest(job=manifest))["metadata"]["namespace"] == "batch"


def test_request_labels_merge_with_the_manifests() -> None:
    job = build(JobSpecRequest(job=training_job(), labels={"team": "override", "cost": "ml"}))
    labels = job["metadata"]["labels"]
    assert labels["team"] == "override" and labels["cost"] == "ml"
    assert labels["app.kubernetes.io/name"] == "trainer"
    template_labels = job["spec"]["template"]["metadata"]["labels"]
    assert (
        template_labels["cost"] == "ml" and template_labels["app.kubernetes.io/name"] == "trainer"
    )


def test_container_resources_merge_into_the_first_container() -> None:
    manifest = training_job()
    job = build(
        JobSpecRequest(
            job=manifest, container_resources={"requests": {"ephemeral-storage": "50Gi"}}
        )
    )
    requests = job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert requests == {"cpu": "8", "memory": "30Gi", "ephemeral-storage": "50Gi"}


# --- knobs: parallelism, Indexed, retries, Kueue ------------------------------------------------


def test_indexed_fan_out() -> None:
    job = build(
        quick(
            cmds=["python", "shard.py"],
            indexed=True,
            completions=10,
            parallelism=3,
            backoff_limit_per_index=1,
            active_deadline_seconds=3600,
        )
    )
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert (spec["completions"], spec["parallelism"]) == (10, 3)
    assert spec["backoffLimitPerIndex"] == 1
    assert spec["activeDeadlineSeconds"] == 3600
    stored = admitted(job)
    assert stored["spec"]["backoffLimit"] == 2**31 - 1  # the API server's default with per-index


def test_non_indexed_parallel_job_with_backoff_limit() -> None:
    job = build(quick(parallelism=4, completions=8, backoff_limit=0))
    spec = job["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (4, 8, 0)
    assert "completionMode" not in spec


def test_indexed_manifest_accepts_per_index_knob() -> None:
    manifest = training_job()
    manifest["spec"].update(completionMode="Indexed", completions=4)
    del manifest["spec"]["backoffLimit"]
    job = build(JobSpecRequest(job=manifest, backoff_limit_per_index=2))
    assert job["spec"]["backoffLimitPerIndex"] == 2


def test_knob_equal_to_the_manifest_is_fine() -> None:
    job = build(JobSpecRequest(job=training_job(), backoff_limit=2))
    assert job["spec"]["backoffLimit"] == 2


def test_kueue_queue_name_labels_and_suspends_the_job() -> None:
    job = build(quick(queue_name="team-ml"))
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-ml"
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    assert job["spec"]["suspend"] is True
    admitted(job)


def test_kueue_label_in_the_manifest_also_suspends() -> None:
    manifest = training_job()
    manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = "team-ml"
    manifest["spec"]["suspend"] = False
    job = build(JobSpecRequest(job=manifest))
    assert job["spec"]["suspend"] is True


# --- errors: every message names the Job and the cluster and says what to do --------------------


def test_both_forms() -> None:
    message = invalid(JobSpecRequest(job=training_job(), image="busybox", env={"A": "1"}))
    assert problems_of(message) == [
        "both a job manifest and image, env were given; use either the quick form (image, cmds, "
        "arguments, env) or job=, and put the container into the manifest"
    ]


def test_neither_form() -> None:
    message = invalid(JobSpecRequest())
    assert "no container to run: give image=" in message


def test_cmds_without_image() -> None:
    assert "cmds given without image=; set image=" in invalid(JobSpecRequest(cmds=["echo"]))


def test_cmds_as_a_string() -> None:
    message = invalid(quick(cmds="python train.py"))
    assert "cmds must be a list of strings such as ['python', 'train.py']" in message


def test_job_that_is_not_a_dict() -> None:
    message = invalid(JobSpecRequest(job="train.yaml"))  # type: ignore[arg-type]
    assert (
        "job must be a manifest already loaded as a dict, not str; load it with load_manifest()"
        in message
    )


def test_wrong_kind_passed_as_a_dict() -> None:
    message = invalid(JobSpecRequest(job={"apiVersion": "v1", "kind": "Pod", "spec": {}}))
    assert "the manifest is a Pod (v1); KubeJobOperator needs a batch/v1 Job" in message


def test_no_containers() -> None:
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["containers"] = []
    assert problems_of(invalid(JobSpecRequest(job=manifest))) == [
        "spec.template.spec.containers is empty; a Job needs at least one container with a name "
        "and an image"
    ]


def test_missing_pod_spec_is_reported_as_no_containers() -> None:
    message = invalid(JobSpecRequest(job={"apiVersion": "batch/v1", "kind": "Job", "spec": {}}))
    assert "spec.template.spec.containers is empty" in message


def test_container_without_image_and_with_invalid_names() -> None:
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["containers"] += [
        {"name": "Side_Car", "image": "busybox"},
        {"name": "trainer", "image": "busybox"},
        {"name": "x" * 64, "image": "busybox"},
        {"image": "busybox"},
        {"name": "fetch", "image": ""},
    ]
    manifest["spec"]["template"]["spec"]["initContainers"] = [{"name": "init", "image": "my image"}]
    problems = problems_of(invalid(JobSpecRequest(job=manifest)))
    assert problems == [
        "spec.template.spec.initContainers[0].image 'my image' is not an image reference; use "
        "e.g. 'us-docker.pkg.dev/project/repo/image:tag'",
        "spec.template.spec.containers[1].name 'Side_Car': must consist of lower case letters, "
        "digits and '-', and start and end with a letter or digit (e.g. 'my-name')",
        "spec.template.spec.containers[2].name 'trainer' is used twice; container names must "
        "differ",
        f"spec.template.spec.containers[3].name '{'x' * 64}': must be no more than 63 characters "
        "(it has 64)",
        "spec.template.spec.containers[4].name is missing; give every container a name",
        "spec.template.spec.containers[5].image is missing; set the image the container runs",
    ]


def test_restart_policy_always() -> None:
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert problems_of(invalid(JobSpecRequest(job=manifest))) == [
        "spec.template.spec.restartPolicy is Always, which a Job does not allow (its pods must "
        "end); use Never (the default here) or OnFailure"
    ]


def test_unsupported_restart_policy() -> None:
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "Sometimes"
    assert "restartPolicy 'Sometimes' is not supported; use Never or OnFailure" in invalid(
        JobSpecRequest(job=manifest)
    )


def test_pod_failure_policy_with_on_failure() -> None:
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    manifest["spec"]["podFailurePolicy"] = {"rules": [copy.deepcopy(PREEMPTION_RULE)]}
    assert problems_of(invalid(JobSpecRequest(job=manifest))) == [
        "spec.podFailurePolicy needs spec.template.spec.restartPolicy: Never (it is OnFailure); "
        "set restartPolicy to Never or remove the podFailurePolicy"
    ]


def test_pod_failure_policy_fail_index_needs_per_index_limit() -> None:
    manifest = training_job()
    manifest["spec"]["podFailurePolicy"] = {
        "rules": [
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "Explode"},
        ]
    }
    problems = problems_of(invalid(JobSpecRequest(job=manifest)))
    assert problems == [
        "spec.podFailurePolicy.rules[0] uses FailIndex, which needs backoffLimitPerIndex; pass "
        "backoff_limit_per_index=",
        "spec.podFailurePolicy.rules[1].action 'Explode' is not supported; use FailJob, "
        "FailIndex, Ignore or Count",
    ]


def test_indexed_without_completions() -> None:
    assert problems_of(invalid(quick(indexed=True, parallelism=2))) == [
        "an Indexed Job needs completions (the number of indexes); pass completions= or set "
        "spec.completions"
    ]


def test_backoff_limit_per_index_without_indexed() -> None:
    assert problems_of(invalid(quick(backoff_limit_per_index=1))) == [
        "backoff_limit_per_index needs an Indexed Job; set indexed=True (and completions)"
    ]


def test_backoff_limit_per_index_in_a_non_indexed_manifest() -> None:
    manifest = training_job()
    manifest["spec"]["backoffLimitPerIndex"] = 1
    assert "spec.backoffLimitPerIndex needs an Indexed Job; pass indexed=True" in invalid(
        JobSpecRequest(job=manifest)
    )


def test_max_failed_indexes_without_per_index_limit() -> None:
    manifest = training_job()
    manifest["spec"].update(completionMode="Indexed", completions=3, maxFailedIndexes=1)
    assert "spec.maxFailedIndexes needs backoffLimitPerIndex" in invalid(
        JobSpecRequest(job=manifest)
    )


@pytest.mark.parametrize(
    ("knob", "value", "expected"),
    [
        ("parallelism", -1, "parallelism=-1 is invalid: it must be greater than 0"),
        ("parallelism", 0, "parallelism=0 is invalid: it must be greater than 0"),
        ("completions", -3, "completions=-3 is invalid: it must be 0 or more"),
        ("backoff_limit", -1, "backoff_limit=-1 is invalid: it must be 0 or more"),
        (
            "active_deadline_seconds",
            0,
            "active_deadline_seconds=0 is invalid: it must be greater than 0",
        ),
        (
            "ttl_seconds_after_finished",
            -5,
            "ttl_seconds_after_finished=-5 is invalid: it must be 0 or more",
        ),
        ("parallelism", "2", "parallelism must be an integer, not '2' (str)"),
        ("backoff_limit", True, "backoff_limit must be an integer, not True (bool)"),
        ("completions", 2.5, "completions must be an integer, not 2.5 (float)"),
    ],
)
def test_invalid_numbers_from_the_operator(knob: str, value: Any, expected: str) -> None:
    assert problems_of(invalid(quick(**{knob: value}))) == [expected]


def test_negative_per_index_limit() -> None:
    message = invalid(quick(indexed=True, completions=2, backoff_limit_per_index=-1))
    assert problems_of(message) == ["backoff_limit_per_index=-1 is invalid: it must be 0 or more"]


def test_invalid_numbers_in_the_manifest() -> None:
    manifest = training_job()
    manifest["spec"].update(
        backoffLimit=-1, parallelism="2", activeDeadlineSeconds=0, ttlSecondsAfterFinished=-1
    )
    problems = problems_of(invalid(JobSpecRequest(job=manifest)))
    assert problems == [
        "spec.parallelism must be an integer, not '2'",
        "spec.backoffLimit is -1; it must be 0 or more",
        "spec.activeDeadlineSeconds is 0; it must be greater than 0",
        "spec.ttlSecondsAfterFinished is -1; it must be 0 or more",
    ]


def test_knobs_that_contradict_the_manifest() -> None:
    manifest = training_job()
    manifest["spec"]["completionMode"] = "NonIndexed"
    manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] = "team-a"
    problems = problems_of(
        invalid(
            JobSpecRequest(
                job=manifest,
                backoff_limit=5,
                indexed=True,
                completions=2,
                service_account_name="other",
                queue_name="team-b",
                container_resources={"limits": {"nvidia.com/gpu": 2}},
            )
        )
    )
    assert problems == [
        "spec.backoffLimit is 2 in the manifest but backoff_limit=5 was passed; set it in one "
        "place",
        "spec.completionMode is 'NonIndexed' in the manifest but indexed=True was passed; set it "
        "in one place",
        "spec.serviceAccountName is 'trainer' in the manifest but service_account_name='other' was "
        "passed; set it in one place",
        "spec.template.spec.containers[0].resources.limits[nvidia.com/gpu] is 1 in the manifest "
        "but container_resources gives 2; set it in one place",
        "metadata.labels[kueue.x-k8s.io/queue-name] is 'team-a' in the manifest but "
        "queue_name='team-b' was passed; set it in one place",
    ]


def test_manifest_in_another_namespace() -> None:
    manifest = training_job()
    manifest["metadata"]["namespace"] = "default"
    assert problems_of(invalid(JobSpecRequest(job=manifest))) == [
        "metadata.namespace is 'default' but the task targets namespace 'batch'; remove "
        "metadata.namespace from the manifest or pass namespace='default' to the task"
    ]


def test_node_pool_contradicting_the_manifest() -> None:
    manifest = training_job()
    pod_spec = manifest["spec"]["template"]["spec"]
    pod_spec["nodeSelector"] = {"cloud.google.com/gke-nodepool": "cpu-pool"}
    pod_spec["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "cloud.google.com/gke-nodepool",
                                "operator": "In",
                                "values": ["cpu-pool"],
                            }
                        ]
                    }
                ]
            }
        }
    }
    problems = problems_of(invalid(JobSpecRequest(job=manifest, node_pool="a100-spot")))
    assert problems == [
        "spec.template.spec.nodeSelector[cloud.google.com/gke-nodepool] is 'cpu-pool' but "
        "node_pool='a100-spot' was passed; set it in one place",
        "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0] requires another node pool than node_pool='a100-spot'; set the "
        "pool in one place",
    ]


def test_unknown_fields_are_all_listed_with_suggestions() -> None:
    manifest = training_job()
    manifest["spec"]["backofLimit"] = 3
    manifest["metadata"]["lables"] = {"a": "b"}
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["imagee"] = container["image"]
    container["resources"]["limit"] = {"cpu": "1"}
    container["env"][0]["valeu"] = "1"
    manifest["spec"]["template"]["spec"]["nodeselector"] = {"pool": "gpu"}
    manifest["spec"]["template"]["spec"]["xyzzy"] = True
    problems = problems_of(invalid(JobSpecRequest(job=manifest)))
    assert problems == [
        "unknown field metadata.lables; did you mean labels?",
        "unknown field spec.template.spec.containers[0].env[0].valeu; did you mean value?",
        "unknown field spec.template.spec.containers[0].resources.limit; did you mean limits?",
        "unknown field spec.template.spec.containers[0].imagee; did you mean image?",
        "unknown field spec.template.spec.nodeselector; did you mean nodeSelector?",
        "unknown field spec.template.spec.xyzzy; remove it",
        "unknown field spec.backofLimit; did you mean backoffLimit?",
    ]


def test_unknown_field_in_container_resources_from_the_operator() -> None:
    message = invalid(quick(container_resources={"request": {"cpu": "1"}}))
    assert (
        "unknown field spec.template.spec.containers[0].resources.request; did you mean requests?"
        in message
    )


def test_env_values_must_be_strings() -> None:
    message = invalid(quick(env={"PORT": 8080, "DEBUG": True}))
    assert problems_of(message) == [
        "env['PORT'] is 8080 (int); environment values must be strings: pass '8080'",
        "env['DEBUG'] is True (bool); environment values must be strings: pass 'True'",
    ]


def test_env_values_in_the_manifest_must_be_strings() -> None:
    manifest = load_manifest(TRAINING_JOB_YAML.replace('value: "0"', "value: 0"))
    assert problems_of(invalid(JobSpecRequest(job=manifest))) == [
        "spec.template.spec.containers[0].env[0] (CUDA_VISIBLE_DEVICES) value is 0 (int); "
        "environment values must be strings: quote it ('0')"
    ]


def test_invalid_env_name() -> None:
    assert "env name 'A=B' is not valid" in invalid(quick(env={"A=B": "x"}))


def test_invalid_resource_quantity() -> None:
    message = invalid(quick(container_resources={"requests": {"cpu": "two", "memory": "-1Gi"}}))
    assert problems_of(message) == [
        "spec.template.spec.containers[0].resources.requests[cpu]: 'two' is not a quantity; use "
        "forms such as '500m', '2Gi' or '1'",
        "spec.template.spec.containers[0].resources.requests[memory]: must not be negative",
    ]


def test_invalid_labels_and_annotations() -> None:
    manifest = training_job()
    manifest["metadata"]["labels"]["version"] = 2
    manifest["spec"]["template"]["metadata"]["labels"]["bad key!"] = "x"
    manifest["metadata"]["annotations"] = {"replicas": 3}
    message = invalid(JobSpecRequest(job=manifest, labels={"owner": "data team"}))
    assert problems_of(message) == [
        "metadata.labels[version] value 2: label values must be strings, not int (quote it: '2')",
        "metadata.labels[owner] value 'data team': must be empty or consist of letters, digits, "
        "'-', '_' or '.', and start and end with a letter or digit (e.g. 'MyValue', 'my_value', "
        "'12345')",
        "metadata.annotations[replicas] value 3: annotation values must be strings (quote it: '3')",
        "spec.template.metadata.labels: key 'bad key!': the name part must consist of letters, "
        "digits, '-', '_' or '.', and start and end with a letter or digit (e.g. 'MyName', "
        "'my.name', '123-abc')",
        "spec.template.metadata.labels[owner] value 'data team': must be empty or consist of "
        "letters, digits, '-', '_' or '.', and start and end with a letter or digit (e.g. "
        "'MyValue', 'my_value', '12345')",
    ]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("a/b/c", "a key may contain at most one '/'"),
        ("Example.COM/x", "the prefix 'Example.COM' must consist of lower case letters"),
        ("example.com/", "the name part must not be empty"),
        ("x" * 64, "the name part must be no more than 63 characters (it has 64)"),
    ],
)
def test_invalid_label_keys(key: str, problem: str) -> None:
    message = invalid(quick(labels={key: "v"}))
    assert f"metadata.labels: key {key!r}: {problem}" in message


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"queue_name": "team a"}, "queue_name='team a' is invalid: must be empty or consist of"),
        ({"node_pool": "x" * 64}, "is invalid: must be no more than 63 characters (it has 64)"),
        ({"service_account_name": "Trainer"}, "service_account_name='Trainer' is invalid: must"),
        ({"container_resources": ["cpu"]}, "container_resources must be a dict such as"),
        ({"labels": ["a"]}, "labels must be a dict of strings, not list"),
    ],
)
def test_invalid_operator_arguments(kwargs: dict[str, Any], expected: str) -> None:
    assert expected in invalid(quick(**kwargs))


def test_invalid_namespace() -> None:
    with pytest.raises(InvalidInputError) as info:
        build_job(quick(), KEY, "Batch_NS", "gke-batch")
    assert str(info.value).startswith(f"Job Batch_NS/{NAME} on cluster gke-batch: invalid input")
    assert "namespace 'Batch_NS': must consist of lower case letters" in str(info.value)
    assert "pass an existing namespace" in str(info.value)


def test_manifest_parts_of_the_wrong_shape() -> None:
    message = invalid(JobSpecRequest(job={"apiVersion": "batch/v1", "kind": "Job", "spec": []}))
    assert problems_of(message) == ["spec must be a mapping, not list"]
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["containers"] = {"name": "x"}
    assert "spec.template.spec.containers must be a list of mappings" in invalid(
        JobSpecRequest(job=manifest)
    )


def test_one_message_lists_problems_from_every_stage() -> None:
    manifest = training_job()
    manifest["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    manifest["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    message = invalid(JobSpecRequest(job=manifest))
    assert "(2 problems)" in message
    assert len(problems_of(message)) == 2


def test_job_problems_of_a_valid_job_is_empty() -> None:
    assert job_problems(build(JobSpecRequest(job=training_job(), node_pool="a100-spot"))) == []


def test_unknown_fields_agree_with_the_simulated_api_server() -> None:
    """The operators' check and the simulated API server's pruning are separate code reading the
    same client models: they name the same misspelt fields, at every depth."""
    obj = {
        "spec": {
            "backofLimit": 1,
            "template": {
                "metadata": {"labels": {"a": "b"}, "lables": {}},
                "spec": {"containers": [{"name": "c", "image": "i", "comand": ["x"]}]},
            },
        }
    }
    found = [u.path for u in schema.unknown_fields(obj, "V1Job")]
    assert found == [
        "spec.backofLimit",
        "spec.template.metadata.lables",
        "spec.template.spec.containers[0].comand",
    ]
    job_schema = simulated_schema.kind_definition("batch/v1", "Job")
    assert job_schema is not None
    pruned = copy.deepcopy(obj)
    assert simulated_schema.prune(pruned, job_schema) == found
    assert "backofLimit" not in pruned["spec"]
    assert obj["spec"]["backofLimit"] == 1  # unknown_fields does not prune


# --- property-style: many random requests build Jobs the API server accepts ---------------------


def _random_request(rng: random.Random) -> JobSpecRequest:
    indexed = rng.random() < 0.4
    completions = rng.choice([None, 1, 5, 100]) if not indexed else rng.choice([1, 5, 100])
    gpu = rng.random() < 0.3
    resources = {"limits": {"nvidia.com/gpu": rng.choice([1, "2"])}} if gpu else None
    use_manifest = rng.random() < 0.5
    common: dict[str, Any] = dict(
        # Refused here though the API server takes them: parallelism 0 (no pod would start)
        # and, for an Indexed Job, parallelism above completions.
        parallelism=rng.choice(
            [None, 1, 4] if not indexed else [None, 1, *([4] if (completions or 0) >= 4 else [])]
        ),
        completions=completions,
        indexed=indexed,
        backoff_limit=rng.choice([None, 0, 3]),
        backoff_limit_per_index=rng.choice([None, 1]) if indexed else None,
        active_deadline_seconds=rng.choice([None, 60]),
        queue_name=rng.choice([None, "team-a"]),
        node_pool=rng.choice([None, "cpu", "gpu-spot"]),
        ttl_seconds_after_finished=rng.choice([None, 0, 86400]),
        ignore_preemption=rng.random() < 0.7,
        labels=rng.choice([None, {"team": "ml"}]),
        annotations=rng.choice([None, {"note": "any text at all: ✓"}]),
    )
    if use_manifest:
        manifest = training_job()
        del manifest["spec"]["backoffLimit"]
        if not gpu:
            del manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
                "nvidia.com/gpu"
            ]
        return JobSpecRequest(job=manifest, **common)
    return JobSpecRequest(
        image="busybox:1.36",
        cmds=["sh", "-c"],
        arguments=["echo $JOB_COMPLETION_INDEX"],
        env={"A": "1"},
        container_resources=resources,
        **common,
    )


@pytest.mark.parametrize("seed", range(10))
def test_random_requests_build_jobs_the_api_server_accepts(seed: int) -> None:
    rng = random.Random(seed)
    for i in range(40):
        key = TaskInstanceKey(
            f"dag_{seed}", f"task.{i}", f"manual__{rng.random()}", rng.choice([-1, i]), 1
        )
        request = _random_request(rng)
        job = build(request, key)
        assert job_problems(job) == []
        stored = admitted(job)
        pod_spec = stored["spec"]["template"]["spec"]
        assert stored["metadata"]["name"] == object_name(key)
        assert pod_spec["restartPolicy"] == "Never"
        tolerations = pod_spec.get("tolerations") or []
        gpu = any(
            "nvidia.com/gpu" in (c.get("resources") or {}).get("limits", {})
            for c in pod_spec["containers"]
        )
        assert gpu == any(t.get("key") == "nvidia.com/gpu" for t in tolerations)
        if request.node_pool:
            assert {
                "key": "cloud.google.com/gke-nodepool",
                "operator": "Equal",
                "value": request.node_pool,
                "effect": "NoSchedule",
            } in tolerations
        assert ("podFailurePolicy" in stored["spec"]) == request.ignore_preemption
        assert stored["spec"]["suspend"] is bool(request.queue_name)
