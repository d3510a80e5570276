"""What every public model shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# The views write timestamps as RFC 3339 strings in UTC ("...Z"); kept as strings so the JSON is byte-for-byte the
# view's, and documented as date-times.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Public(BaseModel):
    """A response object: unknown keys kept (forward compatible), every declared key required (the views always
    write them, null when empty), so a model's dump is exactly the view it was read from."""

    model_config = ConfigDict(extra="allow")


class Page(Public):
    """A page of a list: follow `next_cursor` (null on the last page) with `?cursor=`."""

    next_cursor: str | None
    has_more: bool
