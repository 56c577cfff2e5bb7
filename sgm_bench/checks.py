"""Refusing bad input before compute: YAML without duplicate keys, option names checked against their consumer, numbers
inside their valid ranges."""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import MISSING, dataclass, field, fields
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


_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def yaml12_numbers(obj, _seen=None):
    """`lr: 1e-3` as the number YAML 1.2 reads: PyYAML (YAML 1.1) reads an exponent without a dot and a signed
    exponent as a string. Values in that exact form become floats, in mappings and lists at any depth. A node shared
    through YAML aliases is converted once and stays shared (an alias bomb costs its size in the file, not 9^9)."""
    seen = {} if _seen is None else _seen
    if id(obj) in seen:
        return seen[id(obj)]
    if isinstance(obj, dict):
        out = seen[id(obj)] = {}
        out.update({k: yaml12_numbers(v, seen) for k, v in obj.items()})
        return out
    if isinstance(obj, list):
        out = seen[id(obj)] = []
        out.extend(yaml12_numbers(v, seen) for v in obj)
        return out
    return float(obj) if isinstance(obj, str) and _EXPONENT.fullmatch(obj) else obj


MAX_VALUES = 1_000_000  # values a configuration may expand to through YAML aliases (the largest here: ~3 000)


def check_size(cfg, what: str = "the configuration") -> None:
    """Refuse a configuration whose aliases expand it beyond MAX_VALUES values (a 'billion laughs' file): everything
    that walks it (the schema check, the plan) would take exponential time and memory."""
    memo = {}

    def size(v):
        if id(v) not in memo:
            children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
            memo[id(v)] = 1 + sum(size(c) for c in children)
        return memo[id(v)]

    n = size(cfg)
    if n > MAX_VALUES:
        raise ConfigError(f"{what} expands to {n:,} values through YAML aliases (at most {MAX_VALUES:,}): an alias "
                          "repeated inside an alias? write the values out")


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
    check_size(cfg, str(path))
    return yaml12_numbers(cfg)


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


@dataclass(frozen=True)
class Range:
    """Where a setting must lie: between lo and hi (open ends when asked), a whole number when `integer`."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def why_not(self, v) -> str | None:
        """What is wrong with v, or None."""
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (self.integer and not isinstance(v, int)):
            return f"must be {'a whole number' if self.integer else 'a number'}"
        below = v <= self.lo if self.lo_open else v < self.lo
        above = v >= self.hi if self.hi_open else v > self.hi
        if math.isnan(v) or below or above:
            return f"must be {'a whole number ' if self.integer else ''}{self.text()}"
        return None

    def text(self) -> str:
        if self.hi == math.inf:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


POSITIVE = Range(0, lo_open=True)
NON_NEGATIVE = Range(0)
COUNT = Range(1, integer=True)
FRACTION = Range(0, 1, lo_open=True, hi_open=True)  # a time in (0, 1): eps of the losses, samplers, likelihood


def check_ranges(values: dict, ranges: dict, what: str, allow: dict | None = None) -> None:
    """Every value that `ranges` names lies in its Range (None means the consumer's default), but for the words `allow`
    lists (DDIM's eta='sigma_hat'); one ConfigError naming the first that does not."""
    for k, v in values.items():
        if k in ranges and v is not None and v not in (allow or {}).get(k, ()):
            why = ranges[k].why_not(v)
            if why:
                raise ConfigError(f"{what}: {k} {why}, got {v!r}")


def setting(default=MISSING, where: Range | None = None, choices: tuple | None = None, of=None):
    """One declared setting of a typed settings class: its default (none: required), its Range or its choices, or the
    settings class a nested mapping becomes (`of`, whose own defaults are the default)."""
    meta = {"range": where, "choices": choices, "of": of}
    return field(default_factory=of, metadata=meta) if of is not None else field(default=default, metadata=meta)


def parse_settings(cls, given, what: str):
    """A frozen settings dataclass from a configuration mapping: unknown keys, missing required ones, values out of
    their declared range or choices each refused with one ConfigError naming the key, the value and what is allowed."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{what} must be a mapping, got {given!r}")
    check_keys(given, [f.name for f in fields(cls)], what)
    values = {}
    for f in fields(cls):
        if f.name not in given:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{what}.{f.name} is missing: it has no default")
            continue
        v, meta = given[f.name], f.metadata
        if meta.get("of") is not None:
            v = parse_settings(meta["of"], v, f"{what}.{f.name}")
        elif meta.get("choices") and v not in meta["choices"]:
            raise ConfigError(f"{what}.{f.name} is {v!r}: choose one of {', '.join(map(str, meta['choices']))}")
        elif meta.get("range") is not None and v is not None and (why := meta["range"].why_not(v)):
            raise ConfigError(f"{what}.{f.name} is {v!r}: it {why}")
        values[f.name] = v
    return cls(**values)
