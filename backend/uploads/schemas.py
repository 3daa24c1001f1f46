"""Response shapes of the uploads API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class UploadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    original_filename: str
    size_bytes: int
    sha256: str
    meta: dict[str, Any]
    created_at: datetime
    owner: str | None = Field(None, validation_alias="owner_name", description="Who uploaded it.")
