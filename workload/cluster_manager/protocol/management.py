"""Request bodies of the management API (reference §1.1), strict about what they accept.

Unknown fields are refused rather than ignored: an operator who misspells `disk_threshold`
must hear about it instead of believing the change was made. Strings hold no NUL character
and have the lengths of `rules`; names are checked by `rules.valid_name` in the service.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from .rules import MAX_DESCRIPTION_LENGTH, NulFreeStr

Threshold = Annotated[StrictInt, Field(ge=0, le=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, data: object) -> object:
        # Absent means "leave as is"; an explicit null has no meaning here and is refused,
        # so a client bug cannot pass for an intentional no-op.
        if isinstance(data, dict):
            nulls = sorted(key for key, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"null is not allowed for {', '.join(nulls)}")
        return data


class RemoteClusterPatch(_Strict):
    """PATCH /1.0/remote-cluster/{name}: only the fields present are changed.

    An empty `status` is accepted as "unchanged", as upstream's UI sends it.
    """

    status: Literal["ACTIVE", ""] | None = None
    description: NulFreeStr | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    disk_threshold: Threshold | None = None
    memory_threshold: Threshold | None = None

    def changes(self) -> dict[str, object]:
        """Column name → new value, for the fields the caller actually sent."""
        sent = self.model_dump(exclude_unset=True)
        if sent.get("status") == "":
            del sent["status"]
        return sent


class JoinTokenCreate(_Strict):
    """POST /1.0/remote-cluster-join-token.

    `cluster_name` defaults to "" so that a missing and an empty name get the same message.
    """

    cluster_name: NulFreeStr = Field(default="", max_length=255)
    description: NulFreeStr = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)
    expiry: AwareDatetime | None = None

    @field_validator("expiry", mode="before")
    @classmethod
    def _expiry_is_text(cls, value: object) -> object:
        # Lax datetime parsing would take a number as a Unix time; the contract says RFC 3339.
        if not isinstance(value, str):
            raise ValueError("expiry must be an RFC 3339 string")
        return value
