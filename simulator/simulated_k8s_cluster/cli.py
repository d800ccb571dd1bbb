"""Command line for the simulated cluster.

::

    python -m simulated_k8s_cluster serve --config cluster.yaml --kubeconfig kubeconfig.yaml

starts a simulated cluster, writes a kubeconfig for it, prints one line containing ``ready``
and the server URL once the API answers, and serves until SIGINT or SIGTERM (exit status 0).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .config import ClusterConfig, ConfigError

EXAMPLE_CONFIG = Path(__file__).parent / "examples" / "cluster.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulated_k8s_cluster",
        description="A simulated Kubernetes cluster that real clients (kubectl, the kubernetes "
        "Python clients, Airflow) talk to without a real cluster.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="start a simulated cluster and serve it until interrupted",
        description="Start a simulated cluster, write a kubeconfig for it and serve until "
        "SIGINT or SIGTERM. Prints a line containing 'ready' and the URL once it serves.",
    )
    serve.add_argument(
        "--config",
        metavar="CLUSTER.yaml",
        help=f"cluster configuration (YAML); default: an empty configuration. Example: "
        f"{EXAMPLE_CONFIG}",
    )
    serve.add_argument(
        "--kubeconfig",
        metavar="OUT.yaml",
        required=True,
        help="where to write the kubeconfig (rewritten if the token is rotated)",
    )
    serve.add_argument(
        "--port", type=int, help="port to listen on (default: the config's port, or a free one)"
    )
    serve.add_argument(
        "--host", help="address to listen on (default: the config's host, 127.0.0.1)"
    )
    serve.add_argument(
        "--namespace",
        default="default",
        help="namespace of the kubeconfig's context (default: default)",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="log what the cluster does")
    serve.set_defaults(func=serve_command)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    try:
        config = ClusterConfig.load(Path(args.config)) if args.config else ClusterConfig()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.port is not None:
        config.port = args.port
    if args.host:
        config.host = args.host
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    from .cluster import SimulatedCluster

    cluster = SimulatedCluster(config)
    try:
        try:
            cluster.start()
        except OSError as exc:
            print(f"error: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
            return 1
        path = cluster.write_kubeconfig(args.kubeconfig, namespace=args.namespace)
        print(f"simulated cluster ready at {cluster.url} (kubeconfig: {path})", flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("simulated cluster stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    result: int = args.func(args)
    return result
