"""Argo Workflow interpretation: phases, nodes, outputs, names, compressed nodes, the summary.

Fixtures in ``fixtures_status/workflows/`` are Workflow objects from the argo-workflows
repository's tests (each names its source and how it was adapted); their node ids and the pod
names in their log keys are what Argo's controller generated, so they check :func:`node_id`
and :func:`pod_name` too.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import airflow_k8s_jobs.status as status_pkg
from airflow_k8s_jobs.status import (
    POD_NAME_FORMAT_ANNOTATION,
    WorkflowNode,
    WorkflowState,
    decode_nodes,
    interpret_workflow,
    node_id,
    pod_name,
    summarize_workflow_failure,
)
from airflow_k8s_jobs.status import workflows as wf_module

FIXTURES = Path(__file__).parent / "fixtures_status" / "workflows"
ALL_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.yaml"))


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    assert isinstance(data, dict)
    return data


def interpret(data: dict[str, Any]) -> WorkflowState:
    m = data.get("metadata") or {}
    return interpret_workflow(data, name=m.get("name", ""), namespace=m.get("namespace", ""))


def by_label(state: WorkflowState, label: str) -> WorkflowNode:
    [node] = [n for n in state.nodes.values() if n.label == label]
    return node


def log_key_pod(node: dict[str, Any]) -> str | None:
    """The pod name in a node's main-logs artifact key ``<wf>/<pod>/main.log``."""
    for art in (node.get("outputs") or {}).get("artifacts") or []:
        key = (art.get("s3") or {}).get("key", "")
        if key.endswith("/main.log"):
            return str(key.split("/")[-2])
    return None


# --- success, nested steps, withParam, outputs ---------------------------------------------------


def test_nested_steps_with_param_succeeded():
    state = interpret(load("steps_nested_with_param"))
    assert (state.exists, state.finished, state.succeeded) == (True, True, True)
    assert (state.phase, state.reason, state.progress) == ("Succeeded", "Succeeded", "3/3")
    assert state.status_line == "Succeeded 3/3"
    assert state.failed_nodes == () and state.running == () and state.nodes_note == ""
    assert state.outputs == {"last-out": "done-2"}
    assert state.node_outputs == {
        "[0].task1": {"count": "2"},
        "[1].task2-3(0:1)": {"out": "done-1"},
        "[1].task2-3(0:1)[0].task2": {"out": "done-1"},
        "[1].task2-3(1:2)": {"out": "done-2"},
        "[1].task2-3(1:2)[0].task2": {"out": "done-2"},
    }


def test_node_fields_and_relative_names():
    state = interpret(load("steps_nested_with_param"))
    root = state.nodes["steps-nested-7rk2q"]
    assert root.relative_name == "" and root.label == "steps-nested-7rk2q"
    assert root.type == "Steps" and root.boundary_id == ""
    leaf = by_label(state, "[1].task2-3(1:2)[0].task2")
    assert leaf.display_name == "task2" and leaf.template_name == "work"
    assert leaf.type == "Pod" and leaf.phase == "Succeeded" and leaf.exit_code == "0"
    assert leaf.host_node_name == "gke-batch-pool-1-0a1b"
    assert leaf.boundary_id == by_label(state, "[1].task2-3(1:2)").id
    assert leaf.started_at is not None and leaf.finished_at is not None
    assert leaf.started_at.isoformat() == "2026-11-22T06:00:21+00:00"
    assert leaf.finished_at > leaf.started_at
    assert by_label(state, "[1]").children == (
        by_label(state, "[1].task2-3(0:1)").id,
        by_label(state, "[1].task2-3(1:2)").id,
    )


def test_relative_name_without_the_workflow_name_is_guessed_from_the_id():
    state = interpret(load("steps_failed_continue_on"))
    node = state.nodes["steps-5jrq5-99117897"]
    bare = WorkflowNode(**{**node.__dict__, "workflow_name": ""})
    assert bare.relative_name == "[1].hello2b"


