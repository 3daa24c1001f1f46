"""PruneLab web process: API, database, queue client. Never imports TensorFlow."""

__version__ = "0.1.0"
