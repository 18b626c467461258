"""``netweave adapter new``: the scaffold builds, installs, is discovered, and its kit run lists
exactly the hooks still to write."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from netweave.cli.main import main as cli
from support.fresh_venv import build_fresh_venv, run, venv_env

from . import scaffold_hooks

CORE_DIR = Path(__file__).resolve().parents[2]

#: The hooks of the capabilities the scaffold declares (package management and deployment
#: lifecycle, with their parts package listing and deployment update).
EXPECTED_TODO = {
    "package-listing: _list_packages",
    "package-management: _get_package",
    "package-management: _upload_package",
    "package-management: _delete_package",
    "deployment-lifecycle: _create_deployment",
    "deployment-lifecycle: _get_deployment",
    "deployment-update: _update_deployment",
    "deployment-lifecycle: _delete_deployment",
}

#: Once its hooks are written, the kit skips only what the scaffold does not declare, and the
#: checks that need fixtures a first adapter need not give (a package whose apply fails, an
#: observer that steers workloads' readiness).
_UNDECLARED = (
    "adapter does not declare {!r}; test_undeclared_capabilities_are_unsupported checks it "
    "answers 501"
)
EXPECTED_SKIPS = {
    _UNDECLARED.format("rollback"): 3,
    _UNDECLARED.format("scaling"): 2,
    _UNDECLARED.format("history"): 1,
    _UNDECLARED.format("logs"): 1,
    _UNDECLARED.format("dry-run"): 1,
    "no failing_package fixture: the adapter's tests give no failing package": 1,
    "no `failing_package` fixture (a package whose apply fails in the backend): undo-on-failure "
    "is not checked": 1,
    "the observer cannot steer workloads (no `workloads(spec, behavior)`, see "
    "netweave.testing.kit.KitWorkloads): readiness is not checked": 2,
}


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(distribution dir, venv) with the generated adapter and netweave-core installed."""
    work = tmp_path_factory.mktemp("scaffold")
    result = CliRunner().invoke(cli, ["adapter", "new", "acme", "--directory", str(work)])
    assert result.exit_code == 0, result.output
    dist = work / "netweave-acme"
    assert f"wrote {dist}" in result.output
    venv = build_fresh_venv(work / "venv", CORE_DIR, dist)
    return dist, venv


def test_scaffold_writes_a_complete_distribution(scaffolded: tuple[Path, Path]) -> None:
    dist, _ = scaffolded
    for relative in (
        "pyproject.toml",
        "README.md",
        "src/netweave_acme/__init__.py",
        "src/netweave_acme/adapter.py",
        "src/netweave_acme/py.typed",
        "tests/test_conformance.py",
    ):
        assert (dist / relative).is_file(), relative
    pyproject = (dist / "pyproject.toml").read_text()
    assert '[project.entry-points."netweave.adapters"]' in pyproject
    assert 'acme = "netweave_acme.adapter:AcmeAdapter"' in pyproject


