"""Settings outside their valid range are refused when the plan is built, with one message naming the setting; a
diverged (NaN) model ends an adaptive ODE solve instead of hanging it."""
import copy
from pathlib import Path

import pytest
import torch

from sgm_bench import samplers as S
from sgm_bench.checks import load_yaml
from sgm_bench.errors import ConfigError, SolverError
from sgm_bench.likelihood import ode_nll
from sgm_bench.models import build_sde
from sgm_bench.plan import build_plan
from sgm_bench.train import TrainConfig

SMOKE = load_yaml(Path(__file__).resolve().parents[1] / "config" / "smoke.yaml")


@pytest.mark.parametrize("key,value", [("grad_clip", -1), ("grad_clip", 0), ("lr", 0), ("lr", -1e-4), ("ema", -1),
                                       ("ema", 1.5), ("ema", 1.0), ("seed", 2**70), ("seed", -1), ("steps", 2.7),
                                       ("warmup", -5), ("label_dropout", 1.0), ("bf16", "yes"), ("keep_checkpoints", 0)])
def test_train_settings_outside_their_range_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"train: {key} must be"):
        TrainConfig.from_dict({key: value})


def test_paper_train_settings_pass():
    TrainConfig.from_dict({"steps": 800000, "batch_size": 128, "lr": 2e-4, "warmup": 5000, "grad_clip": 1.0,
                           "ema": 0.9999, "ckpt_every": 10000, "seed": 0, "label_dropout": 0.1})


def test_a_fractional_number_of_noise_levels_is_refused():
    with pytest.raises(ConfigError, match="N must be a whole number"):
        build_sde("ncsn", N=2.7)


def plan_with(edit):
    cfg = copy.deepcopy(SMOKE)
    edit(cfg)
    return build_plan(cfg)


def _model(cfg, families=("vp", "ve", "ncsn", "ddpm", "subvp")):
    return next(m for m in cfg["models"].values() if m["model"]["family"] in families)


@pytest.mark.parametrize("sampler,options,message", [
    ("pc", {"snr": -0.5}, "snr must be > 0"), ("ode", {"eps": 2}, "eps must be in"), ("ode", {"rtol": 0}, "rtol must be > 0"),
    ("pc", {"n_steps_each": 1.5}, "n_steps_each must be a whole number"), ("pc", {"snrr": 0.1}, "has no option"),
    ("edm_heun", {"denoise": True}, "already ends noise-free")])
def test_sampler_options_are_checked_when_the_plan_is_built(sampler, options, message):
    def edit(cfg):
        m = _model(cfg)
        m["samplers"] = [sampler]
        m["options"] = {sampler: options}
    with pytest.raises(ConfigError, match=message):
        plan_with(edit)


def test_ddim_eta_below_zero_is_refused_and_sigma_hat_is_not():
    sde = build_sde("ddpm")
    with pytest.raises(ConfigError, match="eta must be >= 0"):
        S.sample("ddim", lambda x, t: -x, sde, (2, 1), steps=5, eta=-1.0)
    assert S.sample("ddim", lambda x, t: -x, sde, (2, 1), steps=5, eta="sigma_hat").x.isfinite().all()


def test_loss_eps_and_kid_subset_are_checked():
    with pytest.raises(ConfigError, match="eps must be in"):
        plan_with(lambda cfg: _model(cfg, ("vp", "ve")).__setitem__("loss", {"eps": 2.0}))
    with pytest.raises(ConfigError, match="kid_subset_size"):
        plan_with(lambda cfg: cfg["evaluation"].__setitem__("kid_subset_size", cfg["evaluation"]["n_samples"] + 1))


@pytest.mark.parametrize("method", ["rk45", "dopri5"])
def test_a_nan_model_ends_the_adaptive_ode_as_non_finite_samples(method):
    """A NaN drift made scipy's RK45 shrink its step forever (the evaluate job held both cores with no message)."""
    sde = build_sde("vp")
    out = S.sample("ode", lambda x, t: x * float("nan"), sde, (4, 2), method=method)
    assert not out.x.isfinite().any() and out.info["stopped"] == "non-finite drift"


