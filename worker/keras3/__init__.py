"""The keras engine: PruneLab's own pruning (`prunelab.prune`) on Keras 3, for the worker's runs.

The worker process has tf-keras and tfmot loaded, and a process has one Keras and one backend, so a
keras-engine run trains in a child process started for it (`process`, in the worker process) with
KERAS_BACKEND set and TF_USE_LEGACY_KERAS removed; the child runs `child`, which trains with `train`.
Datasets, splitting, the batch order, the telemetry (`prunelab.telemetry_loop`), checkpoint files,
export checks and the manifest are the tfmot engine's own code (`prunelab.worker.training`); Keras 3
is imported only in the child.
"""
