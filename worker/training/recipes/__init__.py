"""Recipe pieces of the training loop: starting models, lottery-ticket rewinding, sensitivity sweeps."""