def test_dag_with_items_outputs_and_task_group():
    state = interpret(load("dag_with_items_outputs"))
    assert state.succeeded and state.status_line == "Succeeded 2/2"
    assert state.outputs == {"nums": '["1","2"]'}
    assert state.node_outputs == {
        "parameter-aggregation-dag-h8b82": {"dag-nums": '["1","2"]'},
        "odd-or-even(0:1)": {"num": "1", "evenness": "odd"},
        "odd-or-even(1:2)": {"num": "2", "evenness": "even"},
    }
    assert by_label(state, "odd-or-even").type == "TaskGroup"


# --- failures ------------------------------------------------------------------------------------


def test_failed_steps_report_the_leaf_pod_not_its_parents():
    state = interpret(load("steps_failed_continue_on"))
    assert (state.finished, state.succeeded, state.reason) == (True, False, "Failed")
    assert state.message == "child 'steps-5jrq5-99117897' failed"
    assert state.status_line == "Failed 3/3: child 'steps-5jrq5-99117897' failed"
    [failed] = state.failed_nodes
    assert failed.label == "[1].hello2b" and failed.type == "Pod"
    assert failed.message == "Error (exit code 9)" and failed.exit_code == "9"
    assert failed.template_name == "intentional-fail"


def test_retries_report_the_last_attempt_once():
    state = interpret(load("steps_failed_retries"))
    assert state.reason == "Failed"
    # fail(1) started 01:23:27, delayed-fail(1) 01:23:28; the (0) attempts and the Retry,
    # StepGroup and Steps nodes above them are not reported.
    assert [n.label for n in state.failed_nodes] == ["[0].fail(1)", "[0].delayed-fail(1)"]


def test_a_retry_that_succeeded_reports_no_earlier_attempt():
    data = load("steps_failed_retries")
    nodes = data["status"]["nodes"]
    for nid in (
        "failed-retries-tjjsc",
        "failed-retries-tjjsc-2095973878",
        "failed-retries-tjjsc-20069324",
        "failed-retries-tjjsc-1574533273",
        "failed-retries-tjjsc-759866442",
        "failed-retries-tjjsc-2113289837",
    ):
        nodes[nid]["phase"] = "Succeeded"
        nodes[nid].pop("message", None)
    data["status"].update(phase="Succeeded", message="")
    state = interpret(data)
    assert state.succeeded and state.failed_nodes == ()


def test_a_failed_retry_without_a_failed_attempt_is_reported_itself():
    data = load("steps_failed_retries")
    nodes = data["status"]["nodes"]
    nodes["failed-retries-tjjsc-1574533273"]["message"] = "Max duration limit exceeded"
    nodes["failed-retries-tjjsc-2113289837"]["phase"] = "Running"
    labels = [n.label for n in interpret(data).failed_nodes]
    assert labels == ["[0].fail(1)", "[0].delayed-fail"]  # leaves first


def test_terminated_dag_with_retries():
    state = interpret(load("dag_terminated_retries"))
    assert (state.finished, state.succeeded, state.reason) == (True, False, "Terminated")
    assert state.status_line == "Failed 1/3: Stopped with strategy 'Terminate'"
    # C(0) started 16:15:51, B(0) 16:15:52; the Retry nodes B and C are not reported.
    assert [n.label for n in state.failed_nodes] == ["C(0)", "B(0)"]
    assert {n.message for n in state.failed_nodes} == {"terminated"}


