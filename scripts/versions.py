"""Print the versions that define a test environment, one line (used by the Makefile)."""

from __future__ import annotations

import importlib.metadata as metadata
import platform

PACKAGES = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "apache-airflow-providers-cncf-kubernetes",
    "apache-airflow-providers-common-compat",
    "apache-airflow-providers-google",
    "kubernetes",
    "kubernetes_asyncio",
    "google-cloud-container",
    "google-auth",
    "aiohttp",
    "tenacity",
    "PyYAML",
    "cryptography",
    "pytest",
)


def main() -> None:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    print(f"python {platform.python_version()}, " + ", ".join(found))


if __name__ == "__main__":
    main()
