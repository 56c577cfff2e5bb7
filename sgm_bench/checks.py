"""Refusing bad input before compute: YAML without duplicate keys, option names checked against their consumer."""
from __future__ import annotations

import inspect
from pathlib import Path

import yaml

from .errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a key given twice in one mapping (the last one would win silently)."""


def _mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden, by design
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"{node.start_mark.name}: key {key!r} appears twice in one mapping (lines "
                              f"{seen[key] + 1} and {key_node.start_mark.line + 1}); the last one would win silently")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path) -> dict:
    """A configuration file as a mapping, or one ConfigError (missing file, bad YAML, duplicate key, not a mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist")
    try:
        with open(path) as f:  # a stream, so that messages name the file
            cfg = yaml.load(f, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path} must hold a mapping")
    return cfg


def check_keys(given, valid, what: str) -> None:
    """Every key of `given` is one of `valid`, or one ConfigError listing the valid ones."""
    unknown = sorted(set(given or {}) - set(valid))
    if unknown:
        raise ConfigError(f"{what}: unknown option(s) {unknown}; valid: {', '.join(sorted(valid))}")


def parameters(fn, skip: int = 0) -> list[str]:
    """The keyword names a function accepts (after its first `skip` positional ones)."""
    return list(inspect.signature(fn).parameters)[skip:]


def check_numbers(values: dict, defaults: dict, what: str, allow: dict | None = None) -> None:
    """Options whose default is a number must be numbers ('snr=abc' or 'sigma_max: fifty' stop here), but for the
    named words `allow` lists (DDIM's eta='sigma_hat')."""
    for k, v in values.items():
        d = defaults.get(k)
        if v in (allow or {}).get(k, ()):
            continue
        if isinstance(d, (int, float)) and not isinstance(d, bool) and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"{what}: {k} must be a number, got {v!r}")