def test_stopped_and_deadline_and_error_reasons():
    data = load("steps_failed_continue_on")
    data["status"]["message"] = "Stopped with strategy 'Stop'"
    assert interpret(data).reason == "Stopped"
    data["status"]["message"] = "child 'steps-5jrq5-99117897' failed"
    data["spec"]["shutdown"] = "Stop"  # stopped, then an exit handler failed
    assert interpret(data).reason == "Stopped"
    del data["spec"]["shutdown"]
    data["status"]["message"] = "Step exceeded its deadline"
    assert interpret(data).reason == "DeadlineExceeded"
    data["status"]["message"] = "Pod was active on the node longer than the specified deadline"
    assert interpret(data).reason == "DeadlineExceeded"
    data["status"].update(phase="Error", message="invalid spec: templates.main.steps failed")
    state = interpret(data)
    assert (state.reason, state.finished, state.succeeded) == ("Error", True, False)
    assert state.status_line == "Error 3/3: invalid spec: templates.main.steps failed"


def test_container_set_containers_are_reported_through_their_pod():
    data = load("steps_failed_continue_on")
    nodes = data["status"]["nodes"]
    pod = nodes["steps-5jrq5-99117897"]
    cname = "steps-5jrq5[1].hello2b.main"
    nodes[node_id("steps-5jrq5", cname)] = {
        "id": node_id("steps-5jrq5", cname),
        "name": cname,
        "displayName": "main",
        "type": "Container",
        "phase": "Failed",
        "boundaryID": "steps-5jrq5",
        "startedAt": pod["startedAt"],
    }
    pod["children"] = [node_id("steps-5jrq5", cname)]
    assert [n.label for n in interpret(data).failed_nodes] == ["[1].hello2b"]


# --- running, pending, postponed, deleted --------------------------------------------------------


def test_running_with_pending_pods():
    state = interpret(load("steps_running_pending"))
    assert (state.finished, state.succeeded, state.reason) == (False, False, "")
    assert state.running == ()
    assert state.pending == ("[1].sleep(0:1)", "[1].sleep(1:2)")
    assert state.status_line == "Running 1/3: 2 pending"  # ContainerCreating says nothing


def test_running_names_running_pods_and_why_others_wait():
    data = load("steps_running_pending")
    nodes = data["status"]["nodes"]
    nodes["semaphore-tmpl-level-xjvln-3448864205"].update(phase="Running", message="")
    nodes["semaphore-tmpl-level-xjvln-1607747183"]["message"] = (
        "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are"
        " available: 3 No preemption victims found for incoming pod."
    )
    state = interpret(data)
    assert state.running == ("[1].sleep(0:1)",)
    assert state.status_line == (
        "Running 1/3: running [1].sleep(0:1); "
        "1 pending (Unschedulable: 0/3 nodes are available: 3 Insufficient cpu)"
    )
    for waiting in ("ErrImagePull: rpc error: not found", "ImagePullBackOff: Back-off pulling"):
        nodes["semaphore-tmpl-level-xjvln-1607747183"]["message"] = waiting
        assert interpret(data).status_line.endswith("1 pending (cannot pull the image)")


def test_running_shows_two_names_then_counts():
    data = load("steps_running_pending")
    nodes = data["status"]["nodes"]
    group = nodes["semaphore-tmpl-level-xjvln-2858054438"]
    for i in range(2, 5):
        name = f"semaphore-tmpl-level-xjvln[1].sleep({i}:{i + 1})"
        nid = node_id("semaphore-tmpl-level-xjvln", name)
        nodes[nid] = {
            **nodes["semaphore-tmpl-level-xjvln-3448864205"],
            "id": nid,
            "name": name,
            "displayName": f"sleep({i}:{i + 1})",
            "startedAt": f"2020-06-04T19:55:5{7 + i % 3}Z",
        }
        group["children"].append(nid)
    for node in nodes.values():
        if node.get("phase") == "Pending":
            node.update(phase="Running", message="")
    data["status"]["progress"] = "1/6"
    state = interpret(data)
    assert len(state.running) == 5
    assert state.status_line == ("Running 1/6: running [1].sleep(0:1), [1].sleep(1:2) (+3 more)")


