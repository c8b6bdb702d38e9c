"""Hyperparameter sweeps: expand a grid or random search, submit it as ONE job array."""
