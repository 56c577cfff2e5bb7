"""Metrics: toy-sample metrics here; FID / IS / KID through torch-fidelity in `fidelity`."""
from .toy import mean_log_density, mmd_floor, mmd_rbf, mode_weights, sliced_wasserstein

__all__ = ["sliced_wasserstein", "mmd_rbf", "mmd_floor", "mean_log_density", "mode_weights"]
