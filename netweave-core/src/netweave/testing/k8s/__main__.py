"""Run the Kubernetes API emulator on its own, to try deployments without a cluster::

    python -m netweave.testing.k8s --port 6443

It listens on ``127.0.0.1`` (``--host`` to change), writes a kubeconfig pointing at itself,
prints its path and URL, and serves until Ctrl-C or SIGTERM. State is in memory: it is gone
when the emulator stops.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

from netweave.testing.k8s.emulator import KubernetesEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m netweave.testing.k8s",
        description="Run the Kubernetes API emulator in the foreground until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="where to write the kubeconfig (default: a new file in the temporary directory)",
    )
    parser.add_argument("--namespace", default="default", help="the kubeconfig's namespace")
    parser.add_argument(
        "--kubernetes-version", default="1.35", help="version /version reports (default 1.35)"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: not a port number")

    stop = threading.Event()

    def _interrupted(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    emulator = KubernetesEmulator(
        kubernetes_version=args.kubernetes_version,
        host=args.host,
        port=args.port,
        # Standalone, `kubectl logs -f` and the gateway's followed logs stream like a kubelet.
        follow_logs=True,
    )
    try:
        emulator.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    try:
        path = args.kubeconfig
        if path is None:
            handle, name = tempfile.mkstemp(prefix="netweave-k8s-", suffix=".kubeconfig")
            os.close(handle)
            path = Path(name)
        emulator.write_kubeconfig(path, namespace=args.namespace)
        print(f"kubernetes API emulator listening on {emulator.url}", flush=True)
        print(f"kubeconfig: {path}", flush=True)
        print(f"  export KUBECONFIG={path}", flush=True)
        print("Ctrl-C stops it (its state is in memory only).", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
