"""A subset of MLflow's tracking REST API under /api/2.0/mlflow/: MLflow clients log PruneLab external runs."""