def test_a_nan_model_ends_the_likelihood_with_a_solver_error():
    sde = build_sde("vp")
    with pytest.raises(SolverError, match="not finite"):
        ode_nll(lambda x, t: x * float("inf"), sde, torch.zeros(2, 3))


@pytest.mark.parametrize("net,why", [({"hidden": 0}, "hidden must be a whole number >= 1"),
                                     ({"depth": -1}, "depth must be"), ({"hidden": 2.5}, "hidden must be")])
def test_a_network_of_no_width_is_refused_when_planning(net, why):
    def edit(cfg):
        cfg["models"]["vp-mixture2d"]["model"]["net"] = {**cfg["models"]["vp-mixture2d"]["model"]["net"], **net}
    with pytest.raises(ConfigError, match=why):
        plan_with(edit)


def test_class_conditioning_on_a_toy_without_labels_is_refused():
    with pytest.raises(ConfigError, match="has no labels"):
        plan_with(lambda cfg: cfg["models"]["vp-mixture2d"]["model"].update(class_conditional=True))


def test_a_unet_on_an_image_it_cannot_halve_says_so():
    from sgm_bench.models import build_model

    with pytest.raises(ConfigError, match="multiples of 2"):
        build_model("vp", (1, 7, 7), {"name": "unet", "ch": 8, "ch_mult": [1, 2], "attn_resolutions": []})
    build_model("vp", (1, 8, 8), {"name": "unet", "ch": 8, "ch_mult": [1, 2], "attn_resolutions": []})


def test_an_exponent_without_a_dot_is_a_number_as_yaml_1_2_reads_it(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train: {lr: 1e-3, warmup: 2E+2, name: x1e3}\nsteps: [5e1]\n")
    assert load_yaml(f) == {"train": {"lr": 1e-3, "warmup": 200.0, "name": "x1e3"}, "steps": [50.0]}
    assert TrainConfig.from_dict({"lr": load_yaml(f)["train"]["lr"]}).lr == 1e-3


def test_an_alias_bomb_is_read_in_its_own_size(tmp_path):
    """Nine levels of nine aliases expand to 9^9 strings: refused by their count, found without expanding them."""
    levels = ["a0: &a0 [x1e3, 1e-3]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    f = tmp_path / "bomb.yaml"
    f.write_text("\n".join(levels) + "\n")
    with pytest.raises(ConfigError, match=r"expands to 1,362,025,156 values through YAML aliases \(at most"):
        load_yaml(f)
    f.write_text("\n".join(levels[:4]) + "\n")  # 9^3 values: fine, and still shared
    cfg = load_yaml(f)
    assert cfg["a3"][0] is cfg["a3"][8] and cfg["a0"] == ["x1e3", 1e-3]


@pytest.mark.parametrize("where,name", [("models", ".."), ("models", "a/b"), ("datasets", "../x"), ("datasets", "."),
                                        ("experiments", "../../x"), ("variants", "/tmp/evil")])
def test_names_that_could_leave_the_results_folder_are_refused_by_the_schema_and_the_plan(where, name):
    """Model, dataset, experiment and variant names become file names: neither the schema nor the plan admits '.',
    '..', a separator or an absolute path (a model named '..' once made Snakemake empty the results folder)."""
    import jsonschema

    schema = load_yaml(Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml")
    cfg = copy.deepcopy(SMOKE)
    jsonschema.validate(cfg, schema)
    if where == "models":
        cfg["models"][name] = cfg["models"].pop("vp-mixture2d")
    elif where == "datasets":
        cfg["datasets"][name] = cfg["datasets"]["mixture2d"]
    elif where == "experiments":
        cfg["experiments"] = {name: {"experiment": "vp_1d"}}
    else:
        cfg["sampling"]["variants"][name] = {"sampler": "ode"}
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate(cfg, schema)
    with pytest.raises(ConfigError, match=f"name {name!r} is not usable as a file name"):  # the plan, on its own
        build_plan(cfg)
