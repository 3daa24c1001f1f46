"""README's "Prune a Keras 3 model" example, run as written on the JAX backend in a process of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness.stack import REPO

SECTION = re.search(r"\n## Prune a Keras 3 model, on any backend\n(.*?)\n## ", (REPO / "README.md").read_text(), re.S)


def test_the_example_prunes_on_jax_and_saves_a_plain_model(tmp_path: Path) -> None:
    assert SECTION is not None, "README has no 'Prune a Keras 3 model, on any backend' section"
    assert re.findall(r"^```(\w*)$", SECTION.group(1), re.M) == ["python", ""]  # the one block, executed here
    [example] = re.findall(r"```python\n(.*?)```", SECTION.group(1), re.S)
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}
    env.update({"KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""})
    result = subprocess.run(
        [sys.executable, "-c", example], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "jax sparsity 0.800"
    assert (tmp_path / "digits-pruned.keras").stat().st_size > 0