def test_suspended_node_is_named():
    data = load("steps_running_pending")
    nodes = data["status"]["nodes"]
    for nid in ("semaphore-tmpl-level-xjvln-3448864205", "semaphore-tmpl-level-xjvln-1607747183"):
        nodes[nid].update(phase="Succeeded", message="")
    name = "semaphore-tmpl-level-xjvln[2].approve"
    nodes[node_id("semaphore-tmpl-level-xjvln", name)] = {
        "id": node_id("semaphore-tmpl-level-xjvln", name),
        "name": name,
        "displayName": "approve",
        "type": "Suspend",
        "phase": "Running",
        "templateName": "approve",
        "startedAt": "2020-06-04T19:56:30Z",
    }
    assert interpret(data).status_line == "Running 1/3: suspended at [2].approve"


@pytest.mark.parametrize("status", [None, {}, {"phase": ""}])
def test_not_yet_seen_by_the_controller(status):
    data = {"metadata": {"name": "wf-1", "namespace": "argo"}}
    if status is not None:
        data["status"] = status
    state = interpret_workflow(data, name="wf-1", namespace="argo")
    assert (state.exists, state.finished, state.phase, state.reason) == (True, False, "", "")
    assert state.status_line == "Pending: waiting for the Argo controller"
    assert state.nodes == {} and state.nodes_note == ""


def test_postponed_by_controller_parallelism():
    # Message as asserted in argo-workflows test/e2e and workflow/controller/controller_test.go.
    message = (
        "Workflow processing has been postponed because too many workflows are already running"
    )
    data = {"metadata": {"name": "wf-2"}, "status": {"phase": "Pending", "message": message}}
    state = interpret_workflow(data, name="wf-2", namespace="argo")
    assert not state.finished and state.phase == "Pending" and state.reason == ""
    assert state.status_line == f"Pending: {message}"
    assert state.namespace == "argo"


def test_a_final_phase_without_finished_at_is_not_finished():
    data = load("steps_failed_continue_on")
    del data["status"]["finishedAt"]
    state = interpret(data)
    assert not state.finished and state.reason == ""


def test_deleted_workflow():
    state = interpret_workflow(None, name="gone", namespace="argo")
    assert (state.exists, state.finished, state.succeeded) == (False, True, False)
    assert state.reason == "WorkflowDeleted" and (state.name, state.namespace) == ("gone", "argo")
    assert state.status_line == "Deleted: the Workflow no longer exists"


def test_being_deleted_before_finishing_counts_as_deleted():
    data = load("steps_running_pending")
    data["metadata"]["deletionTimestamp"] = "2020-06-04T19:57:00Z"
    state = interpret(data)
    assert (state.exists, state.finished, state.succeeded) == (True, True, False)
    assert state.reason == "WorkflowDeleted" and state.phase == "Running"
    assert state.status_line == "Deleted: the Workflow is being deleted"


def test_being_deleted_after_finishing_keeps_the_outcome():
    data = load("steps_nested_with_param")
    data["metadata"]["deletionTimestamp"] = "2026-11-22T07:00:00Z"
    state = interpret(data)
    assert state.succeeded and state.reason == "Succeeded"


# --- compressed and offloaded nodes --------------------------------------------------------------


def _compress(nodes: dict[str, Any]) -> str:
    # Argo's util/file CompressEncodeString: gzip the JSON, then standard base64.
    return base64.b64encode(gzip.compress(json.dumps(nodes).encode(), mtime=0)).decode()


def test_compressed_nodes_decode_to_the_same_nodes():
    data = load("steps_failed_retries")
    plain = interpret(data)
    nodes = data["status"].pop("nodes")
    data["status"]["compressedNodes"] = _compress(nodes)
    decoded, note = decode_nodes(data["status"])
    assert note == "" and decoded == nodes
    state = interpret(data)
    assert state.nodes_note == ""
    assert state.failed_nodes == plain.failed_nodes and state.nodes == plain.nodes


