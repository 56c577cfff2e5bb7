"""Where a configuration's files live: the one pattern every user-given name matches, and `Layout`, which builds every
path under the results and work folders and refuses any that would leave them."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import ConfigError

# Model, variant, experiment, dataset and configuration names become file and folder names: no separator, no `.` or
# `..`, nothing absolute, at most 100 characters.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def check_name(kind: str, name) -> str:
    """`name` if it is path-safe, else one ConfigError naming it and the pattern."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(f"{kind} name {name!r} is not usable as a file name: use letters, digits, '_', '-' and '.', "
                          "starting with a letter, digit or '_', at most 100 characters")
    return name


def is_server(uri: str) -> bool:
    """A tracking server (`mlflow server`): it takes concurrent writers and keeps the artifacts in its own store."""
    return uri.startswith(("http://", "https://"))


def inside(root: str, *parts: str) -> str:
    """root/parts..., refused (ConfigError) unless it stays inside root: the one way output paths are built."""
    if any(not isinstance(p, str) or p in ("", ".", "..") or "/" in p or os.sep in p for p in parts):
        raise ConfigError(f"{root} / {' / '.join(map(str, parts))} would leave {root}: each part must be one file "
                          "name, not '.', '..' or a path")
    path = os.path.normpath(os.path.join(root, *parts))
    base = os.path.normpath(root)
    if os.path.commonpath([os.path.abspath(base), os.path.abspath(path)]) != os.path.abspath(base) or path == base:
        raise ConfigError(f"{os.path.join(root, *parts)} would leave {root}: names must not hold '..' or separators")
    return path


def grid_name(variant: str, steps) -> str:
    """The file stem of one (sampler variant, step count) setting: `ddim_10`, `ode_adaptive`."""
    return f"{variant}_{steps if steps is not None else 'adaptive'}"


@dataclass(frozen=True)
class Layout:
    """Every file of a configuration: `results` (tables, figures, metrics, logs) and `work` (weights, caches)."""

    results: str
    work: str

    def result(self, *parts: str) -> str:
        return inside(self.results, *parts)

    def scratch(self, *parts: str) -> str:
        return inside(self.work, *parts)

    # work/: large or internal
    def model_file(self, model: str) -> str:
        return self.scratch("models", model, "model.pt")

    def run_dir(self, model: str) -> str:
        """Training checkpoints (resume state), outside every rule's outputs."""
        return self.scratch("runs", model)

    def classifier(self, data: str) -> str:
        return self.scratch("classifier", f"{data}.pt")

    def evaluations(self, model: str) -> str:
        """The evaluation's finished (variant, steps) parts, kept for a re-run."""
        return self.scratch("evaluations", model)

    def evaluation_part(self, model: str, variant: str, steps) -> str:
        """One (variant, steps) setting's kept rows and samples."""
        return self.scratch("evaluations", model, f"{grid_name(variant, steps)}.pt")

    def samples(self, model: str) -> str:
        return self.scratch("samples", f"{model}.pt")

    def fidelity_cache(self) -> str:
        return self.scratch("fidelity-cache")

    # results/: what a reader opens
    def train_stats(self, model: str) -> str:
        return self.result("train", model, "train_stats.json")

    def train_log(self, model: str) -> str:
        return self.result("train", model, "train_log.csv")

    def metrics(self, model: str) -> str:
        return self.result("metrics", model, "samplers.json")

    def likelihood(self, model: str) -> str:
        return self.result("metrics", model, "likelihood.json")

    def sample_grids(self, model: str) -> str:
        return self.result("samples", model)

    def sample_grid(self, model: str, variant: str, steps) -> str:
        return self.result("samples", model, f"{grid_name(variant, steps)}.png")

    def reference(self, data: str) -> str:
        return self.result("reference", f"{data}.json")

    def classifier_report(self, data: str) -> str:
        return self.result("classifier", f"{data}.json")

    def experiment(self, name: str, suffix: str = "json") -> str:
        return self.result("experiments", f"{name}.{suffix}")

    def tracked(self, model: str) -> str:
        """A track_model job's list of the model's MLflow runs."""
        return self.result("mlflow", f"{model}.json")

    def runs_list(self) -> str:
        return self.result("mlflow_runs.json")

    def log(self, rule: str, name: str | None = None) -> str:
        return self.result("logs", rule, f"{name}.log") if name else self.result("logs", f"{rule}.log")

    def benchmark(self, rule: str, name: str | None = None) -> str:
        return self.result("benchmarks", rule, f"{name}.tsv") if name else self.result("benchmarks", f"{rule}.tsv")

    def table(self, name: str, suffix: str = "md") -> str:
        return self.result("tables", f"{name}.{suffix}")

    def figure(self, name: str, suffix: str = "png") -> str:
        return self.result("figures", f"{name}.{suffix}")

    def summary(self) -> str:
        return self.result("summary.md")
