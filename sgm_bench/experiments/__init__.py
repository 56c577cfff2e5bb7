"""The course experiments: small studies that make the theory visible, each returning numbers and drawing a figure.

    EXPERIMENTS[name](out_stem, **options) -> dict of numbers (and writes out_stem.png / .pdf)

A configuration's `experiments:` maps a target name to options; `experiment:` names the function when the target's
name is not one (e.g. `digits_cfg: {experiment: classifier_free_guidance, ...}`). `model:` and `classifier:` name
workflow outputs (a trained model, the clean domain classifier of a dataset) and become `model_path` /
`classifier_path`.
"""
import inspect

from ..errors import ConfigError
from . import guidance, objectives, toys  # noqa: F401  (registration)
from .registry import EXPERIMENTS

# options whose small values make an experiment fail after its compute is spent: checked before any job runs
OPTION_MINIMA = {"per_class": (2, "the per-class FID needs two or more samples of each class")}


def experiment_function(spec):
    """(function, options) of a plan's ExperimentSpec, checked against the function's signature: unknown options and
    missing `model:` / `classifier:` inputs raise one ConfigError naming the experiment."""
    fn, opts = EXPERIMENTS[spec.function], dict(spec.options)
    params = inspect.signature(fn).parameters
    unknown = set(opts) - set(params) - {"model_path", "classifier_path"}
    unknown |= set(opts) & {"model_path", "classifier_path", "out"}  # the workflow's to fill in
    if unknown:
        raise ConfigError(f"experiment {spec.name!r}: unknown option(s) {sorted(unknown)}; {fn.__name__} takes "
                          f"{', '.join(p for p in params if p not in ('out', 'model_path', 'classifier_path'))}")
    for key, (least, why) in OPTION_MINIMA.items():
        value = opts.get(key, params[key].default if key in params else None)
        if isinstance(value, (int, float)) and value < least:
            raise ConfigError(f"experiment {spec.name!r}: {key} is {value}; it must be at least {least} ({why})")
    for key in ("model", "classifier"):
        if f"{key}_path" in params and params[f"{key}_path"].default is inspect.Parameter.empty \
                and getattr(spec, key) is None:
            raise ConfigError(f"experiment {spec.name!r}: {fn.__name__} needs `{key}:` (a model name / a dataset key)")
    return fn, opts


__all__ = ["EXPERIMENTS", "experiment_function"]