def test_plain_nodes_win_over_compressed_ones():
    data = load("steps_failed_continue_on")
    data["status"]["compressedNodes"] = "not even base64!"
    decoded, note = decode_nodes(data["status"])
    assert note == "" and decoded == data["status"]["nodes"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("%%%not-base64%%%", "not valid base64"),
        (base64.b64encode(b"\x1f\x8bnot really gzip").decode(), "not valid gzip"),
        (base64.b64encode(gzip.compress(b"<nodes/>", mtime=0)).decode(), "does not hold JSON"),
        (base64.b64encode(gzip.compress(b"[1, 2]", mtime=0)).decode(), "does not hold a map"),
        (base64.b64encode(b"\x28\xb5\x2f\xfd" + b"\0" * 16).decode(), "zstd"),
        (base64.b64encode(b"\x8b\x02\x80plain").decode(), "brotli"),
    ],
)
def test_undecodable_compressed_nodes_are_noted_not_raised(monkeypatch, payload, expected):
    monkeypatch.setattr(wf_module, "_optional_decoder", lambda *modules: None)
    decoded, note = decode_nodes({"phase": "Running", "compressedNodes": payload})
    assert decoded == {}
    assert expected in note and note.endswith("node status unknown")
    state = interpret_workflow(
        {"metadata": {"name": "big"}, "status": {"phase": "Running", "compressedNodes": payload}},
        name="big",
        namespace="argo",
    )
    assert state.nodes == {} and state.nodes_note == note and state.status_line == "Running"


def test_zstd_nodes_decode_when_a_decoder_is_there(monkeypatch):
    nodes = load("steps_failed_continue_on")["status"]["nodes"]
    framed = b"\x28\xb5\x2f\xfd" + json.dumps(nodes).encode()
    monkeypatch.setattr(wf_module, "_optional_decoder", lambda *modules: lambda raw: raw[4:])
    status = {"compressedNodes": base64.b64encode(framed).decode()}
    assert decode_nodes(status) == (nodes, "")


def test_offloaded_nodes():
    data = {
        "metadata": {"name": "huge-x1"},
        "status": {"phase": "Running", "progress": "2/5", "offloadNodeStatusVersion": "fnv:1234"},
    }
    state = interpret_workflow(data, name="huge-x1", namespace="argo")
    assert state.nodes == {} and "offloaded" in state.nodes_note
    assert "only the Argo Server can read it" in state.nodes_note
    assert state.status_line == "Running 2/5"
    data["status"].update(phase="Failed", finishedAt="2026-01-01T00:00:00Z", message="failed")
    text = summarize_workflow_failure(
        interpret_workflow(data, name="huge-x1", namespace="a"), "W", {}
    )
    assert text.splitlines() == ["W Failed: failed", f"Nodes: {state.nodes_note}."]


# --- names ---------------------------------------------------------------------------------------


def test_fnv32a_by_hand():
    # FNV-1a 32-bit reference values (offset basis 2166136261, prime 16777619).
    assert node_id("wf", "a") == "wf-3826002220"  # 0xe40c292c
    assert node_id("wf", "foobar") == "wf-3214735720"  # 0xbf9cf968
    assert node_id("wf", "wf") == "wf"


@pytest.mark.parametrize("fixture", ALL_FIXTURES)
def test_node_ids_match_the_fixtures(fixture):
    data = load(fixture)
    name = data["metadata"]["name"]
    for nid, node in data["status"]["nodes"].items():
        assert node_id(name, node["name"]) == nid == node["id"]


@pytest.mark.parametrize("fixture", ALL_FIXTURES)
def test_pod_names_match_the_log_keys(fixture):
    data = load(fixture)
    state = interpret(data)
    checked = 0
    for nid, raw in data["status"]["nodes"].items():
        expected = log_key_pod(raw)
        if expected and raw["type"] == "Pod":
            assert state.pod_name(state.nodes[nid]) == expected
            checked += 1
    assert checked or fixture in ("steps_failed_retries", "dag_with_items_outputs")


