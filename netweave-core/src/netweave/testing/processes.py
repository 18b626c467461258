"""Child processes of tests and benchmarks (gateways, emulators, registries)."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 30.0) -> None:
    """End ``process``: SIGTERM and ``grace`` seconds to exit, then SIGKILL; always reaped."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


__all__ = ["stop"]
