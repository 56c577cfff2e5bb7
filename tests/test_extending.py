"""Adding a sampler or a metric is one module: registered where it is defined, the plan, the evaluation, the tables
and MLflow's summaries take it up. And the typed plan: names path-safe, every path inside its folder, settings typed."""
import copy
import runpy
from pathlib import Path

import pandas as pd
import pytest
import torch

from sgm_bench.evaluation import toy_quality
from sgm_bench.checks import load_yaml
from sgm_bench.data import GaussianMixture
from sgm_bench.errors import ConfigError
from sgm_bench.spec import load_dataset
from sgm_bench.layout import Layout
from sgm_bench.metrics.registry import METRICS
from sgm_bench.models import build_sde
from sgm_bench.plan import Evaluation, build_plan
from sgm_bench.report import tables
from sgm_bench.report.stats import seed_set_summary
from sgm_bench.samplers import SAMPLERS, applicable, sample

SMOKE = load_yaml(Path(__file__).resolve().parents[1] / "config" / "smoke.yaml")

SAMPLER_MODULE = '''
from sgm_bench.samplers import sampler
from sgm_bench.sde import bcast
from sgm_bench.samplers.base import vec


@sampler("tweedie", ("vp", "subvp"), {"t": 1.0}, denoise=False)
def tweedie(score_fn, sde, z, noise, *, steps=1, eps=1e-3, t=1.0, progress=False):
    """One Tweedie step from the prior at time t: E[x0 | x_t] = (x + s(t)^2 score(x, t)) / m(t)."""
    x = z * sde.prior_std
    tt = vec(t, x)
    return (x + bcast(sde.std(tt) ** 2, x) * score_fn(x, tt)) / bcast(sde.mean_coeff(tt), x)
'''

METRIC_MODULE = '''
from sgm_bench.metrics import metric


@metric("mean_error", "mean error", column=True)
def mean_error(data, x, ref):
    """The largest coordinate gap between the sample mean and the reference mean."""
    return float((x.double().mean(0) - ref.double().mean(0)).abs().max())
'''


@pytest.fixture
def own_registries(monkeypatch):
    """Registrations made by a test stay in the test."""
    monkeypatch.setattr(SAMPLERS, "_items", dict(SAMPLERS._items))
    monkeypatch.setattr(METRICS, "_items", dict(METRICS._items))


def test_a_new_sampler_is_one_module(own_registries, tmp_path):
    (tmp_path / "tweedie.py").write_text(SAMPLER_MODULE)
    runpy.run_path(str(tmp_path / "tweedie.py"))
    assert "tweedie" in applicable("vp") and "tweedie" not in applicable("ve")
    # the plan schedules it and checks its options against its signature
    cfg = copy.deepcopy(SMOKE)
    cfg["models"]["vp-mixture2d"]["samplers"] = ["tweedie"]
    assert [j.sampler for j in build_plan(cfg).jobs_of("vp-mixture2d")] == ["tweedie"]
    cfg["sampling"]["options"] = {"tweedie": {"tt": 0.5}}
    with pytest.raises(ConfigError, match=r"sampler 'tweedie' has no option\(s\) \['tt'\]"):
        build_plan(cfg)
    # `sample` runs it: on one Gaussian with its exact score, E[x0 | x_1] has the data's mean (an oracle)
    gm = GaussianMixture([1.0], [[1.5, -0.5]], [[0.3, 0.3]])
    sde = build_sde("vp")
    out = sample("tweedie", gm.score_fn(sde), sde, (4000, 2), seed=0, family="vp")
    assert out.nfe == 1
    assert torch.allclose(out.x.double().mean(0), gm.means[0], atol=0.02)
    broken = sample("tweedie", gm.score_fn(sde), sde, (4000, 2), seed=0, family="vp", t=0.5)  # E[x0 | x_0.5]: noisier
    assert broken.x.double().std(0).min() > out.x.double().std(0).max()


def test_a_new_metric_is_one_module(own_registries, tmp_path):
    (tmp_path / "mean_error.py").write_text(METRIC_MODULE)
    runpy.run_path(str(tmp_path / "mean_error.py"))
    data = load_dataset({"name": "mixture2d", "n_train": 10000, "n_test": 2000})
    shifted = data.test + torch.tensor([2.0, 0.0])  # the mixture's mean moves ~0.2 between 2 000-point draws
    rows = []
    for seed, x in enumerate([data.test, shifted]):  # the evaluation's rows carry it...
        row = toy_quality(data, x, data.train)
        rows.append({**row, "model": "m", "variant": ["good", "shifted"][seed], "sampler": "s", "steps": 10,
                     "seed_set": 0, "n": len(x), "nfe": 10, "seconds_per_sample": 0.1})
    assert rows[0]["mean_error"] < 0.5 < 1.5 < rows[1]["mean_error"] and "sw" in rows[0]
    # ...MLflow's seed-set summary, the numbers table and the leaderboards show it
    assert seed_set_summary(rows[:1])["mean_error"] == rows[0]["mean_error"]
    df = pd.DataFrame(rows)
    assert "mean_error_mean" in tables.numbers_table(df)
    assert "mean error" in tables.leaderboard(df, "sw", "SW2").columns


def test_every_path_is_built_inside_its_folder():
    layout = Layout("results/x", "work/x")
    assert layout.metrics("vp-digits") == "results/x/metrics/vp-digits/samplers.json"
    assert layout.model_file("{model}") == "work/x/models/{model}/model.pt"  # Snakemake's patterns too
    for bad in ("..", "../../etc", "/abs"):
        with pytest.raises(ConfigError):
            layout.metrics(bad)
    with pytest.raises(ConfigError, match="would leave"):
        layout.experiment("../../../x")


def test_evaluation_settings_are_typed_with_their_defaults_declared_once():
    ev = build_plan(SMOKE).evaluation
    assert isinstance(ev, Evaluation) and ev.extractor == "digits-cnn" and ev.likelihood.solver == "rk45"
    for key, value, message in [("seed_sets", 0, "must be a whole number >= 1"), ("n_samples", 2.5, "whole number"),
                                ("reference_split", "val", "choose one of train, test"),
                                ("floor_draws", 1, "must be a whole number >= 2"), ("n_sampels", 10, "unknown option")]:
        cfg = copy.deepcopy(SMOKE)
        cfg["evaluation"][key] = value
        with pytest.raises(ConfigError, match=message):
            build_plan(cfg)
    cfg = copy.deepcopy(SMOKE)
    cfg["evaluation"]["likelihood"] = {"eps": 2.0}
    with pytest.raises(ConfigError, match=r"evaluation.likelihood.eps is 2.0: it must be in \(0, 1\)"):
        build_plan(cfg)


def test_a_misspelled_sampler_name_in_a_model_entry_is_refused():
    for key, value in [("exclude_samplers", ["odee"]), ("options", {"pcc": {"snr": 0.1}}), ("steps", {"eulr": [5]})]:
        cfg = copy.deepcopy(SMOKE)
        cfg["models"]["vp-mixture2d"][key] = value
        with pytest.raises(ConfigError, match=f"model 'vp-mixture2d': {key} names"):
            build_plan(cfg)
    cfg = copy.deepcopy(SMOKE)
    cfg["models"]["vp-mixture2d"]["options"] = {"ode": {"rtol": 1e-3}}  # a sampler it runs: fine
    assert build_plan(cfg).jobs_of("vp-mixture2d")
