"""PruneLab's client side: log a training script into a PruneLab server (prunelab.keras.PruneLabCallback)."""
