"""What the client raises: one exception type carrying the server's message and HTTP status."""

from __future__ import annotations

from typing import Any


class PruneLabError(Exception):
    """PruneLab refused a request, could not be reached, or sent something the client could not accept.

    `str(error)` is the message to show a person (the server's own words when it answered);
    `status_code` is the HTTP status (None when no answer came) and `detail` the server's `detail` field.
    """

    def __init__(self, message: str, status_code: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.detail = detail

    def __str__(self) -> str:
        return self.message if self.status_code is None else f"{self.message} (HTTP {self.status_code})"


class ServerUnreachable(PruneLabError):
    """No HTTP answer: connection refused, name not resolved, timed out."""


class ChecksumMismatch(PruneLabError):
    """A downloaded file's sha256 differs from the one the server recorded when the file was written."""


class WaitTimeout(PruneLabError, TimeoutError):
    """A run did not finish within the time `Client.wait` was given."""
