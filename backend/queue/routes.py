"""GET /api/workers: the workers online and the queue (the service is prunelab.server.queue.workers)."""

from __future__ import annotations

from fastapi import APIRouter

from prunelab.server.kit.dependencies import SessionDep
from prunelab.server.models import utcnow
from prunelab.server.queue.workers import WorkersOut, list_workers, queue_out
from prunelab.server.settings import get_settings

router = APIRouter(prefix="/api/workers", tags=["workers"])


@router.get("")
def get_workers(session: SessionDep) -> WorkersOut:
    """Workers seen in the last day (online, gone or stopped) with the runs they train, and the queue."""
    settings, now = get_settings(), utcnow()
    return WorkersOut(workers=list_workers(session, settings, now), queue=queue_out(session, settings, now))
