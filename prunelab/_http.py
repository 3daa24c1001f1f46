"""The HTTP plumbing under `Client`: base URL, token, and every transport or HTTP error as a `PruneLabError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from prunelab.errors import PruneLabError, ServerUnreachable


def error_message(response: httpx.Response) -> tuple[str, Any]:
    """The server's `detail` as one line (`field: message; ...` for validation errors), and the detail itself."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail, detail
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail:
            if isinstance(item, dict):
                field = item.get("field") or ".".join(str(p) for p in item.get("loc", []) if p not in ("body", "query"))
                message = str(item.get("msg", item))
                parts.append(f"{field}: {message}" if field else message)
            else:
                parts.append(str(item))
        return "; ".join(parts), detail
    text = response.text.strip()[:300]
    return text or response.reason_phrase or f"HTTP {response.status_code}", detail


def raise_for_status(response: httpx.Response) -> None:
    if response.is_success or response.status_code == 304:
        return
    if not response.is_stream_consumed:
        response.read()
    message, detail = error_message(response)
    if response.status_code == 401:
        message += " (the client sends PRUNELAB_TOKEN, or Client(token=...))"
    raise PruneLabError(message, response.status_code, detail)


def transport_error(base_url: str, error: httpx.TransportError) -> PruneLabError:
    if isinstance(error, httpx.ConnectError):
        reason = str(error) or type(error).__name__
        return ServerUnreachable(
            f"cannot reach PruneLab at {base_url} ({reason}); is it running? "
            "Set PRUNELAB_URL or pass --url / Client(url=...)"
        )
    if isinstance(error, httpx.TimeoutException):
        return ServerUnreachable(f"PruneLab at {base_url} did not answer in time ({type(error).__name__})")
    return ServerUnreachable(f"the connection to PruneLab at {base_url} failed: {error or type(error).__name__}")


class Http:
    """An httpx client bound to one PruneLab server; every method raises `PruneLabError`, never an httpx error."""

    def __init__(self, base_url: str, token: str | None, timeout: float, transport: httpx.BaseTransport | None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport, follow_redirects=True
        )

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise transport_error(self.base_url, error) from None
        raise_for_status(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise PruneLabError(f"{method} {path} answered something that is not JSON", response.status_code) from None

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response whose status was checked; transport errors while reading become `PruneLabError`."""
        try:
            with self.client.stream(method, path, **kwargs) as response:
                raise_for_status(response)
                yield response
        except httpx.TransportError as error:
            raise transport_error(self.base_url, error) from None
