"""Domain errors, raised by the pure model and by services; `backend.errors` maps them to HTTP answers.

They carry what went wrong in the user's terms (a field, a run id), never a status code.
"""

from __future__ import annotations


class PruneLabError(Exception):
    """Base of every domain error; `message` is shown to the user as is."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSpec(PruneLabError):
    """A spec that passes field validation but cannot run (its steps do not fit, say)."""

    def __init__(self, field: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidParameter(InvalidSpec):
    """A query parameter that cannot be used (a malformed list of run ids, say)."""


class InvalidFilter(InvalidParameter):
    """A runs filter that does not parse or names something unknown; `column` is 1-based, as editors count."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(("filter",), f"column {column}: {message}")
        self.column = column


class RunNotFound(PruneLabError):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"run {run_id} does not exist")


class SweepNotFound(PruneLabError):
    def __init__(self, sweep_id: int) -> None:
        super().__init__(f"sweep {sweep_id} does not exist")


class ArtifactNotFound(PruneLabError):
    """A file a run or upload does not have (yet)."""


class ArtifactCorrupted(PruneLabError):
    """The stored file no longer matches the size and sha256 recorded when it was written."""


class RangeNotSatisfiable(PruneLabError):
    """A download range that starts past the end of the file."""

    def __init__(self, size_bytes: int) -> None:
        super().__init__(f"the requested range starts past the end of the {size_bytes}-byte file")
        self.size_bytes = size_bytes


class ArtifactStoreUnavailable(PruneLabError):
    """The artifact store did not answer, after its retries; the message names it."""


class InvalidUpload(PruneLabError):
    """An uploaded file that is refused: wrong kind, unsafe content, or not what it claims to be."""

    field = ("file",)


class UploadNotFound(PruneLabError):
    def __init__(self, upload_id: int) -> None:
        super().__init__(f"upload {upload_id} does not exist")


class RunStateConflict(PruneLabError):
    """The run is not in a state that allows the action (deleting a running run, say)."""
