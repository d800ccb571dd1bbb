"""``python -m simulated_k8s_cluster`` as a real subprocess."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml

from simulated_k8s_cluster.cli import EXAMPLE_CONFIG

DEADLINE = 30.0


class Server:
    """The CLI in a subprocess, its output lines collected on a thread."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "simulated_k8s_cluster", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_line(self, text: str) -> str:
        deadline = time.monotonic() + DEADLINE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line with {text!r} in {DEADLINE}s: {self.output}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the CLI exited before printing {text!r}: {self.output}")
            self.output.append(line)
            if text in line:
                return line

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=DEADLINE)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_example_config(tmp_path: Path, servers: list[Server], sig: int) -> None:
    kubeconfig = tmp_path / "out" / "kubeconfig.yaml"
    server = Server("serve", "--config", str(EXAMPLE_CONFIG), "--kubeconfig", str(kubeconfig))
    servers.append(server)
    ready = server.wait_for_line("ready")
    url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    assert url.startswith("http://127.0.0.1:")
    assert url in ready

    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    try:
        v1 = kubernetes.client.CoreV1Api(client)
        names = {ns.metadata.name for ns in v1.list_namespace().items}
        assert {"default", "batch"} <= names
        nodes = v1.list_node().items
        assert [n.metadata.labels["cloud.google.com/gke-nodepool"] for n in nodes] == ["default"]
        v1.create_namespaced_config_map("batch", {"metadata": {"name": "from-cli-test"}})
        assert v1.read_namespaced_config_map("from-cli-test", "batch").metadata.uid
    finally:
        client.close()

    assert server.stop(sig) == 0
    server.wait_for_line("stopped")


def test_serve_port_and_host(tmp_path: Path, servers: list[Server]) -> None:
    port = _free_port()
    config = tmp_path / "cluster.yaml"
    config.write_text("timeScale: 0\nnamespaces: [team]\nnodePools: []\n")
    kubeconfig = tmp_path / "kubeconfig.yaml"
    server = Server(
        "serve",
        "--config",
        str(config),
        "--kubeconfig",
        str(kubeconfig),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--namespace",
        "team",
    )
    servers.append(server)
    assert f"http://127.0.0.1:{port}" in server.wait_for_line("ready")
    loaded = yaml.safe_load(kubeconfig.read_text())
    assert loaded["contexts"][0]["context"]["namespace"] == "team"
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    try:
        assert kubernetes.client.CoreV1Api(client).read_namespace("team").status.phase == "Active"
    finally:
        client.close()
    assert server.stop() == 0


def test_serve_without_config(tmp_path: Path, servers: list[Server]) -> None:
    kubeconfig = tmp_path / "kubeconfig.yaml"
    server = Server("serve", "--kubeconfig", str(kubeconfig))
    servers.append(server)
    server.wait_for_line("ready")
    assert kubeconfig.exists()
    assert server.stop() == 0


def test_bad_config_fails_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("nodePools:\n  - name: a\n    nodes: two\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulated_k8s_cluster",
            "serve",
            "--config",
            str(config),
            "--kubeconfig",
            str(tmp_path / "k.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 2
    assert "nodePools[0].nodes must be a whole number" in result.stderr
    assert not (tmp_path / "k.yaml").exists()


def test_busy_port_fails(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "simulated_k8s_cluster",
                "serve",
                "--port",
                str(port),
                "--kubeconfig",
                str(tmp_path / "k.yaml"),
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr


def test_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulated_k8s_cluster", "--help"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0
    assert "serve" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "simulated_k8s_cluster", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0
    for option in ("--config", "--kubeconfig", "--port", "--host"):
        assert option in result.stdout


def test_no_command_prints_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulated_k8s_cluster"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 2
    assert "serve" in result.stdout
