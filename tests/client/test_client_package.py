"""The client side stays light: importing it loads no TensorFlow and none of the server's libraries."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from prunelab.core.telemetry import BatchMetricRecovery
from prunelab.keras import schedule_from_tfmot
from prunelab.spool import Point, Spool

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_callback_module_loads_no_tensorflow_or_server_library() -> None:
    code = (
        "import sys, prunelab, prunelab.keras, prunelab.spool, prunelab.sender\n"
        "heavy = ('tensorflow', 'tf_keras', 'fastapi', 'sqlalchemy', 'celery', 'prunelab.server', 'prunelab.worker')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_spool_keeps_the_first_write_of_a_step_and_nan(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.add_run("r", "http://x", {"source": "keras_callback"})
    spool.add_points("r", [Point("loss", 1, 0.5, 0.1), Point("loss", 2, math.nan, 0.2)])
    spool.add_points("r", [Point("loss", 1, 9.0, 0.3)])
    pending = spool.pending_points("r", 10)
    assert [(p.key, p.step) for p in pending] == [("loss", 1), ("loss", 2)]
    assert pending[0].value == 0.5 and math.isnan(pending[1].value)
    spool.remove_points("r", pending[:1])
    assert spool.point_count("r") == 1 and spool.has_work("r")
    spool.add_action("r", "finish", {"status": "succeeded"})
    assert spool.next_action("r").payload == {"status": "succeeded"}  # type: ignore[union-attr]
    spool.close()
    reopened = Spool(tmp_path)  # what was not sent survives the process
    assert reopened.point_count("r") == 1 and [run.run_key for run in reopened.runs("http://x")] == ["r"]
    reopened.forget_run("r")
    assert not reopened.has_work("r") and reopened.runs("http://x") == []


def test_tfmot_schedules_become_prunelab_schedules() -> None:
    constant = {"class_name": "ConstantSparsity", "config": {"target_sparsity": 0.875, "begin_step": 480,
                "end_step": -1, "frequency": 100}}  # fmt: skip
    schedule = schedule_from_tfmot(constant)
    assert schedule is not None and schedule.kind == "constant" and schedule.target_sparsity == 0.875
    assert (schedule.begin_step, schedule.end_step, schedule.frequency) == (480, -1, 100)
    decay = {"class_name": "PolynomialDecay", "config": {"initial_sparsity": 0.5, "final_sparsity": 0.8,
             "power": 3, "begin_step": 0, "end_step": 100, "frequency": 10}}  # fmt: skip
    assert schedule_from_tfmot(decay).final_sparsity == 0.8  # type: ignore[union-attr]
    assert schedule_from_tfmot({"class_name": "MySchedule", "config": {}}) is None


def test_each_batch_value_is_recovered_from_running_means() -> None:
    recovery = BatchMetricRecovery()  # without an example count, batches are taken to be equal
    batches = [2.0, 1.0, 0.0, 3.0]
    recovered = []
    for index in range(len(batches)):
        mean = sum(batches[: index + 1]) / (index + 1)
        recovered.append(recovery.batch_values(index, {"loss": mean})["loss"])
    assert recovered == [2.0, 1.0, 0.0, 3.0]
