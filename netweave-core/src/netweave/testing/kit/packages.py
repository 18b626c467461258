"""Package management: upload, get, list, delete, duplicates, unknown references."""

from __future__ import annotations

import pytest

from netweave.adapters import Capability, DMSAdapter, PackageUpload
from netweave.errors import AlreadyExists, NotFound
from netweave.testing.kit.base import AdapterFixtures


class PackageManagementTests(AdapterFixtures):
    @pytest.mark.asyncio
    async def test_upload_get_list_delete(
        self, started_adapter: DMSAdapter, sample_package: PackageUpload
    ) -> None:
        self.require_capability(started_adapter, Capability.PACKAGE_MANAGEMENT)
        info = await started_adapter.upload_package(sample_package)
        assert (info.name, info.version) == (sample_package.name, sample_package.version), (
            "upload_package must report the name and version it onboarded"
        )
        assert info.package_type in started_adapter.package_types, (
            f"package type {info.package_type!r} is not among the declared PACKAGE_TYPES"
        )
        got = await started_adapter.get_package(info.backend_ref)
        assert (got.backend_ref, got.name, got.version) == (
            info.backend_ref,
            info.name,
            info.version,
        )
        # Listing is its own capability: a backend without a catalogue (ONAP SO) has none.
        listing = Capability.PACKAGE_LISTING in started_adapter.capabilities
        if listing:
            listed = {p.backend_ref for p in await started_adapter.list_packages()}
            assert info.backend_ref in listed, "an uploaded package must appear in list_packages"
        await started_adapter.delete_package(info.backend_ref)
        await self.expect_error(
            NotFound, started_adapter.get_package(info.backend_ref), "get_package after delete"
        )
        if listing:
            listed = {p.backend_ref for p in await started_adapter.list_packages()}
            assert info.backend_ref not in listed, "a deleted package must leave list_packages"

    @pytest.mark.asyncio
    async def test_duplicate_upload_is_already_exists(
        self, started_adapter: DMSAdapter, sample_package: PackageUpload
    ) -> None:
        self.require_capability(started_adapter, Capability.PACKAGE_MANAGEMENT)
        info = await started_adapter.upload_package(sample_package)
        try:
            await self.expect_error(
                AlreadyExists,
                started_adapter.upload_package(sample_package),
                "uploading the same name and version twice",
            )
        finally:
            await started_adapter.delete_package(info.backend_ref)

    @pytest.mark.asyncio
    async def test_unknown_package_is_not_found(self, started_adapter: DMSAdapter) -> None:
        self.require_capability(started_adapter, Capability.PACKAGE_MANAGEMENT)
        ref = self.unknown_package_ref(started_adapter)
        await self.expect_error(NotFound, started_adapter.get_package(ref), "get_package(unknown)")
        await self.expect_error(
            NotFound, started_adapter.delete_package(ref), "delete_package(unknown)"
        )

    def unknown_package_ref(self, adapter: DMSAdapter) -> str:
        """A reference no package has; override if your references have a stricter form."""
        return "netweave-kit-missing:0.0.0"
