"""PruneLab: every part installs under this one import name.

- `prunelab.core`: the pure pruning model (run spec, schedule arithmetic, scope, plans); pydantic and numpy only.
- `prunelab.server`: the API, the dashboard's routes, the database and the queue client (folder `backend/`).
- `prunelab.worker`: the Celery worker and the training library (folder `worker/`).
- `prunelab.dashboard`, `prunelab.migrations`: the dashboard's static files and the Alembic migrations.
- `from prunelab import Client`: the Python client; a script logs with `prunelab.keras.PruneLabCallback`.

The client's names are loaded on first use, so that `import prunelab.core` (every process) or
`import prunelab.worker` loads nothing of the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from prunelab.client import Client as Client
    from prunelab.errors import ChecksumMismatch as ChecksumMismatch
    from prunelab.errors import PruneLabError as PruneLabError
    from prunelab.errors import ServerUnreachable as ServerUnreachable
    from prunelab.errors import WaitTimeout as WaitTimeout
    from prunelab.models import Artifact as Artifact
    from prunelab.models import Download as Download
    from prunelab.models import Run as Run
    from prunelab.models import Series as Series
    from prunelab.models import Upload as Upload

_LAZY = {
    "Client": "prunelab.client",
    "ChecksumMismatch": "prunelab.errors",
    "PruneLabError": "prunelab.errors",
    "ServerUnreachable": "prunelab.errors",
    "WaitTimeout": "prunelab.errors",
    "Artifact": "prunelab.models",
    "Download": "prunelab.models",
    "Run": "prunelab.models",
    "Series": "prunelab.models",
    "Upload": "prunelab.models",
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prunelab' has no attribute {name!r}")
