"""What the resources' models share: the API group and version, the base model, durations and
object metadata.

The models (canary.api.canary, canary.api.status, canary.api.analysis_template) are the
source of truth for the CRDs in manifests/. Field names are snake_case in Python and
camelCase on the wire (the Kubernetes convention); always serialise with
``model_dump(by_alias=True, exclude_none=True)``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from canary.api.durations import parse_duration

GROUP = "canary.dev"
VERSION = "v1alpha1"
API_VERSION: Literal["canary.dev/v1alpha1"] = "canary.dev/v1alpha1"


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(json_schema_extra={"pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"}),
]


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def wire(self) -> dict[str, Any]:
        """The dict as it is stored in Kubernetes."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ObjectMeta(BaseModel):
    """The parts of metadata we read; everything else passes through untouched."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)
    name: str
    namespace: str | None = None
    generation: int | None = None
    resource_version: str | None = Field(default=None, alias="resourceVersion")
    uid: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
