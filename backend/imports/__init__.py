"""Runs from elsewhere and back: TensorBoard event files and MLflow runs in, MLflow's export format out."""
