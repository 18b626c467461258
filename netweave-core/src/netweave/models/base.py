"""Base classes for wire models: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """A model the API returns. Serialised by alias (camelCase)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        use_enum_values=False,
    )


class RequestModel(WireModel):
    """A model the API accepts: unknown members are refused, never silently dropped."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_strip_whitespace=True,
    )


def _whole_float_to_int(value: Any) -> Any:
    # JSON Schema counts 2.0 as an integer, so the document allows it; pydantic's strict mode
    # (request bodies are validated strictly) would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: An integer member of a request body: a whole number, also when written ``2.0``.
JsonInt = Annotated[int, BeforeValidator(_whole_float_to_int)]
