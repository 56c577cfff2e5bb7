"""EXPERIMENTS[name](out_stem, **options) -> dict of numbers (and writes out_stem.png / .pdf)."""
from ..registry import Registry

EXPERIMENTS = Registry("experiment")
