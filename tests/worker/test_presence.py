"""A worker's presence row records the Keras backends its keras engine can run, probed without importing them."""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import select

from prunelab.server.db import engine_for, session_scope
from prunelab.server.models import Worker
from prunelab.worker.presence import Presence


def test_the_presence_row_records_the_keras_backends_found_without_importing_them(settings: Any) -> None:
    before = {name for name in ("jax", "torch") if name in sys.modules}
    presence = Presence("probe@here", [settings.queue], 1)
    presence.beat()
    with session_scope(engine_for(settings.database_url)) as session:
        row = session.scalars(select(Worker).where(Worker.name == "probe@here")).one()
        assert row.keras_backends == ["tensorflow", "jax"]  # this machine: Keras 3, TensorFlow and JAX; no torch
    assert {name for name in ("jax", "torch") if name in sys.modules} == before
