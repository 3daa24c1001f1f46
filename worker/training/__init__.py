"""PruneLab's training library: datasets, model zoo, pruning callbacks, export and the training loop.

Nothing here knows of the database or the web; results go out through
`prunelab.core.telemetry.Reporter`. TensorFlow is imported only by
`worker.training.tf` (and the shared `prunelab.telemetry_callback`), so importing this package stays cheap.
"""
