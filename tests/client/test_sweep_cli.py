"""`prunelab sweep` and `Client.submit_sweep` on bad input, against a live stack: the server's message, no traceback.

(A sweep run to the end by `prunelab sweep submit sweep.yaml --wait`: tests/integration/test_sweep_pipeline.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.stack import StackConfig
from prunelab import Client
from prunelab.errors import PruneLabError
from tests.client.test_cli import no_traceback, prunelab

BAD_POINT = """
base: {dataset: digits, model: mlp, epochs: 1, schedule: {kind: constant, frequency: 7}}
axes:
  - path: sparsity
    values: [0.5, 1.0]
"""


def test_a_sweep_with_a_bad_point_prints_the_point_and_queues_nothing(
    stack: StackConfig, client: Client, tmp_path: Path
) -> None:
    before = len(client.list_runs())
    sweep_yaml = tmp_path / "sweep.yaml"
    sweep_yaml.write_text(BAD_POINT)
    refused = prunelab(stack.base_url, "sweep", "submit", str(sweep_yaml))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "prunelab: points.1: point 1 (sparsity 1.0, seed 0): schedule.target_sparsity: target_sparsity must be in "
        "range [0,1) (HTTP 422)"
    ), refused.stderr
    sweep_yaml.write_text("axes: [unclosed")
    garbled = prunelab(stack.base_url, "sweep", "submit", str(sweep_yaml))
    assert garbled.returncode == 1 and "is not YAML" in garbled.stderr
    sweep_yaml.write_text("- a list\n- not a sweep\n")
    listed = prunelab(stack.base_url, "sweep", "submit", str(sweep_yaml))
    assert listed.returncode == 1 and "must hold one mapping (a sweep: base, variants, axes, seeds)" in listed.stderr
    missing = prunelab(stack.base_url, "sweep", "status", "987654")
    assert missing.returncode == 1 and "sweep 987654 does not exist (HTTP 404)" in missing.stderr
    for result in (refused, garbled, listed, missing):
        no_traceback(result)
    assert len(client.list_runs()) == before


def test_client_submit_sweep_raises_the_servers_422(client: Client) -> None:
    body = {"base": {"dataset": "digits"}, "axes": [{"path": "schedule.sparsity", "values": [0.5]}]}
    with pytest.raises(PruneLabError) as raised:
        client.submit_sweep(body)
    assert raised.value.status_code == 422
    assert "axis path 'schedule.sparsity' is not a spec field" in str(raised.value)
