"""The web process never imports TensorFlow (fast start, small memory)."""

from __future__ import annotations

import subprocess
import sys

from tests.stack import REPO


def test_api_process_does_not_import_tensorflow() -> None:
    probe = (
        "import sys; import backend.app, backend.cli, backend.queue, worker.celery_app; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'tf_keras', 'keras', "
        "'tensorflow_model_optimization'}); print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