def test_v2_pod_names_from_the_fixtures():
    state = interpret(load("steps_failed_continue_on"))
    node = state.nodes["steps-5jrq5-99117897"]
    assert pod_name("steps-5jrq5", node) == "steps-5jrq5-intentional-fail-99117897"
    assert pod_name("steps-5jrq5", node, "v1") == "steps-5jrq5-99117897"
    root = state.nodes["steps-5jrq5"]
    assert pod_name("steps-5jrq5", root) == "steps-5jrq5"


def test_v1_pod_names_by_annotation():
    data = load("dag_terminated_retries")
    assert data["metadata"]["annotations"][POD_NAME_FORMAT_ANNOTATION] == "v1"
    state = interpret(data)
    assert state.pod_name_format == "v1"
    node = by_label(state, "C(0)")
    assert state.pod_name(node) == node.id == "dag-diamond-xfww2-2043927737"
    del data["metadata"]["annotations"]
    assert interpret(data).pod_name(node) == "dag-diamond-xfww2-echo-2043927737"


def test_pod_name_prefix_is_cut_to_fit():
    wf = "w" * 250
    node = WorkflowNode(
        id=node_id(wf, f"{wf}[0].step"),
        name=f"{wf}[0].step",
        display_name="step",
        type="Pod",
        phase="Running",
        template_name="tmpl",
        message="",
        boundary_id=wf,
        children=(),
        started_at=None,
        finished_at=None,
        parameters={},
        exit_code=None,
        host_node_name="",
    )
    name = pod_name(wf, node)
    assert name == "w" * 242 + "-" + node.id.rsplit("-", 1)[1]
    assert len(name) <= 253


def test_template_ref_names_the_template():
    data = load("steps_failed_continue_on")
    raw = data["status"]["nodes"]["steps-5jrq5-99117897"]
    del raw["templateName"]
    raw["templateRef"] = {"name": "shared-templates", "template": "flaky"}
    node = interpret(data).nodes["steps-5jrq5-99117897"]
    assert node.template_name == "flaky"
    assert pod_name("steps-5jrq5", node) == "steps-5jrq5-flaky-99117897"


# --- the failure message -------------------------------------------------------------------------


LOG = "starting\nprocessing hello2b\nerror: intentional failure\n"


def test_summary_of_a_failed_step():
    state = interpret(load("steps_failed_continue_on"))
    pod = "steps-5jrq5-intentional-fail-99117897"
    text = summarize_workflow_failure(state, "Workflow argo/steps-5jrq5", {pod: LOG})
    assert text.splitlines() == [
        "Workflow argo/steps-5jrq5 Failed: child 'steps-5jrq5-99117897' failed",
        "Failed node:",
        "- [1].hello2b (hello2b, template intentional-fail): Pod Failed: Error (exit code 9);"
        f" exit code 9; pod {pod} on docker-desktop",
        "  last 3 log lines:",
        "    | starting",
        "    | processing hello2b",
        "    | error: intentional failure",
    ]


def test_summary_uses_the_pods_found_by_annotation_and_tails_logs():
    state = interpret(load("steps_failed_continue_on"))
    log = "\n".join(f"line {i}" for i in range(50))
    text = summarize_workflow_failure(
        state,
        "Workflow argo/steps-5jrq5",
        {"found-pod": log},
        pod_names={"steps-5jrq5-99117897": "found-pod"},
        tail_lines=5,
    )
    assert "; pod found-pod on docker-desktop" in text
    assert "  last 5 log lines:" in text and "    | line 45" in text
    assert "line 44" not in text


def test_summary_of_retries_lists_both_last_attempts():
    state = interpret(load("steps_failed_retries"))
    pods = [state.pod_name(n) for n in state.failed_nodes]
    assert pods == [
        "failed-retries-tjjsc-fail-759866442",
        "failed-retries-tjjsc-delayed-fail-2113289837",
    ]
    text = summarize_workflow_failure(state, "Workflow default/failed-retries-tjjsc", {pods[0]: ""})
    lines = text.splitlines()
    assert lines[1] == "Failed nodes:"
    assert lines[2].startswith("- [0].fail(1) (fail(1), template fail): Pod Failed: failed with")
    assert lines[3] == "  (no log output)"
    assert lines[4].startswith("- [0].delayed-fail(1) (delayed-fail(1), template delayed-fail)")
    assert lines[5] == "  (log not available)"


