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

WORKFLOW_KEYS = ("experiment", "model", "classifier")


# options whose small values make an experiment fail after its compute is spent: checked before any job runs
OPTION_MINIMA = {"per_class": (2, "the per-class FID needs two or more samples of each class")}


def experiment_options(target: str, config: dict):
    """(function, options) of an experiment target, checked against the function's signature: unknown options and
    missing `model:` / `classifier:` inputs raise one ConfigError naming the target."""
    opts = dict(config.get("experiments", {}).get(target) or {})
    fn = EXPERIMENTS[opts.get("experiment", target)]
    params = inspect.signature(fn).parameters
    unknown = set(opts) - set(WORKFLOW_KEYS) - set(params)
    if unknown:
        raise ConfigError(f"experiment {target!r}: unknown option(s) {sorted(unknown)}; {fn.__name__} takes "
                          f"{', '.join(p for p in params if p != 'out')}")
    for key, (least, why) in OPTION_MINIMA.items():
        value = opts.get(key, params[key].default if key in params else None)
        if isinstance(value, (int, float)) and value < least:
            raise ConfigError(f"experiment {target!r}: {key} is {value}; it must be at least {least} "
                              f"({why})")
    for key in ("model", "classifier"):
        if f"{key}_path" in params and params[f"{key}_path"].default is inspect.Parameter.empty and key not in opts:
            raise ConfigError(f"experiment {target!r}: {fn.__name__} needs `{key}:` (a model name / a dataset key)")
    if "model" in opts and opts["model"] not in config.get("models", {}):
        raise ConfigError(f"experiment {target!r}: model {opts['model']!r} is not in models")
    if "classifier" in opts and opts["classifier"] not in config.get("datasets", {}):
        raise ConfigError(f"experiment {target!r}: classifier {opts['classifier']!r} is not a key of datasets")
    return fn, {k: v for k, v in opts.items() if k not in WORKFLOW_KEYS}


__all__ = ["EXPERIMENTS", "experiment_options"]
