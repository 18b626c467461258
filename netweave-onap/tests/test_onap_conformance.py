"""netweave's conformance kit against both backends (emulators on 127.0.0.1).

Overrides say why; each replaces a kit test with one that checks what this backend does
instead, never with nothing.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from netweave.adapters import DeploymentChange, DMSAdapter, PackageInfo, PackageUpload
from netweave.errors import BackendTimeout, BackendUnavailable, NotFound
from netweave.testing.kit import AdapterTestSuite, KitObserver, kit_override
from netweave.testing.kit.failures import KIT_FAILURE
from netweave_onap import OnapAdapter, OnapConfig
from onap_emulators.k8splugin import K8sPluginEmulator
from onap_emulators.samples import MODEL
from onap_emulators.so import SoEmulator
from onap_observer import K8sPluginObserver, SoObserver


class _Outage:
    """The kit's handle on an emulator: an outage, and its KitFaults (failing, crashing)."""

    def __init__(self, emulator: K8sPluginEmulator | SoEmulator) -> None:
        self.emulator = emulator

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.emulator.outage_status = 503
        try:
            yield
        finally:
            self.emulator.outage_status = None

    def failing(self, message: str) -> contextlib.AbstractContextManager[None]:
        return self.emulator.failing(message)

    def crashing(self) -> contextlib.AbstractContextManager[None]:
        return self.emulator.crashing()


#: The SDC service model of the SO kit's failing package.
BROKEN_MODEL = "6d3c1b0e-2a7f-4c55-9e61-0b7f5f0c6a11"

_FAST = {"pollInterval": 0.02, "timeouts": {"read": 5, "write": 20}, "http": {"backoff": 0.01}}


class TestK8sPluginConformance(AdapterTestSuite):
    @pytest.fixture
    def adapter(self, k8s_backend: K8sPluginEmulator) -> DMSAdapter:
        return OnapAdapter(
            "onap-kit",
            OnapConfig.model_validate(
                {
                    "backend": "k8splugin",
                    "k8sPluginUrl": k8s_backend.url,  # type: ignore[attr-defined]
                    "cloudRegion": k8s_backend.cloud_region,
                    **_FAST,
                }
            ),
        )

    @pytest.fixture
    def sample_package(self, charts: Path) -> PackageUpload:
        return PackageUpload(
            name="hello-world", version="0.1.0", archive=charts / "hello-world-0.1.0.tgz"
        )

    @pytest.fixture
    def upgrade_package(self, charts: Path) -> PackageUpload:
        return PackageUpload(
            name="hello-world", version="0.2.0", archive=charts / "hello-world-0.1.0.tgz"
        )

    @pytest.fixture
    def deployment_values(self) -> dict[str, Any]:
        return {"replicaCount": 1}

    @pytest.fixture
    def backend(self, k8s_backend: K8sPluginEmulator) -> _Outage:
        return _Outage(k8s_backend)

    @pytest.fixture
    def observer(self, k8s_backend: K8sPluginEmulator) -> KitObserver:
        return K8sPluginObserver(k8s_backend)

    @pytest.fixture
    def failing_package(self, charts: Path, k8s_backend: K8sPluginEmulator) -> PackageUpload:
        # A definition whose resources the cluster refuses when an instance is created.
        k8s_backend.failing_definitions.add(("hello-broken", "0.1.0"))
        return PackageUpload(
            name="hello-broken", version="0.1.0", archive=charts / "hello-world-0.1.0.tgz"
        )

    @kit_override(
        "the k8splugin emulator renders no charts (every instance holds one Deployment and one "
        "Service), so an upgrade cannot be seen dropping an object; checked instead, in the "
        "emulator's instance: the new definition version with the same values"
    )
    async def test_upgrade_to_another_package_version(
        self,
        started_adapter: DMSAdapter,
        onboarded_package: PackageInfo,
        upgrade_package: PackageUpload,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
    ) -> None:
        newer = await started_adapter.upload_package(upgrade_package)
        spec = self.spec(onboarded_package, namespace, self.mark(deployment_values, "upgrade"))
        info = await self.deploy_spec(started_adapter, spec)
        try:
            await started_adapter.update_deployment(
                info.backend_ref, DeploymentChange(package=newer), self.ctx()
            )
            upgraded = await self.settle(started_adapter, info.backend_ref)
            assert upgraded.package_version == newer.version
            seen = await self.observe_until(
                observer,
                spec,
                lambda s: s.package_version == newer.version,
                f"the instance must run definition version {newer.version} after the upgrade",
            )
            assert seen.values is not None
            assert seen.values.get("netweaveKitMark") == "upgrade", "the upgrade lost the values"
        finally:
            await started_adapter.delete_deployment(info.backend_ref, self.ctx())


