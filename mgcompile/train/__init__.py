"""Training: data sets, the loop, checkpoints, distributed runs."""
