"""The run's progress bar ends at the run's last step whatever the order of its events.

A finished run's final `status` event can reach the client before its last points, or with no points at all
once the worker compacted them (the stream then sends only `status` and `end`). The orders are driven here
event by event, as `Client.wait` feeds them; the last test gets the no-points order from a live stack.
"""

from __future__ import annotations

import io
import time
from typing import Any

import pytest

from prunelab import Client, Run
from prunelab.progress import RunProgress
from tests.client.conftest import TINY

TOTAL = 21


def status(state: str, step: int | None, sparsity: float | None = None) -> tuple[str, dict[str, Any]]:
    latest = {} if sparsity is None else {"measured_sparsity": sparsity}
    plan = {"total_steps": TOTAL}
    return "status", {"id": 7, "name": "ordered", "status": state, "plan": plan, "step": step, "latest": latest}


def metrics(first: int, last: int, sparsity: float) -> tuple[str, dict[str, Any]]:
    steps = list(range(first, last + 1))
    return "metrics", {"measured_sparsity": {"steps": steps, "values": [sparsity] * len(steps), "wall_times": []}}


ORDERS = {
    "final status before the last points": [
        status("running", 0),
        metrics(1, 15, 0.25),
        status("succeeded", TOTAL, 0.5),
        metrics(16, TOTAL, 0.5),
    ],
    "final status after the last points": [
        status("running", 0),
        metrics(1, 15, 0.25),
        metrics(16, TOTAL, 0.5),
        status("succeeded", TOTAL, 0.5),
    ],
    "a stale status after newer points": [
        metrics(1, TOTAL, 0.5),
        status("running", 15, 0.25),
        status("succeeded", TOTAL, 0.5),
    ],
    "final status and no points (compacted)": [status("succeeded", TOTAL, 0.5)],
}


def last_frame(stream: io.StringIO) -> str:
    return stream.getvalue().replace("\n", "\r").strip("\r").split("\r")[-1]


@pytest.mark.parametrize("events", ORDERS.values(), ids=ORDERS.keys())
def test_the_bar_ends_at_the_last_step_in_any_order(events: list[tuple[str, dict[str, Any]]]) -> None:
    stream = io.StringIO()
    queued = Run.model_validate({"id": 7, "name": "ordered", "status": "queued", "plan": {"total_steps": TOTAL}})
    with RunProgress(queued, enabled=True, stream=stream) as bar:
        drawn = []
        for name, data in events:
            bar.event(name, data)
            drawn.append(bar.bar.n)
        assert drawn == sorted(drawn), drawn  # never backwards
        assert (bar.step, bar.bar.n, bar.bar.total) == (TOTAL, TOTAL, TOTAL)
    shown = last_frame(stream)
    assert shown.startswith("run 7 succeeded") and f"{TOTAL}/{TOTAL}" in shown and "sparsity 0.500" in shown, shown


def test_waiting_on_a_compacted_run_ends_the_bar_at_its_last_step(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    run = client.wait(client.create_run({**TINY, "name": "compacted", "exports": ["keras"]}).id, timeout=300)
    assert run.status == "succeeded" and run.step == TOTAL, run
    capsys.readouterr()
    # Once the worker compacted the run (right after it finished), its stream carries no points: only the final
    # status and the end. Wait for that order itself.
    deadline = time.monotonic() + 120
    while (names := [name for name, _ in client.events(run.id, timeout=60)]) != ["status", "end"]:
        assert time.monotonic() < deadline, names
        time.sleep(0.2)
    ended = client.wait(run.id, progress=True)
    shown = capsys.readouterr().err
    assert ended.step == TOTAL and f"run {run.id} succeeded" in shown and f"{TOTAL}/{TOTAL}" in shown, shown
