"""SOL003 request bodies (field names as the standard writes them). Types the standard leaves
open stay open (``extra="allow"``): a standard client may send attributes of later versions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from netweave.models.base import JsonInt


class EtsiRequest(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


class CreateVnfRequest(EtsiRequest):
    vnfd_id: str = Field(min_length=1, max_length=300)
    vnf_instance_name: str | None = Field(default=None, max_length=255)
    vnf_instance_description: str | None = Field(default=None, max_length=1024)
    metadata: dict[str, Any] | None = None


class InstantiateVnfRequest(EtsiRequest):
    flavour_id: str = Field(min_length=1, max_length=255)
    instantiation_level_id: str | None = None
    ext_virtual_links: list[dict[str, Any]] | None = None
    ext_managed_virtual_links: list[dict[str, Any]] | None = None
    vim_connection_info: dict[str, Any] | list[Any] | None = None
    localization_language: str | None = None
    #: Helm specifics: ``namespace``, ``releaseName``, ``values``, ``scaleAspects`` /
    #: ``replicaKey`` (see docs/etsi.md).
    additional_params: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None
    vnf_configurable_properties: dict[str, Any] | None = None


class TerminateVnfRequest(EtsiRequest):
    termination_type: Literal["FORCEFUL", "GRACEFUL"]
    graceful_termination_timeout: JsonInt | None = Field(default=None, ge=0)
    additional_params: dict[str, Any] | None = None


class ScaleVnfRequest(EtsiRequest):
    type: Literal["SCALE_OUT", "SCALE_IN"]
    aspect_id: str = Field(min_length=1, max_length=255)
    number_of_steps: JsonInt = Field(default=1, ge=1, le=1000)
    additional_params: dict[str, Any] | None = None


class ScaleInfo(EtsiRequest):
    aspect_id: str = Field(min_length=1, max_length=255)
    scale_level: JsonInt = Field(ge=0)


class ScaleVnfToLevelRequest(EtsiRequest):
    instantiation_level_id: str | None = None
    scale_info: list[ScaleInfo] | None = None
    additional_params: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ScaleVnfToLevelRequest:
        if (self.instantiation_level_id is None) == (self.scale_info is None):
            raise ValueError("give either instantiationLevelId or scaleInfo")
        return self


class HealVnfRequest(EtsiRequest):
    cause: str | None = None
    additional_params: dict[str, Any] | None = None


class ChangeCurrentVnfPkgRequest(EtsiRequest):
    vnfd_id: str = Field(min_length=1, max_length=300)
    ext_virtual_links: list[dict[str, Any]] | None = None
    ext_managed_virtual_links: list[dict[str, Any]] | None = None
    vim_connection_info: dict[str, Any] | list[Any] | None = None
    additional_params: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None
    vnf_configurable_properties: dict[str, Any] | None = None


class VnfInfoModificationRequest(EtsiRequest):
    vnf_instance_name: str | None = Field(default=None, max_length=255)
    vnf_instance_description: str | None = Field(default=None, max_length=1024)
    vnfd_id: str | None = Field(default=None, min_length=1, max_length=300)
    vnf_pkg_id: str | None = Field(default=None, min_length=1, max_length=300)
    vnf_configurable_properties: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None
    vim_connection_info: dict[str, Any] | list[Any] | None = None


class CancelMode(EtsiRequest):
    cancel_mode: Literal["GRACEFUL", "FORCEFUL"]


__all__ = [
    "CancelMode",
    "ChangeCurrentVnfPkgRequest",
    "CreateVnfRequest",
    "HealVnfRequest",
    "InstantiateVnfRequest",
    "ScaleVnfRequest",
    "ScaleVnfToLevelRequest",
    "TerminateVnfRequest",
    "VnfInfoModificationRequest",
]
