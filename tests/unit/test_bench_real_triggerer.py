"""The pure parts of the real-triggerer benchmark: the seeded triggers its ``--seed`` mode starts
task instances from, and reading the triggerer's log lines."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("psutil")
pytest.importorskip("psycopg2")  # the deployment module it shares with tests/deployment

import real_triggerer as real


def seeded_module(side: str, folder: Path) -> ModuleType:
    trigger_import, trigger_class = real.SEEDED_TRIGGERS[side]
    path = folder / f"{real.SEEDED_MODULE}_{side}.py"
    path.write_text(
        real.SEEDED_TRIGGER_MODULE.format(import_line=trigger_import, trigger_class=trigger_class)
    )
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def ours_kwargs(index: int) -> dict[str, Any]:
    from airflow_k8s_jobs.triggers.jobs import KubeJobTrigger
    from airflow_k8s_jobs.waiting import JobTarget, WaitPolicy

    target = JobTarget("k8s", "lab", "batch", f"job-{index}", f"uid-{index}")
    return KubeJobTrigger.for_target(target, WaitPolicy(), delete_on_kill=True).serialize()[1]


def cncf_kwargs(index: int) -> dict[str, Any]:
    return {
        "job_name": f"job-{index}",
        "job_namespace": "batch",
        "pod_names": [f"job-{index}-abcde"],
        "pod_namespace": "batch",
        "base_container_name": "base",
        "kubernetes_conn_id": "k8s",
        "cluster_context": None,
        "config_file": None,
        "in_cluster": None,
        "poll_interval": 10.0,
        "get_logs": True,
        "do_xcom_push": False,
    }


def test_seeded_trigger_takes_its_jobs_kwargs_when_the_task_instance_is_attached(
    tmp_path: Path,
) -> None:
    module = seeded_module("ours", tmp_path)
    jobs_file = tmp_path / "jobs.json"
    jobs_file.write_text(json.dumps({str(i): ours_kwargs(i) for i in range(3)}))
    trigger = module.SeededKubeJobTrigger(jobs_file=str(jobs_file))

    trigger.task_instance = SimpleNamespace(map_index=2, task_id="work")
    trigger.trigger_id = 7  # set by the triggerer afterwards: kept

    assert trigger.target.name == "job-2"
    assert trigger.target.uid == "uid-2"
    assert trigger.delete_on_kill is True
    assert trigger.task_instance.map_index == 2
    assert trigger.trigger_id == 7
    # What the triggerer stores and re-creates it from is the table, not one Job.
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{module.__name__}.SeededKubeJobTrigger"
    assert kwargs == {"jobs_file": str(jobs_file)}


def test_seeded_cncf_trigger_takes_its_jobs_kwargs(tmp_path: Path) -> None:
    pytest.importorskip("airflow.providers.cncf.kubernetes.triggers.job")
    module = seeded_module("cncf", tmp_path)
    jobs_file = tmp_path / "jobs.json"
    jobs_file.write_text(json.dumps({str(i): cncf_kwargs(i) for i in range(2)}))
    trigger = module.SeededKubernetesJobTrigger(jobs_file=str(jobs_file))

    trigger.task_instance = SimpleNamespace(map_index=1, task_id="work")

    assert trigger.job_name == "job-1"
    assert trigger.pod_names == ["job-1-abcde"]
    assert trigger.serialize()[1] == {"jobs_file": str(jobs_file)}


def test_seeded_trigger_without_a_task_instance_stays_unseeded(tmp_path: Path) -> None:
    module = seeded_module("ours", tmp_path)
    trigger = module.SeededKubeJobTrigger(jobs_file=str(tmp_path / "missing.json"))
    trigger.task_instance = None  # the file is read only for a real task instance
    assert trigger.task_instance is None


def test_fired_times_reads_both_airflow_lines_log_formats() -> None:
    airflow_3 = json.dumps(
        {
            "timestamp": "2026-12-07T00:40:01.250000Z",
            "event": "Trigger fired event",
            "name": "real_triggerer_bench/run/work/7/1 (ID 3)",
        }
    )
    airflow_2 = (
        "[2026-12-07T00:40:02.500+0000] {triggerer_job_runner.py:631} INFO - Trigger "
        "real_triggerer_bench/run/work/8/1 (ID 4) fired: TriggerEvent<{...}>"
    )
    fired = real.fired_times("\n".join([airflow_3, airflow_2, "unrelated fired line"]))
    assert fired[8] - fired[7] == pytest.approx(1.25)
    assert set(fired) == {7, 8}