class TestSoConformance(AdapterTestSuite):
    @pytest.fixture
    def adapter(self, so_backend: SoEmulator) -> DMSAdapter:
        return OnapAdapter(
            "onap-so-kit",
            OnapConfig.model_validate(
                {
                    "backend": "so",
                    "soUrl": so_backend.url,
                    "username": so_backend.username,
                    "password": so_backend.password,
                    "cloudRegion": "k8sregionfour",
                    "tenantId": "tenant",
                    **_FAST,
                }
            ),
        )

    @pytest.fixture
    def sample_package(self) -> PackageUpload:
        return PackageUpload(
            name="cu-service",
            version="2.0",
            package_uri="sdc:services/beb1259e-dad8-4ee0-a40e-1af20f775d54",
            source=copy.deepcopy(MODEL),
        )

    @pytest.fixture
    def deployment_values(self) -> dict[str, Any]:
        return {"replicaCount": "1"}

    @pytest.fixture
    def backend(self, so_backend: SoEmulator) -> _Outage:
        return _Outage(so_backend)

    @pytest.fixture
    def observer(self, so_backend: SoEmulator) -> KitObserver:
        return SoObserver(so_backend)

    @pytest.fixture
    def failing_package(self, so_backend: SoEmulator) -> PackageUpload:
        # A service model whose CNF instantiation fails in SO's flow.
        model = copy.deepcopy(MODEL)
        model["service"].update(modelVersionId=BROKEN_MODEL, modelName="cu_service_broken")
        so_backend.failing_models.add(BROKEN_MODEL)
        return PackageUpload(
            name="cu-service-broken",
            version="2.0",
            package_uri=f"sdc:services/{BROKEN_MODEL}",
            source=model,
        )

    @kit_override(
        "stateless by design: a package's backend_ref is its encoded SDC model reference, so it "
        "stays readable after delete_package (registration state, and deletion, live in the "
        "gateway's store). Replaced by the same checks minus that one (backend 'so' declares "
        "no package-listing: the kit's error tests check list_packages answers 501)"
    )
    async def test_upload_get_list_delete(
        self, started_adapter: DMSAdapter, sample_package: PackageUpload
    ) -> None:
        info = await started_adapter.upload_package(sample_package)
        got = await started_adapter.get_package(info.backend_ref)
        assert (got.name, got.version, got.package_type) == ("cu-service", "2.0", "sdc-service")
        assert got.package_type in started_adapter.package_types
        await started_adapter.delete_package(info.backend_ref)

    @kit_override(
        "a model reference keeps no state in ONAP, so the adapter cannot see a duplicate; the "
        "gateway's store refuses a duplicate name+version (409). Checked instead: registering "
        "the same model twice gives the same reference"
    )
    async def test_duplicate_upload_is_already_exists(
        self, started_adapter: DMSAdapter, sample_package: PackageUpload
    ) -> None:
        first = await started_adapter.upload_package(sample_package)
        second = await started_adapter.upload_package(sample_package)
        assert first.backend_ref == second.backend_ref

    @kit_override(
        "backend 'so' declares no deployment-update (SO's upgradeCnf route is not in its "
        "published contract), so no change reaches SO to refuse. Checked instead with the change "
        "SO does carry out, a create that SO's flow "
        "fails: FAILED_TEMP carrying SO's own requestStatus message, the deployment not "
        "DEPLOYED, and its rollback leaves nothing in SO"
    )
    async def test_failed_change_carries_the_backend_message_and_rollback_restores(
        self,
        adapter: DMSAdapter,
        backend: _Outage,
        sample_package: PackageUpload,
        namespace: str,
        deployment_values: dict[str, Any],
        observer: KitObserver,
        tmp_path: Path,
    ) -> None:
        faults = self.faults(backend)
        name = self.unique_name("kitchg")
        async with self.gateway_for(adapter, tmp_path) as gw:
            package_id = await self.onboard(gw, adapter, sample_package)
            with faults.failing(KIT_FAILURE):
                deployment_id, operation_id = await self.create(
                    gw, package_id, namespace, deployment_values, name
                )
                failed = await self.settled_operation(gw, operation_id)
            assert failed["state"] == "FAILED_TEMP", failed
            assert KIT_FAILURE in (failed["error"] or {}).get("detail", ""), failed["error"]
            stored = await self.deployment(gw, deployment_id)
            assert stored is not None and stored["status"] != "DEPLOYED", stored
            done = await self.roll_back(gw, operation_id)
            assert done["state"] == "ROLLED_BACK", done
            assert await self.deployment(gw, deployment_id) is None
        spec = self.spec_for(name, namespace, deployment_values, deployment_id)
        await self.left_nothing(observer, spec, "rollback of a create SO failed")

    @kit_override(
        "a model reference is read without SO (get_package answers during an outage); the "
        "calls that do reach SO are checked during the outage"
    )
    async def test_backend_outage_is_unavailable(
        self, started_adapter: DMSAdapter, backend: _Outage
    ) -> None:
        with backend.outage():
            try:
                await started_adapter.get_deployment("netweave-kit-outage")
            except (BackendUnavailable, BackendTimeout) as exc:
                assert exc.unmapped_exception_type is None
            else:
                raise AssertionError("get_deployment succeeded during an outage")
            assert (await started_adapter.health()).healthy is False
        await self.expect_error(
            NotFound, started_adapter.get_deployment("netweave-kit-outage"), "after the outage"
        )