def test_summary_caps_the_number_of_nodes():
    state = interpret(load("dag_terminated_retries"))
    text = summarize_workflow_failure(state, "Workflow argo/dag-diamond-xfww2", {}, max_nodes=1)
    assert text.splitlines()[0] == (
        "Workflow argo/dag-diamond-xfww2 Failed: Stopped with strategy 'Terminate'"
    )
    assert (
        "- C(0) (template echo): Pod Failed: terminated; pod dag-diamond-xfww2-2043927737" in text
    )
    assert text.splitlines()[-1] == "… and 1 more: B(0)"


def test_summary_of_a_deleted_workflow():
    state = interpret_workflow(None, name="gone", namespace="argo")
    text = summarize_workflow_failure(state, "Workflow argo/gone", {})
    assert text == "Workflow argo/gone was deleted before it finished."
    data = load("steps_running_pending")
    data["metadata"]["deletionTimestamp"] = "2020-06-04T19:57:00Z"
    text = summarize_workflow_failure(interpret(data), "Workflow default/x", {})
    assert text == "Workflow default/x was deleted before it finished (phase Running)."


def test_summary_without_failed_nodes_shows_the_logs_it_was_given():
    data = load("steps_failed_continue_on")
    data["status"]["message"] = "Step exceeded its deadline"
    for node in data["status"]["nodes"].values():
        node["phase"] = "Succeeded"
    state = interpret(data)
    text = summarize_workflow_failure(state, "W", {"p1": "a\nb\n", "p2": ""})
    assert text.splitlines() == [
        "W Failed: Step exceeded its deadline",
        "Pods:",
        "- pod p1",
        "  last 2 log lines:",
        "    | a",
        "    | b",
    ]


def test_public_names_are_exported():
    for name in (
        "WORKFLOW_LABEL",
        "NODE_ID_ANNOTATION",
        "NODE_NAME_ANNOTATION",
        "POD_NAME_FORMAT_ANNOTATION",
        "WorkflowNode",
        "WorkflowState",
        "decode_nodes",
        "interpret_workflow",
        "pod_name",
        "node_id",
        "summarize_workflow_failure",
    ):
        assert name in status_pkg.__all__ and getattr(status_pkg, name) is not None
    assert status_pkg.WORKFLOW_LABEL == "workflows.argoproj.io/workflow"
    assert status_pkg.NODE_ID_ANNOTATION == "workflows.argoproj.io/node-id"
    assert status_pkg.NODE_NAME_ANNOTATION == "workflows.argoproj.io/node-name"


def test_interpretation_does_not_change_the_object():
    data = load("steps_failed_retries")
    before = copy.deepcopy(data)
    interpret(data)
    assert data == before


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        ({"phase": "Succeeded", "finishedAt": "2026-11-02T00:10:00Z"}, True),
        ({"phase": "Failed", "finishedAt": "2026-11-02T00:10:00Z"}, True),
        ({"phase": "Error", "finishedAt": "2026-11-02T00:10:00Z"}, True),
        # A final phase the controller has not stamped yet: a shutdown may still apply.
        ({"phase": "Failed"}, False),
        ({"phase": "Running", "startedAt": "2026-11-02T00:00:00Z"}, False),
        ({}, False),
    ],
)
def test_workflow_finished_needs_a_final_phase_and_finished_at(
    status: dict[str, Any], finished: bool
) -> None:
    workflow = {"metadata": {"name": "wf", "namespace": "batch"}, "status": status}
    assert wf_module.workflow_finished(workflow) is finished
    assert interpret_workflow(workflow, name="wf", namespace="batch").finished is finished
