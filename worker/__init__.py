"""PruneLab's training process: Celery app, tasks and the training library.

tfmot does not support Keras 3, so the legacy tf-keras must be selected before
TensorFlow is first imported anywhere in this process. A keras-engine run's child
process (`prunelab.worker.keras3`) says so in its environment and keeps Keras 3.
"""

import os

KERAS3_CHILD = "PRUNELAB_KERAS3_CHILD"  # set in the environment of a keras-engine run's child process

if os.environ.get(KERAS3_CHILD) != "1":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
