"""A fresh virtual environment with local distributions really installed (offline, fast).

Created without pip; this interpreter's third-party packages (pydantic, stevedore, pytest …)
are made visible through a ``.pth`` file listing its site-packages directories, appended after
the venv's own. ``.pth`` files inside those directories are not processed, so an editable
netweave-core there is NOT what the venv imports. The listed distributions are built from
source (hatchling, no build isolation) and installed with real metadata (entry points).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from netweave.testing import require_backend

TIMEOUT = 180


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )


def build_fresh_venv(root: Path, *distributions: Path) -> Path:
    """Create a venv at ``root`` with ``distributions`` installed; return the venv's root."""
    for module, why in (("hatchling", "the build backend"), ("pip", "the installer")):
        if importlib.util.find_spec(module) is None:
            require_backend(f"{module} ({why}) is needed to build and install distributions")
    created = run(sys.executable, "-m", "venv", "--without-pip", root)
    assert created.returncode == 0, created.stderr
    python = root / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    assert site.returncode == 0, site.stderr
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(site.stdout.strip(), "_netweave_test_deps.pth").write_text("\n".join(ours) + "\n")
    installed = run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
        "--no-deps", "--no-build-isolation", "--no-index", *distributions,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return root


def venv_env(home: Path) -> dict[str, str]:
    """The environment for a process in the venv: no NETWEAVE_/PYTHON* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NETWEAVE_", "PYTHON"))}
    env["HOME"] = str(home)
    return env
