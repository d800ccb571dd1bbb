"""Demo entry point: ``python -m airflow_k8s_jobs.demo`` (run by ``make demo``)."""

from __future__ import annotations


def main() -> int:
    print("demo: not implemented yet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