def test_scaffolded_adapter_is_discovered_by_the_gateway(
    scaffolded: tuple[Path, Path], tmp_path: Path
) -> None:
    _, venv = scaffolded
    cfg = tmp_path / "gw.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\nplugins:\n  dms:\n    - {{name: a1, type: acme}}\n"
    )
    result = run(venv / "bin" / "netweave", "adapters", "--json", "--config", cfg,
                 env=venv_env(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    by_type = {a["type"]: a for a in json.loads(result.stdout)["installed"]}
    assert by_type["acme"]["distribution"] == "netweave-acme"
    assert by_type["acme"]["value"] == "netweave_acme.adapter:AcmeAdapter"
    assert by_type["acme"]["instances"] == [{"name": "a1", "enabled": True, "default": False}]


def test_kit_run_reports_exactly_the_hooks_still_to_write(
    scaffolded: tuple[Path, Path], tmp_path: Path
) -> None:
    dist, venv = scaffolded
    result = run(
        venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "-k", "test_declared_capabilities_are_implemented or test_entry_point_discovery",
        dist / "tests", env=venv_env(tmp_path),
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    match = re.search(r"declares capabilities without their hooks: \[(.*?)\]", out)
    assert match, out
    todo = {item.strip().strip("'\"") for item in match.group(1).split(",")}
    assert todo == EXPECTED_TODO
    # Discovery through the real entry point already passes for the generated distribution.
    assert "1 failed, 1 passed" in out


PRETEND = '''
from netweave.adapters import DeploymentInfo, PackageInfo
from netweave.errors import NotFound
from netweave.models import DeploymentStatus

from netweave_acme.adapter import AcmeAdapter

PACKAGES: dict = {}
DEPLOYMENTS: dict = {}


class Pretending(AcmeAdapter):
    """Every hook returns a plausible record; nothing ever reaches a backend."""

    async def _health(self):
        from netweave.adapters import AdapterHealth
        return AdapterHealth(healthy=True)

    async def _list_packages(self):
        return list(PACKAGES.values())

    async def _get_package(self, ref):
        if ref not in PACKAGES:
            raise NotFound(ref)
        return PACKAGES[ref]

    async def _upload_package(self, upload):
        info = PackageInfo(f"{upload.name}:{upload.version}", upload.name, upload.version, "acme")
        PACKAGES[info.backend_ref] = info
        return info

    async def _delete_package(self, ref):
        PACKAGES.pop(ref)

    async def _create_deployment(self, spec, ctx):
        info = DeploymentInfo(f"{spec.namespace}/{spec.name}", DeploymentStatus.DEPLOYED, 1,
                              package_version=spec.package.version, values=dict(spec.values))
        DEPLOYMENTS[info.backend_ref] = info
        return info

    async def _get_deployment(self, ref):
        if ref not in DEPLOYMENTS:
            raise NotFound(ref)
        return DEPLOYMENTS[ref]

    async def _update_deployment(self, ref, change, ctx):
        return await self._get_deployment(ref)

    async def _delete_deployment(self, ref, ctx):
        DEPLOYMENTS.pop(ref)
'''


def test_a_scaffolded_adapter_whose_hooks_only_pretend_fails_the_kit(
    scaffolded: tuple[Path, Path], tmp_path: Path
) -> None:
    """Plausible records without touching the backend pass no kit test that changes anything:
    the kit looks at the backend (here the Kubernetes API emulator, by the scaffold's owner
    labels)."""
    dist, venv = scaffolded
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "pretending.py").write_text(PRETEND)
    suite = (dist / "tests" / "test_conformance.py").read_text()
    suite = suite.replace(
        "from netweave_acme import AcmeAdapter", "from pretending import Pretending as AcmeAdapter"
    )
    (tests / "test_pretend.py").write_text(suite)
    result = run(
        venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf",
        "-o", "asyncio_mode=auto", "-k", "test_create_get_delete or test_upload_get_list_delete",
        tests, env=venv_env(tmp_path),
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    # Its package bookkeeping looks right; its deployments exist only in its own word.
    assert "1 failed, 1 passed" in out, out
    assert "the adapter reported the deployment created, but the backend holds nothing" in out


def _written(text: str, anchor: str, new: str) -> str:
    """``text`` with ``anchor`` replaced: the scaffold's file, as its author edits it."""
    assert text.count(anchor) == 1, f"the scaffold no longer has {anchor!r}"
    return text.replace(anchor, new)


def test_a_scaffolded_adapter_whose_hooks_are_written_passes_the_kit(
    scaffolded: tuple[Path, Path], tmp_path: Path
) -> None:
    """The generated distribution with its hooks written against a small real backend (a
    file-backed store, scaffold_hooks.py) and its conformance test's fixtures filled in passes
    the whole kit, in the installed distribution's venv: nothing else in the scaffold needs
    changing."""
    generated, venv = scaffolded
    dist = tmp_path / "netweave-acme"
    shutil.copytree(generated, dist)
    libs = tmp_path / "libs"
    libs.mkdir()
    (libs / "acmestore.py").write_text(scaffold_hooks.ACMESTORE)

    module = dist / "src" / "netweave_acme" / "adapter.py"
    code = module.read_text()
    imports = "from netweave.models import LogOptions, Preview, RevisionEntry\n"
    code = _written(code, imports, imports + scaffold_hooks.IMPORTS)
    docstring = 'Add your backend\'s settings (URL, credentials …)."""\n'
    code = _written(code, docstring, docstring + scaffold_hooks.CONFIG)
    start = code.index("    async def _health(self)")
    end = code.index("    # Optional capabilities")
    code = code[:start] + scaffold_hooks.HOOKS.lstrip("\n") + "\n" + code[end:]
    module.write_text(code)

    suite_file = dist / "tests" / "test_conformance.py"
    suite = suite_file.read_text()
    suite = _written(suite, "from pathlib import Path\n",
                     "import json\nfrom pathlib import Path\n")  # fmt: skip
    suite = _written(suite, "from netweave.testing.kit import AdapterTestSuite\n",
                     "from netweave.testing.kit import AdapterTestSuite\n"
                     + scaffold_hooks.TEST_IMPORTS)  # fmt: skip
    suite = _written(suite, '    owner_labels = {"app.kubernetes.io/instance": "{name}"}\n',
                     scaffold_hooks.FIXTURES)  # fmt: skip
    suite = _written(suite, "def adapter(self) -> DMSAdapter:",
                     "def adapter(self, store: acmestore.Store) -> DMSAdapter:")  # fmt: skip
    suite = _written(suite, "AcmeAdapter.Config()", "AcmeAdapter.Config(store_dir=store.root)")
    suite = _written(suite, 'write_bytes(b"")', 'write_bytes(b"ConfigMap Deployment")')
    suite_file.write_text(suite)

    # The edited sources shadow the installed copy; the entry point is the installed one.
    env = venv_env(tmp_path) | {"PYTHONPATH": f"{dist / 'src'}:{libs}"}
    result = run(
        venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
        dist / "tests", env=env,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert re.search(r"\b21 passed, 12 skipped\b", out), out
    skips: dict[str, int] = {}
    for count, reason in re.findall(r"SKIPPED \[(\d+)\] [^\n]*?netweave kit: ([^\n]*)", out):
        skips[reason] = skips.get(reason, 0) + int(count)
    assert skips == EXPECTED_SKIPS, out


def test_invalid_names_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["adapter", "new", "Bad_Name", "--directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "must be 2-31 lowercase letters or digits" in result.output
    assert not any(tmp_path.iterdir())


def test_existing_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "netweave-acme").mkdir()
    result = CliRunner().invoke(cli, ["adapter", "new", "acme", "--directory", str(tmp_path)])
    assert result.exit_code == 2
    assert "already exists" in result.output
