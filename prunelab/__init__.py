"""PruneLab's Python client: `from prunelab import Client`; a script logs with `prunelab.keras.PruneLabCallback`.

The client needs httpx and pydantic only (no server, no TensorFlow): `pip install prunelab-client`, or the
server's `pip install prunelab`, which includes it. `prunelab` on the command line is `prunelab.cli`.
"""

from __future__ import annotations

from prunelab.client import Client
from prunelab.errors import ChecksumMismatch, PruneLabError, ServerUnreachable, WaitTimeout
from prunelab.models import Artifact, Download, Run, Series, Upload

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "ChecksumMismatch",
    "Client",
    "Download",
    "PruneLabError",
    "Run",
    "Series",
    "ServerUnreachable",
    "Upload",
    "WaitTimeout",
    "__version__",
]
