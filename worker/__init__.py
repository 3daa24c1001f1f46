"""PruneLab's training process: Celery app, tasks and the training library.

tfmot does not support Keras 3, so the legacy tf-keras must be selected before
TensorFlow is first imported anywhere in this process.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
