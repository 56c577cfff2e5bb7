"""Metrics: toy-sample metrics here; FID / IS / KID through torch-fidelity in `fidelity`."""
from .registry import METRICS, metric
from .toy import mean_log_density, mmd_floor, mmd_rbf, mode_weights, sliced_wasserstein



def __getattr__(name):
    """fidelity_metrics and friends load torch-fidelity (and torchvision's model zoo) only when asked for."""
    if name in ("fidelity_metrics", "finite_only", "DIGITS", "INCEPTION", "INCEPTION_TS"):
        from . import fidelity

        return getattr(fidelity, name)
    raise AttributeError(name)


__all__ = ["METRICS", "metric", "fidelity_metrics", "sliced_wasserstein", "mmd_rbf", "mmd_floor", "mean_log_density", "mode_weights"]
