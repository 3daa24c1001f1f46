"""Query parameters shared by several routers: comma-separated metric keys and run ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Query

from prunelab.core.errors import InvalidParameter


def split_keys(keys: str | None) -> list[str] | None:
    return [key.strip() for key in keys.split(",") if key.strip()] if keys else None


def run_ids_param(name: str, most: int, required: bool) -> Callable[..., list[int] | None]:
    """A dependency reading `name` as comma-separated run ids (deduplicated, in order), 422 when malformed."""

    def parse(value: str | None = None) -> list[int] | None:
        if value is None or not value.strip():
            if required:
                raise InvalidParameter((name,), f"{name} is required: comma-separated run ids, e.g. 1,2")
            return None
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not all(part.isascii() and part.isdigit() and len(part) < 10 for part in parts):
            raise InvalidParameter((name,), f"{name} must be comma-separated run ids, e.g. 1,2,3; got {value[:50]!r}")
        ids = list(dict.fromkeys(int(part) for part in parts))
        if len(ids) > most:
            raise InvalidParameter((name,), f"{name} names {len(ids)} runs; at most {most} can be shown together")
        return ids

    # Set as objects, not strings: the alias lives in this closure, where FastAPI could not evaluate a string.
    parse.__annotations__ = {
        "value": Annotated[str | None, Query(alias=name, description="Comma-separated run ids.")],
        "return": list[int] | None,
    }
    return parse
