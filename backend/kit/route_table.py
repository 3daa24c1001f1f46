"""Every route of the app as (path template, methods): for the ownership rule, CORS and the tests' walks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from starlette.routing import BaseRoute, Mount


def route_templates(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, frozenset[str]]]:
    """(path, methods) of every route; FastAPI keeps an included router as one entry holding its routes."""
    for route in routes:
        if isinstance(route, Mount):
            continue  # the static frontend
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                yield context.path, frozenset(context.methods or {"GET"})
            continue
        path = getattr(route, "path", None)
        if path is None:
            raise TypeError(f"a route of unknown shape: {route!r}")
        yield path, frozenset(getattr(route, "methods", None) or {"GET"})


def api_methods(routes: Iterable[BaseRoute]) -> list[str]:
    """The HTTP methods the API answers, for CORS: exactly these, nothing more."""
    return sorted({method for _, methods in route_templates(routes) for method in methods} - {"HEAD"})
