"""The sender without TensorFlow: what an earlier script left in the spool is delivered by the next one, and a
server that does not answer never raises into the caller."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from harness.stack import wait_for_run
from prunelab.sender import Sender
from prunelab.spool import Point, Spool
from tests.client.conftest import LiveStack

pytestmark = pytest.mark.integration


def dead_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_a_run_left_in_the_spool_is_created_fed_and_finished_by_the_next_script(
    live: LiveStack, tmp_path: Path
) -> None:
    earlier = Spool(tmp_path)  # a script that ended while the server was down left this behind
    earlier.add_run("left-behind", live.url, {"source": "keras_callback", "name": "left behind", "epochs": 1})
    earlier.add_points("left-behind", [Point("loss", step, 1.0 / step, step * 0.1) for step in range(1, 101)])
    earlier.add_action("left-behind", "finish", {"status": "succeeded", "summary": {"note": "late"}, "error": None})
    earlier.close()

    sender = Sender(live.url, None, Spool(tmp_path), flush_interval_s=0.1).start()
    try:
        assert sender.wait_for("left-behind", 60)
        run_id = sender.run_id("left-behind")
        assert run_id is not None
    finally:
        sender.close()
    run = wait_for_run(live.url, run_id, {"succeeded", "failed"}, timeout=30)
    assert run["name"] == "left behind" and run["summary"]["note"] == "late"
    loss = httpx.get(f"{live.url}/api/runs/{run_id}/metrics", params={"keys": "loss"}, timeout=30).json()
    assert loss["series"]["loss"]["steps"] == list(range(1, 101))
    assert Spool(tmp_path).runs(live.url) == []  # delivered: nothing left


def test_a_dead_server_only_fills_the_spool(tmp_path: Path) -> None:
    url = dead_url()
    spool = Spool(tmp_path)
    sender = Sender(url, None, spool, flush_interval_s=0.05, max_backoff_s=0.2).start()
    try:
        sender.open_run("r", {"source": "api"})
        for step in range(1, 501):
            sender.log("r", step, {"loss": 1.0, "accuracy": float("nan")}, wall_time=step)
        sender.finish("r", "succeeded", {"x": float("inf")})
        assert not sender.wait_for("r", 1.0)  # not delivered, and no exception
        assert sender.run_id("r") is None
    finally:
        sender.close()
    assert spool.point_count("r") == 1000 and spool.next_action("r").payload["summary"] == {"x": None}  # type: ignore[union-attr]
