"""`make demo` runs `python -m airflow_k8s_jobs.demo`; it must keep working."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_k8s_jobs import demo


def test_demo_runs_jobs_through_the_simulated_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert demo.main(["--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "demo succeeded" in out
    # The GPU Job waited for a scale-up of the tainted GPU pool before it could run.
    assert "TriggeredScaleUp: train-gpu" in out
    # Logs of every pod of the indexed Job, and the failure reason of the broken one.
    for index in range(4):
        assert f"shard {index} done" in out
    assert "condition Failed: BackoffLimitExceeded" in out
    assert (tmp_path / "kubeconfig.yaml").exists()
